"""The annotation canvas in real headless Chromium, served by Voila (see /work/shared/BROWSER.md).

Checks what only a browser shows: the canvas is drawn (ipycanvas replays on client ready, otherwise Voila
shows it blank), the CSS hooks land on real elements, a mouse drag lands in image pixels, buttons and
keys reach the kernel.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.browser import missing, screenshot
from tests.browser import voila_page as serve_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK_CODE = """
import io, json
import numpy as np
from PIL import Image
from workbench.widgets import AnnotationCanvas, MemoryImage, MemorySink

LOG = {log!r}

class LoggingSink(MemorySink):
    def _dump(self):
        with open(LOG, "w") as f:
            json.dump({{str(i): [a.to_dict() for a in self.example(i).annotations] for i in self.example_ids()}}, f)
    def add_annotation(self, *a, **k):
        out = super().add_annotation(*a, **k); self._dump(); return out
    def update_annotation(self, *a, **k):
        out = super().update_annotation(*a, **k); self._dump(); return out
    def delete_annotation(self, *a, **k):
        super().delete_annotation(*a, **k); self._dump()

def png(color):
    buf = io.BytesIO()
    Image.fromarray(np.full((300, 400, 3), color, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()

sink = LoggingSink("detection", ["cat", "dog"], [MemoryImage(png((200, 40, 40)), 400, 300, file_name="a.png"),
                                                 MemoryImage(png((40, 200, 40)), 400, 300, file_name="b.png")])
AnnotationCanvas(sink, width=800, height=600)
"""


@pytest.fixture
def voila_page(tmp_path):
    reason = missing("voila")
    if reason:
        pytest.skip(reason)
    nbformat = pytest.importorskip("nbformat")
    log = tmp_path / "log.json"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(NOTEBOOK_CODE.format(log=str(log)))])
    nbformat.write(nb, tmp_path / "canvas.ipynb")
    with serve_page(
        tmp_path / "canvas.ipynb",
        viewport={"width": 1200, "height": 900},
        start_timeout_s=60,
        goto_timeout_ms=60_000,
    ) as page:
        yield page, log


def _pixel(page, x: int, y: int) -> list[int]:
    return page.evaluate(
        "([x, y]) => Array.from(document.querySelector('canvas.wb-canvas').getContext('2d')"
        ".getImageData(x, y, 1, 1).data)",
        [x, y],
    )


def _wait_log(log: Path, predicate, timeout: float = 40.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists():
            try:
                data = json.loads(log.read_text())
            except json.JSONDecodeError:
                data = None
            if data is not None and predicate(data):
                return data
        time.sleep(0.1)
    raise AssertionError(
        f"the store never got the expected change; last: {log.read_text() if log.exists() else None}"
    )


def test_canvas_in_voila(voila_page):
    page, log = voila_page
    canvas = page.locator("canvas.wb-canvas")
    canvas.wait_for(state="visible", timeout=90_000)
    page.wait_for_function(
        "() => { const c = document.querySelector('canvas.wb-canvas');"
        " const d = c.getContext('2d').getImageData(400, 300, 1, 1).data; return d[3] > 0; }",
        timeout=30_000,
    )
    assert _pixel(page, 400, 300)[:3] == [200, 40, 40]  # the image, drawn on client ready
    box = canvas.bounding_box()
    assert abs(box["width"] - 800) < 1 and abs(box["height"] - 600) < 1
    for hook in (
        "wb-toolbar",
        "wb-next",
        "wb-prev",
        "wb-undo",
        "wb-progress",
        "wb-class-cat",
        "wb-class-dog",
    ):
        assert page.locator(f".{hook}").count() >= 1, hook
    expect = pytest.importorskip("playwright.sync_api").expect
    expect(page.locator(".wb-progress")).to_contain_text("0 / 2 annotated", timeout=10_000)

    x0, y0 = box["x"], box["y"]
    page.mouse.move(x0 + 100, y0 + 100)
    page.mouse.down()
    page.mouse.move(x0 + 150, y0 + 130, steps=3)
    page.mouse.move(x0 + 300, y0 + 200, steps=3)
    page.mouse.up()
    data = _wait_log(log, lambda d: len(d["1"]) == 1)
    bbox = data["1"][0]["bbox"]
    assert bbox == pytest.approx([50, 50, 100, 50], abs=1.0)  # canvas px / 2: image pixels
    page.wait_for_function(  # the box's left edge is drawn in the class colour
        "() => { const d = document.querySelector('canvas.wb-canvas').getContext('2d')"
        ".getImageData(100, 120, 1, 1).data; return d[2] > 150 && d[0] < 100; }",
        timeout=10_000,
    )

    canvas.click(position={"x": 200, "y": 150})  # select the box on purpose (the drawn one is not)
    page.locator(".wb-class-dog").click()  # the deliberately selected box takes the class
    _wait_log(log, lambda d: d["1"][0]["label"] == "dog")
    canvas.click(position={"x": 700, "y": 550})  # focus (and clears the selection)
    page.keyboard.press("Control+z")
    _wait_log(log, lambda d: d["1"][0]["label"] == "cat")
    page.keyboard.press("Control+z")
    _wait_log(log, lambda d: d["1"] == [])
    page.locator(".wb-next").click()
    page.wait_for_function(
        "() => { const d = document.querySelector('canvas.wb-canvas').getContext('2d')"
        ".getImageData(400, 300, 1, 1).data; return d[1] == 200; }",
        timeout=10_000,
    )
    expect(page.locator(".wb-title")).to_contain_text("b.png", timeout=10_000)  # synced after the canvas
    screenshot(page, "widgets-canvas-in-voila")


def test_executed_notebook_keeps_a_picture(tmp_path):
    """papermill / nbconvert: no browser renders the widget, so the saved output must hold a PNG."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    code = NOTEBOOK_CODE.format(log=str(tmp_path / "log.json"))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    (out,) = [o for o in nb.cells[0].outputs if o.output_type in ("display_data", "execute_result")]
    assert "application/vnd.jupyter.widget-view+json" in out.data and "image/png" in out.data
    from nbconvert import HTMLExporter

    html, _ = HTMLExporter().from_notebook_node(nb)
    assert "data:image/png;base64," in html  # no widget state saved: the exporter falls back to the picture
