"""The annotate dashboard (dashboards/annotate.ipynb) in Voilà, driven by headless Chromium.

One Voilà server (``workbench serve``'s command line) over a store with a detection, a segmentation and an
anomaly sample; one page, whose dataset picker switches between them. Every check reads the store from this
process with the Dataset API: what the mouse and keyboard do in the browser must land there, in image pixels.

The canvas is 800 x 600 canvas px and the 128 x 128 samples are fitted into it (scale 600 / 128, offset
(100, 0)); the expectations below compute that transform on their own.
"""

from __future__ import annotations

import io
import math
import re
import time

import numpy as np
import pytest
from PIL import Image

from tests.browser import (
    TIMINGS,
    WAIT_MS,
    canvas_pixels,
    new_context,
    page_errors,
    screenshot,
    wait_canvas_drawn,
    wait_until,
)
from workbench import Workspace
from workbench.data.transfer import add_sample
from workbench.widgets.geometry import ViewTransform

pytestmark = [pytest.mark.browser, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api").expect

CANVAS_W, CANVAS_H = 800, 600
DASHBOARD_ENV = {  # canvas size pinned: test_canvas_viewport.py tests fitting; the `workbench serve --user` name
    "WORKBENCH_CANVAS_SIZE": "800x600",
    "WORKBENCH_USER": "annotator",
}
DATASETS = {  # name -> (sample, count); the picker lists them by name: detect first
    "detect": ("shapes-detection", 12),
    "inspect": ("shapes-anomaly", 6),
    "segment": ("shapes-segmentation", 6),
}
BOX_COLORS = {"circle": "#ff00ff", "square": "#00ffff", "triangle": "#ffff00"}
WHEEL_ZOOM = 0.0015  # CanvasSettings.wheel_zoom: one wheel unit (deltaY) zooms by exp(-deltaY * this)


@pytest.fixture(scope="module")
def workbench_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("annotate-home")
    with Workspace(home) as ws:
        for name, (sample, count) in DATASETS.items():
            ds, ids = add_sample(ws, name, sample, count=count, seed=0)
            if name == "detect":  # the canvas opens on this one: an empty example to draw on
                ds.replace_annotations(ids[0], [])
                for cls, color in BOX_COLORS.items():  # colours no sample shape has (val <= 220)
                    ds.set_class_color(cls, color)
    return home


@pytest.fixture(scope="module")
def store(workbench_home):
    ws = Workspace(workbench_home)
    yield ws
    ws.close()


@pytest.fixture(scope="module")
def page(dashboards, browser):
    context = new_context(browser, {"width": 1300, "height": 1000})
    page = context.new_page()
    t0 = time.monotonic()
    page.goto(dashboards.url + "voila/render/annotate.ipynb", timeout=WAIT_MS)
    t_html = time.monotonic() - t0
    wait_canvas_drawn(page)
    t_widget = time.monotonic() - t0
    TIMINGS.record("annotate: page open -> HTML", t_html)
    TIMINGS.record(
        "annotate: page open -> canvas drawn",
        t_widget,
        note="preheated kernel; the page is opened as soon as the server listens",
    )
    TIMINGS.record("annotate: server start -> canvas drawn", time.monotonic() - dashboards.started)
    screenshot(page, "annotate-01-first-widget")
    yield page
    errors = page_errors(context)
    context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


# ---------------------------------------------------------------------------------------------- helpers
def fit(w: int, h: int) -> tuple[float, float, float]:
    """(scale, offset_x, offset_y) of an image fitted and centred in the canvas."""
    s = min(CANVAS_W / w, CANVAS_H / h, ViewTransform.MAX_SCALE)  # small images enlarged at most 64x
    return s, (CANVAS_W - w * s) / 2, (CANVAS_H - h * s) / 2


def to_image(p: tuple[float, float], view: tuple[float, float, float]) -> tuple[float, float]:
    s, ox, oy = view
    return (p[0] - ox) / s, (p[1] - oy) / s


def rgb(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def origin(page) -> dict:
    box = page.locator("canvas.wb-canvas").bounding_box()
    assert box is not None
    return box


def drag(page, a: tuple[float, float], b: tuple[float, float]) -> float:
    """Press at canvas point ``a``, move to ``b``, release; the time just before the release."""
    o = origin(page)
    page.mouse.move(o["x"] + a[0], o["y"] + a[1])
    page.mouse.down()
    page.mouse.move(o["x"] + b[0], o["y"] + b[1], steps=4)
    t = time.perf_counter()
    page.mouse.up()
    return t


def click(page, p: tuple[float, float]) -> None:
    o = origin(page)
    page.mouse.click(o["x"] + p[0], o["y"] + p[1])


def truth(ds, example_id: int) -> list:
    return [a for a in ds.example(example_id).annotations if not a.proposal]


def title(page) -> str:
    return page.inner_text(".wb-title")


def show(page, name: str, tab: str = "Annotate") -> None:
    """Pick dataset ``name`` (the app is rebuilt for it) and show ``tab``."""
    header = page.locator(".wb-app h3")
    if name not in (header.inner_text() if header.count() else ""):
        page.select_option(".wb-dataset-picker select", label=name)
        page.wait_for_function(
            "n => (document.querySelector('.wb-app h3') || {}).textContent"
            "?.includes('Workbench: ' + n + ' (')",
            arg=name,
            timeout=WAIT_MS,
        )
    page.locator(".wb-app .lm-TabBar-tab", has_text=tab).click()
    if tab == "Annotate":
        wait_canvas_drawn(page)


def first_example(page) -> None:
    """Back to the first example (the previous button, as a person would)."""
    while not re.search(r"— 1 /", title(page)):
        before = title(page)
        page.locator(".wb-prev").click()
        page.wait_for_function(
            "t => document.querySelector('.wb-title').textContent !== t", arg=before, timeout=WAIT_MS
        )


def assert_shows(page, image: np.ndarray, view, points) -> None:
    """The canvas shows ``image`` under ``view`` at image pixels ``points`` (nearest neighbour when
    zoomed in past 2x, so each sampled canvas pixel is the centre of one image pixel)."""
    s, ox, oy = view
    got = canvas_pixels(page, [(ox + (x + 0.5) * s, oy + (y + 0.5) * s) for x, y in points])
    want = [image[y, x].tolist() for x, y in points]
    diff = [
        max(abs(int(a) - int(b)) for a, b in zip(g[:3], w, strict=True))
        for g, w in zip(got, want, strict=True)
    ]
    assert max(diff) <= 3, f"canvas pixels {got} differ from the image's {want} at {points}"


def away_from(anns, w: int, h: int, margin: int = 8) -> list[tuple[int, int]]:
    """Image pixels on a grid that no annotation (nor its tag above it) covers."""
    pts = []
    for y in range(4, h - 4, 13):
        for x in range(4, w - 4, 13):
            if all(
                not (
                    a.bbox[0] - margin <= x <= a.bbox[0] + a.bbox[2] + margin
                    and a.bbox[1] - margin - 4 <= y <= a.bbox[1] + a.bbox[3] + margin
                )
                for a in anns
            ):
                pts.append((x, y))
    return pts


def bbox_close(got, want, tol: float = 1.0) -> bool:
    return all(abs(g - w) <= tol for g, w in zip(got, want, strict=True))


# ---------------------------------------------------------------------------------------------- canvas
def test_canvas_shows_the_image(page, store):
    ds = store.dataset("detect")
    ex = ds.example(ds.example_ids()[0])
    assert ex.file_name in title(page)
    box = origin(page)
    assert abs(box["width"] - CANVAS_W) < 1 and abs(box["height"] - CANVAS_H) < 1  # explicit CSS size
    grid = [(x, y) for x in range(2, ex.width, 15) for y in range(3, ex.height, 15)]
    assert_shows(page, rgb(ds.load_bytes(ex.blob)), fit(ex.width, ex.height), grid)
    # outside the image the canvas is empty: the image is where the transform says, not stretched
    assert canvas_pixels(page, [(40, 300), (760, 300)]) == [[0, 0, 0, 0], [0, 0, 0, 0]]


def test_box_class_key_and_undo(page, store):
    ds = store.dataset("detect")
    show(page, "detect")
    first_example(page)
    eid = ds.example_ids()[0]
    assert truth(ds, eid) == []
    view = fit(128, 128)

    a, b = (300, 200), (420, 290)
    drag(page, a, b)
    (box,) = wait_until(lambda: truth(ds, eid), what="the drawn box in the store")
    want = (*to_image(a, view), (b[0] - a[0]) / view[0], (b[1] - a[1]) / view[0])
    assert box.kind == "box" and box.label == "circle" and box.author == "annotator"
    assert bbox_close(box.bbox, want), (box.bbox, want)
    screenshot(page, "annotate-02-box-drawn")

    page.keyboard.press("2")  # the new box is not selected on purpose: "2" is the class of the NEXT box
    c, d = (520, 380), (600, 450)
    drag(page, c, d)
    wait_until(
        lambda: sorted(x.label for x in truth(ds, eid)) == ["circle", "square"], what="a square box"
    )
    click(page, (360, 245))  # select the first box on purpose: now a class key relabels it
    page.keyboard.press("3")
    wait_until(
        lambda: sorted(x.label for x in truth(ds, eid)) == ["square", "triangle"], what="circle -> triangle"
    )
    screenshot(page, "annotate-03-two-classes")

    for want_labels in (["circle", "square"], ["circle"], []):  # undo: the relabel, the square, the box
        page.keyboard.press("Control+z")
        wait_until(
            lambda w=want_labels: sorted(x.label for x in truth(ds, eid)) == w, what=f"undo to {want_labels}"
        )
    expect(page.locator(".wb-undo")).to_be_disabled(timeout=WAIT_MS)  # nothing left to undo here


def test_zoom_then_draw_lands_in_image_pixels(page, store):
    ds = store.dataset("detect")
    show(page, "detect")
    first_example(page)
    eid = ds.example_ids()[0]
    ex = ds.example(eid)
    image = rgb(ds.load_bytes(ex.blob))
    s0, ox0, oy0 = fit(ex.width, ex.height)
    anchor = (420.0, 320.0)  # the wheel zooms around the pointer: this point keeps its image pixel
    ix, iy = to_image(anchor, (s0, ox0, oy0))
    o = origin(page)
    page.mouse.move(o["x"] + anchor[0], o["y"] + anchor[1])
    before = canvas_pixels(page, [(150, 100), (650, 500)])
    page.keyboard.down("Control")  # the wheel zooms with Ctrl held (or a focused canvas); else it scrolls
    page.mouse.wheel(0, -300)
    page.keyboard.up("Control")
    page.wait_for_function(
        "b => { const c = document.querySelector('canvas.wb-canvas').getContext('2d');"
        " return JSON.stringify([[150, 100], [650, 500]].map(([x, y]) => Array.from(c.getImageData(x, y, 1, 1).data)))"
        " !== JSON.stringify(b); }",
        arg=before,
        timeout=WAIT_MS,
    )
    s = s0 * math.exp(300 * WHEEL_ZOOM)
    zoomed = (s, anchor[0] - ix * s, anchor[1] - iy * s)
    # what is drawn follows the same transform the events go through
    assert_shows(
        page, image, zoomed, [(int(ix) + dx, int(iy) + dy) for dx in (-6, -2, 3, 7) for dy in (-5, 0, 6)]
    )
    screenshot(page, "annotate-04-zoomed")

    end = (anchor[0] + 150, anchor[1] + 110)
    drag(page, anchor, end)
    (box,) = wait_until(lambda: truth(ds, eid), what="the box drawn after zooming")
    want = (ix, iy, 150 / s, 110 / s)
    assert bbox_close(box.bbox, want), (box.bbox, want, "unzoomed it would be", (ix, iy, 150 / s0, 110 / s0))
    screenshot(page, "annotate-05-zoomed-box")
    page.keyboard.press("Control+z")
    wait_until(lambda: truth(ds, eid) == [], what="undo of the zoomed box")
    page.keyboard.press("f")  # back to the fitted view
    page.wait_for_function(
        "() => { const d = document.querySelector('canvas.wb-canvas').getContext('2d')"
        ".getImageData(40, 300, 1, 1).data; return d[3] === 0; }",
        timeout=WAIT_MS,
    )


def test_next_and_previous(page, store):
    ds = store.dataset("detect")
    show(page, "detect")
    first_example(page)
    ids = ds.example_ids()
    first, second = ds.example(ids[0]), ds.example(ids[1])
    page.locator(".wb-next").click()
    page.wait_for_function(
        "n => document.querySelector('.wb-title').textContent.includes(n)",
        arg=second.file_name,
        timeout=WAIT_MS,
    )
    free = away_from(second.annotations, second.width, second.height)
    assert len(free) >= 10
    wait_until(
        lambda: _shows(page, rgb(ds.load_bytes(second.blob)), fit(128, 128), free),
        timeout_s=30,
        what="the second example on the canvas",
    )
    screenshot(page, "annotate-06-next")
    click(page, (60, 300))  # focus the canvas (outside the image: selects nothing)
    page.keyboard.press("PageUp")  # previous ("p" is the polygon tool)
    page.wait_for_function(
        "n => document.querySelector('.wb-title').textContent.includes(n)",
        arg=first.file_name,
        timeout=WAIT_MS,
    )
    wait_until(
        lambda: _shows(page, rgb(ds.load_bytes(first.blob)), fit(128, 128), free),
        timeout_s=30,
        what="the first example again",
    )


def _shows(page, image, view, points) -> bool:
    try:
        assert_shows(page, image, view, points)
    except AssertionError:
        return False
    return True


def test_draw_to_store_latency(page, store):
    """20 boxes, each timed from the mouse-up to its row in the store (polled from this process)."""
    ds = store.dataset("detect")
    show(page, "detect")
    first_example(page)
    eid = ds.example_ids()[0]
    start = len(truth(ds, eid))
    view = fit(128, 128)
    latencies, wanted = [], []
    for k in range(20):
        col, row = divmod(k, 4)
        a = (110 + col * 118, 10 + row * 148)
        b = (a[0] + 80 + k, a[1] + 100)
        t_up = drag(page, a, b)
        wait_until(
            lambda n=start + k + 1: len(truth(ds, eid)) >= n,
            timeout_s=30,
            interval_s=0.002,
            what=f"box {k + 1} in the store",
        )
        latencies.append(time.perf_counter() - t_up)
        wanted.append((*to_image(a, view), (b[0] - a[0]) / view[0], (b[1] - a[1]) / view[0]))
        page.keyboard.press("Escape")  # deselect: the next press never grabs this box
    row = TIMINGS.record("annotate: box mouse-up -> row in store", latencies, goal_s=0.3)
    screenshot(page, "annotate-07-twenty-boxes")
    got = sorted(a.bbox for a in truth(ds, eid))[-20:]
    for want in wanted:
        assert any(bbox_close(g, want) for g in got), (want, got)
    assert row["p95_s"] < 0.3, f"draw -> store p95 {row['p95_s']:.3f} s, over the 0.3 s goal: {latencies}"


# ---------------------------------------------------------------------------------------------- tabs
OVERVIEW_JS = """() => { const el = document.querySelector('.wb-balance-plot');
  const sizes = document.querySelector('.wb-box-sizes');  // add_class lands on the plot element itself
  if (!el || !el.data || !sizes || !sizes.layout) return null;
  return {bars: el.data.filter(t => t.type === 'bar').map(t => [t.name, Array.from(t.x), Array.from(t.y)]),
          sizes: sizes.layout.title && sizes.layout.title.text,
          header: document.querySelector('.wb-overview-header').textContent}; }"""


def test_balance_plot_shows_the_store_counts(page, store):
    """The Dataset tab re-reads the store: bars per class and split, the box-size histogram and the header
    agree with the store's stats as they are now (boxes drawn on this page included)."""
    from workbench.data.stats import dataset_stats

    ds = store.dataset("detect")
    show(page, "detect", "Dataset")
    stats = dataset_stats(ds)
    want = {
        split: {c: row[split] for c, row in stats["classes"].items()} for split in ("train", "val", "test")
    }
    boxes = f"({stats['box_sizes']['count']} boxes)"
    header = f"{stats['annotated']} / {stats['examples']} examples annotated"

    def shown():
        o = page.evaluate(OVERVIEW_JS)
        return (
            o
            if o
            and {name: dict(zip(x, y, strict=True)) for name, x, y in o["bars"]} == want
            and boxes in (o["sizes"] or "")
            and header in o["header"]
            else None
        )

    try:  # the refresh is on its way
        wait_until(shown, timeout_s=60, interval_s=0.2, what="the overview")
    except AssertionError:
        pass  # the assertions below say what differs
    screenshot(page, "annotate-08-balance")
    o = page.evaluate(OVERVIEW_JS)
    assert o is not None, "no balance plot / box-size histogram on the Dataset tab"
    assert {name: dict(zip(x, y, strict=True)) for name, x, y in o["bars"]} == want
    assert boxes in o["sizes"] and header in o["header"], (o["sizes"], o["header"], boxes, header)


GRID_JS = """([cell, pad, cap, colors, tol]) => {
  const img = document.querySelector('.wb-augment img.wb-aug-grid');
  if (!img || !img.complete || !img.naturalWidth) return null;
  const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
  const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
  const cols = Math.round((c.width - pad) / (cell + pad)), rows = Math.round((c.height - pad) / (cell + cap + pad));
  const counts = [];
  for (let r = 0; r < rows; r++) { const row = [];
    for (let k = 0; k < cols; k++) {
      const d = ctx.getImageData(pad + k * (cell + pad), pad + r * (cell + cap + pad), cell, cell).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4)
        if (colors.some(([R, G, B]) => Math.abs(d[i] - R) <= tol && Math.abs(d[i + 1] - G) <= tol
                                       && Math.abs(d[i + 2] - B) <= tol)) n++;
      row.push(n); }
    counts.push(row); }
  const captions = [...document.querySelectorAll('.wb-augment .wb-aug-caption')];
  return {w: c.width, h: c.height, cols, rows, counts,
          flagged: captions.map(e => e.classList.contains('wb-flagged')),
          ids: captions.map(e => Number(e.textContent.match(/^#(\\d+)/)[1]))};
}"""


def test_augmentation_grid_shows_examples_by_draws_with_boxes(page, store):
    """N examples x (original + M draws), each with the store's CURRENT boxes drawn in the class colours
    (the boxes drawn on this page included: the Augment tab re-reads the store)."""
    ds = store.dataset("detect")
    show(page, "detect", "Augment")
    colors = [[int(c.color[i : i + 2], 16) for i in (1, 3, 5)] for c in ds.classes]
    assert sorted(map(tuple, colors)) == sorted(
        (int(v[1:3], 16), int(v[3:5], 16), int(v[5:], 16)) for v in BOX_COLORS.values()
    )
    cell, pad, cap = 200, 6, 42  # compose_grid: 200 px cells, 6 px gaps, 3 caption lines of 14 px
    n_examples, draws = 4, 4  # the app's augmentation_grid(): 4 annotated training examples x 4 draws
    want_ids = ds.example_ids(split="train", status="annotated")[:n_examples]

    boxed = {i: any(a.bbox is not None for a in truth(ds, i)) for i in want_ids}

    def shown():  # the grid of these examples, with boxes where (and only where) the store has some
        g = page.evaluate(GRID_JS, [cell, pad, cap, colors, 30])
        ok = (
            g
            and sorted(set(g["ids"])) == sorted(want_ids)
            and all((max(row) >= 150) == boxed[g["ids"][r * draws]] for r, row in enumerate(g["counts"]))
        )
        return g if ok else None

    try:  # a redraw may still be on its way
        wait_until(shown, timeout_s=60, interval_s=0.2, what="the grid")
    except AssertionError:
        pass  # the assertions below say what differs
    grid = page.evaluate(GRID_JS, [cell, pad, cap, colors, 30])
    assert grid is not None, "no augmentation grid image on the Augment tab"
    page.locator(".wb-augment img.wb-aug-grid").scroll_into_view_if_needed()
    screenshot(page, "annotate-09-augment-grid")
    assert (grid["rows"], grid["cols"]) == (n_examples, draws + 1)
    assert (grid["w"], grid["h"]) == ((draws + 1) * (cell + pad) + pad, n_examples * (cell + cap + pad) + pad)
    assert len(grid["ids"]) == n_examples * draws  # one caption per draw
    assert sorted(set(grid["ids"])) == sorted(want_ids)
    for r, row in enumerate(grid["counts"]):
        eid = grid["ids"][r * draws]
        if not boxed[eid]:
            assert max(row) < 20, f"example {eid} has no boxes, yet row {r} shows box colours ({row})"
            continue
        assert row[0] >= 150, f"example {eid}: the original shows no boxes in the class colours ({row})"
        for k, n in enumerate(row[1:]):
            if not grid["flagged"][r * draws + k]:  # a flagged draw may have lost its boxes
                assert n >= 150, f"example {eid} draw {k + 1}: no boxes in the class colours ({row})"


# ---------------------------------------------------------------------------------------------- types
def test_polygon_on_a_segmentation_dataset(page, store):
    ds = store.dataset("segment")
    show(page, "segment")
    eid = ds.example_ids()[0]
    assert ds.example(eid).file_name in title(page)
    before = {a.id for a in truth(ds, eid)}
    pts = [(250, 150), (450, 160), (420, 380), (260, 350)]
    for p in [*pts, pts[0]]:  # a click on the first vertex again closes the polygon
        click(page, p)
    (poly,) = wait_until(
        lambda: [a for a in truth(ds, eid) if a.id not in before], what="the polygon in the store"
    )
    view = fit(128, 128)
    want = [v for p in pts for v in to_image(p, view)]
    assert poly.kind == "polygon" and poly.label == "circle"
    assert poly.polygons is not None and len(poly.polygons) == 1
    assert bbox_close(poly.polygons[0], want), (poly.polygons, want)
    screenshot(page, "annotate-10-polygon")


def test_good_and_anomalous_on_an_anomaly_dataset(page, store):
    ds = store.dataset("inspect")
    show(page, "inspect")
    eid = ds.example_ids()[0]

    def label():
        labels = [a.label for a in truth(ds, eid) if a.kind == "anomaly"]
        return labels[0] if len(labels) == 1 else None

    start = label()
    assert start in ("good", "anomalous")
    steps = (
        [("key", "good"), ("button", "anomalous")]
        if start == "anomalous"
        else [("button", "anomalous"), ("key", "good")]
    )
    for how, want in steps:
        if how == "button":
            page.locator(f".wb-class-{want}").click()
        else:
            click(page, (60, 300))  # focus the canvas
            page.keyboard.press("1")  # class 1: good
        wait_until(lambda w=want: label() == w, what=f"the example marked {want}")
        screenshot(page, f"annotate-11-{want}")
    progress = page.inner_text(".wb-progress")
    assert re.search(r"\d+ / 6 annotated", progress), progress
