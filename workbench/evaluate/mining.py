"""Error mining: rank examples by how much looking at them would teach the model. Pure functions, no torch.

Every example gets a **score** (higher = look at it first) and **reasons**; ties go to the lower example id.
For classification and anomaly, errors score in [1, 2] and right answers in [0, 1] (1 only exactly on the
decision boundary), so a mistake ranks above every right answer. Detection and segmentation add up one term
per object error of the image (each term >= 1, or < 1 for a barely found object), so more errors rank higher.

* **classification** (``p`` = predicted probabilities, ``t`` = true class):
  wrong: ``1 + p[predicted]`` (``misclassified``; ``confident_mistake`` when ``p[predicted] >= confident``);
  right: ``1 - margin`` with ``margin = p[t] - max(p[other])`` (``low_confidence`` when
  ``margin < low_confidence``).
* **anomaly** (``s`` = score, ``thr`` = threshold, ``scale`` = standard deviation of the ranked scores):
  ``conf = 1 - exp(-|s - thr| / scale)``. Wrong side of the threshold: ``1 + conf`` (``anomaly_miss`` for an
  anomalous example called good, ``anomaly_false_alarm`` for a good one called anomalous;
  ``confident_mistake`` when ``conf >= confident``); right side: ``1 - conf`` (``low_confidence`` when
  ``conf < low_confidence``).
* **detection / segmentation**: predictions are matched to the ground truth per image, greedily by score at
  IoU ``iou`` (0.5) within a class (mask IoU for segmentation; see :mod:`.matching`). The score is the sum over
  the image of ``missed_weight`` (1.5) per ``missed_box``; ``1 + s`` per ``false_positive`` or
  ``misclassified`` box (a prediction of another class on an instance) with score ``s >= min_score`` (0.5);
  ``localization_weight`` (1.0) per ``poor_localization`` (same class, ``loc_iou`` (0.1) < IoU < ``iou``);
  ``1 - s`` per true positive found only below ``min_score`` (``low_confidence``). ``confident_mistake``
  when a false positive or misclassified box has ``s >= confident``.

**Likely label errors** (the model disagrees confidently with the annotation) are scored separately,
``label_error_score`` in [0, 1]: the model's confidence in its other answer (classification
``p[predicted]``; anomaly ``conf``; detection the highest score of a misclassified box or of a false positive
that overlaps no annotation, an object nobody annotated) and flagged ``likely_label_error`` from
``label_error`` (0.9).

Prediction rows are what a run writes to ``predictions.json`` (``workbench.train.tasks``):
classification ``{"example_id", "probabilities": {class: p} or [p, ...]}``; anomaly ``{"example_id",
"score", "label"?}``; detection / segmentation COCO results ``{"image_id", "category_id" (class index + 1),
"bbox", "score", "segmentation"?}`` or per-example ``{"example_id", "boxes", "scores", "labels" (class
index), "masks"?}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..data.records import ANOMALY_CLASSES, Example
from ..data.task_types import TaskType
from ..errors import UnknownNameError, ValidationError
from .mined import REASONS, MinedExample, MiningSettings, ordered_reasons, row_example_id, row_number
from .mining_instances import predicted_instances, rank_detection, rank_segmentation

__all__ = [
    "REASONS",
    "MiningSettings",
    "MinedExample",
    "rank_examples",
    "RANKERS",
    "anomaly_threshold",
    "predicted_instances",
]


# ---------------------------------------------------------------------------------------------- classification
def _probabilities(row: Mapping[str, Any], i: int, class_names: Sequence[str]) -> np.ndarray:
    probs = row.get("probabilities")
    if isinstance(probs, Mapping):
        missing = [c for c in class_names if c not in probs]
        if missing:
            raise ValidationError(
                f"no probability for class(es) {', '.join(missing)}", record=i, field="probabilities"
            )
        values = [probs[c] for c in class_names]
    elif (
        isinstance(probs, (Sequence, np.ndarray))
        and not isinstance(probs, str)
        and len(probs) == len(class_names)
    ):
        values = list(probs)
    else:
        raise ValidationError(
            f"needs {len(class_names)} probabilities (a class -> p mapping or a list)",
            record=i,
            field="probabilities",
        )
    return np.array([row_number(v, i, "probabilities") for v in values])


def _rank_classification(
    examples: Sequence[Example],
    rows: Sequence[Mapping[str, Any]],
    class_names: Sequence[str],
    *,
    iou: float,
    settings: MiningSettings,
    threshold: float | None,
) -> list[MinedExample]:
    index = {c: k for k, c in enumerate(class_names)}
    probs = {row_example_id(r, i): _probabilities(r, i, class_names) for i, r in enumerate(rows)}
    out = []
    for ex in examples:
        p, truth = probs.get(ex.id), ex.label
        if p is None or truth not in index:
            continue
        t, k = index[truth], int(np.argmax(p))
        others = np.delete(p, t)
        details = {
            "true": truth,
            "predicted": class_names[k],
            "probability": round(float(p[k]), 6),
            "true_probability": round(float(p[t]), 6),
        }
        reasons: set[str] = set()
        label_error = 0.0
        if k != t:
            score = 1.0 + float(p[k])
            reasons.add("misclassified")
            if p[k] >= settings.confident:
                reasons.add("confident_mistake")
            label_error = float(p[k])
        else:
            margin = float(p[t] - (others.max() if len(others) else 0.0))
            details["margin"] = round(margin, 6)
            score = 1.0 - margin
            if margin < settings.low_confidence:
                reasons.add("low_confidence")
        if label_error >= settings.label_error:
            reasons.add("likely_label_error")
        out.append(MinedExample(ex.id, score, ordered_reasons(reasons), details, label_error, ex.split))
    return out


# ---------------------------------------------------------------------------------------------- anomaly
def anomaly_threshold(rows: Sequence[Mapping[str, Any]], truth: Sequence[str] = ()) -> float:
    """The threshold behind rows labelled at one (the lowest score called anomalous), else the best-F1
    threshold on ``truth`` (``good`` / ``anomalous`` per row)."""
    called = [float(r["score"]) for r in rows if r.get("label") == ANOMALY_CLASSES[1]]
    if called:
        return min(called)
    if any(r.get("label") == ANOMALY_CLASSES[0] for r in rows):
        return math.nextafter(max(float(r["score"]) for r in rows), math.inf)
    if len(set(truth)) == 2:
        from .anomaly import best_threshold

        return float(best_threshold(list(truth), [float(r["score"]) for r in rows]).threshold)
    raise ValidationError(
        "anomaly mining needs a threshold: pass threshold= (the run's metrics hold one)", field="threshold"
    )


def _rank_anomaly(
    examples: Sequence[Example],
    rows: Sequence[Mapping[str, Any]],
    class_names: Sequence[str],
    *,
    iou: float,
    settings: MiningSettings,
    threshold: float | None,
) -> list[MinedExample]:
    scores = {row_example_id(r, i): row_number(r.get("score"), i, "score") for i, r in enumerate(rows)}
    chosen = [ex for ex in examples if ex.id in scores and ex.label in ANOMALY_CLASSES]
    if not chosen:
        return []
    if threshold is None:
        by_id = {row_example_id(r, i): r for i, r in enumerate(rows)}
        threshold = anomaly_threshold([by_id[ex.id] for ex in chosen], [str(ex.label) for ex in chosen])
    values = np.array([scores[ex.id] for ex in chosen])
    scale = float(values.std()) if len(values) > 1 else 0.0
    if scale <= 1e-12:
        scale = abs(threshold) if abs(threshold) > 1e-12 else 1.0
    out = []
    for ex in chosen:
        s = scores[ex.id]
        called = ANOMALY_CLASSES[int(s >= threshold)]
        conf = 1.0 - math.exp(-abs(s - threshold) / scale)
        details = {
            "true": ex.label,
            "predicted": called,
            "anomaly_score": s,
            "threshold": threshold,
            "distance": round((s - threshold) / scale, 6),
            "confidence": round(conf, 6),
        }
        reasons: set[str] = set()
        label_error = 0.0
        if called != ex.label:
            score = 1.0 + conf
            reasons.add("anomaly_miss" if ex.label == ANOMALY_CLASSES[1] else "anomaly_false_alarm")
            if conf >= settings.confident:
                reasons.add("confident_mistake")
            label_error = conf
            if conf >= settings.label_error:
                reasons.add("likely_label_error")
        else:
            score = 1.0 - conf
            if conf < settings.low_confidence:
                reasons.add("low_confidence")
        out.append(MinedExample(ex.id, score, ordered_reasons(reasons), details, label_error, ex.split))
    return out


RANKERS: dict[str, Callable[..., list[MinedExample]]] = {
    TaskType.CLASSIFICATION: _rank_classification,
    TaskType.DETECTION: rank_detection,
    TaskType.SEGMENTATION: rank_segmentation,
    TaskType.ANOMALY: _rank_anomaly,
}


def rank_examples(
    examples: Sequence[Example],
    predictions: Sequence[Mapping[str, Any]],
    dataset_type: str,
    class_names: Sequence[str],
    *,
    iou: float = 0.5,
    threshold: float | None = None,
    settings: MiningSettings | None = None,
) -> list[MinedExample]:
    """Every judgeable example, most instructive first (ties: lower example id first).

    ``predictions`` are the rows of a run's ``predictions.json`` (module docstring); ``class_names`` are the
    run's classes in training order (they map category ids and probability lists to names). Examples
    without ground truth (or, for classification / anomaly, without a prediction) are left out. ``threshold``
    is the anomaly threshold (default: read off the rows' labels). Bad rows raise ``ValidationError`` naming
    the row index and field.
    """
    try:
        ranker = RANKERS[dataset_type]
    except KeyError:
        raise UnknownNameError("dataset type", dataset_type, list(RANKERS)) from None
    if not 0.0 < iou <= 1.0:
        raise ValidationError(f"iou must be within (0, 1], got {iou}", field="iou")
    mined = ranker(
        list(examples),
        list(predictions),
        list(class_names),
        iou=iou,
        settings=settings or MiningSettings(),
        threshold=threshold,
    )
    return sorted(mined, key=lambda m: (-round(m.score, 9), m.example_id))
