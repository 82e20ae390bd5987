"""Evaluation views: a clickable confusion matrix, per-class AP bars and PR curves.

Thin views over plain state: ``ConfusionState`` (the matrix, which examples sit in each cell, the selected
cell). A click on a cell shows its examples in a ``ThumbnailGallery`` (``gallery.py``); the mined errors
have their own ``ErrorGallery`` there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets

from ..data.records import ClassDef
from ..errors import ValidationError
from ..text import escape_html
from .figures import ap_bars_figure, confusion_figure, pr_curves_figure
from .gallery import ThumbnailFn, ThumbnailGallery
from .static import StaticFallback, figure_bundle

__all__ = [
    "ConfusionState",
    "ConfusionMatrixView",
    "APView",
    "per_class_results",
    "cell_from_click",
]


# ---------------------------------------------------------------------------------------------- confusion
def cell_from_click(
    xs: Sequence[Any], ys: Sequence[Any], point_inds: Sequence[Any], class_names: Sequence[str]
) -> tuple[str, str] | None:
    """(true, predicted) of a heatmap click: from the [row, col] point index plotly.js sends, else from the
    clicked x / y labels. None when the click carries neither."""
    names = list(class_names)
    if point_inds:
        p = point_inds[0]
        if isinstance(p, list | tuple) and len(p) == 2:
            row, col = int(p[0]), int(p[1])
            if 0 <= row < len(names) and 0 <= col < len(names):
                return names[row], names[col]
    if xs and ys:
        x, y = str(xs[0]), str(ys[0])
        if x in names and y in names:
            return y, x
    return None


@dataclass
class ConfusionState:
    """A confusion matrix (rows: true class, columns: predicted), the example ids in each cell and the
    selected cell."""

    class_names: list[str]
    matrix: list[list[int]]
    cells: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    selected: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        n = len(self.class_names)
        if len(set(self.class_names)) != n:
            raise ValidationError("class names repeat", field="class_names")
        if len(self.matrix) != n or any(len(r) != n for r in self.matrix):
            raise ValidationError(f"confusion matrix must be {n}x{n}", field="matrix")
        for t, p in self.cells:
            if t not in self.class_names or p not in self.class_names:
                raise ValidationError(f"cell ({t}, {p}) names an unknown class", field="cells")

    @classmethod
    def from_predictions(
        cls, rows: Iterable[Mapping[str, Any] | Sequence[Any]], class_names: Sequence[str] | None = None
    ) -> ConfusionState:
        """From per-example rows ``{"example_id", "true", "pred"}`` (or ``(example_id, true, pred)``)."""
        triples = []
        for i, r in enumerate(rows):
            if isinstance(r, Mapping):
                missing = [k for k in ("example_id", "true", "pred") if k not in r]
                if missing:
                    raise ValidationError(
                        f"prediction row lacks {', '.join(missing)}", record=i, field=missing[0]
                    )
                triples.append((int(r["example_id"]), str(r["true"]), str(r["pred"])))
            else:
                eid, t, p = r
                triples.append((int(eid), str(t), str(p)))
        names = (
            list(class_names)
            if class_names is not None
            else sorted({c for _, t, p in triples for c in (t, p)})
        )
        index = {n: i for i, n in enumerate(names)}
        matrix = [[0] * len(names) for _ in names]
        cells: dict[tuple[str, str], list[int]] = {}
        for eid, t, p in triples:
            for c in (t, p):
                if c not in index:
                    raise ValidationError(f"class {c!r} is not among {names}", record=eid, field="class")
            matrix[index[t]][index[p]] += 1
            cells.setdefault((t, p), []).append(eid)
        return cls(names, matrix, cells)

    @classmethod
    def from_labels(
        cls,
        example_ids: Sequence[int],
        y_true: Sequence[Any],
        y_pred: Sequence[Any],
        class_names: Sequence[str] | None = None,
    ) -> ConfusionState:
        """From parallel lists: the example ids, their true and their predicted classes."""
        if not len(example_ids) == len(y_true) == len(y_pred):
            raise ValidationError(
                f"{len(example_ids)} example ids, {len(y_true)} true and {len(y_pred)} predicted labels",
                field="y_pred",
            )
        return cls.from_predictions(zip(example_ids, y_true, y_pred, strict=True), class_names)

    @classmethod
    def from_prediction_rows(
        cls, rows: Iterable[Mapping[str, Any]], truth: Mapping[int, str], class_names: Sequence[str]
    ) -> ConfusionState:
        """From a run's classification prediction rows (``{"example_id", "probabilities": {class: p} or
        [p, ...]}``, as in ``predictions.json``; the predicted class is the most probable) and the true class
        of each example (``{example.id: example.label}``)."""
        names = list(class_names)
        triples = []
        for i, row in enumerate(rows):
            eid = row.get("example_id")
            if isinstance(eid, bool) or not isinstance(eid, int):
                raise ValidationError(
                    f"prediction needs an integer example_id, got {eid!r}", record=i, field="example_id"
                )
            probs = row.get("probabilities")
            if isinstance(probs, Mapping) and probs:
                pred = max(probs, key=lambda k: probs[k])
            elif isinstance(probs, Sequence) and len(probs) == len(names):
                pred = names[max(range(len(names)), key=lambda k: probs[k])]
            else:
                raise ValidationError(
                    f"probabilities must map the {len(names)} classes to numbers",
                    record=eid,
                    field="probabilities",
                )
            if eid not in truth:
                raise ValidationError("no true class for this example", record=eid, field="truth")
            triples.append((eid, truth[eid], str(pred)))
        return cls.from_predictions(triples, names)

    def examples(self, true: str, pred: str) -> list[int]:
        return list(self.cells.get((true, pred), []))

    def select(self, true: str, pred: str) -> list[int]:
        if true not in self.class_names or pred not in self.class_names:
            raise ValidationError(f"no cell ({true}, {pred}) in the confusion matrix", field="cell")
        self.selected = (true, pred)
        return self.examples(true, pred)


class ConfusionMatrixView(StaticFallback, widgets.VBox):
    """The confusion matrix heatmap; clicking a cell shows its examples in a gallery below and calls
    ``on_select(true_class, pred_class)``."""

    def __init__(
        self,
        state: ConfusionState,
        thumbnail_fn: ThumbnailFn | None = None,
        *,
        on_select: Callable[[str, str], Any] | None = None,
        on_open: Callable[[int], Any] | None = None,
        normalize: bool = False,
        title: str = "Confusion matrix",
    ) -> None:
        from .plotly_widget import FigureWidget

        self.state = state
        self.on_select = on_select
        self._figure = confusion_figure(state.matrix, state.class_names, normalize=normalize, title=title)
        self.figure_widget = FigureWidget(self._figure)
        self.figure_widget.add_class("wb-confusion-plot")
        self.figure_widget.data[0].on_click(self._on_click)
        self.gallery = ThumbnailGallery(thumbnail_fn, on_open=on_open) if thumbnail_fn is not None else None
        self.selection = widgets.HTML("click a cell to see its examples")
        self.selection.add_class("wb-confusion-selection")
        children: list[Any] = [self.figure_widget, self.selection]
        if self.gallery is not None:
            children.append(self.gallery)
        super().__init__(children=children)
        self.add_class("wb-confusion")

    @classmethod
    def from_predictions(
        cls,
        rows: Iterable[Mapping[str, Any] | Sequence[Any]],
        class_names: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> ConfusionMatrixView:
        return cls(ConfusionState.from_predictions(rows, class_names), **kwargs)

    def _on_click(self, _trace: Any, points: Any, _state: Any) -> None:
        cell = cell_from_click(points.xs, points.ys, points.point_inds, self.state.class_names)
        if cell is not None:
            self.select(*cell)

    def select(self, true: str, pred: str) -> list[int]:
        """Show the examples of cell (true, pred): what a click on that cell does."""
        ids = self.state.select(true, pred)
        verdict = "correct" if true == pred else "confused"
        self.selection.value = escape_html(f"true {true} → predicted {pred}: {len(ids)} examples ({verdict})")
        if self.gallery is not None:
            self.gallery.show(ids, title=f"{true} → {pred}")
        if self.on_select is not None:
            self.on_select(true, pred)
        return ids

    def _static_bundle(self) -> dict[str, Any]:
        bundle = figure_bundle(self._figure)
        bundle["text/plain"] = f"ConfusionMatrixView({len(self.state.class_names)} classes)"
        return bundle


# ---------------------------------------------------------------------------------------------- AP / PR
def per_class_results(
    result: Any, *, ap_key: str = "AP", precision_key: str = "precision"
) -> tuple[dict[str, float | None], dict[str, list[float]], list[float] | None]:
    """``(AP per class, precision per class, recall points)`` from an evaluation result.

    ``result`` is a ``CocoResult`` or its ``as_dict()``: ``per_class[name][ap_key]`` and
    ``pr_curves[name] = {"recall", "precision", "precision50"}`` (``precision_key`` picks the curve: the
    mean over IoU 0.5:0.95 or at IoU 0.5); the ``"all"`` curve is left out. A per-class value may also be a
    bare number. -1 (COCO's "undefined") stays as given; the figures show it as missing.
    """
    if hasattr(result, "as_dict"):
        result = result.as_dict()
    per_class = result.get("per_class") if isinstance(result, Mapping) else None
    if not isinstance(per_class, Mapping):
        raise ValidationError("evaluation result has no 'per_class' mapping", field="per_class")
    ap: dict[str, float | None] = {}
    for name, value in per_class.items():
        v = value.get(ap_key) if isinstance(value, Mapping) else value
        ap[str(name)] = None if v is None else float(v)
    pr: dict[str, list[float]] = {}
    recall: list[float] | None = None
    curves = result.get("pr_curves") or {}
    for name, curve in curves.items():
        if name == "all" and "all" not in per_class:
            continue
        if not isinstance(curve, Mapping) or precision_key not in curve:
            raise ValidationError(f"PR curve has no '{precision_key}'", record=name, field="pr_curves")
        pr[str(name)] = [float(x) for x in curve[precision_key]]
        if recall is None and curve.get("recall") is not None:
            recall = [float(x) for x in curve["recall"]]
    return ap, pr, recall


class APView(StaticFallback, widgets.VBox):
    """Per-class AP bars and PR curves of one COCO evaluation, in the class colours.

    ``metric_name`` "AP" (IoU 0.5:0.95; PR curves averaged over the IoUs) or "AP50" / "AP75".
    """

    def __init__(
        self,
        result: Any,
        classes: Sequence[ClassDef] | Mapping[str, str] | None = None,
        *,
        metric_name: str = "AP",
    ) -> None:
        from .plotly_widget import FigureWidget

        precision_key = "precision50" if metric_name == "AP50" else "precision"
        ap, pr, recall = per_class_results(result, ap_key=metric_name, precision_key=precision_key)
        self.figures = [ap_bars_figure(ap, classes, metric_name=metric_name)]
        if pr:
            self.figures.append(pr_curves_figure(pr, classes, recall=recall, ap=ap))
        self.figure_widgets = [FigureWidget(f) for f in self.figures]
        self.figure_widgets[0].add_class("wb-ap-bars")
        if len(self.figure_widgets) > 1:
            self.figure_widgets[1].add_class("wb-pr-curves")
        super().__init__(children=self.figure_widgets)
        self.add_class("wb-ap")

    def _static_bundle(self) -> dict[str, Any]:
        from plotly.subplots import make_subplots

        if len(self.figures) == 1:
            bundle = figure_bundle(self.figures[0])
        else:  # one static figure holding both
            combined = make_subplots(
                rows=1, cols=2, subplot_titles=[f.layout.title.text for f in self.figures]
            )
            for col, f in enumerate(self.figures, start=1):
                for tr in f.data:
                    combined.add_trace(tr, row=1, col=col)
            combined.update_xaxes(type="category", row=1, col=1)
            combined.update_yaxes(range=[0, 1.08], row=1, col=1)
            combined.update_xaxes(title_text="recall", range=[0, 1.01], row=1, col=2)
            combined.update_yaxes(title_text="precision", range=[0, 1.05], row=1, col=2)
            combined.update_layout(template="plotly_white", height=420)
            bundle = figure_bundle(combined)
        bundle["text/plain"] = "APView"
        return bundle
