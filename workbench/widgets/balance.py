"""Dataset checks as widgets: the class-balance plot and the dataset overview.

Both read a quality report (``workbench.data.quality.quality_report(...)`` or its ``to_dict()``) from a
``report_fn()`` the caller supplies and re-read it on ``refresh()``, so they follow the dataset as it
changes. The figures come from :mod:`workbench.widgets.figures`; the warnings and duplicates are HTML
built here by pure functions (``warnings_html``, ``duplicates_html``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets

from ..data.records import ClassDef
from ..errors import ValidationError
from ..text import escape_html
from .figures import balance_figure, box_size_figure
from .static import StaticFallback, figure_bundle, figure_html, sync_figure_widget

__all__ = ["BalancePlot", "DatasetOverview", "as_report", "warnings_html", "duplicates_html"]

Classes = Sequence[ClassDef] | Mapping[str, str] | None
ReportSource = Callable[[], Any] | Mapping[str, Any] | Any

SEVERITY_STYLE = {
    "error": ("#b00020", "⛔"),
    "warning": ("#b45f06", "⚠"),
    "info": ("#1f5fa8", "ℹ"),
}


def as_report(report: Any) -> dict[str, Any]:
    """A quality report as its plain dict (accepts the ``QualityReport`` object or the dict)."""
    if hasattr(report, "to_dict"):
        report = report.to_dict()
    if not isinstance(report, Mapping) or not isinstance(report.get("classes"), Mapping):
        raise ValidationError(
            f"expected a quality report (with a 'classes' mapping), got {type(report).__name__}",
            file="quality report",
            field="classes",
        )
    return dict(report)


def warnings_html(warnings: Sequence[Mapping[str, Any]]) -> str:
    """The report's warnings as a list, errors first, each with its severity mark and colour."""
    if not warnings:
        return "<div class='wb-warnings wb-ok'>✓ no problems found</div>"
    rank = {s: i for i, s in enumerate(SEVERITY_STYLE)}
    items = []
    for w in sorted(warnings, key=lambda w: rank.get(str(w.get("severity")), len(rank))):
        sev = str(w.get("severity", "info"))
        color, mark = SEVERITY_STYLE.get(sev, ("#333", "•"))
        code = escape_html(w.get("code", ""))
        items.append(
            f"<li class='wb-warning wb-{escape_html(sev)}' data-code='{code}' style='color:{color}'>"
            f"{mark} {escape_html(w.get('message', ''))}</li>"
        )
    return f"<ul class='wb-warnings' style='margin:4px 0;padding-left:18px'>{''.join(items)}</ul>"


def duplicates_html(near_duplicates: Mapping[str, Any] | None, *, max_rows: int = 50) -> str:
    """Exact duplicate groups and near-duplicate pairs (closest first) as tables of example ids; pairs or
    groups that span splits are marked (they leak between train and val / test)."""
    if not near_duplicates:
        return "<div class='wb-duplicates'>duplicates not checked</div>"
    parts = ["<div class='wb-duplicates'>"]
    exact = near_duplicates.get("exact") or []
    pairs = near_duplicates.get("pairs") or []
    cross = {tuple(g) for g in near_duplicates.get("cross_split") or []}
    if not exact and not pairs:
        checked = near_duplicates.get("checked", True)
        parts.append("no duplicates" + ("" if checked else " (only exact duplicates were checked)"))
    if exact:
        parts.append(f"<b>{len(exact)} groups of identical images</b><ul style='margin:2px 0'>")
        for g in exact[:max_rows]:
            ids = ", ".join(f"#{int(i)}" for i in g)
            leak = " <span style='color:#b00020'>(across splits)</span>" if tuple(g) in cross else ""
            parts.append(f"<li>{ids}{leak}</li>")
        if len(exact) > max_rows:
            parts.append(f"<li>… and {len(exact) - max_rows} more</li>")
        parts.append("</ul>")
    if pairs:
        more = "+" if near_duplicates.get("truncated") else ""
        parts.append(
            f"<b>{len(pairs)}{more} near-duplicate pairs</b>"
            "<table class='wb-dup-pairs' style='font-size:12px'><tr><th>example</th><th>example</th>"
            "<th>bits apart</th><th></th></tr>"
        )
        for p in pairs[:max_rows]:
            leak = "<span style='color:#b00020'>across splits</span>" if p.get("cross_split") else ""
            parts.append(
                f"<tr><td>#{int(p['a'])}</td><td>#{int(p['b'])}</td><td>{int(p['distance'])}</td>"
                f"<td>{leak}</td></tr>"
            )
        parts.append("</table>")
        if len(pairs) > max_rows:
            parts.append(f"<div>… and {len(pairs) - max_rows} more pairs</div>")
    parts.append("</div>")
    return "".join(parts)


def _resolve(source: Any) -> Any:
    return source() if callable(source) else source


class BalancePlot(StaticFallback, widgets.VBox):
    """Examples per class per split in the class colours, with the 10 / 300 / 1000 guidance lines.

    ``report_fn`` returns the current quality report (or pass a report); ``classes`` the ClassDefs (or a
    callable returning them, for datasets that gain classes). ``refresh()`` re-reads both and updates the
    plot in place.
    """

    def __init__(
        self,
        report_fn: ReportSource,
        classes: Classes | Callable[[], Classes] = None,
        *,
        guidance: Mapping[str, int] | None = None,
        barmode: str = "group",
        log_y: bool = True,
    ) -> None:
        from .plotly_widget import FigureWidget

        self.report_fn = report_fn
        self.classes = classes
        self.guidance = guidance
        self.barmode = barmode
        self.log_y = log_y
        self.report = as_report(_resolve(report_fn))
        self._figure = self._build()
        self.figure_widget = FigureWidget(self._figure)
        self.figure_widget.add_class("wb-balance-plot")
        self.mode = widgets.ToggleButtons(
            options=[("grouped", "group"), ("stacked", "stack")],
            value=barmode,
            style={"button_width": "80px"},
        )
        self.mode.add_class("wb-balance-mode")
        self.mode.observe(self._on_mode, names="value")
        super().__init__(children=[self.mode, self.figure_widget])
        self.add_class("wb-balance")

    def _build(self) -> Any:
        return balance_figure(
            self.report,
            _resolve(self.classes),
            guidance=self.guidance or self.report.get("guidance"),
            barmode=self.barmode,
            log_y=self.log_y,
        )

    def _on_mode(self, change: Mapping[str, Any]) -> None:
        self.barmode = change["new"]
        self._redraw()

    def refresh(self) -> dict[str, Any]:
        """Re-read the report (and classes) and redraw; returns the report."""
        self.report = as_report(_resolve(self.report_fn))
        self._redraw()
        return self.report

    def _redraw(self) -> None:
        self._figure = self._build()
        sync_figure_widget(self.figure_widget, self._figure)

    @property
    def figure(self) -> Any:
        return self._figure

    def _static_bundle(self) -> dict[str, Any]:
        bundle = figure_bundle(self._figure)
        bundle["text/plain"] = f"BalancePlot({len(self.report['classes'])} classes)"
        return bundle


class DatasetOverview(StaticFallback, widgets.VBox):
    """Everything the quality report says about a dataset: the balance plot, the warnings, the box-size
    histogram (detection / segmentation) and the duplicates; a refresh button re-reads the report."""

    def __init__(
        self,
        report_fn: ReportSource,
        classes: Classes | Callable[[], Classes] = None,
        *,
        guidance: Mapping[str, int] | None = None,
        title: str = "Dataset overview",
    ) -> None:
        import plotly.graph_objects as go

        from .plotly_widget import FigureWidget

        self.balance = BalancePlot(report_fn, classes, guidance=guidance)
        self.report = self.balance.report
        self.title = title
        self.header = widgets.HTML()
        self.header.add_class("wb-overview-header")
        self.warnings = widgets.HTML()
        self.warnings.add_class("wb-warnings-box")
        self.duplicates = widgets.HTML()
        self.duplicates.add_class("wb-duplicates-box")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.add_class("wb-refresh")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self._box_figure = self._build_box_figure()
        self.box_widget = FigureWidget(self._box_figure if self._box_figure is not None else go.Figure())
        self.box_widget.add_class("wb-box-sizes")
        self.box_box = widgets.Box([self.box_widget])  # FigureWidget.layout is plotly's: hide the box
        self.box_box.layout.display = None if self._box_figure is not None else "none"
        super().__init__(
            children=[
                widgets.HBox([self.refresh_button, self.header]),
                self.warnings,
                self.balance,
                self.box_box,
                widgets.HTML("<b>Duplicates</b>"),
                self.duplicates,
            ]
        )
        self.add_class("wb-overview")
        self._fill_text()

    def _build_box_figure(self) -> Any:
        box = self.report.get("box_sizes")
        return box_size_figure(box) if box else None

    def _fill_text(self) -> None:
        r = self.report
        n, annotated = r.get("examples"), r.get("annotated")
        counts = f"{annotated} / {n} examples annotated" if n is not None else ""
        ready = "" if r.get("can_train", True) else " · <b style='color:#b00020'>not ready to train</b>"
        self.header.value = f"<b>{escape_html(self.title)}</b> · {counts}{ready}"
        self.warnings.value = warnings_html(r.get("warnings") or [])
        self.duplicates.value = duplicates_html(r.get("near_duplicates"))

    def refresh(self) -> dict[str, Any]:
        """Re-read the report and update every part in place; returns the report."""
        self.report = self.balance.refresh()
        self._box_figure = self._build_box_figure()
        if self._box_figure is not None:
            sync_figure_widget(self.box_widget, self._box_figure)
        self.box_box.layout.display = None if self._box_figure is not None else "none"
        self._fill_text()
        self.update_static()
        return self.report

    def _static_bundle(self) -> dict[str, Any]:
        bundle = figure_bundle(self.balance.figure)
        parts = [f"<div>{self.header.value}</div>", self.warnings.value, bundle["text/html"]]
        if self._box_figure is not None:
            parts.append(figure_html(self._box_figure, include_plotlyjs=False))
        parts.append(self.duplicates.value)
        bundle["text/html"] = "\n".join(parts)
        bundle["text/plain"] = (
            f"DatasetOverview({len(self.report['classes'])} classes, "
            f"{len(self.report.get('warnings') or [])} warnings)"
        )
        return bundle
