"""The display pyramid and its cache (workbench/widgets/display.py) and how the canvas uses them.

Pixel accuracy: the level is drawn over the full image's canvas rectangle, so the view transform maps a
click to the same image pixel whatever level is shown; these tests check that the LEVEL's pixel under a
click shows what the ORIGINAL has at the image pixel the click lands on.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from workbench.widgets.display import (
    DisplayCache,
    Pyramid,
    level_for_scale,
    level_size,
    max_factor,
)
from workbench.widgets.geometry import ViewTransform
from workbench.widgets.sink import MemoryImage, MemorySink

PALETTE = np.array(
    [
        [0, 0, 0],
        [255, 255, 255],
        [255, 0, 0],
        [0, 160, 0],
        [0, 0, 255],
        [255, 255, 0],
        [0, 255, 255],
        [255, 0, 255],
        [128, 128, 128],
    ],
    dtype=np.uint8,
)


def blocks(w: int, h: int, block: int, seed: int = 0) -> np.ndarray:
    """An image of ``block`` x ``block`` squares (what a click must land in); no two neighbouring squares
    (sides or corners) share a colour: (3 bx + 5 by + seed) mod 9 differs for every neighbour."""
    by, bx = np.mgrid[0 : -(-h // block), 0 : -(-w // block)]
    small = PALETTE[(3 * bx + 5 * by + seed) % 9]
    return small.repeat(block, 0).repeat(block, 1)[:h, :w]


def encode(arr: np.ndarray, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kw)
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


@pytest.mark.parametrize(
    ("scale", "size", "want"),
    [
        (1.0, (4000, 3000), 1),
        (3.0, (4000, 3000), 1),  # zoomed in: the image itself
        (0.6, (4000, 3000), 1),  # a level-2 copy would have 0.83 px per screen px: too coarse
        (0.5, (4000, 3000), 2),
        (0.26, (4000, 3000), 2),
        (0.25, (4000, 3000), 4),
        (0.2, (4000, 3000), 4),
        (0.1, (4000, 3000), 8),
        (0.001, (4000, 3000), 32),  # capped: the coarsest level keeps 64 px on its longer side
        (0.01, (100, 80), 1),  # small images have no levels
    ],
)
def test_level_choice_never_has_fewer_pixels_than_the_screen(scale, size, want):
    f = level_for_scale(scale, *size)
    assert f == want
    assert f == 1 or f * scale <= 1.0  # at least one level pixel per screen pixel
    assert max(level_size(*size, f)) >= 64


def test_level_choice_refuses_a_broken_scale():
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            level_for_scale(bad, 100, 100)


def test_level_sizes():
    assert level_size(4000, 3000, 4) == (1000, 750)
    assert level_size(1001, 999, 2) == (500, 500)
    assert level_size(3, 3, 8) == (1, 1)
    assert max_factor(4000, 3000) == 32 and max_factor(127, 50) == 1


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize(("w", "h", "factor"), [(1600, 1200, 4), (1003, 757, 2), (1003, 757, 8)])
def test_a_click_on_the_level_lands_on_the_same_image_pixel(fmt, w, h, factor):
    block = max(32, 16 * factor)  # level blocks of 16 px or more: JPEG (q90, 4:2:0) keeps their colour
    arr = blocks(w, h, block)
    data = encode(arr, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    lv = Pyramid(data, w, h).level(factor)
    assert (lv.width, lv.height) == level_size(w, h, factor)
    small = decode(lv.data)
    assert small.shape[:2] == (lv.height, lv.width)
    canvas_w, canvas_h = 900, 700
    view = ViewTransform.fit(w, h, canvas_w, canvas_h).zoomed_at(400, 300, 1.3)
    rng = np.random.default_rng(1)
    checked = 0
    for cx, cy in rng.uniform((0, 0), (canvas_w, canvas_h), (400, 2)):
        ix, iy = view.to_image(cx, cy)  # the click, as the state sees it (independent of the level)
        if not (0 <= ix < w and 0 <= iy < h):
            continue
        if min(ix % block, block - ix % block, iy % block, block - iy % block) < factor + 1:
            continue  # near a block edge the level pixel mixes two blocks
        # the level is drawn over the image's rectangle: its pixel under the click
        lx, ly = int(ix * lv.width / w), int(iy * lv.height / h)
        got = small[ly, lx].astype(int)
        bx, by = int(ix) // block, int(iy) // block  # the block clicked, and its neighbours
        near = {
            (nx, ny): arr[ny * block, nx * block].astype(int)
            for nx in range(max(bx - 1, 0), min(bx + 2, -(-w // block)))
            for ny in range(max(by - 1, 0), min(by + 2, -(-h // block)))
        }
        best = min(near, key=lambda k: np.abs(near[k] - got).sum())
        assert np.array_equal(near[best], near[(bx, by)]), (cx, cy, got, near[(bx, by)])
        checked += 1
    assert checked > 50


def test_level_one_is_the_original_and_each_level_decodes_once():
    arr = blocks(800, 600, 16)
    data = encode(arr, "JPEG", quality=90)
    p = Pyramid(data, 800, 600)
    assert p.level(1).data == data and p.decodes == 0
    a = p.level(4)
    assert p.level(4) is a and p.decodes == 1
    assert a.format == "jpeg" and (a.width, a.height) == (200, 150)


def test_transparency_survives_as_png():
    arr = np.zeros((300, 400, 4), dtype=np.uint8)
    arr[..., 3] = 128
    lv = Pyramid(encode(arr, "PNG"), 400, 300).level(2)
    assert lv.format == "png"
    with Image.open(io.BytesIO(lv.data)) as im:
        assert im.mode == "RGBA" and im.getpixel((10, 10))[3] == 128


def test_a_record_that_lies_about_the_size_is_refused():
    from workbench.errors import ImageError

    with pytest.raises(ImageError, match="800 x 600"):
        Pyramid(encode(blocks(800, 600, 8)), 400, 300).level(2)
    with pytest.raises(ImageError, match="not a readable image"):
        Pyramid(b"not an image", 400, 300).level(2)


def test_cache_keeps_the_last_images_by_content():
    c = DisplayCache(keep=2)
    loads = []

    def loader(tag):
        def load():
            loads.append(tag)
            return encode(blocks(200, 100, 8, seed=len(loads)))

        return load

    a = c.pyramid("a", loader("a"), 200, 100)
    assert c.pyramid("a", loader("a"), 200, 100) is a and loads == ["a"]
    c.pyramid("b", loader("b"), 200, 100)
    c.pyramid("c", loader("c"), 200, 100)
    assert not c.cached("a") and c.cached("b") and c.cached("c")


# ---------------------------------------------------------------------------------------------- the canvas
pytest.importorskip("ipycanvas")


def _sink(n: int = 3, w: int = 1600, h: int = 1200) -> tuple[MemorySink, list[np.ndarray]]:
    arrs = [blocks(w, h, 64, seed=10 + i) for i in range(n)]
    return MemorySink("detection", ["cat"], [MemoryImage(encode(a), w, h) for a in arrs]), arrs


def shown(c) -> np.ndarray:
    """The image the canvas sent for its buffer (the last level image)."""
    return decode(c.image_layer.images[-1].value)


def same_picture(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to JPEG noise (ringing at the sharp square edges); two different images of these
    squares differ by far more on average."""
    return a.shape == b.shape and float(np.abs(a.astype(int) - b.astype(int)).mean()) < 6.0


def fitted_level(c, w: int, h: int, arr: np.ndarray) -> np.ndarray:
    view = ViewTransform.fit(w, h, c.state.settings.canvas_width, c.state.settings.canvas_height)
    f = level_for_scale(view.scale, w, h)
    return np.asarray(Image.fromarray(arr).resize(level_size(w, h, f), Image.Resampling.BOX))


def test_the_canvas_sends_a_display_copy_not_the_photo():
    from workbench.widgets.canvas import AnnotationCanvas

    sink, arrs = _sink()
    c = AnnotationCanvas(sink, width=800, height=600)
    small = shown(c)
    assert small.shape[:2] == (600, 800)  # level 2 of 1600 x 1200 at scale 0.5
    assert same_picture(small, fitted_level(c, 1600, 1200, arrs[0]))
    sent = len(c.image_layer.images)
    c.state.wheel(50)  # zoom out a little, within the level: nothing is sent again
    c.redraw()
    assert len(c.image_layer.images) == sent
    for _ in range(8):  # zoomed in past scale 1: the full image
        c.state.wheel(-200)
        c.redraw()
    assert c.state.view.scale >= 1 and shown(c).shape[:2] == (1200, 1600)
    c.image_layer.display.close()


def test_the_prefetched_image_is_the_one_shown_next():
    from workbench.widgets.canvas import AnnotationCanvas

    sink, arrs = _sink()
    c = AnnotationCanvas(sink, width=800, height=600)
    assert c.image_layer.display.pending is not None
    c.image_layer.display.pending.result(timeout=30)
    blob1 = sink.example(c.state.ids[1]).blob
    assert c.image_layer.display.prefetched == [(blob1, 2)]
    decodes_before = c.image_layer.display.pyramid(blob1, lambda: b"", 1600, 1200).decodes
    c.state.skip()
    c.redraw()
    pyr = c.image_layer.display.pyramid(blob1, lambda: b"", 1600, 1200)
    assert pyr.decodes == decodes_before == 1  # found ready: not decoded again
    assert same_picture(shown(c), fitted_level(c, 1600, 1200, arrs[1]))
    c.image_layer.display.close()


def test_a_stale_prefetch_never_shows():
    from workbench.widgets.canvas import AnnotationCanvas

    sink, arrs = _sink(4)
    c = AnnotationCanvas(sink, width=800, height=600)
    c.image_layer.display.pending.result(
        timeout=30
    )  # example 1 is ready, but the labeller jumps to example 3
    c.state.goto(c.state.ids[3])
    c.redraw()
    assert not same_picture(shown(c), fitted_level(c, 1600, 1200, arrs[1]))
    assert same_picture(shown(c), fitted_level(c, 1600, 1200, arrs[3]))
    c.state.goto(c.state.ids[2])  # and back to 2: its own pixels, not the prefetched neighbour's
    c.redraw()
    assert same_picture(shown(c), fitted_level(c, 1600, 1200, arrs[2]))
    c.image_layer.display.close()


def test_close_stops_the_prefetch_and_closes_the_buffer():
    from workbench.widgets.canvas import AnnotationCanvas

    sink, _ = _sink()
    c = AnnotationCanvas(sink, width=800, height=600)
    c.image_layer.display.pending.result(timeout=30)
    buffers, images = c.image_layer.buffers, list(c.image_layer.images)
    c.close()
    assert c.image_layer.display._pool is None
    assert all(w.comm is None for w in [*buffers, *images])


def test_a_zoom_across_levels_paints_at_once_then_sharpens(monkeypatch):
    """Message 1: the image layer stretches the level on screen (no new image in it); message 2: the
    sharper level goes into the other buffer, which the image layer then shows."""
    import ipycanvas.canvas as ipc

    from workbench.widgets.canvas import AnnotationCanvas

    draw = {v: k for k, v in ipc.COMMANDS.items()}
    log: list[list[tuple[str, list]]] = []

    def record(command, buffers=None):
        cmds = command if command and isinstance(command[0], list) else [command]
        log.append([(draw[c[0]], c[1]) for c in cmds])

    sink, _ = _sink()
    c = AnnotationCanvas(sink, width=800, height=600)  # 1600 x 1200 at scale 0.5: level 2
    c.image_layer.display.pending.result(timeout=30)
    old_front, old_image = c.image_layer.buffers[c.image_layer.front], c.image_layer.images[-1]
    monkeypatch.setattr(ipc._CANVAS_MANAGER, "_send_custom", record)
    c.state.wheel(-200)  # past scale 0.5: level 1
    c.redraw()
    assert c.image_layer.shown[1] == 1 and c.image_layer.buffers[c.image_layer.front] is not old_front
    assert len(log) == 2

    def ref(w) -> str:
        return f"IPY_MODEL_{w.model_id}"

    first = [args[0] for name, args in log[0] if name in ("drawImage", "switchCanvas")]
    assert ref(old_front) in first and ref(c.image_layer.images[-1]) not in first  # the old level, stretched
    second = [args[0] for name, args in log[1] if name in ("drawImage", "switchCanvas")]
    new_front = c.image_layer.buffers[c.image_layer.front]
    assert second.index(ref(c.image_layer.images[-1])) < second.index(
        ref(new_front), second.index(ref(c.image_layer.images[-1]))
    )
    assert c.image_layer.images[-1] is not old_image
    log.clear()
    c.state.wheel(-50)  # within the level: one message, nothing sent again
    c.redraw()
    assert len(log) == 1 and not any(
        name == "drawImage" and args[0] == ref(c.image_layer.images[-1]) for name, args in log[0]
    )
    c.close()


# ---------------------------------------------------------------------------------------------- regions
def test_region_for_view_rules():
    from workbench.widgets.display import covers, region_for_view

    r = region_for_view((1000.3, 800.0, 400.0, 300.0), 4000, 3000)
    assert r == (800.0, 650.0, 801.0, 600.0)  # grown by half its size on each side, whole pixels
    assert covers(r, (1000.3, 800.0, 400.0, 300.0))
    assert region_for_view((10.0, 5.0, 400.0, 300.0), 4000, 3000)[:2] == (0.0, 0.0)  # clamped
    assert region_for_view((3900.0, 2900.0, 400.0, 300.0), 4000, 3000) == (3700.0, 2750.0, 300.0, 250.0)
    assert region_for_view((0.0, 0.0, 0.0, 0.0), 10, 10)[2:] == (1.0, 1.0)  # never empty
    assert not covers(r, (700.0, 800.0, 400.0, 300.0))


def test_a_region_holds_the_original_pixels_and_decodes_once():
    arr = blocks(2600, 1800, 40)
    p = Pyramid(encode(arr), 2600, 1800)
    lv = p.region((120.0, 80.0, 640.0, 480.0))
    assert (lv.width, lv.height, lv.box, lv.factor) == (640, 480, (120.0, 80.0, 640.0, 480.0), 1)
    assert same_picture(decode(lv.data), arr[80:560, 120:760])
    p.region((0.0, 0.0, 100.0, 100.0))
    assert p.decodes == 1
    for bad in ((-1.0, 0.0, 10.0, 10.0), (0.0, 0.0, 2601.0, 10.0), (0.5, 0.0, 10.0, 10.0)):
        with pytest.raises(ValueError, match="whole pixels inside"):
            p.region(bad)


def test_a_big_photo_zoomed_in_sends_the_part_in_view():
    from workbench.widgets.canvas import AnnotationCanvas

    w, h = 2800, 2100  # 5.9 MP: past REGION_MIN_PIXELS
    arr = blocks(w, h, 50)
    sink = MemorySink("detection", ["cat"], [MemoryImage(encode(arr), w, h)])
    c = AnnotationCanvas(sink, width=800, height=600)
    s = c.state
    s.zoom_at(400, 300, 1.0 / s.view.scale * 1.5)  # scale 1.5: level 1, a region
    c.redraw()
    blob, factor, box = c.image_layer.shown
    assert factor == 1 and box[2] < w and box[3] < h
    x0, y0 = s.view.to_image(0, 0)
    x1, y1 = s.view.to_image(800, 600)
    assert box[0] <= x0 and box[1] <= y0 and x1 <= box[0] + box[2] and y1 <= box[1] + box[3]
    bx, by, bw, bh = (int(v) for v in box)
    assert same_picture(shown(c), arr[by : by + bh, bx : bx + bw])
    sent = len(c.image_layer.images)
    s.pan_by(-30, -20)  # within the region: nothing new is sent
    c.redraw()
    assert len(c.image_layer.images) == sent and c.image_layer.shown[2] == box
    s.pan_by(-2000, -1500)  # far away: a new region, around the new view
    c.redraw()
    assert len(c.image_layer.images) == sent + 1 and c.image_layer.shown[2] != box
    x0, y0 = s.view.to_image(0, 0)
    nb = c.image_layer.shown[2]
    assert nb[0] <= max(x0, 0) and nb[1] <= max(y0, 0)
    bx, by, bw, bh = (int(v) for v in nb)
    assert same_picture(shown(c), arr[by : by + bh, bx : bx + bw])
    c.close()


def test_the_next_sharper_level_is_made_ready_in_the_background():
    from workbench.widgets.canvas import AnnotationCanvas

    sink, _ = _sink(1)
    c = AnnotationCanvas(sink, width=400, height=300)  # 1600 x 1200 at scale 0.25: level 4 shown
    ex = c.state.example
    pyr = c.image_layer.display.pyramid(ex.blob, lambda: b"", ex.width, ex.height)
    assert c.image_layer.shown[1] == 4
    c.image_layer.display._pool.submit(lambda: None).result(
        timeout=30
    )  # the one background thread is through
    assert pyr.has(2)  # ready before the zoom asks for it
    decodes = pyr.decodes
    c.state.zoom_at(200, 150, 1.5)
    c.redraw()
    assert c.image_layer.shown[1] == 2 and pyr.decodes == decodes  # used, not decoded again
    c.close()


def test_the_decoded_photo_is_let_go_when_the_page_turns():
    from workbench.widgets.canvas import AnnotationCanvas

    w, h = 2800, 2100
    sink = MemorySink(
        "detection", ["cat"], [MemoryImage(encode(blocks(w, h, 50, seed=i)), w, h) for i in range(2)]
    )
    c = AnnotationCanvas(sink, width=800, height=600)
    ex = c.state.example
    c.state.zoom_at(400, 300, 1.0 / c.state.view.scale * 1.5)  # full size: a region, from the decoded photo
    c.redraw()
    pyr = c.image_layer.display.pyramid(ex.blob, lambda: b"", w, h)
    assert pyr._full is not None
    c.state.skip()
    c.redraw()
    assert pyr._full is None and pyr.has(2)  # 17 MB let go; the fitted level stays for coming back
    c.close()
