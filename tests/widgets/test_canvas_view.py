"""The AnnotationCanvas widget without a browser: events go in as the frontend would send them."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("ipycanvas")

import ipycanvas.canvas as ipc  # noqa: E402
import ipywidgets as W  # noqa: E402

from workbench.data.records import Annotation  # noqa: E402
from workbench.widgets.canvas import AnnotationCanvas, browser_image, css_name  # noqa: E402
from workbench.widgets.masks import rle_encode  # noqa: E402

DRAW = {v: k for k, v in ipc.COMMANDS.items()}


def send(c: AnnotationCanvas, event: str, **content) -> None:
    """A message from the browser to the MultiCanvas model (what ipycanvas' JS sends)."""
    c.multicanvas._handle_custom_msg({"event": event, **content}, [])


def mouse(c: AnnotationCanvas, event: str, x: float, y: float) -> None:
    send(c, event, x=x, y=y)


def key(c, k, shift=False, ctrl=False):
    send(c, "key_down", key=k, shift_key=shift, ctrl_key=ctrl, meta_key=False)


def classes_of(widget) -> set[str]:
    out = set(getattr(widget, "_dom_classes", ()))
    for child in getattr(widget, "children", ()):
        out |= classes_of(child)
    return out


@pytest.fixture
def sent(monkeypatch):
    """Draw messages sent to the frontend: one list of command names per message."""
    log: list[list[str]] = []

    def record(command, buffers=None):
        cmds = command if command and isinstance(command[0], list) else [command]
        log.append([DRAW[c[0]] for c in cmds])

    monkeypatch.setattr(ipc._CANVAS_MANAGER, "_send_custom", record)
    return log


def test_css_hooks_and_layout(mk):
    _, sink = mk("detection")
    c = AnnotationCanvas(sink, width=640, height=480)
    assert "wb-canvas" in c.multicanvas._dom_classes  # the <canvas> element that takes the events
    assert c.multicanvas.layout.width == "640px" and c.multicanvas.layout.height == "480px"
    assert (c.multicanvas.width, c.multicanvas.height) == (640, 480)
    expected = {
        "wb-annotation-canvas",
        "wb-toolbar",
        "wb-class-cat",
        "wb-class-dog",
        "wb-class-bird",
        "wb-next",
        "wb-prev",
        "wb-undo",
        "wb-redo",
        "wb-progress",
        "wb-tool-box",
        "wb-accept",
        "wb-reject",
        "wb-zoom-reset",
        "wb-add-class",
        "wb-new-class",
        "wb-message",
        "wb-title",
    }
    assert expected <= classes_of(c)
    assert c.class_buttons["dog"].style.button_color == "#ff7f0e"  # the legend: the class colour
    assert c.progress_label.value.startswith("0 / 3 annotated")
    assert css_name("Traffic light/2") == "traffic-light-2"


def test_draw_after_wheel_zoom_reaches_the_sink_in_image_pixels(mk, sent):
    _, sink = mk("detection")
    c = AnnotationCanvas(sink)  # 800 x 600, image 400 x 300: scale 2
    mouse(c, "mouse_move", 400, 300)
    send(c, "mouse_wheel", x=0, y=-462.1)  # ipycanvas sends deltaX, deltaY as x, y
    scale = c.state.view.scale
    assert scale == pytest.approx(2 * np.exp(462.1 * 0.0015))
    sent.clear()
    mouse(c, "mouse_down", 300, 250)
    mouse(c, "mouse_move", 350, 280)
    mouse(c, "mouse_move", 500, 400)
    mouse(c, "mouse_up", 500, 400)
    (add,) = sink.take()
    ox = 400 - 200 * scale  # the image point (200, 150) stays under the cursor at (400, 300)
    oy = 300 - 150 * scale
    expected = ((300 - ox) / scale, (250 - oy) / scale, 200 / scale, 150 / scale)
    assert add[0] == "add_annotation" and add[2].bbox == pytest.approx(expected)
    # one message per event that changes something (the press itself draws nothing), only changed layers
    assert len(sent) == 3
    assert all("drawImage" not in m for m in sent) and "strokeRects" in sent[-1]
    assert c.title.value == "im1.png — 1 / 3"


def test_keys_buttons_and_messages(mk):
    _, sink = mk("classification")
    c = AnnotationCanvas(sink)
    key(c, "2")
    assert [a.label for a in sink.truth()] == ["dog"]
    key(c, "z", ctrl=True)
    assert sink.truth() == [] and c.undo_button.disabled and not c.redo_button.disabled
    key(c, "Z", shift=True, ctrl=True)
    assert [a.label for a in sink.truth()] == ["dog"]
    assert c.progress_label.value.startswith("1 / 3 annotated")
    c.next_button.click()
    assert c.state.example.id == 2 and not c.prev_button.disabled
    c.prev_button.click()
    assert c.state.example.id == 1 and c.prev_button.disabled
    c.new_class.value = "fish"
    c.add_class_button.click()
    assert sink.writes[-1] == ("add_class", "fish", None) and "wb-class-fish" in classes_of(c)
    c.add_class_button.click()  # empty name: a message, no call
    assert sink.writes[-1][0] == "add_class" and c.message.value == "type a class name first"
    c.new_class.value = "cat"
    c.add_class_button.click()  # the store refuses: the message says why, nothing raises
    assert "already has a class 'cat'" in c.message.value


def test_refused_edit_becomes_a_message(png):
    from workbench.widgets.sink import MemoryImage, MemorySink

    c = AnnotationCanvas(MemorySink("detection", [], [MemoryImage(png(), 400, 300)]))
    for ev, x, y in [("mouse_down", 100, 100), ("mouse_move", 200, 200), ("mouse_up", 200, 200)]:
        mouse(c, ev, x, y)
    assert "add a class first" in c.message.value


def test_client_ready_replays_each_layer(mk, sent):
    _, sink = mk("detection", annotations={1: [Annotation("box", "cat", bbox=(10.0, 10.0, 50.0, 50.0))]})
    c = AnnotationCanvas(sink)
    sent.clear()
    for name in ("image", "annotations", "interaction"):
        c.layers[name]._handle_custom_msg({"event": "client_ready"}, [])
    assert "drawImage" in sent[0] and "strokeRects" in sent[1] and "clear" in sent[2]


def test_proposals_masks_and_polygon_drawing(mk, sent):
    m = np.zeros((300, 400), dtype=bool)
    m[10:40, 10:40] = True
    anns = {
        1: [
            Annotation("mask", "cat", mask=rle_encode(m)),
            Annotation(
                "polygon",
                "dog",
                polygons=((100.0, 100.0, 150.0, 100.0, 120.0, 150.0),),
                proposal=True,
                score=0.5,
            ),
        ]
    }
    _, sink = mk("segmentation", annotations=anns)
    c = AnnotationCanvas(sink)
    assert not c.accept_button.disabled
    widget = c._mask_cache[c.state.annotations[0].id][1]
    c.redraw({"annotations"})
    assert c._mask_cache[c.state.annotations[0].id][1] is widget  # mask images are made once
    sent.clear()
    for x, y in [(500, 500), (600, 500), (600, 560)]:
        mouse(c, "mouse_down", x, y)
        mouse(c, "mouse_up", x, y)
    mouse(c, "mouse_move", 550, 590)
    assert "strokeLines" in sent[-1]
    key(c, "Enter")
    assert sink.truth()[-1].polygons == ((250.0, 250.0, 300.0, 250.0, 300.0, 280.0),)
    c.accept_all_button.click()
    assert not [a for a in sink.stored() if a.proposal] and c.accept_button.disabled


def test_static_png_next_to_the_widget_view(mk, png):
    _, sink = mk("detection", annotations={1: [Annotation("box", "cat", bbox=(10.0, 10.0, 50.0, 50.0))]})
    c = AnnotationCanvas(sink)
    bundle = c._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == c.model_id
    im = Image.open(io.BytesIO(base64.b64decode(bundle["image/png"])))
    assert im.size == (400, 300)
    assert tuple(np.asarray(im.convert("RGB"))[30, 10]) == (0x1F, 0x77, 0xB4)
    from workbench.widgets.sink import MemorySink

    empty = AnnotationCanvas(MemorySink("detection", ["a"], []))
    assert Image.open(io.BytesIO(base64.b64decode(empty._repr_mimebundle_()["image/png"]))).size[0] == 800


def test_browser_image(png):
    data = png(40, 30)
    assert browser_image(data) == (data, "png")
    buf = io.BytesIO()
    Image.new("RGB", (40, 30)).save(buf, format="TIFF")
    out, fmt = browser_image(buf.getvalue())
    assert fmt == "png" and Image.open(io.BytesIO(out)).size == (40, 30)
    assert isinstance(W.Image(value=out, format=fmt), W.Image)


def test_classes_added_elsewhere_show_after_reload(mk):
    _, sink = mk("detection")
    c = AnnotationCanvas(sink)
    sink.add_class("fox", "#123456")  # another widget or a notebook cell
    c._act(c.state.reload)
    assert c.class_buttons["fox"].style.button_color == "#123456"
