"""Classification metrics: accuracy, per-class precision / recall / F1, confusion matrix, top confusions.

Plain numpy (agrees with scikit-learn's ``precision_recall_fscore_support(zero_division=0)`` and
``confusion_matrix``; the tests check). Labels may be class names or integers; ``classes`` fixes the order
of rows and columns (default: the sorted labels seen).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ValidationError

__all__ = [
    "ClassificationReport",
    "classification_metrics",
    "confusion_matrix",
    "top_confusions",
    "accuracy",
    "top_k_accuracy",
]


def _index(labels: Sequence[Any], classes: list[Any], field: str) -> np.ndarray:
    lookup = {c: i for i, c in enumerate(classes)}
    out = np.empty(len(labels), dtype=np.int64)
    for i, lab in enumerate(labels):
        try:
            out[i] = lookup[lab]
        except (KeyError, TypeError):
            raise ValidationError(
                f"label {lab!r} is not one of the classes {classes}", record=f"example {i}", field=field
            ) from None
    return out


def _classes(y_true: Sequence[Any], y_pred: Sequence[Any], classes: Sequence[Any] | None) -> list[Any]:
    if classes is not None:
        out = list(classes)
        if len(set(out)) != len(out):
            raise ValidationError("classes contain a duplicate", field="classes")
        return out
    try:
        return sorted(set(y_true) | set(y_pred))
    except TypeError:
        raise ValidationError(
            "labels mix types that cannot be ordered; pass classes=", field="classes"
        ) from None


def _check_lengths(y_true: Sequence[Any], y_pred: Sequence[Any]) -> None:
    if len(y_true) != len(y_pred):
        raise ValidationError(f"{len(y_true)} true labels but {len(y_pred)} predictions", field="y_pred")
    if len(y_true) == 0:
        raise ValidationError("no examples to score", field="y_true")


def confusion_matrix(
    y_true: Sequence[Any], y_pred: Sequence[Any], classes: Sequence[Any] | None = None
) -> np.ndarray:
    """Counts ``[true class, predicted class]`` (rows: truth), in ``classes`` order."""
    _check_lengths(y_true, y_pred)
    cls = _classes(y_true, y_pred, classes)
    t = _index(y_true, cls, "y_true")
    p = _index(y_pred, cls, "y_pred")
    m = np.zeros((len(cls), len(cls)), dtype=np.int64)
    np.add.at(m, (t, p), 1)
    return m


def accuracy(y_true: Sequence[Any], y_pred: Sequence[Any]) -> float:
    """Fraction of examples predicted right."""
    _check_lengths(y_true, y_pred)
    return float(np.mean([a == b for a, b in zip(y_true, y_pred, strict=True)]))


def top_k_accuracy(y_true: Sequence[int], scores: Any, k: int = 5) -> float:
    """Fraction of examples whose true class index is among the ``k`` highest scores (``scores``: [n, C])."""
    s = np.asarray(scores, dtype=float)
    t = np.asarray(y_true)
    if s.ndim != 2 or len(s) != len(t) or len(t) == 0:
        raise ValidationError(
            f"scores must be [n, classes] for {len(t)} labels, got shape {s.shape}", field="scores"
        )
    if not 1 <= k:
        raise ValidationError(f"k must be at least 1, got {k}", field="k")
    if t.dtype.kind not in "iu" or t.min() < 0 or t.max() >= s.shape[1]:
        raise ValidationError("y_true must be class indices into the score columns", field="y_true")
    top = np.argsort(-s, axis=1, kind="stable")[:, : min(k, s.shape[1])]
    return float(np.mean((top == t[:, None]).any(axis=1)))


def top_confusions(confusion: np.ndarray, classes: Sequence[Any], n: int = 10) -> list[dict[str, Any]]:
    """The ``n`` largest off-diagonal cells: ``{"true", "predicted", "count", "fraction"}``, where
    ``fraction`` is the share of that true class's examples; largest count first, ties by class order."""
    m = np.asarray(confusion)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] != len(classes):
        raise ValidationError(
            f"confusion must be square with {len(classes)} rows, got {m.shape}", field="confusion"
        )
    row_totals = m.sum(axis=1)
    cells = [
        (int(m[i, j]), i, j)
        for i in range(len(classes))
        for j in range(len(classes))
        if i != j and m[i, j] > 0
    ]
    cells.sort(key=lambda c: (-c[0], c[1], c[2]))
    return [
        {"true": classes[i], "predicted": classes[j], "count": c, "fraction": c / int(row_totals[i])}
        for c, i, j in cells[:n]
    ]


@dataclass(frozen=True)
class ClassificationReport:
    """Per-class numbers are dicts keyed by class; a class never predicted has precision 0, one with no
    examples recall 0 (scikit-learn's ``zero_division=0``)."""

    classes: list[Any]
    accuracy: float
    precision: dict[Any, float]
    recall: dict[Any, float]
    f1: dict[Any, float]
    support: dict[Any, int]
    macro_f1: float
    confusion: np.ndarray

    def top_confusions(self, n: int = 10) -> list[dict[str, Any]]:
        return top_confusions(self.confusion, self.classes, n)

    def as_dict(self) -> dict[str, Any]:
        return {
            "classes": list(self.classes),
            "accuracy": self.accuracy,
            "precision": dict(self.precision),
            "recall": dict(self.recall),
            "f1": dict(self.f1),
            "support": dict(self.support),
            "macro_f1": self.macro_f1,
            "confusion": self.confusion.tolist(),
        }


def classification_metrics(
    y_true: Sequence[Any], y_pred: Sequence[Any], classes: Sequence[Any] | None = None
) -> ClassificationReport:
    """Accuracy, per-class precision / recall / F1 / support, macro F1 and the confusion matrix."""
    cls = _classes(y_true, y_pred, classes)
    m = confusion_matrix(y_true, y_pred, cls)
    tp = np.diag(m).astype(float)
    predicted = m.sum(axis=0).astype(float)
    support = m.sum(axis=1)
    prec = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    rec = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = prec + rec
    f1 = np.divide(2 * prec * rec, denom, out=np.zeros_like(tp), where=denom > 0)
    return ClassificationReport(
        classes=cls,
        accuracy=float(tp.sum() / m.sum()),
        precision={c: float(v) for c, v in zip(cls, prec, strict=True)},
        recall={c: float(v) for c, v in zip(cls, rec, strict=True)},
        f1={c: float(v) for c, v in zip(cls, f1, strict=True)},
        support={c: int(v) for c, v in zip(cls, support, strict=True)},
        macro_f1=float(f1.mean()) if len(cls) else 0.0,
        confusion=m,
    )
