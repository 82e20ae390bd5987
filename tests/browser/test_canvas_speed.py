"""How fast the annotate dashboard zooms and turns pages on real-size photos, in headless Chromium.

Three 4,000 x 3,000 JPEGs made from real photographs (``benchmarks/bench_canvas_photo.py``: scikit-learn's
and matplotlib's sample photos, upscaled with grain, 3-5 MB each) with 100 boxes each. Measured from the
input (Ctrl + wheel notch, a click on Skip / Prev) to the canvas showing the change (sampled pixels
differ), i.e. kernel round trip + browser drawing. Recorded in the browser timings table against the
issue's 100 ms goal, not asserted (tests check correctness, timings are measured: the kernel-side figures
are in ``benchmarks/bench_canvas_photo.py``). What is asserted: every notch and every page turn redraws the
canvas. Before the display pyramid, ipycanvas decoded the whole photo again for every zoom notch and page.
"""

from __future__ import annotations

import time

import pytest

from tests.browser import TIMINGS, WAIT_MS, new_context, page_errors, wait_canvas_drawn, wait_js
from workbench import Workspace
from workbench.data.records import ImportBatch, ImportItem

pytestmark = [pytest.mark.browser, pytest.mark.slow]
photo = pytest.importorskip("benchmarks.bench_canvas_photo")

SNAP_JS = """() => { const c = document.querySelector('canvas.wb-canvas'); const ctx = c.getContext('2d');
  const out = [];
  for (let i = 1; i < 8; i++) for (let j = 1; j < 6; j++)
    out.push(...ctx.getImageData(Math.floor(c.width * i / 8), Math.floor(c.height * j / 6), 1, 1).data);
  return out.join(','); }"""


@pytest.fixture(scope="module")
def workbench_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("speed-home")
    with Workspace(home) as ws:
        ds = ws.create_dataset("streets", "detection", classes=",".join(photo.CLASSES))
        items = [
            ImportItem(
                file_name=f"p{i}.jpg", data=photo.photo_jpeg(seed=i), annotations=photo.photo_boxes(100, i)
            )
            for i in range(3)
        ]
        ds.import_batch(ImportBatch(items=items))
    return home


@pytest.fixture(scope="module")
def page(dashboards, browser):
    context = new_context(browser, {"width": 1366, "height": 768})
    page = context.new_page()
    page.goto(dashboards.url + "voila/render/annotate.ipynb", timeout=WAIT_MS)
    wait_canvas_drawn(page)
    yield page
    errors = page_errors(context)
    context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


def _changed(page, before: str, t0: float) -> float:
    wait_js(page, f"b => ({SNAP_JS})() !== b", before, timeout_ms=30_000)
    return time.perf_counter() - t0


def _p95(values: list[float]) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, round(0.95 * (len(v) - 1)))]


def test_zoom_and_page_turns_on_photos(page):
    time.sleep(2.0)  # the first page's sizing and prefetch settle
    box = page.locator("canvas.wb-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.45, box["y"] + min(box["height"] * 0.5, 300))
    zoom = []
    for i in range(16):  # in, then out, across the pyramid levels
        before = page.evaluate(SNAP_JS)
        page.keyboard.down("Control")
        t0 = time.perf_counter()
        page.mouse.wheel(0, -150 if i < 8 else 150)
        page.keyboard.up("Control")
        zoom.append(_changed(page, before, t0))
    turns = []
    for i in range(6):  # forward and back again, a second apart (a labeller looks at each photo)
        time.sleep(1.0)
        before = page.evaluate(SNAP_JS)
        t0 = time.perf_counter()
        page.locator(".wb-next" if i < 2 or i >= 4 else ".wb-prev").click()
        turns.append(_changed(page, before, t0))
    for name, values in (("zoom notch", zoom), ("skip / prev", turns)):
        TIMINGS.record(f"4000x3000 JPEG, 100 boxes: {name} -> canvas redrawn", values, goal_s=0.1)
    # Measured, not asserted (same machine, load ~8): before the pyramid zoom p50 0.27 s, skip / prev p50
    # 0.59 s, p95 0.78 s; after, zoom p50 0.07-0.10 s, skip / prev p50 0.11-0.16 s.
    # (each _changed above fails the test when an input does not redraw the canvas within 30 s)
