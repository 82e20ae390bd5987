"""Helpers shared by the figure builders: class colours and checked numbers."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ...data.records import ClassDef, default_color
from ...errors import ValidationError
from ...text import escape_plotly

__all__ = ["OVERFIT_COLOR", "BEST_COLOR", "class_colors", "category_ticks", "rgba", "count", "finite_or_none"]

OVERFIT_COLOR = "#d62728"
BEST_COLOR = "#2ca02c"


def class_colors(
    classes: Sequence[ClassDef] | Mapping[str, str] | None, names: Sequence[str] = ()
) -> dict[str, str]:
    """Colour of each class: from ``classes`` (ClassDefs or name -> colour), palette for the others."""
    colors: dict[str, str] = {}
    if isinstance(classes, Mapping):
        colors.update({str(k): str(v) for k, v in classes.items()})
    elif classes is not None:
        colors.update({c.name: c.color for c in classes})
    for name in names:
        if name not in colors:
            colors[name] = default_color(len(colors))
    return colors


def category_ticks(names: Sequence[str]) -> dict[str, Any]:
    """Axis settings that show category names as the text they are: the data keeps the names (clicks and
    selections read them), the tick labels are escaped (plotly reads markup in labels)."""
    return {"tickmode": "array", "tickvals": list(names), "ticktext": [escape_plotly(n) for n in names]}


def rgba(hex_color: str, alpha: float) -> str:
    """``#rrggbb`` as a CSS ``rgba(...)`` string."""
    h = hex_color.lstrip("#")
    if len(h) != 6:
        raise ValidationError(f"colour must look like #rrggbb, got {hex_color!r}", field="color")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha:g})"


def count(value: Any, *, record: str, field_name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value != int(value):
        raise ValidationError(
            f"expected a non-negative count, got {value!r}",
            file="quality report",
            record=record,
            field=field_name,
        )
    return int(value)


def finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None
