"""Evaluation figures: the confusion matrix, AP per class, precision-recall curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...data.records import ClassDef
from ...errors import ValidationError
from ...text import escape_plotly
from ._common import category_ticks, class_colors
from ._common import finite_or_none as _finite_or_none

__all__ = ["confusion_figure", "ap_bars_figure", "pr_curves_figure"]


def confusion_figure(
    matrix: Sequence[Sequence[int | float]],
    class_names: Sequence[str],
    *,
    normalize: bool = False,
    title: str = "Confusion matrix",
) -> Any:
    """Heatmap with true classes as rows (top to bottom) and predicted classes as columns.

    ``z`` is the matrix as given (counts) or row-normalized when ``normalize``; the counts are always the
    cell text. Axes are categorical, so class names like "1" and "2" stay names.
    """
    import plotly.graph_objects as go

    n = len(class_names)
    rows = [list(r) for r in matrix]
    if len(rows) != n or any(len(r) != n for r in rows):
        raise ValidationError(
            f"confusion matrix must be {n}x{n} for {n} classes, got "
            f"{len(rows)}x{len(rows[0]) if rows else 0}",
            field="matrix",
        )
    z: list[list[float]] = rows
    if normalize:
        z = [[v / s if (s := sum(r)) else 0.0 for v in r] for r in rows]
    text = [[f"{v:g}" for v in r] for r in rows]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(class_names),
            y=list(class_names),
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            hoverongaps=False,
            name="confusion",
            customdata=[[[escape_plotly(t), escape_plotly(p)] for p in class_names] for t in class_names],
            hovertemplate="true %{customdata[0]} → predicted %{customdata[1]}: %{text}<extra></extra>",
            colorbar={"title": "share of row" if normalize else "examples"},
        )
    )
    side = max(320, min(900, 60 * n + 160))
    fig.update_layout(
        title=escape_plotly(title),
        width=side + 80,
        height=side,
        template="plotly_white",
        xaxis={"title": "predicted", "type": "category", "side": "bottom", "constrain": "domain",
               **category_ticks(class_names)},
        yaxis={"title": "true", "type": "category", "autorange": "reversed", "scaleanchor": "x",
               **category_ticks(class_names)},
        margin={"t": 50, "r": 20, "l": 80, "b": 60},
    )
    return fig


def ap_bars_figure(
    per_class: Mapping[str, float | None],
    classes: Sequence[ClassDef] | Mapping[str, str] | None = None,
    *,
    metric_name: str = "AP",
    title: str | None = None,
) -> Any:
    """One bar per class in its colour; a class without a value (no test examples) shows as "n/a"."""
    import plotly.graph_objects as go

    names = list(per_class)
    colors = class_colors(classes, names)
    values = [_finite_or_none(per_class[n]) for n in names]
    values = [None if v is not None and v < 0 else v for v in values]  # COCO marks "no data" with -1
    fig = go.Figure(
        go.Bar(
            x=names,
            y=values,
            name=metric_name,
            marker={"color": [colors[n] for n in names]},
            text=[f"{v:.3f}" if v is not None else "n/a" for v in values],
            textposition="outside",
            customdata=[escape_plotly(n) for n in names],
            hovertemplate=f"%{{customdata}}: {escape_plotly(metric_name)} %{{y:.3f}}<extra></extra>",
        )
    )
    fig.update_layout(
        title=escape_plotly(title or f"{metric_name} per class"),
        yaxis={"title": metric_name, "range": [0, 1.08]},
        xaxis={"type": "category", **category_ticks(names)},
        template="plotly_white",
        showlegend=False,
        margin={"t": 50, "r": 20, "l": 60, "b": 40},
    )
    return fig


def pr_curves_figure(
    precision: Mapping[str, Sequence[float]],
    classes: Sequence[ClassDef] | Mapping[str, str] | None = None,
    *,
    recall: Sequence[float] | None = None,
    ap: Mapping[str, float | None] | None = None,
    title: str = "Precision-recall per class",
) -> Any:
    """One precision-recall line per class. ``precision[name]`` holds precision at the recall points
    (COCO's 101 points 0, 0.01, ..., 1 by default); negative values (COCO's "undefined") become gaps."""
    import plotly.graph_objects as go

    names = list(precision)
    colors = class_colors(classes, names)
    fig = go.Figure()
    for name in names:
        ys = [_finite_or_none(v) for v in precision[name]]
        ys = [None if v is not None and v < 0 else v for v in ys]
        xs = (
            list(recall)
            if recall is not None
            else [i / (len(ys) - 1) for i in range(len(ys))]
            if len(ys) > 1
            else [0.0] * len(ys)
        )
        if len(xs) != len(ys):
            raise ValidationError(
                f"{len(ys)} precision values but {len(xs)} recall points", record=name, field="precision"
            )
        a = _finite_or_none(ap.get(name)) if ap else None
        label = f"{name} (AP {a:.3f})" if a is not None and a >= 0 else name
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                name=escape_plotly(label),
                mode="lines",
                line={"color": colors[name], "width": 2},
                hovertemplate=f"{escape_plotly(name)}: recall %{{x:.2f}}, precision %{{y:.3f}}<extra></extra>",
            )
        )
    fig.update_layout(
        title=escape_plotly(title),
        xaxis={"title": "recall", "range": [0, 1.01]},
        yaxis={"title": "precision", "range": [0, 1.05]},
        template="plotly_white",
        margin={"t": 50, "r": 20, "l": 60, "b": 40},
    )
    return fig
