"""Every widget leaves a static picture next to its live view (what papermill / nbconvert keep)."""

from __future__ import annotations

import base64
import io
import json
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.data.records import ClassDef
from workbench.widgets import static
from workbench.widgets.static import PLOTLY_MIME, PNG_MIME, WIDGET_MIME, compose_grid, figure_bundle

CLASSES = [ClassDef("cat", "#ff0000"), ClassDef("dog", "#00aa00")]
REPORT = {
    "classes": {
        "cat": {"train": 20, "val": 2, "test": 2, "total": 24},
        "dog": {"train": 5, "val": 1, "test": 0, "total": 6},
    },
    "warnings": [
        {"code": "class_too_few", "severity": "warning", "message": "dog has 6", "class_name": "dog"}
    ],
    "box_sizes": None,
    "near_duplicates": {"checked": True, "exact": [], "pairs": []},
}


def thumb(example_id: int) -> Image.Image:
    return Image.new("RGB", (40, 30), (example_id * 40 % 255, 90, 90))


def _balance():
    from workbench.widgets.balance import BalancePlot

    return BalancePlot(lambda: REPORT, CLASSES)


def _overview():
    from workbench.widgets.balance import DatasetOverview

    return DatasetOverview(lambda: REPORT, CLASSES)


def _curves():
    from workbench.widgets.curves import TrainingCurves

    return TrainingCurves.from_history(
        [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.2}, {"epoch": 2, "train_loss": 0.5, "val_loss": 0.9}]
    )


def _confusion():
    from workbench.widgets.evaluation import ConfusionMatrixView

    return ConfusionMatrixView.from_predictions(
        [(1, "cat", "cat"), (2, "cat", "dog"), (3, "dog", "dog")], thumbnail_fn=thumb
    )


def _ap():
    from workbench.widgets.evaluation import APView

    return APView(
        {
            "per_class": {"cat": {"AP": 0.4}, "dog": {"AP": 0.6}},
            "pr_curves": {"cat": {"recall": [0, 0.5, 1], "precision": [1, 0.8, 0.2]}},
        },
        CLASSES,
    )


def _gallery():
    from workbench.widgets.gallery import ThumbnailGallery

    g = ThumbnailGallery(thumb)
    g.show([1, 2, 3])
    return g


def _errors():
    from workbench.widgets.gallery import ErrorGallery

    return ErrorGallery([{"example_id": 4, "reason": "high_loss", "score": 0.9}], thumb, on_open=print)


def _augment():
    from workbench.augment.pipeline import AugmentedSample
    from workbench.widgets.augment_grid import AugmentationGrid
    from workbench.widgets.augment_state import GridExample

    def sampler(config, dataset_type, image, boxes=None, labels=None, masks=None, *, seed):
        return AugmentedSample(image, np.asarray(boxes), list(labels), None, [0], [], seed)

    ex = GridExample(1, np.zeros((32, 32, 3), np.uint8), np.array([[2.0, 2.0, 10.0, 10.0]]), ["cat"])
    return AugmentationGrid(
        {"version": 1, "transforms": [{"name": "HorizontalFlip"}]},
        "detection",
        [ex],
        CLASSES,
        draws=2,
        sampler=sampler,
        cell_size=64,
    )


WIDGETS = {
    "balance": (_balance, "wb-balance", PLOTLY_MIME),
    "overview": (_overview, "wb-overview", PLOTLY_MIME),
    "curves": (_curves, "wb-curves", PLOTLY_MIME),
    "confusion": (_confusion, "wb-confusion", PLOTLY_MIME),
    "ap": (_ap, "wb-ap", PLOTLY_MIME),
    "gallery": (_gallery, "wb-gallery", PNG_MIME),
    "errors": (_errors, "wb-gallery", PNG_MIME),
    "augment": (_augment, "wb-augment", PNG_MIME),
}


@pytest.mark.parametrize("name", list(WIDGETS))
def test_mimebundle_has_live_view_and_static_picture(name):
    factory, css, mime = WIDGETS[name]
    widget = factory()
    assert css in widget._dom_classes
    bundle = widget._repr_mimebundle_()
    assert bundle[WIDGET_MIME]["model_id"] == widget.model_id
    assert bundle["text/plain"]
    json.dumps(bundle)  # what the kernel sends must be JSON
    if mime == PLOTLY_MIME:
        spec = bundle[PLOTLY_MIME]
        assert spec["data"] and "layout" in spec
        assert "plotly-graph-div" in bundle["text/html"]
    else:
        img = Image.open(io.BytesIO(base64.b64decode(bundle[PNG_MIME])))
        assert img.format == "PNG" and img.width > 0


class FakeHandle:
    def __init__(self) -> None:
        self.updates: list[dict] = []

    def update(self, obj, raw=False):
        assert raw
        self.updates.append(obj)


def test_display_keeps_a_handle_and_update_static_rewrites_the_output(monkeypatch):
    import IPython.display

    shown: list[tuple] = []
    handle = FakeHandle()

    def fake_display(obj, raw=False, display_id=None):
        shown.append((obj, raw, display_id))
        return handle

    monkeypatch.setattr(IPython.display, "display", fake_display)
    from workbench.widgets.curves import TrainingCurves

    w = TrainingCurves()
    assert w.update_static() == 0  # never displayed: nothing to rewrite
    w._ipython_display_()
    ((obj, raw, display_id),) = shown
    assert raw and display_id is True and WIDGET_MIME in obj and PLOTLY_MIME in obj
    assert obj[PLOTLY_MIME]["data"][0]["x"] == []
    w.on_fit_start({})
    w.on_epoch_end({"epoch": 1, "train_loss": 0.5, "val_loss": 0.6})
    w.on_fit_end({"status": "finished"})  # the end of the run rewrites the stored output
    assert len(handle.updates) == 1
    assert handle.updates[0][PLOTLY_MIME]["data"][0]["y"] == [0.5]


def test_compose_grid_layout_and_flags():
    imgs = [Image.new("RGB", (50, 20), "blue"), Image.new("RGB", (8, 8), "green"), Image.new("RGB", (80, 80))]
    sheet = compose_grid(
        imgs,
        columns=2,
        cell=(40, 40),
        captions=["a", "b", "a long caption " * 5],
        flags=[False, True, False],
        caption_lines=2,
    )
    assert sheet.size == (2 * 46 + 6, 2 * (40 + 28 + 6) + 6)
    px = sheet.load()
    x0, y0 = 6 + 46, 6  # the second cell, flagged: a red frame
    assert px[x0 - 2, y0 + 10] == (224, 0, 0)
    assert px[x0 + 20, y0 + 20] == (0, 128, 0)  # the 8x8 image was enlarged to fill the cell
    with pytest.raises(ValueError):
        compose_grid(imgs, columns=0)


def test_figure_bundle_plotlyjs_setting(monkeypatch):
    import plotly.graph_objects as go

    fig = go.Figure(go.Bar(x=["a"], y=[1]))
    small = figure_bundle(fig)["text/html"]
    assert "cdn.plot.ly" in small and len(small) < 20_000
    monkeypatch.setattr(static, "STATIC_PLOTLYJS", True)
    offline = figure_bundle(fig)["text/html"]
    assert len(offline) > 1_000_000  # plotly.js embedded: renders without a network


NOTEBOOK_CODE = """
import numpy as np
from PIL import Image
from workbench.data.records import ClassDef
from workbench.widgets.curves import TrainingCurves
from workbench.widgets.gallery import ThumbnailGallery
curves = TrainingCurves()
display(curves)
curves.on_fit_start({"monitor": "accuracy", "mode": "max"})
for e in (1, 2, 3):
    curves.on_epoch_end({"epoch": e, "train_loss": 1 / e, "val_loss": 1.5 / e, "monitor": "accuracy",
                         "accuracy": e / 4})
curves.on_fit_end({"status": "finished"})
g = ThumbnailGallery(lambda i: Image.new("RGB", (30, 30), (i * 60, 0, 0)))
g.show([1, 2])
g
"""


@pytest.mark.slow
def test_headless_notebook_keeps_static_pictures(tmp_path, monkeypatch):
    """Executed without a browser (as papermill does): the outputs hold the final figure and the PNG."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(NOTEBOOK_CODE))]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    repo = Path(__file__).resolve().parents[2]  # the kernel imports this checkout's workbench
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])))
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = nb.cells[0].outputs
    plots = [o for o in outputs if PLOTLY_MIME in o.get("data", {})]
    pngs = [o for o in outputs if PNG_MIME in o.get("data", {})]
    assert len(plots) == 1 and len(pngs) == 1
    # the curves output was rewritten at the end of the run: it holds all three epochs
    assert plots[0]["data"][PLOTLY_MIME]["data"][0]["y"] == [1.0, 0.5, 1 / 3]
    assert WIDGET_MIME in plots[0]["data"] and WIDGET_MIME in pngs[0]["data"]
