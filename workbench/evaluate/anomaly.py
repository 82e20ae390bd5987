"""Anomaly-detection metrics: image AUROC, a threshold chosen on validation scores, F1 at a threshold,
and pixel AUROC when anomaly masks exist.

Convention: a higher score means more anomalous; an example is called anomalous when ``score >=
threshold``. Labels are 1 / True / ``"anomalous"`` for anomalous and 0 / False / ``"good"`` for good.

Threshold selection (``best_threshold``): every distinct validation score is a candidate; the one with the
highest F1 of the anomalous class wins; on a tie, the highest such threshold (fewest false alarms). Choose it
on the validation split and report F1 at it on the test split (``at_threshold``), never the other way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ValidationError

__all__ = ["ThresholdChoice", "auroc", "best_threshold", "at_threshold", "pixel_auroc", "binary_labels"]

_POSITIVE = {1, "anomalous"}
_NEGATIVE = {0, "good"}


def binary_labels(labels: Sequence[Any]) -> np.ndarray:
    """Labels as a 0/1 array (1 = anomalous); anything else raises, naming the example."""
    out = np.empty(len(labels), dtype=np.int8)
    for i, lab in enumerate(labels):
        key = lab.item() if isinstance(lab, np.generic) else lab
        if key in _POSITIVE:
            out[i] = 1
        elif key in _NEGATIVE:
            out[i] = 0
        else:
            raise ValidationError(
                f"anomaly label must be good/anomalous, 0/1 or a bool, got {lab!r}",
                record=f"example {i}",
                field="labels",
            )
    return out


def _scores(scores: Any, n: int) -> np.ndarray:
    s = np.asarray(scores, dtype=float).reshape(-1)
    if len(s) != n:
        raise ValidationError(f"{len(s)} scores for {n} labels", field="scores")
    if not np.isfinite(s).all():
        raise ValidationError(
            f"score {int(np.flatnonzero(~np.isfinite(s))[0])} is not finite", field="scores"
        )
    return s


def _both_classes(y: np.ndarray, what: str) -> None:
    if len(y) == 0 or y.min() == y.max():
        raise ValidationError(
            f"{what} needs both good and anomalous examples (got {int(y.sum())} anomalous of {len(y)})",
            field="labels",
        )


def auroc(labels: Sequence[Any], scores: Any) -> float:
    """Area under the ROC curve of image scores (scikit-learn's ``roc_auc_score``)."""
    from sklearn.metrics import roc_auc_score  # noqa: PLC0415

    y = binary_labels(labels)
    s = _scores(scores, len(y))
    _both_classes(y, "AUROC")
    return float(roc_auc_score(y, s))


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    f1: float
    precision: float
    recall: float


def _counts(y: np.ndarray, s: np.ndarray, threshold: float) -> tuple[int, int, int, int]:
    pred = s >= threshold
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    tn = int(np.sum(~pred & (y == 0)))
    return tp, fp, fn, tn


def best_threshold(labels: Sequence[Any], scores: Any) -> ThresholdChoice:
    """The validation threshold that maximizes F1 (see the module doc for the rule and tie-break)."""
    y = binary_labels(labels)
    s = _scores(scores, len(y))
    _both_classes(y, "threshold selection")
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    # the last index of each distinct score (descending): predicting ">= that score" flags everything up to it
    last = np.flatnonzero(np.r_[s_sorted[1:] != s_sorted[:-1], True])
    tp = np.cumsum(y_sorted)[last].astype(float)
    fp = (last + 1) - tp
    positives = float(y.sum())
    f1 = 2 * tp / (tp + fp + positives)  # 2tp / (2tp + fp + fn), fn = positives - tp
    best = float(f1.max())
    i = int(np.flatnonzero(f1 == best)[0])  # first = highest threshold among the ties
    precision = tp[i] / (tp[i] + fp[i])
    recall = tp[i] / positives
    return ThresholdChoice(float(s_sorted[last[i]]), best, float(precision), float(recall))


def at_threshold(labels: Sequence[Any], scores: Any, threshold: float) -> dict[str, float]:
    """Precision, recall, F1, accuracy and the four counts when ``score >= threshold`` means anomalous."""
    y = binary_labels(labels)
    s = _scores(scores, len(y))
    if len(y) == 0:
        raise ValidationError("no examples to score", field="labels")
    tp, fp, fn, tn = _counts(y, s, float(threshold))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "threshold": float(threshold),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": (tp + tn) / len(y),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def pixel_auroc(
    masks: Sequence[np.ndarray],
    maps: Sequence[np.ndarray],
    *,
    max_pixels: int | None = 2_000_000,
    seed: int = 0,
) -> float:
    """AUROC over pixels: ground-truth masks (non-zero = anomalous) against anomaly maps of the same shapes.

    Good images count too (all-zero masks). Past ``max_pixels`` pixels a seeded uniform sample is scored,
    which keeps memory bounded on big test sets (set ``None`` to score all).
    """
    from sklearn.metrics import roc_auc_score  # noqa: PLC0415

    if len(masks) != len(maps):
        raise ValidationError(f"{len(masks)} masks but {len(maps)} anomaly maps", field="maps")
    ys, ss = [], []
    for i, (m, a) in enumerate(zip(masks, maps, strict=True)):
        m, a = np.asarray(m), np.asarray(a, dtype=float)
        if m.shape != a.shape:
            raise ValidationError(
                f"mask {m.shape} and map {a.shape} differ", record=f"example {i}", field="maps"
            )
        if not np.isfinite(a).all():
            raise ValidationError("anomaly map has a non-finite value", record=f"example {i}", field="maps")
        ys.append((m.reshape(-1) != 0).astype(np.int8))
        ss.append(a.reshape(-1))
    if not ys:
        raise ValidationError("no masks to score", field="masks")
    y, s = np.concatenate(ys), np.concatenate(ss)
    if max_pixels is not None and len(y) > max_pixels:
        pick = np.random.default_rng(seed).choice(len(y), size=max_pixels, replace=False)
        y, s = y[pick], s[pick]
    _both_classes(y, "pixel AUROC")
    return float(roc_auc_score(y, s))
