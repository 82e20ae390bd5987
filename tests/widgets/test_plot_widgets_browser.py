"""The plot widgets in a real Voilà page (headless Chromium): what the notebook did before the page
connected is on screen, and a click on a confusion cell reaches Python and fills the gallery."""

from __future__ import annotations

import pytest

from tests.browser import missing, screenshot
from tests.browser import voila_page as serve_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]


CELLS = [
    """
from PIL import Image
from workbench.widgets.balance import BalancePlot
from workbench.widgets.curves import TrainingCurves
from workbench.widgets.evaluation import ConfusionMatrixView
curves = TrainingCurves()
display(curves)
curves.on_fit_start({"monitor": "accuracy", "mode": "max"})
for e in range(1, 6):
    for s in range(20):
        curves.on_step(e * 20 + s, 1.0 / (e + s / 20), 0.001, 0.01)
    curves.on_epoch_end({"epoch": e, "train_loss": 1 / e, "val_loss": [1, .8, .7, .75, .8][e - 1],
                         "monitor": "accuracy", "accuracy": [.2, .5, .7, .6, .55][e - 1], "lr": 1e-3})
curves.on_overfit(4, 5)
curves.on_fit_end({"status": "finished"})
""",
    """
view = ConfusionMatrixView.from_predictions(
    [(1, "cat", "cat"), (2, "cat", "dog"), (3, "cat", "dog"), (4, "dog", "dog"), (5, "dog", "cat")],
    ["cat", "dog"], thumbnail_fn=lambda i: Image.new("RGB", (60, 60), (i * 40, 0, 0)), on_open=print)
view
""",
    """
report = {"classes": {"cat": {"train": 8, "val": 1, "test": 1, "total": 10}}, "warnings": []}
plot = BalancePlot(lambda: report)
report = {"classes": {"cat": {"train": 80, "val": 10, "test": 10, "total": 100},
                      "dog": {"train": 5, "val": 0, "test": 0, "total": 5}}, "warnings": []}
plot.refresh()
plot
""",
]


@pytest.fixture
def voila_page(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    reason = missing("voila")
    if reason:
        pytest.skip(reason)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "plots.ipynb")
    with serve_page(
        tmp_path / "plots.ipynb",
        viewport={"width": 1400, "height": 2400},
        start_timeout_s=30,
        goto_timeout_ms=120_000,
    ) as page:
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 3", timeout=120_000)
        yield page


PLOTS_JS = """() => Object.fromEntries(['wb-curves', 'wb-confusion', 'wb-balance'].map(c => {
  const el = document.querySelector('.' + c + ' .js-plotly-plot');
  return [c, {traces: el.data.map(t => [t.name, (t.x || []).length]),
              shapes: (el.layout.shapes || []).map(s => [s.type, s.x0, s.x1])}];
}))"""

CELL_JS = """([row, col]) => {
  const el = document.querySelector('.wb-confusion .js-plotly-plot');
  const fl = el._fullLayout, r = el.getBoundingClientRect();
  return {x: r.left + fl._size.l + fl.xaxis.l2p(col), y: r.top + fl._size.t + fl.yaxis.l2p(row)};
}"""


def test_voila_shows_updates_made_before_the_page_connected_and_clicks_reach_python(voila_page):
    page = voila_page
    plots = page.evaluate(PLOTS_JS)
    curves = dict(plots["wb-curves"]["traces"])
    assert curves["loss"] == 5 and curves["val loss"] == 5 and curves["step loss"] == 100
    assert curves["best"] == 1
    assert ["rect", 4, 5] in plots["wb-curves"]["shapes"] and ["line", 3, 3] in plots["wb-curves"]["shapes"]
    assert dict(plots["wb-balance"]["traces"])["train"] == 2  # after refresh(): two classes
    assert "Done" in page.inner_text(".wb-stop")

    pos = page.evaluate(CELL_JS, [0, 1])  # true cat, predicted dog
    page.mouse.click(pos["x"], pos["y"])
    page.wait_for_selector(".wb-confusion .wb-gallery-item", timeout=20_000)
    ids = page.evaluate(
        "() => [...document.querySelectorAll('.wb-confusion .wb-gallery-item')]"
        ".map(e => [...e.classList].find(c => c.startsWith('wb-example-')))"
    )
    assert ids == ["wb-example-2", "wb-example-3"]
    assert "true cat → predicted dog: 2 examples" in page.inner_text(".wb-confusion-selection")
    assert page.locator(".wb-confusion .wb-open-in-canvas").count() == 2
    screenshot(page, "widgets-plots-in-voila")
