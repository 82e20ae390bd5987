"""Checking, training and reviewing in the dashboards, in Voilà, driven by headless Chromium.

The annotate dashboard's Train and Evaluate tabs (dashboards/annotate.ipynb: the person who annotates also
trains there) and the review dashboard (dashboards/review.ipynb) over the run that training made. One
Voilà server (``workbench serve``'s command line) over a store with a small digits sample; the run, its
predictions and ``mined.json`` are read from this process to check what the pages show. The balance plot
and the augmentation grid of the Dataset / Augment tabs are checked in ``test_annotate_dashboard.py``.
"""

from __future__ import annotations

import io
import time
from collections import Counter
from pathlib import Path

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
)
from workbench import Workspace
from workbench.data.transfer import add_sample
from workbench.train.defaults import choose_defaults
from workbench.widgets.geometry import ViewTransform

pytestmark = [pytest.mark.browser, pytest.mark.slow]
DASHBOARD_ENV = {  # the canvas size the checks below assume; the name `workbench serve --user` passes on
    "WORKBENCH_CANVAS_SIZE": "800x600",
    "WORKBENCH_USER": "reviewer",
}
expect = pytest.importorskip("playwright.sync_api").expect

DATASET, COUNT = "digits", 60
# WorkbenchApp trains what `workbench train` would: the defaults table's row for 60 digits (48 in train)
EPOCHS = choose_defaults("classification", 48).epochs


@pytest.fixture(scope="module")
def workbench_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("review-home")
    with Workspace(home) as ws:
        add_sample(ws, DATASET, "digits", count=COUNT, seed=0)
    return home


@pytest.fixture(scope="module")
def store(workbench_home):
    ws = Workspace(workbench_home)
    yield ws
    ws.close()


@pytest.fixture(scope="module")
def context(dashboards, browser):
    ctx = new_context(browser, {"width": 1300, "height": 1100})
    yield ctx
    errors = page_errors(ctx)
    ctx.close()
    assert errors == [], f"uncaught errors in the pages: {errors}"


@pytest.fixture(scope="module")
def app_page(dashboards, context):
    page = context.new_page()
    t0 = time.monotonic()
    page.goto(dashboards.url + "voila/render/annotate.ipynb", timeout=WAIT_MS)
    wait_canvas_drawn(page)
    TIMINGS.record(
        "annotate (digits): page open -> canvas drawn",
        time.monotonic() - t0,
        note="preheated kernel; the page is opened as soon as the server listens",
    )
    return page


CURVES_JS = """() => { const el = document.querySelector('.wb-curves-plot');
  if (!el || !el.data) return null;
  return Object.fromEntries(el.data.map(t => [t.name, (t.x || []).length])); }"""


@pytest.fixture(scope="module")
def training(app_page, store):
    """Press Train and watch: (time, points per curve) from the page and (time, epochs) from the run's
    history file, sampled until the run ends; then the run folder."""
    page = app_page
    page.locator(".wb-app .lm-TabBar-tab", has_text="Train").click()
    page.locator(".wb-train").click()
    t_click = time.monotonic()
    page_samples: list[tuple[float, dict]] = []
    file_epochs: dict[int, float] = {}  # epoch k -> mtime of the history file that first held k lines
    run_dir: Path | None = None
    deadline = t_click + 300
    while time.monotonic() < deadline:
        shown = page.evaluate(CURVES_JS) or {}
        now = time.monotonic()
        if not page_samples or shown != page_samples[-1][1]:
            page_samples.append((now, shown))
        if run_dir is None:
            found = sorted(store.runs_dir.glob(f"{DATASET}-*"))
            run_dir = found[-1] if found else None
        if run_dir is not None and (run_dir / "history.jsonl").is_file():
            hist = run_dir / "history.jsonl"
            st = hist.stat()
            lines = hist.read_text().count("\n")
            if lines and lines not in file_epochs:  # mtime: wall clock -> monotonic
                file_epochs[lines] = st.st_mtime - time.time() + time.monotonic()
        status = page.inner_text(".wb-app .wb-train-status")
        if "training failed" in status:
            raise AssertionError(status)
        if "Done" in page.inner_text(".wb-app .wb-stop") and shown.get("val loss") == EPOCHS:
            break
        time.sleep(0.03)
    else:
        raise AssertionError(f"training did not finish in 300 s; curves {page_samples[-1:]}")
    # the status says "finished" once the run is also evaluated and mined
    expect(page.locator(".wb-app .wb-train-status")).to_contain_text("finished", timeout=WAIT_MS)
    TIMINGS.record(
        "train tab: Train pressed -> run finished, evaluated, mined",
        time.monotonic() - t_click,
        note=f"{COUNT} digits, {EPOCHS} epochs, in the dashboard's kernel",
    )
    screenshot(page, "review-01-trained")
    assert run_dir is not None
    return {"run_dir": run_dir, "page_samples": page_samples, "file_epochs": file_epochs, "t_click": t_click}


def test_training_curves_grow_while_it_runs(training):
    samples = training["page_samples"]
    counts = [s.get("val loss", 0) for _t, s in samples]
    steps = [s.get("step loss", 0) for _t, s in samples]
    assert counts[-1] == EPOCHS, samples[-1]
    grew = sorted(set(counts))
    assert len(grew) >= 3, f"the val-loss curve should grow while the run goes on, seen counts {grew}"
    assert counts == sorted(counts) and steps == sorted(steps), "a curve lost points"
    assert len(set(steps)) >= 3, f"the step-loss curve should grow during the run: {sorted(set(steps))}"
    # latency: history file written at an epoch's end -> that epoch's point on the page
    latencies = []
    for k, t_file in sorted(training["file_epochs"].items()):
        t_page = next((t for t, s in samples if s.get("val loss", 0) >= k), None)
        assert t_page is not None, f"epoch {k} never showed"
        latencies.append(max(0.0, t_page - t_file))
    assert len(latencies) >= EPOCHS - 1  # (an epoch shorter than one sampling round may be missed)
    TIMINGS.record(
        "train tab: epoch end (history written) -> point shown",
        latencies,
        note="sampled every ~50 ms from the page",
    )
    TIMINGS.record(
        "train tab: Train pressed -> first curve point",
        next(t for t, s in samples if s.get("step loss", 0) > 0) - training["t_click"],
    )


CONFUSION_JS = """sel => { const el = document.querySelector(sel + ' .wb-confusion-plot');
  if (!el || !el.data) return null;
  const t = el.data.find(d => d.type === 'heatmap');
  return t && {x: Array.from(t.x), y: Array.from(t.y), z: Array.from(t.z, r => Array.from(r))}; }"""
GALLERY_JS = """sel => [...document.querySelectorAll(sel + ' .wb-error-gallery .wb-gallery-item')]
  .map(e => Number([...e.classList].find(c => c.startsWith('wb-example-')).slice('wb-example-'.length)))"""


def _expected_confusion(run_dir: Path) -> Counter:
    from workbench.train.runs import load_run

    return Counter(
        (r["truth"], r["label"])
        for r in load_run(run_dir).predictions()
        if r.get("truth") is not None and r.get("label") is not None
    )


def _check_confusion(page, scope: str, run_dir: Path, ds) -> None:
    wait_js(
        page,
        "sel => { const el = document.querySelector(sel + ' .wb-confusion-plot');"
        " return el && el.data && el.data.length > 0; }",
        scope,
    )
    m = page.evaluate(CONFUSION_JS, scope)
    shown = Counter(
        {(m["y"][i], m["x"][j]): v for i, row in enumerate(m["z"]) for j, v in enumerate(row) if v}
    )
    want = _expected_confusion(run_dir)
    assert shown == want, (
        f"confusion matrix on the page {dict(shown)} != the run's test predictions {dict(want)}"
    )
    assert sum(want.values()) == ds.count(split="test")  # every test example, once


def _mined(run_dir: Path) -> list[int]:
    import json

    return [int(e["example_id"]) for e in json.loads((run_dir / "mined.json").read_text())["examples"]]


def _assert_canvas_shows(page, scope: str, ds, example_id: int) -> None:
    """The canvas under ``scope`` is on ``example_id``: its file name in the title, its pixels drawn."""
    ex = ds.example(example_id)
    wait_js(
        page,
        "([sel, name]) => (document.querySelector(sel + ' .wb-title') || {}).textContent?.includes(name)",
        [scope, ex.file_name],
    )
    with Image.open(io.BytesIO(ds.load_bytes(ex.blob))) as im:
        image = np.asarray(im.convert("RGB"))
    s = min(800 / ex.width, 600 / ex.height, ViewTransform.MAX_SCALE)  # fitted, enlarged at most 64x
    ox, oy = (800 - ex.width * s) / 2, (600 - ex.height * s) / 2
    pts = [(x, y) for x in range(0, ex.width, 3) for y in range(1, ex.height, 3)]
    selector = f"{scope} canvas.wb-canvas"

    def off() -> list:
        got = canvas_pixels(page, [(ox + (x + 0.5) * s, oy + (y + 0.5) * s) for x, y in pts], selector)
        return [
            ((x, y), g[:3], image[y, x].tolist())
            for g, (x, y) in zip(got, pts, strict=True)
            if max(abs(int(g[c]) - int(image[y, x, c])) for c in range(3)) > 3
        ]

    deadline = time.monotonic() + 30
    while wrong := off():
        if time.monotonic() > deadline:
            page.locator(selector).scroll_into_view_if_needed()
            screenshot(page, f"failed-canvas-example-{example_id}")
            raise AssertionError(
                f"the canvas does not show example {example_id}: (pixel, shown, image) {wrong[:6]}"
            )
        time.sleep(0.1)


def test_evaluate_tab_confusion_matrix_gallery_and_open_in_canvas(app_page, training, store):
    page, run_dir = app_page, training["run_dir"]
    ds = store.dataset(DATASET)
    page.locator(".wb-app .lm-TabBar-tab", has_text="Evaluate").click()
    _check_confusion(page, ".wb-evaluation", run_dir, ds)
    mined = _mined(run_dir)
    assert mined, "mining selected nothing to review"
    wait_js(
        page,
        f"sel => document.querySelectorAll(sel + ' .wb-gallery-item').length === {min(len(mined), 24)}",
        ".wb-evaluation .wb-error-gallery",
    )
    assert page.evaluate(GALLERY_JS, ".wb-evaluation") == mined[:24]  # ranked as mined.json has them
    screenshot(page, "review-02-evaluate-tab")
    target = mined[min(2, len(mined) - 1)]
    page.locator(f".wb-evaluation .wb-example-{target} .wb-open-in-canvas").click()
    expect(page.locator(".wb-app .lm-TabBar-tab.lm-mod-current")).to_have_text("Annotate", timeout=WAIT_MS)
    _assert_canvas_shows(page, ".wb-app", ds, target)
    screenshot(page, "review-03-opened-in-canvas")


def test_review_dashboard_shows_the_run(dashboards, context, training, store):
    run_dir = training["run_dir"]
    ds = store.dataset(DATASET)
    page = context.new_page()
    t0 = time.monotonic()
    page.goto(dashboards.url + "voila/render/review.ipynb", timeout=WAIT_MS)
    wait_js(page, "() => !!document.querySelector('.wb-review .wb-confusion-plot')")
    TIMINGS.record(
        "review: page open -> first plot", time.monotonic() - t0, note="not preheated (lists runs)"
    )
    assert run_dir.name in page.inner_text(".wb-review")  # the picker's first run: the one trained above
    _check_confusion(page, ".wb-review", run_dir, ds)
    mined = _mined(run_dir)
    wait_js(
        page,
        f"sel => document.querySelectorAll(sel + ' .wb-gallery-item').length === {min(len(mined), 24)}",
        ".wb-review .wb-error-gallery",
    )
    assert page.evaluate(GALLERY_JS, ".wb-review") == mined[:24]
    wait_canvas_drawn(page, ".wb-review canvas.wb-canvas")
    screenshot(page, "review-04-review-dashboard")
    target = mined[:24][-1]  # the last one on the first page
    page.locator(f".wb-review .wb-example-{target} .wb-open-in-canvas").click()
    _assert_canvas_shows(page, ".wb-review", ds, target)
    first = page.locator(f".wb-review .wb-example-{mined[0]} .wb-open-in-canvas")
    first.evaluate("e => e.scrollIntoView({block: 'end'})")  # the button at the window's bottom edge: the canvas,
    # further down, is out of view until "open in canvas" brings it up
    first.click()
    _assert_canvas_shows(page, ".wb-review", ds, mined[0])
    wait_js(  # "open in canvas" brought the canvas (below the gallery) into view, all of it
        page,
        "() => { const r = document.querySelector('.wb-review canvas.wb-canvas').getBoundingClientRect();"
        " return r.top >= -1 && r.bottom <= innerHeight + 1; }",
    )
    assert "review" in [d["name"] for d in ds.directories()]
    screenshot(page, "review-05-opened-in-canvas")
    page.close()
