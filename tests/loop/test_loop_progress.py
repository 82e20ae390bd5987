"""``workbench loop`` streams what a running notebook writes (its progress lines) while the step runs."""

from __future__ import annotations

import json
import time
from pathlib import Path

from workbench.cli import main
from workbench.loop import run_loop
from workbench.loop.params import STEPS, notebooks_dir


def _notebooks(folder: Path, train_body: str) -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    folder.mkdir()
    for step in STEPS:
        params = new_code_cell("seed = 0\nout_dir = ''\nworkspace = ''")
        params.metadata["tags"] = ["parameters"]
        body = train_body if step == "02_train" else "x = seed"
        nb = new_notebook(cells=[params, new_code_cell(body)])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, str(folder / f"{step}.ipynb"))
    return folder


# One cell: a progress line (the way workbench.progress writes them in a kernel: stderr, no TTY), a
# carriage-return redraw, a print, then two idle seconds before the cell (and the step) ends.
_BODY = (
    "import sys, time\n"
    "from workbench.progress import Stage\n"
    "from workbench.progress import ProgressPrinter\n"
    "stage = Stage(ProgressPrinter(interval=0), 'train', 'epoch 1/1', 2, 'steps')\n"
    "stage.advance(detail='loss 0.5')\n"
    "sys.stderr.write('redrawn 1\\rredrawn 2\\r'); sys.stderr.flush()\n"
    "print('halfway')\n"
    "time.sleep(2.0)\n"
    "stage.advance(); stage.close()\n"
)


def test_lines_arrive_while_the_step_runs(tmp_path):
    nbs = _notebooks(tmp_path / "nbs", _BODY)
    seen: list[tuple[float, str, str]] = []
    steps: dict[tuple[str, str], float] = {}
    run_loop(tmp_path / "out", notebooks=nbs, html=False,
             on_step=lambda s, what: steps.__setitem__((s, what), time.monotonic()),
             on_output=lambda s, line: seen.append((time.monotonic(), s, line)))
    lines = [(s, line) for _, s, line in seen]
    assert ("02_train", "halfway") in lines
    assert ("02_train", "redrawn 1") in lines and ("02_train", "redrawn 2") in lines
    ours = [line for s, line in lines if s == "02_train" and line.startswith("train: epoch 1/1")]
    assert [line.split("  ")[1] for line in ours] == ["0/2 steps (0%)", "1/2 steps (50%)", "2/2 steps (100%)",
                                                       "2/2 steps (100%)"], ours
    first = next(t for t, s, line in seen if line == "halfway")
    assert steps[("02_train", "done")] - first > 1.5  # heard two seconds before the step ended, not after


def test_cli_loop_shows_the_notebooks_lines_on_stderr(tmp_path, capsys):
    nbs = _notebooks(tmp_path / "nbs", "print('hello from the kernel')\nprint('\\x1b[31mred\\x1b[0m')")
    assert main(["loop", "--notebooks", str(nbs), "--out", str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    assert "  02_train | hello from the kernel" in err and "hello" not in out
    assert "\x1b" not in err and "\\x1b[31mred" in err  # a notebook's escapes are shown inert
    start, done = err.index("02_train: running"), err.index("02_train: done")
    assert start < err.index("02_train | hello") < done


# A step that displays a figure the way every Workbench plot widget leaves it in a headless run
# (widgets.static.figure_bundle: plotly JSON + HTML whose script loads plotly.js from the CDN).
FIGURE_BODY = (
    "import plotly.graph_objects as go\n"
    "from workbench.widgets.static import figure_bundle\n"
    "fig = go.Figure(go.Scatter(x=[1, 2, 3, 4], y=[0.9, 0.5, 0.3, 0.2], name='loss'))\n"
    "display(figure_bundle(fig), raw=True)\n"
    "display(figure_bundle(go.Figure(go.Bar(x=['a', 'b'], y=[3, 5]))), raw=True)\n"
)


def figure_loop(tmp_path: Path) -> Path:
    """A loop whose 02_train step shows two plotly figures; returns its output folder."""
    nbs = _notebooks(tmp_path / "nbs", FIGURE_BODY)
    run_loop(tmp_path / "out", notebooks=nbs)
    return tmp_path / "out"


def test_report_and_notebooks_load_no_remote_script(tmp_path):
    import re

    out = figure_loop(tmp_path)
    html = (out / "report.html").read_text()
    srcs = re.findall(r"<script\b[^>]*\bsrc=[\"']?([^\"' >]+)", html)
    assert not [s for s in srcs if "//" in s], srcs  # no cdn.plot.ly, require.js or MathJax from a CDN
    assert "cdn.plot.ly" not in "".join(re.findall(r"<script\b[^>]*>", html))
    assert html.count("plotly.js v") == 1  # plotly.js embedded once, not once per figure or notebook
    nb = json.loads((out / "02_train.ipynb").read_text())
    htmls = ["".join(o["data"]["text/html"]) for c in nb["cells"] for o in c.get("outputs", [])
             if "text/html" in o.get("data", {})]
    assert len(htmls) == 2 and "plotly.js v" in htmls[0] and "plotly.js v" not in htmls[1]
    outside = [re.sub(r"<script data-workbench-plotlyjs>.*?</script>", "", h, flags=re.S) for h in htmls]
    assert [re.findall(r"<script\b[^>]*\bsrc=[^>]*>", h) for h in outside] == [[], []], outside


def test_the_loop_notebooks_report_progress():
    def code(name: str) -> str:
        cells = json.loads((notebooks_dir() / name).read_text())["cells"]
        return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")

    assert "callbacks=[curves, ProgressCallback()]" in code("02_train.ipynb")
    assert "progress=ProgressPrinter()" in code("03_evaluate.ipynb")
