"""Label errors in the training split: confident learning (Northcutt et al., cleanlab's confident joint).

The model's predicted probabilities on the examples it was trained with are compared with their given
labels, per class: class ``j``'s threshold ``t[j]`` is the mean probability of ``j`` over the examples
labelled ``j`` (the model's average self-confidence on that class). An example is *confidently* of every
class whose probability reaches its threshold; its likely true class is that one (or, with several, the
most probable class). When that is not its given label, the label is flagged: the given class's
probability is usually under its threshold while the other class is over its own. This is the set of
off-diagonal examples of cleanlab's confident joint (``cleanlab.count.compute_confident_joint``), which the
tests use as the oracle. Pure numpy, no torch.

Probabilities from the training split itself are optimistic (the model saw those labels); a checkpoint
from before the model memorised its training set (the best epoch) or out-of-fold probabilities find more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.records import Example
from ..errors import ValidationError
from .mined import MinedExample

__all__ = ["confident_thresholds", "find_label_issues", "LabelIssue", "label_issues_of"]

# Classes nobody is labelled with: a threshold no probability reaches (as cleanlab).
_UNUSED = 2.0
_LOWER_BOUND = 2e-6  # cleanlab.count.CONFIDENT_THRESHOLDS_LOWER_BOUND


@dataclass(frozen=True)
class LabelIssue:
    """One flagged example: its index, given and likely class (indices), and the probabilities behind it."""

    index: int
    given: int
    likely: int
    given_probability: float
    likely_probability: float
    given_threshold: float


def confident_thresholds(labels: Sequence[int] | np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per class: the mean probability of the class over the examples labelled with it."""
    labels_a = np.asarray(labels, dtype=int)
    out = np.full(probs.shape[1], _UNUSED)
    for k in range(probs.shape[1]):
        mine = probs[labels_a == k, k]
        if len(mine):
            out[k] = max(float(mine.mean()), _LOWER_BOUND)
    return out


def find_label_issues(labels: Sequence[int], probs: Any) -> list[LabelIssue]:
    """Examples whose likely class (confident learning) is not their given label, most doubtful first
    (lowest probability of the given label; ties by index)."""
    p = np.asarray(probs, dtype=np.float64)
    labels_a = np.asarray(labels, dtype=int)
    if p.ndim != 2 or len(p) != len(labels_a):
        raise ValidationError(f"need one probability row per label, got {p.shape} for {len(labels_a)} labels",
                              field="probabilities")
    if len(labels_a) == 0:
        return []
    if labels_a.min() < 0 or labels_a.max() >= p.shape[1]:
        raise ValidationError("a label is not one of the probability columns", field="labels")
    t = confident_thresholds(labels_a, p)
    confident = p >= t - 1e-6
    n_confident = confident.sum(axis=1)
    likely = np.where(n_confident > 1, p.argmax(axis=1), confident.argmax(axis=1))
    rows = np.arange(len(labels_a))
    flagged = rows[(n_confident > 0) & (likely != labels_a)]
    issues = [
        LabelIssue(int(i), int(labels_a[i]), int(likely[i]), float(p[i, labels_a[i]]), float(p[i, likely[i]]),
                   float(t[labels_a[i]]))
        for i in flagged
    ]
    return sorted(issues, key=lambda x: (x.given_probability, x.index))


def label_issues_of(
    examples: Sequence[Example], rows: Sequence[Mapping[str, Any]], class_names: Sequence[str]
) -> list[MinedExample]:
    """Classification examples (with prediction rows) whose given label confident learning doubts, as
    mined examples: reason ``likely_label_error``, ``label_error_score = 1 - p(given label)``, score
    ``1 + label_error_score`` (an error), details with the given / likely class and the numbers."""
    from .mined import row_example_id
    from .mining import class_probabilities

    index = {c: k for k, c in enumerate(class_names)}
    probs = {row_example_id(r, i): class_probabilities(r, i, class_names) for i, r in enumerate(rows)}
    judged = [ex for ex in examples if ex.id in probs and ex.label is not None and ex.label in index]
    if not judged:
        return []
    given = [index[str(ex.label)] for ex in judged]
    issues = find_label_issues(given, np.stack([probs[ex.id] for ex in judged]))
    out = []
    for issue in issues:
        ex = judged[issue.index]
        doubt = 1.0 - issue.given_probability
        details = {
            "true": ex.label,
            "predicted": class_names[issue.likely],
            "probability": round(issue.likely_probability, 6),
            "true_probability": round(issue.given_probability, 6),
            "class_threshold": round(issue.given_threshold, 6),
            "method": "confident_learning",
        }
        out.append(MinedExample(ex.id, 1.0 + doubt, ["likely_label_error"], details, doubt, ex.split))
    return out
