"""The records of error mining: why an example was picked (``REASONS``), the thresholds of the scoring
formula (``MiningSettings``), one ranked example (``MinedExample``), and the row checks the rankers share.
The formula itself is described in :mod:`workbench.evaluate.mining`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import ValidationError

__all__ = ["REASONS", "MiningSettings", "MinedExample", "ordered_reasons", "row_example_id", "row_number"]

REASONS = (
    "likely_label_error",
    "confident_mistake",
    "misclassified",
    "anomaly_miss",
    "anomaly_false_alarm",
    "missed_box",
    "false_positive",
    "poor_localization",
    "low_confidence",
    "most_uncertain",  # no error of its own: fills the count after the examples with a reason
)


@dataclass(frozen=True)
class MiningSettings:
    """The thresholds and weights of the scoring formula (module docstring)."""

    confident: float = 0.8
    label_error: float = 0.9
    low_confidence: float = 0.3
    min_score: float = 0.5
    loc_iou: float = 0.1
    missed_weight: float = 1.5
    localization_weight: float = 1.0

    def __post_init__(self) -> None:
        for name in ("confident", "label_error", "low_confidence", "min_score", "loc_iou"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValidationError(f"must be within [0, 1], got {v}", field=name)
        for name in ("missed_weight", "localization_weight"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValidationError(f"must be a finite number >= 0, got {v!r}", field=name)


@dataclass
class MinedExample:
    """One ranked example: its teaching ``score``, why, the numbers behind it, and its label-error score."""

    example_id: int
    score: float
    reasons: list[str]
    details: dict[str, Any] = field(default_factory=dict)
    label_error_score: float = 0.0
    split: str = ""

    @property
    def reason(self) -> str:
        """The headline reason ("" for an example with nothing to teach)."""
        return self.reasons[0] if self.reasons else ""

    @property
    def likely_label_error(self) -> bool:
        return "likely_label_error" in self.reasons

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["score"] = round(self.score, 6)
        d["label_error_score"] = round(self.label_error_score, 6)
        d["reason"] = self.reason
        for key in ("true", "predicted"):  # what the error gallery's caption shows
            if key in self.details:
                d[key] = self.details[key]
        return d


def ordered_reasons(reasons: set[str]) -> list[str]:
    return [r for r in REASONS if r in reasons]


def row_example_id(row: Mapping[str, Any], i: int, key: str = "example_id") -> int:
    v = row.get(key) if isinstance(row, Mapping) else None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ValidationError(f"prediction needs an integer {key}, got {v!r}", record=i, field=key)
    return int(v)


def row_number(v: Any, i: int, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not math.isfinite(float(v)):
        raise ValidationError(f"expected a finite number, got {v!r}", record=i, field=name)
    return float(v)
