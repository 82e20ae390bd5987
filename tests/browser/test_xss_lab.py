"""Stored XSS in JupyterLab, in headless Chromium: a notebook shows the widgets that display names over the
hostile store (tests/hostile_names.py: dataset, classes, file name, directory, user) and no script of those
names runs, no dialog opens, and the names show as the text they are.

In Lab a leaked handler runs with the user's Jupyter session: its ``_xsrf`` cookie lets it write files, start
terminals, run code. So one directory name is a handler that PUTs a file into the Lab root through
``/api/contents``; the test proves (by inserting the same handler raw, under another file name) that it
WOULD write that file from this page, then asserts the name's own file was never written.

One Lab server, one page load: the notebook is a copy written into a temporary Lab root.
"""

from __future__ import annotations

import json
import time

import pytest

from tests import hostile_names as H
from tests.browser import (
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
expect = pytest.importorskip("playwright.sync_api").expect

NOTEBOOK = "xss.ipynb"


def api_payload(file: str) -> str:
    """Markup whose handler writes ``file`` into the Lab root through the contents API, passing the
    session's _xsrf cookie back as a same-origin script can (no ``/``: names cannot hold one, and ``&#47;`` is
    decoded by the HTML parser before the handler runs; it fits the 200 characters of a name)."""
    return (f"<img src=x onerror=\"fetch('&#47;api&#47;contents&#47;{file}?_xsrf='+document.cookie"
            ".split('_xsrf=')[1].split(';')[0],{method:'PUT',body:JSON.stringify({type:'file',format:'text',"
            "content:'x'})})\">")


LEAK_FILE = "leak.txt"  # written only if the directory name's handler runs
PROBE_FILE = "probe.txt"  # written by the same handler inserted raw on purpose
API_DIRECTORY = api_payload(LEAK_FILE)

# the notebook under test: the annotate dashboard's widgets (user gate, dataset picker, the app with its
# canvas and Dataset tab) and the overview of a directory, each over hostile names (literals in the source)
CELLS = [
    "from workbench import Workspace\n"
    "from workbench.widgets import Picker, UserGate, WorkbenchApp, overview\n"
    "ws = Workspace()",
    f"UserGate({H.USER!r}, lambda who: Picker(\n"
    "    [d['name'] for d in ws.datasets()], lambda name: WorkbenchApp(ws.dataset(name), user=who),\n"
    f"    description='Dataset', value={H.DATASET!r}, css_class='wb-dataset-picker'))",
    f"overview(ws.dataset({H.DATASET!r}), {API_DIRECTORY!r})",
    f"overview(ws.dataset({H.DATASET!r}), {H.DIRECTORY!r})",
]

KERNEL_IDLE_JS = """() => { const app = window.jupyterapp; const w = app && app.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!(k && k.status === 'idle' && k.connectionStatus === 'connected' && w.content.widgets.length); }"""
ALL_RAN_JS = """() => { const w = window.jupyterapp.shell.currentWidget;
  const code = w.content.widgets.filter(c => c.model.type === 'code');
  return w.sessionContext.session.kernel.status === 'idle' && code.every(c => c.model.executionCount !== null); }"""
# A handler that is allowed to run, inserted raw: it must fire (src=x fails to load, as the payloads' do),
# which also means every earlier failed image has had the time to fire its own.
PROBE_JS = """(markup) => new Promise(done => {
  document.body.insertAdjacentHTML('beforeend', '<img src=x-probe onerror="window.__probe=1" style="display:none">');
  document.body.insertAdjacentHTML('beforeend', markup);
  const t = setInterval(() => { if (window.__probe === 1) { clearInterval(t); done(true); } }, 50);
  setTimeout(() => { clearInterval(t); done(false); }, 20000);
})"""
OUTPUT_TEXT_JS = """(sel) => [...document.querySelectorAll('.jp-OutputArea-output ' + sel)].map(e => e.textContent)"""


def notebook_json() -> str:
    cells = [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [],
              "source": src} for i, src in enumerate(CELLS)]
    return json.dumps({"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                   "language": "python"}},
                       "nbformat": 4, "nbformat_minor": 5})


@pytest.fixture(scope="module")
def lab(tmp_path_factory, browser):
    reason = missing("jupyter-lab")
    if reason:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("lab-xss")
    root = base / "notebooks"
    root.mkdir()
    (root / NOTEBOOK).write_text(notebook_json())
    home = base / "home"
    H.build(home)
    with Workspace(home) as ws:
        ws.dataset(H.DATASET).create_directory(API_DIRECTORY)
    port = free_port()
    with serve(
        lab_command(port, root),
        port=port,
        log=base / "lab.log",
        env=lab_env(base, WORKBENCH_HOME=str(home), WORKBENCH_CANVAS_SIZE="800x600"),
        timeout_s=90,
    ) as server:
        yield server, root
    (artifacts_dir() / "jupyterlab-xss.log").write_text((base / "lab.log").read_text(errors="replace"))


def test_hostile_names_in_lab_run_no_script_and_show_as_text(lab, browser):
    server, root = lab
    context = new_context(browser, {"width": 1300, "height": 1100})
    dialogs: list[str] = []
    page = context.new_page()
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    t0 = time.monotonic()
    page.goto(server.url + f"lab/tree/{NOTEBOOK}", timeout=WAIT_MS)
    wait_js(page, KERNEL_IDLE_JS)
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")  # not awaited
    wait_js(page, ALL_RAN_JS)
    errors = page.evaluate("""() => window.jupyterapp.shell.currentWidget.content.widgets
        .filter(c => c.model.type === 'code')
        .flatMap(c => c.model.outputs.toJSON().filter(o => o.output_type === 'error').map(o => o.evalue))""")
    assert errors == []
    app = page.locator(".jp-OutputArea-output .wb-app")
    expect(app.locator("h3")).to_contain_text("(classification)", timeout=WAIT_MS)
    wait_canvas_drawn(page)
    expect(app.locator(".wb-title")).to_contain_text(H.FILE_NAME, timeout=WAIT_MS)
    app.locator(".lm-TabBar-tab", has_text="Dataset").click()
    wait_js(page, "() => document.querySelectorAll('.wb-overview .wb-balance-plot').length === 3")
    TIMINGS.record("lab xss: open, run all, Dataset tab", time.monotonic() - t0)

    # the probe: a raw handler runs here, and the same API handler writes its file with this session
    assert page.evaluate(PROBE_JS, api_payload(PROBE_FILE)), "the probe handler did not run"
    wait_until(lambda: (root / PROBE_FILE).exists(), timeout_s=30, what="the probe's file in the Lab root")
    time.sleep(0.5)  # a leaked name's request, fired before the probe's, has landed too
    leaked, wrote = page.evaluate("() => window.__xss"), (root / LEAK_FILE).exists()
    if leaked is not None or wrote:
        screenshot(page, "xss-lab")
    assert (leaked, wrote) == (None, False), (
        f"a name's script ran in Lab (window.__xss = {leaked}; {LEAK_FILE} written through /api/contents: {wrote})")
    assert dialogs == []
    assert page.evaluate("() => document.querySelectorAll("
                         "'.jp-OutputArea-output [onerror], .jp-OutputArea-output [onload]').length") == 0
    assert {p.name for p in root.iterdir() if not p.name.startswith(".")} == {NOTEBOOK, PROBE_FILE}

    # the names, as text, in the widgets' outputs (not the cell sources, which also hold them)
    assert page.evaluate(OUTPUT_TEXT_JS, ".wb-app h3") == [f"Workbench: {H.DATASET} (classification)"]
    assert H.USER in " ".join(page.evaluate(OUTPUT_TEXT_JS, ".wb-user"))
    headers = " ".join(page.evaluate(OUTPUT_TEXT_JS, ".wb-overview-header"))
    for name in (f"{H.DATASET}: dataset overview", f"{H.DATASET} / {H.DIRECTORY}: dataset overview",
                 f"{H.DATASET} / {API_DIRECTORY}: dataset overview"):
        assert name in headers, (name, headers)
    shown = page.inner_text(".wb-app .wb-overview .wb-balance-plot")
    assert all(c in shown for c in H.CLASSES), shown  # class names as tick labels, not markup
    buttons = " ".join(page.evaluate(OUTPUT_TEXT_JS, ".wb-app button"))
    assert all(c in buttons for c in H.CLASSES), buttons  # the canvas' class buttons
    errors = page_errors(context)
    context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"
