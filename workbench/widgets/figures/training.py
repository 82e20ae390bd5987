"""The training-curves figure: losses, the metric, the learning rate, the best epoch, overfitting."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...text import escape_plotly
from ._common import BEST_COLOR, OVERFIT_COLOR

__all__ = ["CurveSeries", "CURVE_TRACES", "curves_figure", "curve_names", "curve_data", "curve_shapes"]


@dataclass
class CurveSeries:
    """What the training-curves figure shows, as plain lists (``CurvesState.series()`` makes one)."""

    epochs: list[float] = field(default_factory=list)
    loss: list[float | None] = field(default_factory=list)
    val_loss: list[float | None] = field(default_factory=list)
    metric_name: str = ""
    metric: list[float | None] = field(default_factory=list)
    lr: list[float | None] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    best_epoch: float | None = None
    overfit: list[tuple[float, float]] = field(default_factory=list)
    title: str = "Training"


# Trace order of the curves figure; the live widget updates traces by these indexes.
CURVE_TRACES = ("loss", "val loss", "metric", "best", "learning rate", "step loss")


def curves_figure(series: CurveSeries) -> Any:
    """Loss and val loss (left axis) and the metric (right axis) per epoch; the learning rate below; the
    per-step loss at the bottom. The best epoch is a dashed green line with a star on the val-loss (or loss)
    curve; overfitting regions are shaded red. Traces always exist (possibly empty) in ``CURVE_TRACES`` order
    so a live view can update them in place."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=3,
        cols=1,
        row_heights=[0.6, 0.2, 0.2],
        vertical_spacing=0.1,
        specs=[[{"secondary_y": True}], [{}], [{}]],
    )

    def line(color: str, width: float = 2, dash: str = "solid") -> dict[str, Any]:
        return {"color": color, "width": width, "dash": dash}

    star = {"symbol": "star", "size": 16, "color": BEST_COLOR, "line": {"color": "#222", "width": 1}}
    # (style, row, right axis) in CURVE_TRACES order
    styles: list[tuple[dict[str, Any], int, bool]] = [
        ({"line": line("#1f77b4")}, 1, False),
        ({"line": line("#ff7f0e")}, 1, False),
        ({"line": line("#9467bd", dash="dot")}, 1, True),
        ({"mode": "markers", "marker": star, "hovertemplate": "best epoch %{x}<extra></extra>"}, 1, False),
        ({"line": line("#7f7f7f", 1.5), "showlegend": False}, 2, False),
        ({"mode": "lines", "line": line("#aec7e8", 1), "showlegend": False}, 3, False),
    ]
    for name, (x, y), (style, row, right) in zip(
        curve_names(series), curve_data(series), styles, strict=True
    ):
        trace = go.Scatter(name=name, x=x, y=y, **{"mode": "lines+markers", **style})
        fig.add_trace(trace, row=row, col=1, secondary_y=right if row == 1 else None)
    fig.update_layout(shapes=curve_shapes(series))
    fig.update_xaxes(matches="x", title_text="epoch", row=2, col=1)
    fig.update_xaxes(title_text="step", row=3, col=1)
    fig.update_yaxes(title_text="loss", row=1, col=1, secondary_y=False)
    fig.update_yaxes(
        title_text=series.metric_name or "metric", row=1, col=1, secondary_y=True, showgrid=False
    )
    fig.update_yaxes(title_text="learning rate", type="log", exponentformat="e", dtick=1, row=2, col=1)
    fig.update_yaxes(title_text="loss per step", row=3, col=1)
    fig.update_layout(
        title=escape_plotly(series.title),
        height=620,
        template="plotly_white",
        hovermode="x unified",
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"},
        margin={"t": 90, "r": 60, "l": 60, "b": 40},
    )
    return fig


def curve_names(series: CurveSeries) -> list[str]:
    """Trace names in ``CURVE_TRACES`` order (the metric trace is named after the metric)."""
    return [series.metric_name or "metric" if n == "metric" else n for n in CURVE_TRACES]


def curve_data(series: CurveSeries) -> list[tuple[list[Any], list[Any]]]:
    """``(x, y)`` of every trace in ``CURVE_TRACES`` order: what a live view sets on each update."""
    best = _best_point(series)
    return [
        (series.epochs, series.loss),
        (series.epochs, series.val_loss),
        (series.epochs, series.metric),
        best,
        (series.epochs, series.lr),
        (series.steps, series.step_loss),
    ]


def curve_shapes(series: CurveSeries) -> list[dict[str, Any]]:
    """The overfit rectangles and the best-epoch line, on the top subplot's axes (``x`` / ``y domain``)."""
    shapes: list[dict[str, Any]] = []
    for x0, x1 in series.overfit:
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "x0": x0,
                "x1": x1,
                "y0": 0,
                "y1": 1,
                "yref": "y domain",
                "fillcolor": OVERFIT_COLOR,
                "opacity": 0.15,
                "line": {"width": 0},
                "layer": "below",
                "name": "overfitting",
                "label": {
                    "text": "overfitting",
                    "textposition": "top center",
                    "font": {"color": OVERFIT_COLOR, "size": 11},
                },
            }
        )
    if series.best_epoch is not None:
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "x0": series.best_epoch,
                "x1": series.best_epoch,
                "y0": 0,
                "y1": 1,
                "yref": "y domain",
                "line": {"color": BEST_COLOR, "dash": "dash", "width": 1.5},
                "name": "best epoch",
                "label": {
                    "text": f"best: {series.best_epoch:g}",
                    "textposition": "end",
                    "textangle": 0,
                    "xanchor": "left",
                    "font": {"color": BEST_COLOR, "size": 11},
                },
            }
        )
    return shapes


def _best_point(series: CurveSeries) -> tuple[list[float], list[float]]:
    if series.best_epoch is None or series.best_epoch not in series.epochs:
        return [], []
    i = series.epochs.index(series.best_epoch)
    for ys in (series.val_loss, series.loss):
        if i < len(ys) and ys[i] is not None:
            return [series.best_epoch], [ys[i]]  # type: ignore[list-item]
    return [], []
