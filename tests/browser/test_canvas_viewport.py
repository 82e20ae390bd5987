"""The canvas fits the screen, in the annotate dashboard (Voilà) in headless Chromium.

A store with one detection dataset of 2,400 x 1,800 JPEG photos of coloured squares (the first one
without boxes, to draw on; the second with 60). The page opens at 1366 x 768 (a laptop), then the window
grows to 1920 x 1080: each time the canvas takes the container's width and a height that keeps it whole
on screen, the image is drawn from the display-size copy at the right place (sampled pixels = the
photo's), a drag lands on the right image pixels in the store, and the mouse wheel scrolls the page over
an unfocused canvas but zooms with Ctrl held or once the canvas has focus.
"""

from __future__ import annotations

import io
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
    wait_js,
    wait_until,
)
from workbench import Workspace
from workbench.data.records import Annotation, ImportBatch, ImportItem
from workbench.widgets.geometry import ViewTransform
from workbench.widgets.viewport import MIN_SIZE

pytestmark = [pytest.mark.browser, pytest.mark.slow]

W, H, BLOCK = 2400, 1800, 150
PALETTE = np.array(
    [[230, 30, 30], [30, 200, 30], [30, 30, 230], [240, 240, 40], [40, 230, 230], [230, 40, 230]],
    dtype=np.uint8,
)


def photo(seed: int) -> np.ndarray:
    by, bx = np.mgrid[0 : H // BLOCK, 0 : W // BLOCK]
    return PALETTE[(bx + 2 * by + seed) % len(PALETTE)].repeat(BLOCK, 0).repeat(BLOCK, 1)


def jpeg(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


@pytest.fixture(scope="module")
def workbench_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("viewport-home")
    rng = np.random.default_rng(0)
    crowd = [
        Annotation("box", "thing", bbox=(float(x), float(y), 120.0, 90.0))
        for x, y in rng.uniform((0, 0), (W - 120, H - 90), (60, 2))
    ]
    with Workspace(home) as ws:
        ds = ws.create_dataset("photos", "detection", classes="thing,other")
        ds.import_batch(
            ImportBatch(
                items=[
                    ImportItem(file_name="a.jpg", data=jpeg(photo(0))),
                    ImportItem(file_name="b.jpg", data=jpeg(photo(1)), annotations=crowd),
                    ImportItem(file_name="c.jpg", data=jpeg(photo(2))),
                ]
            )
        )
    return home


@pytest.fixture(scope="module")
def store(workbench_home):
    ws = Workspace(workbench_home)
    yield ws
    ws.close()


@pytest.fixture(scope="module")
def page(dashboards, browser):
    context = new_context(browser, {"width": 1366, "height": 768})
    # every wheel event on the page, and whether someone prevented its default (the page's scroll)
    context.add_init_script(
        """window.__wheels = [];
        window.addEventListener('wheel', (e) => {
          setTimeout(() => window.__wheels.push({prevented: e.defaultPrevented, ctrl: e.ctrlKey}), 0);
        }, {capture: true, passive: true});"""
    )
    page = context.new_page()
    t0 = time.monotonic()
    page.goto(dashboards.url + "voila/render/annotate.ipynb", timeout=WAIT_MS)
    wait_canvas_drawn(page)
    TIMINGS.record("viewport: page open -> canvas drawn (1366 x 768)", time.monotonic() - t0)
    yield page
    errors = page_errors(context)
    context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


# the element that scrolls the page (Voilà scrolls an element, not the window)
SCROLLER_JS = """(() => { for (let p = document.querySelector('canvas.wb-canvas').parentElement; p; p = p.parentElement) {
    const o = getComputedStyle(p).overflowY;
    if ((o === 'auto' || o === 'scroll') && p.scrollHeight > p.clientHeight) return p; }
  return document.scrollingElement; })()"""


def scroll_top(page) -> float:
    return page.evaluate(f"() => {SCROLLER_JS}.scrollTop")


def scroll_to_top(page) -> None:
    page.evaluate(f"() => {{ {SCROLLER_JS}.scrollTop = 0; window.scrollTo(0, 0); }}")


def canvas_size(page) -> tuple[int, int]:
    return tuple(
        page.evaluate(
            "() => { const c = document.querySelector('canvas.wb-canvas'); return [c.width, c.height]; }"
        )
    )


def wait_fitted(page, viewport_w: int) -> tuple[int, int]:
    """Until the canvas has taken the room (wider than the default 800 px and within the window)."""
    wait_js(
        page,
        """vw => { const c = document.querySelector('canvas.wb-canvas'); if (!c) return false;
             const r = c.getBoundingClientRect();
             return c.width > 800 && c.width <= vw && Math.abs(r.width - c.width) < 1; }""",
        viewport_w,
    )
    wait_canvas_drawn(page)
    return canvas_size(page)


def check_fits(page, vw: int, vh: int, name: str) -> tuple[int, int]:
    cw, ch = wait_fitted(page, vw)
    scroll_to_top(page)
    box = page.locator("canvas.wb-canvas").bounding_box()
    container = page.evaluate(
        "() => document.querySelector('.wb-annotation-canvas').getBoundingClientRect().width"
    )
    assert abs(cw - container) <= 2, (cw, container)  # the whole width there is
    assert box["x"] >= 0 and box["x"] + box["width"] <= vw
    top = box["y"]
    if top + box["height"] > vh:  # the header takes too much: scrolled to the toolbar, it all fits
        toolbar_top = page.evaluate(
            "() => document.querySelector('.wb-annotation-canvas').getBoundingClientRect().top"
        )
        top = box["y"] - toolbar_top
    assert top + box["height"] <= vh, f"the canvas ({box}) does not fit a {vw} x {vh} window"
    assert min(cw, ch) >= min(MIN_SIZE)
    screenshot(page, f"viewport-{name}", full_page=False)
    return cw, ch


def check_image_and_drag(page, store, cw: int, ch: int, shift: float) -> None:
    """The photo is drawn where the fitted transform says; a drag stores the same image pixels."""
    view = ViewTransform.fit(W, H, cw, ch)
    arr = photo(0)
    pts = [
        (bx * BLOCK + BLOCK // 2, by * BLOCK + BLOCK // 2) for bx in range(0, 16, 3) for by in range(0, 12, 3)
    ]
    got = canvas_pixels(page, [view.to_canvas(x, y) for x, y in pts])
    want = [arr[y, x].tolist() for x, y in pts]
    for g, w_, p in zip(got, want, pts, strict=True):
        assert max(abs(int(a) - int(b)) for a, b in zip(g[:3], w_, strict=True)) <= 40, (p, g, w_)
    ds = store.dataset("photos")
    eid = ds.example_ids()[0]
    before = len(ds.example(eid).annotations)
    a_img, b_img = (300.0 + shift, 450.0), (900.0 + shift, 1050.0)
    a, b = view.to_canvas(*a_img), view.to_canvas(*b_img)
    o = page.locator("canvas.wb-canvas").bounding_box()
    page.mouse.move(o["x"] + a[0], o["y"] + a[1])
    page.mouse.down()
    page.mouse.move(o["x"] + b[0], o["y"] + b[1], steps=4)
    page.mouse.up()
    assert page.locator("canvas.wb-canvas").bounding_box() == o  # the press did not scroll the canvas away
    anns = wait_until(
        lambda: (lambda x: x if len(x) > before else None)(ds.example(eid).annotations),
        timeout_s=30,
        what="the box in the store",
    )
    bbox = anns[-1].bbox
    tol = 1.5 / view.scale  # a css pixel, in image pixels
    assert abs(bbox[0] - a_img[0]) <= tol and abs(bbox[1] - a_img[1]) <= tol, (bbox, a_img, tol)
    assert abs(bbox[0] + bbox[2] - b_img[0]) <= tol and abs(bbox[1] + bbox[3] - b_img[1]) <= tol


def test_fits_a_laptop_then_a_full_hd_window(page, store):
    cw, ch = check_fits(page, 1366, 768, "1366x768")
    check_image_and_drag(page, store, cw, ch, 0.0)
    page.set_viewport_size({"width": 1920, "height": 1080})
    wait_js(page, "w => document.querySelector('canvas.wb-canvas').width > w", cw)  # it follows the window
    cw2, ch2 = check_fits(page, 1920, 1080, "1920x1080")
    assert cw2 > cw and ch2 > ch
    page.keyboard.press("Escape")
    check_image_and_drag(page, store, cw2, ch2, 1000.0)


SNAP_JS = """() => { const c = document.querySelector('canvas.wb-canvas'); const ctx = c.getContext('2d');
  return [[0.3, 0.3], [0.5, 0.6], [0.7, 0.4], [0.42, 0.52]].map(([fx, fy]) =>
    Array.from(ctx.getImageData(Math.floor(c.width * fx), Math.floor(c.height * fy), 1, 1).data)); }"""


def _snap(page) -> list:
    """A few canvas pixels (at fractions of its size): a zoom changes them."""
    return page.evaluate(SNAP_JS)


def _wait_snap(page, before: list, same: bool) -> None:
    wait_js(
        page,
        f"([b, same]) => (JSON.stringify(({SNAP_JS})()) === JSON.stringify(b)) === same",
        [before, same],
    )


def test_wheel_scrolls_the_page_unless_focused_or_ctrl(page):
    page.set_viewport_size({"width": 1366, "height": 768})
    wait_fitted(page, 1366)
    # a page taller than the window, as a notebook is: room to scroll
    page.evaluate(
        "() => { const d = document.createElement('div'); d.style.height = '2000px';"
        " d.id = 'wb-test-spacer'; document.querySelector('.wb-annotation-canvas').after(d); }"
    )
    canvas = page.locator("canvas.wb-canvas")
    # focus given by script (the dashboard focuses its canvas for the keyboard; the focus keeper after each
    # toolbar click) is not the user's: the wheel still scrolls the page
    page.evaluate("() => { document.activeElement && document.activeElement.blur();"
                  " document.querySelector('canvas.wb-canvas').focus(); }")
    assert page.evaluate("() => document.activeElement === document.querySelector('canvas.wb-canvas')")
    box = canvas.bounding_box()
    centre = (box["x"] + box["width"] / 2, box["y"] + min(box["height"] / 2, 200))
    page.mouse.move(*centre)
    before = _snap(page)
    page.evaluate("() => { window.__wheels = []; }")
    scroll0 = scroll_top(page)
    page.mouse.wheel(0, 240)
    wait_js(page, "() => window.__wheels.length > 0")
    wheels = page.evaluate("() => window.__wheels")
    assert wheels and not any(w["prevented"] for w in wheels), wheels  # nobody stopped the page scroll
    wait_js(page, f"s => {SCROLLER_JS}.scrollTop > s", scroll0)
    time.sleep(1.0)  # a zoom would take a round trip to the kernel: give it the time, then compare
    scroll_to_top(page)
    page.mouse.move(*centre)
    assert _snap(page) == before, "a plain wheel over an unfocused canvas zoomed it"

    # Ctrl + wheel zooms (and the browser does not zoom the page)
    page.evaluate("() => { window.__wheels = []; }")
    page.keyboard.down("Control")
    page.mouse.wheel(0, -240)
    page.keyboard.up("Control")
    wait_js(page, "() => window.__wheels.length > 0")
    assert all(w["prevented"] and w["ctrl"] for w in page.evaluate("() => window.__wheels"))
    _wait_snap(page, before, same=False)
    page.locator(".wb-zoom-reset").click()
    _wait_snap(page, before, same=True)

    # once the canvas has focus (a click on it), a plain wheel zooms
    scroll_to_top(page)
    box = canvas.bounding_box()
    page.mouse.click(box["x"] + 5, box["y"] + 5)
    wait_js(page, "() => document.activeElement === document.querySelector('canvas.wb-canvas')")
    page.evaluate("() => { window.__wheels = []; }")
    scroll1 = scroll_top(page)
    page.mouse.move(*centre)
    page.mouse.wheel(0, -240)
    wait_js(page, "() => window.__wheels.length > 0")
    assert all(w["prevented"] for w in page.evaluate("() => window.__wheels"))
    assert scroll_top(page) == scroll1
    _wait_snap(page, before, same=False)
    page.evaluate("() => document.getElementById('wb-test-spacer').remove()")
