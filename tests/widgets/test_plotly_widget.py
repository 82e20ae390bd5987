"""The FigureWidget the Workbench views use: plotly's widget, with a small module that loads plotly's bundle
once per page outside anywidget's 2 s set-up window (the browser side is checked by tests/browser/)."""

from __future__ import annotations

import plotly.graph_objects as go

from workbench.widgets.plotly_widget import LOADER_ESM, FigureWidget


def test_figure_widget_sends_the_loader_and_plotly_bundle():
    fw = FigureWidget(go.Figure(go.Bar(x=["a", "b"], y=[1, 2])))
    assert isinstance(fw, go.FigureWidget)
    state = fw.get_state()
    assert state["_esm"] == LOADER_ESM and len(state["_esm"]) < 5_000
    assert len(state["_plotly_bundle"]) > 1_000_000 and "FigureModel" in state["_plotly_bundle"]
    assert state["_anywidget_id"] == "workbench.widgets.plotly_widget.FigureWidget"
    fw.data[0].y = (3, 4)  # updates still work as plotly's
    assert list(fw.data[0].y) == [3, 4]


def test_every_view_uses_it():
    from workbench.widgets.balance import BalancePlot
    from workbench.widgets.curves import TrainingCurves
    from workbench.widgets.evaluation import ConfusionMatrixView

    report = {"classes": {"cat": {"train": 8, "val": 1, "test": 1, "total": 10}}, "warnings": []}
    views = [
        BalancePlot(report),
        TrainingCurves(),
        ConfusionMatrixView.from_predictions([(1, "a", "b")], ["a", "b"]),
    ]
    assert all(
        isinstance(v.figure_widget, FigureWidget) for v in views
    )  # (anywidget subclasses per instance)
