"""Figures of a dataset's quality report: examples per class and split, box sizes."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ...data.records import ClassDef
from ...errors import ValidationError
from ...text import escape_plotly
from ._common import OVERFIT_COLOR, category_ticks, class_colors
from ._common import count as _count

__all__ = ["SPLIT_STYLE", "balance_figure", "box_size_flags", "box_size_figure"]

# How the three splits differ when bars share the class colour.
SPLIT_STYLE: dict[str, dict[str, Any]] = {
    "train": {"pattern": "", "opacity": 1.0},
    "val": {"pattern": "/", "opacity": 0.75},
    "test": {"pattern": ".", "opacity": 0.55},
}
GUIDANCE_DASH = {"minimum": "dot", "good": "dash", "great": "longdash"}


def balance_figure(
    report: Mapping[str, Any],
    classes: Sequence[ClassDef] | Mapping[str, str] | None = None,
    *,
    guidance: Mapping[str, int] | None = None,
    barmode: str = "group",
    log_y: bool = True,
) -> Any:
    """Examples per class per split (bars in the class colour; splits told apart by pattern), the total
    per class as a marker, and the examples-per-class guidance as horizontal lines.

    ``report`` is ``quality_report(...).to_dict()``: ``report["classes"][name] = {"train", "val", "test",
    "total"}``. A log y axis (default) keeps 10, 300 and 1000 readable on one chart.
    """
    import plotly.graph_objects as go

    if barmode not in ("group", "stack"):
        raise ValidationError(f"barmode must be 'group' or 'stack', got {barmode!r}", field="barmode")
    per_class = report.get("classes") if isinstance(report, Mapping) else None
    if not isinstance(per_class, Mapping):
        raise ValidationError(
            "quality report has no 'classes' mapping", file="quality report", field="classes"
        )
    if guidance is None:
        from ...data.quality import GUIDANCE

        guidance = GUIDANCE
    order = [c.name for c in classes] if classes is not None and not isinstance(classes, Mapping) else []
    names = [n for n in order if n in per_class] + [n for n in per_class if n not in order]
    colors = class_colors(classes, names)
    counts: dict[str, dict[str, int]] = {}
    for name in names:
        row = per_class[name]
        if not isinstance(row, Mapping):
            raise ValidationError(
                "class row must be a mapping of split -> count",
                file="quality report",
                record=name,
                field="classes",
            )
        counts[name] = {s: _count(row.get(s, 0), record=name, field_name=s) for s in SPLIT_STYLE}
        total = row.get("total", sum(counts[name].values()))
        counts[name]["total"] = _count(total, record=name, field_name="total")

    fig = go.Figure()
    for split, style in SPLIT_STYLE.items():
        fig.add_trace(
            go.Bar(
                name=split,
                x=names,
                y=[counts[n][split] for n in names],
                marker={
                    "color": [colors[n] for n in names],
                    "pattern": {"shape": style["pattern"], "fgcolor": "white", "solidity": 0.3},
                    "line": {"color": "#333", "width": 0.5},
                },
                opacity=style["opacity"],
                legendgroup=split,
                customdata=[escape_plotly(n) for n in names],  # names as text in the hover
                hovertemplate=f"%{{customdata}} · {split}: %{{y}}<extra></extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            name="total",
            x=names,
            y=[counts[n]["total"] for n in names],
            mode="markers",
            marker={
                "symbol": "diamond",
                "size": 10,
                "color": [colors[n] for n in names],
                "line": {"color": "#222", "width": 1},
            },
            customdata=[escape_plotly(n) for n in names],
            hovertemplate="%{customdata}: %{y} examples in all<extra></extra>",
        )
    )
    for label, value in guidance.items():
        fig.add_hline(
            y=value,
            line={"dash": GUIDANCE_DASH.get(label, "dot"), "color": "#555", "width": 1},
            name=f"guidance:{label}",
        )
        # on a log axis plotly places annotations at log10 of the value (shapes take the value itself)
        fig.add_annotation(
            text=f"{label}: {value} per class",
            x=0,
            xref="x domain",
            xanchor="left",
            y=math.log10(value) if log_y and value > 0 else value,
            yref="y",
            yanchor="bottom",
            showarrow=False,
            font={"size": 10, "color": "#555"},
            name=f"guidance:{label}",
        )
    top = max([counts[n]["total"] for n in names] + [max(guidance.values(), default=1)])
    yaxis: dict[str, Any] = {"title": "examples"}
    if log_y:
        yaxis.update(type="log", range=[-0.1, math.log10(max(top, 1) * 2)])
    fig.update_layout(
        barmode=barmode,
        yaxis=yaxis,
        xaxis={"title": "class", "type": "category", **category_ticks(names)},
        title="Examples per class and split",
        legend={"orientation": "h", "y": -0.2},
        margin={"t": 50, "r": 20, "l": 60, "b": 40},
        template="plotly_white",
    )
    return fig


def box_size_flags(box_sizes: Mapping[str, Any]) -> tuple[list[str], list[int], list[str]]:
    """``(bin labels, counts, flag per bin)`` of a box-size histogram; a flag is "", "too small" or "too
    large": the bins that reach below the tiny-side threshold or above the huge-area threshold."""
    hist = box_sizes.get("histogram") if isinstance(box_sizes, Mapping) else None
    if not isinstance(hist, Mapping) or "edges" not in hist or "counts" not in hist:
        raise ValidationError(
            "box sizes need a histogram with edges and counts",
            file="quality report",
            field="box_sizes.histogram",
        )
    edges = [float(e) for e in hist["edges"]]
    counts = [_count(c, record="box sizes", field_name="histogram.counts") for c in hist["counts"]]
    if len(edges) != len(counts) + 1:
        raise ValidationError(
            f"{len(edges)} histogram edges for {len(counts)} counts",
            file="quality report",
            field="box_sizes.histogram",
        )
    th = box_sizes.get("thresholds") or {}
    tiny = float(th.get("tiny_fraction", 0.01))
    huge = math.sqrt(float(th.get("huge_fraction", 0.9)))  # sizes are sqrt(area share)
    labels, flags = [], []
    for lo, hi in zip(edges, edges[1:], strict=False):
        labels.append(f"{lo:g}–{hi:g}")
        flags.append("too small" if lo < tiny else "too large" if hi > huge else "")
    return labels, counts, flags


def box_size_figure(box_sizes: Mapping[str, Any]) -> Any:
    """The box-size histogram of a quality report (``report["box_sizes"]``): sizes are
    ``sqrt(box area / image area)``, bins in red where boxes may be too small or too large, and the flagged
    counts (boxes and examples) named above the chart."""
    import plotly.graph_objects as go

    labels, counts, flags = box_size_flags(box_sizes)
    colors = [OVERFIT_COLOR if f else "#4c78a8" for f in flags]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=counts,
            name="boxes",
            marker={"color": colors},
            customdata=flags,
            hovertemplate="size %{x}: %{y} boxes %{customdata}<extra></extra>",
        )
    )
    notes = []
    for key, label in (("tiny", "too small"), ("huge", "too large")):
        entry = box_sizes.get(key) or {}
        n = int(entry.get("count", 0)) if isinstance(entry, Mapping) else int(entry)
        ex = int(entry.get("images", len(entry.get("examples", [])))) if isinstance(entry, Mapping) else 0
        notes.append(f"{label}: {n} boxes on {ex} examples")
    fig.add_annotation(
        text=" · ".join(notes),
        xref="paper",
        yref="paper",
        x=0,
        y=1.08,
        showarrow=False,
        xanchor="left",
        font={"color": OVERFIT_COLOR, "size": 12},
        name="flags",
    )
    fig.update_layout(
        title=f"Box sizes ({int(box_sizes.get('count', sum(counts)))} boxes)",
        xaxis={"title": "box size: sqrt(box area / image area)", "type": "category"},
        yaxis={"title": "boxes"},
        bargap=0.05,
        showlegend=False,
        template="plotly_white",
        margin={"t": 70, "r": 20, "l": 60, "b": 50},
    )
    return fig
