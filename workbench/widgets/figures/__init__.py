"""Pure figure builders: plain data in, a ``plotly.graph_objects.Figure`` out.

No widgets and no kernel: each builder is unit-tested on its traces and shapes. The widgets wrap these
figures (``go.FigureWidget(fig)``) and keep them up to date. Class colours come from the dataset's
``ClassDef`` list, so a class looks the same on the canvas, in the balance plot and in the PR curves.
plotly is imported inside the builders, so importing this package costs nothing.
"""

from __future__ import annotations

from ._common import class_colors, rgba
from .dataset import SPLIT_STYLE, balance_figure, box_size_figure, box_size_flags
from .evaluation import ap_bars_figure, confusion_figure, pr_curves_figure
from .training import CURVE_TRACES, CurveSeries, curve_data, curve_names, curve_shapes, curves_figure

__all__ = [
    "SPLIT_STYLE",
    "CURVE_TRACES",
    "CurveSeries",
    "class_colors",
    "rgba",
    "balance_figure",
    "box_size_figure",
    "box_size_flags",
    "curves_figure",
    "curve_shapes",
    "curve_data",
    "curve_names",
    "confusion_figure",
    "ap_bars_figure",
    "pr_curves_figure",
]
