"""The quickstart notebook in JupyterLab, driven by headless Chromium: every cell runs, every widget renders,
and a click and a key press on the canvas reach Python (the canvas state, then the store).

The notebook under test is a COPY in a temporary folder (Lab autosaves what it opens); the store is a
temporary ``WORKBENCH_HOME`` that the notebook fills with its built-in sample.
"""

from __future__ import annotations

import shutil
import time

import pytest

from tests.browser import (
    REPO,
    TIMINGS,
    WAIT_MS,
    artifacts_dir,
    free_port,
    lab_command,
    lab_env,
    missing,
    new_context,
    page_errors,
    screenshot,
    serve,
    wait_canvas_drawn,
    wait_js,
    wait_until,
)
from workbench import Workspace

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK = "00_quickstart.ipynb"
DATASET = "quickstart-classification"  # the notebook's parameter cell

KERNEL_IDLE_JS = """() => { const app = window.jupyterapp; const w = app && app.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!(k && k.status === 'idle' && k.connectionStatus === 'connected' && w.content.widgets.length); }"""
ALL_RAN_JS = """() => { const w = window.jupyterapp.shell.currentWidget;
  const code = w.content.widgets.filter(c => c.model.type === 'code');
  return w.sessionContext.session.kernel.status === 'idle' && code.every(c => c.model.executionCount !== null); }"""
RUN_IN_KERNEL_JS = """async (code) => {
  const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  let out = ''; const f = k.requestExecute({code, store_history: false});
  f.onIOPub = m => { const t = m.header.msg_type;
    if (t === 'stream') out += m.content.text;
    if (t === 'error') out += m.content.ename + ': ' + m.content.evalue; };
  await f.done; return out; }"""
WIDGETS_JS = """() => window.jupyterapp.shell.currentWidget.content.widgets
  .filter(c => c.model.type === 'code').flatMap(c => {
    const els = [...c.node.querySelectorAll('.jp-OutputArea-output')];
    return c.model.outputs.toJSON().map((o, i) => {
      if (!(o.data && o.data['application/vnd.jupyter.widget-view+json'])) return null;
      const el = els[i];
      return {rendered: !!(el && el.querySelector('.jupyter-widgets')), text: el ? el.textContent.slice(0, 120) : '',
              classes: el ? [...el.querySelectorAll('[class*="wb-"]')].flatMap(e => [...e.classList])
                              .filter(k => /^wb-(annotation-canvas|overview|augment)$/.test(k)) : []};
    }).filter(Boolean); })"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory, browser):
    reason = missing("jupyter-lab")
    if reason:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("lab")
    root = base / "notebooks"
    root.mkdir()
    shutil.copy(REPO / "workbench" / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    home = base / "home"
    port = free_port()
    with serve(
        lab_command(port, root),
        port=port,
        log=base / "lab.log",
        env=lab_env(base, WORKBENCH_HOME=str(home), WORKBENCH_CANVAS_SIZE="800x600"),  # pinned layout
        timeout_s=90,
    ) as server:
        yield server, home
    shutil.copy(base / "lab.log", artifacts_dir() / "jupyterlab.log")


@pytest.fixture(scope="module")
def notebook(lab, browser):
    """The copied quickstart, opened in Lab and run from top to bottom."""
    server, home = lab
    context = new_context(browser, {"width": 1300, "height": 1000})
    page = context.new_page()
    t0 = time.monotonic()
    page.goto(server.url + f"lab/tree/{NOTEBOOK}", timeout=WAIT_MS)
    wait_js(page, KERNEL_IDLE_JS)
    TIMINGS.record("lab: open notebook -> kernel idle", time.monotonic() - t0)
    t1 = time.monotonic()
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")  # not awaited
    wait_js(page, ALL_RAN_JS)
    wait_canvas_drawn(page)
    TIMINGS.record("lab: run all cells -> canvas drawn", time.monotonic() - t1)
    yield page, home
    errors = page_errors(context)
    context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


def test_every_cell_runs_and_every_widget_renders(notebook):
    page, home = notebook
    outputs = page.evaluate(WIDGETS_JS)  # every widget output of the notebook, as its cell shows it
    assert [o["classes"][:1] for o in outputs] == [
        ["wb-annotation-canvas"],
        ["wb-overview"],
        ["wb-augment"],
    ], outputs
    for o in outputs:
        assert o["rendered"] and "Error displaying widget" not in o["text"], o
    errors = page.evaluate("""() => window.jupyterapp.shell.currentWidget.content.widgets
        .filter(c => c.model.type === 'code')
        .flatMap(c => c.model.outputs.toJSON().filter(o => o.output_type === 'error').map(o => o.ename))""")
    assert errors == []
    # each widget shows something: the canvas (drawn, checked by the fixture), the balance bars, the grid
    wait_js(
        page,
        "() => { const el = document.querySelector('.wb-overview .wb-balance-plot');"
        " return el && el.data && el.data.some(t => t.type === 'bar' && t.y.length === 10); }",
    )
    wait_js(
        page,
        "() => { const img = document.querySelector('.wb-augment img.wb-aug-grid');"
        " return img && img.complete && img.naturalWidth > 200; }",
    )
    with Workspace(home) as ws:  # the notebook made its sample in the store the test gave it
        assert ws.dataset(DATASET).count() == 60
    page.locator(".wb-annotation-canvas").scroll_into_view_if_needed()
    screenshot(page, "lab-01-quickstart-canvas", full_page=False)
    page.locator(".wb-augment").scroll_into_view_if_needed()
    screenshot(page, "lab-02-quickstart-augment", full_page=False)


def test_canvas_click_and_key_reach_python_and_the_store(notebook):
    page, home = notebook
    canvas = page.locator("canvas.wb-canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None and abs(box["width"] - 800) < 1 and abs(box["height"] - 600) < 1
    t0 = time.monotonic()
    page.mouse.click(box["x"] + 400, box["y"] + 300)

    def pointer():
        out = page.evaluate(RUN_IN_KERNEL_JS, "print(canvas.state.pointer)").strip()
        return out if out not in ("", "None") else None

    got = wait_until(pointer, timeout_s=30, interval_s=0.05, what="the click in the canvas state")
    TIMINGS.record("lab: canvas click -> state.pointer in the kernel", time.monotonic() - t0)
    x, y = (float(v) for v in got.strip("()").split(","))
    assert abs(x - 400) <= 1.5 and abs(y - 300) <= 1.5, got  # canvas px (Lab may offset by a fraction)

    with Workspace(home) as ws:
        ds = ws.dataset(DATASET)
        eid = ds.example_ids()[0]

        def label():
            labels = [a.label for a in ds.example(eid).annotations if a.kind == "label" and not a.proposal]
            return labels[0] if len(labels) == 1 else None

        before = label()
        key = want = "3" if before != "3" else "4"  # digit class names: key "3" IS class "3"
        page.keyboard.press(key)  # the click gave the canvas focus
        wait_until(lambda: label() == want, timeout_s=30, what=f"label {want!r} on example {eid}")
    # a classification key labels the example and moves on to the next one
    state = page.evaluate(RUN_IN_KERNEL_JS, "print(canvas.state.position)").strip()
    assert state == "1", state
    screenshot(page, "lab-03-canvas-labelled", full_page=False)
