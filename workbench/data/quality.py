"""Dataset checks: class balance per split, box sizes, duplicates, unannotated images.

Plain data in, plain data out (dataclasses with ``to_dict()``), for the widgets, the balance plot and
``workbench stats --json``. Every function is one linear pass over what it is given. For very large
datasets the store can count in SQL and hand the table to :func:`imbalance` and the box arrays to
:func:`box_stats_from_arrays`; the rules (thresholds, warning codes) live only here.

Thresholds: :data:`GUIDANCE` (10 to train at all, ~300 per class is good, ~1000 per class is great), a
class *dominates* when it holds more than :data:`DOMINANT_SHARE` of the annotations and more than
:data:`DOMINANT_RATIO` times the smallest class, a class is *rare* when the largest has more than
:data:`RARE_RATIO` times as many; a box is *tiny* under :data:`TINY_BOX_PX` pixels or
:data:`TINY_BOX_FRACTION` of the image side, *huge* over :data:`HUGE_BOX_FRACTION` of the image area.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import UnknownNameError, ValidationError
from .box_sizes import (
    HUGE_BOX_FRACTION,
    SIZE_BIN_EDGES,
    TINY_BOX_FRACTION,
    TINY_BOX_PX,
    BoxStats,
    box_stats,
    box_stats_from_arrays,
)
from .duplicate_index import near_duplicates
from .duplicates import NearDuplicates
from .records import SPLITS, ClassDef, Example
from .task_types import TaskType

__all__ = [
    "GUIDANCE",
    "DOMINANT_SHARE",
    "DOMINANT_RATIO",
    "RARE_RATIO",
    "TINY_BOX_PX",
    "TINY_BOX_FRACTION",
    "HUGE_BOX_FRACTION",
    "SIZE_BIN_EDGES",
    "SEVERITIES",
    "QualityWarning",
    "Balance",
    "BoxStats",
    "QualityReport",
    "class_counts",
    "imbalance",
    "box_stats",
    "box_stats_from_arrays",
    "unannotated",
    "near_duplicates",
    "quality_report",
    "build_report",
]

GUIDANCE = {"minimum": 10, "good": 300, "great": 1000}  # per class (and "minimum" also in total)
DOMINANT_SHARE = 0.5
DOMINANT_RATIO = 3.0
RARE_RATIO = 10.0
SEVERITIES = ("error", "warning", "info")

_SPLIT_INDEX = {s: i for i, s in enumerate(SPLITS)}
_LABEL_KINDS = frozenset(("label", "anomaly"))  # one class per example


@dataclass(frozen=True)
class _Policy:
    """How a dataset type is judged."""

    unit: str  # what is counted per class, for messages
    trained: tuple[str, ...] | None = None  # the classes the model learns from (None: all)
    dominance: bool = True  # warn when one class dominates
    must_evaluate: tuple[str, ...] = ()  # classes that must appear in val or test
    empty_is_answer: bool = False  # an image marked annotated with no objects is a valid (background) image
    boxes: bool = False


_POLICIES: dict[str, _Policy] = {
    TaskType.CLASSIFICATION: _Policy("examples"),
    TaskType.DETECTION: _Policy("boxes", empty_is_answer=True, boxes=True),
    TaskType.SEGMENTATION: _Policy("objects", empty_is_answer=True, boxes=True),
    # trained on good images only; anomalous ones are what val and test measure
    TaskType.ANOMALY: _Policy("examples", trained=("good",), dominance=False, must_evaluate=("anomalous",)),
}


def _policy(dataset_type: str) -> _Policy:
    try:
        return _POLICIES[dataset_type]
    except KeyError:
        raise UnknownNameError("dataset type", dataset_type, list(_POLICIES)) from None


@dataclass(frozen=True)
class QualityWarning:
    code: str
    severity: str  # error | warning | info
    message: str
    class_name: str | None = None
    count: int | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValidationError(
                f"unknown severity {self.severity!r}; valid: {', '.join(SEVERITIES)}", field="severity"
            )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"code": self.code, "severity": self.severity, "message": self.message}
        if self.class_name is not None:
            d["class_name"] = self.class_name
        if self.count is not None:
            d["count"] = self.count
        return d


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {plural or word + 's'}"


# ---------------------------------------------------------------------------------------------- counts
def class_counts(examples: Sequence[Example], classes: Sequence[ClassDef]) -> dict[str, dict[str, int]]:
    """Per class: ``{"train", "val", "test", "total", "images"}``.

    Label and anomaly annotations count once per example (its class); boxes, polygons and masks count per
    object, and ``images`` is how many examples hold at least one of the class. Model proposals are left
    out. Classes come in the order of ``classes``, then any other class an annotation names.
    """
    table: dict[str, list[int]] = {c.name: [0, 0, 0, 0, -1] for c in classes}  # train val test images last
    split_index = _SPLIT_INDEX
    label_kinds = _LABEL_KINDS
    for n, ex in enumerate(examples):
        s = split_index.get(ex.split)
        if s is None:
            raise ValidationError(
                f"unknown split {ex.split!r}; valid: {', '.join(SPLITS)}", record=ex.id, field="split"
            )
        for a in ex.annotations:
            if a.proposal:
                continue
            row = table.get(a.label)
            if row is None:
                row = table[a.label] = [0, 0, 0, 0, -1]
            row[s] += 1
            if row[4] != n:
                row[4] = n
                row[3] += 1
            if a.kind in label_kinds:
                break  # one class per example
    return {
        name: {"train": r[0], "val": r[1], "test": r[2], "total": r[0] + r[1] + r[2], "images": r[3]}
        for name, r in table.items()
    }


def unannotated(examples: Sequence[Example], dataset_type: str | None = None) -> list[int]:
    """Ids of the examples with no annotation (model proposals do not count).

    For detection and segmentation an example marked ``annotated`` or ``reviewed`` with no objects is a
    deliberate background image and is not listed.
    """
    empty_ok = dataset_type is not None and _policy(dataset_type).empty_is_answer
    out = []
    for ex in examples:
        if any(not a.proposal for a in ex.annotations):
            continue
        if empty_ok and ex.status != "new":
            continue
        out.append(ex.id)
    return out


# ---------------------------------------------------------------------------------------------- balance
@dataclass
class Balance:
    """Class balance: ``ratio`` is largest / smallest over the classes that have any (None with fewer than
    two such classes); ``shares`` each class's fraction of everything counted."""

    ratio: float | None
    largest: str | None
    smallest: str | None
    shares: dict[str, float]
    warnings: list[QualityWarning] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ratio": self.ratio,
            "largest": self.largest,
            "smallest": self.smallest,
            "shares": dict(self.shares),
            "warnings": [w.to_dict() for w in self.warnings],
        }


def imbalance(
    counts: Mapping[str, Mapping[str, int]],
    dataset_type: str = TaskType.CLASSIFICATION.value,
    *,
    annotated_examples: int | None = None,
) -> Balance:
    """Judge a :func:`class_counts` table (or the same table computed in SQL).

    ``annotated_examples`` is how many examples can be trained on; without it the sum of per-class
    ``images`` is used (exact when each example has one class).
    """
    pol = _policy(dataset_type)
    unit = pol.unit
    g_min, g_good, g_great = GUIDANCE["minimum"], GUIDANCE["good"], GUIDANCE["great"]
    totals = {name: int(c["total"]) for name, c in counts.items()}
    grand = sum(totals.values())
    shares = {name: (t / grand if grand else 0.0) for name, t in totals.items()}
    present = {name: t for name, t in totals.items() if t > 0}
    ratio = largest = smallest = None
    if present:
        largest = max(present, key=lambda k: (present[k], k))
        smallest = min(present, key=lambda k: (present[k], k))
        if len(present) > 1:
            ratio = present[largest] / present[smallest]
    warnings: list[QualityWarning] = []
    trained = [n for n in totals if pol.trained is None or n in pol.trained]

    n_ex = annotated_examples
    if n_ex is None:
        n_ex = sum(int(counts[n].get("images", counts[n]["total"])) for n in counts)
    if not counts:
        warnings.append(
            QualityWarning("no_classes", "error", "the dataset has no classes: add some to annotate")
        )
    if n_ex < g_min:
        warnings.append(
            QualityWarning(
                "too_few_examples",
                "error",
                f"{_plural(n_ex, 'annotated example')}: at least {g_min} are needed to train",
                count=n_ex,
            )
        )
    for name in trained:
        t = totals[name]
        if t == 0:
            warnings.append(
                QualityWarning("class_empty", "warning", f"class '{name}' has no {unit}", name, 0)
            )
        elif t < g_min:
            warnings.append(
                QualityWarning(
                    "class_too_few", "warning", f"class '{name}' has {t} {unit}: fewer than {g_min}", name, t
                )
            )
        elif t < g_good:
            warnings.append(
                QualityWarning(
                    "class_below_good",
                    "info",
                    f"class '{name}' has {t} {unit}; ~{g_good} per class is good",
                    name,
                    t,
                )
            )
    trained_counts = [totals[n] for n in trained]
    if trained_counts and min(trained_counts) >= g_great:
        warnings.append(
            QualityWarning(
                "classes_great",
                "info",
                f"every class has at least {g_great} {unit}: great",
                count=min(trained_counts),
            )
        )
    elif trained_counts and min(trained_counts) >= g_good:
        warnings.append(
            QualityWarning(
                "classes_good",
                "info",
                f"every class has at least {g_good} {unit} (good); ~{g_great} is great",
                count=min(trained_counts),
            )
        )
    if pol.dominance and ratio is not None and largest is not None and smallest is not None:
        if shares[largest] > DOMINANT_SHARE and ratio > DOMINANT_RATIO:
            warnings.append(
                QualityWarning(
                    "class_dominant",
                    "warning",
                    f"class '{largest}' holds {shares[largest]:.0%} of the {unit}, {ratio:.1f}x the smallest "
                    f"('{smallest}'): the model may learn to favour it",
                    largest,
                    totals[largest],
                )
            )
        for name, t in present.items():
            if present[largest] > RARE_RATIO * t:
                warnings.append(
                    QualityWarning(
                        "class_rare",
                        "warning",
                        f"class '{name}' has {t} {unit}, {present[largest] / t:.0f}x fewer than '{largest}'",
                        name,
                        t,
                    )
                )
    has_eval = any(int(c["val"]) + int(c["test"]) for c in counts.values())
    for name in totals:
        held_out = int(counts[name]["val"]) + int(counts[name]["test"])
        if name in pol.must_evaluate:
            if held_out == 0:
                warnings.append(
                    QualityWarning(
                        "class_not_evaluated",
                        "warning",
                        f"no '{name}' {unit} in val or test: the metrics cannot be measured",
                        name,
                        0,
                    )
                )
        elif has_eval and totals[name] > 0 and held_out == 0:
            warnings.append(
                QualityWarning(
                    "class_not_evaluated", "info", f"class '{name}' has no {unit} in val or test", name, 0
                )
            )
    return Balance(ratio, largest, smallest, shares, warnings)


# ---------------------------------------------------------------------------------------------- report
@dataclass
class QualityReport:
    dataset_type: str
    examples: int
    annotated: int
    classes: dict[str, dict[str, int]]
    balance: Balance
    box_sizes: BoxStats | None  # None for dataset types without objects
    near_duplicates: NearDuplicates
    unannotated: list[int]
    warnings: list[QualityWarning]  # errors first, then warnings, then notes

    @property
    def can_train(self) -> bool:
        return not any(w.severity == "error" for w in self.warnings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset_type": self.dataset_type,
            "examples": self.examples,
            "annotated": self.annotated,
            "can_train": self.can_train,
            "guidance": dict(GUIDANCE),
            "classes": {k: dict(v) for k, v in self.classes.items()},
            "balance": {k: v for k, v in self.balance.to_dict().items() if k != "warnings"},  # in warnings
            "warnings": [w.to_dict() for w in self.warnings],
            "box_sizes": self.box_sizes.to_dict() if self.box_sizes is not None else None,
            "near_duplicates": self.near_duplicates.to_dict(),
            "unannotated": list(self.unannotated),
        }


def quality_report(
    examples: Sequence[Example],
    classes: Sequence[ClassDef],
    dataset_type: str,
    load_bytes: Callable[[str], bytes] | None = None,
    near_dup: bool = True,
    *,
    hashes: Mapping[str, int | str] | None = None,
    max_distance: int = 4,
) -> QualityReport:
    """Every check over one dataset (or directory). Near duplicates need ``load_bytes`` (blob sha256 ->
    image bytes) or cached ``hashes``; without them, and with ``near_dup=False``, only exact duplicates
    (the same image twice) are looked for."""
    pol = _policy(dataset_type)
    counts = class_counts(examples, classes)
    missing = unannotated(examples, dataset_type)
    boxes = box_stats(examples) if pol.boxes else None
    if near_dup:
        dups = near_duplicates(examples, load_bytes, max_distance, hashes=hashes)
    else:
        dups = near_duplicates(examples, None, max_distance)
    return build_report(dataset_type, classes, counts, len(examples), missing, boxes, dups)


def build_report(
    dataset_type: str,
    classes: Sequence[ClassDef],
    counts: dict[str, dict[str, int]],
    n_examples: int,
    missing: list[int],
    boxes: BoxStats | None,
    dups: NearDuplicates,
    straddling: Sequence[Sequence[int]] = (),
) -> QualityReport:
    """Judge gathered numbers (from :func:`quality_report`'s pass over examples, or from the store's SQL
    counts) into a :class:`QualityReport`: every warning rule lives here."""
    max_distance = dups.max_distance
    annotated = n_examples - len(missing)
    balance = imbalance(counts, dataset_type, annotated_examples=annotated)
    warnings = list(balance.warnings)
    known = {c.name for c in classes}
    for name in counts:
        if name not in known:
            warnings.append(
                QualityWarning(
                    "unknown_class",
                    "warning",
                    f"annotations name class '{name}', which the dataset does not define",
                    name,
                    counts[name]["total"],
                )
            )
    if missing:
        warnings.append(
            QualityWarning(
                "unannotated",
                "warning",
                f"{_plural(len(missing), 'example')} without annotations",
                count=len(missing),
            )
        )
    if boxes is not None and boxes.tiny:
        warnings.append(
            QualityWarning(
                "tiny_boxes",
                "warning",
                f"{_plural(boxes.tiny, 'box', 'boxes')} under {TINY_BOX_PX} px or {TINY_BOX_FRACTION:.0%} of the image side "
                f"on {_plural(boxes.tiny_images, 'example')}",
                count=boxes.tiny,
            )
        )
    if boxes is not None and boxes.huge:
        warnings.append(
            QualityWarning(
                "huge_boxes",
                "warning",
                f"{_plural(boxes.huge, 'box', 'boxes')} over {HUGE_BOX_FRACTION:.0%} of the image "
                f"on {_plural(boxes.huge_images, 'example')}",
                count=boxes.huge,
            )
        )
    if dups.exact:
        n = sum(len(g) for g in dups.exact)
        warnings.append(
            QualityWarning(
                "exact_duplicates",
                "warning",
                f"{n} examples share {_plural(len(dups.exact), 'image')} with another",
                count=n,
            )
        )
    if dups.pairs:
        more = "+" if dups.truncated else ""
        warnings.append(
            QualityWarning(
                "near_duplicates",
                "info",
                f"{len(dups.pairs)}{more} pairs of near-duplicate images (within {max_distance} bits)",
                count=len(dups.pairs),
            )
        )
    if dups.cross_split:
        warnings.append(
            QualityWarning(
                "duplicates_across_splits",
                "warning",
                f"{_plural(len(dups.cross_split), 'group')} of duplicates span splits: val / test scores will be "
                "too optimistic",
                count=len(dups.cross_split),
            )
        )
    if straddling:
        warnings.append(
            QualityWarning(
                "copies_across_splits",
                "error",
                f"{_plural(len(straddling), 'group')} of copies of one image (same Roboflow source name, same image "
                "or near duplicates) span train and val / test: val / test scores would measure memory; move each "
                "group into one split",
                count=len(straddling),
            )
        )
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    warnings.sort(key=lambda w: rank[w.severity])
    return QualityReport(
        dataset_type=dataset_type,
        examples=n_examples,
        annotated=annotated,
        classes=counts,
        balance=balance,
        box_sizes=boxes,
        near_duplicates=dups,
        unannotated=missing,
        warnings=warnings,
    )
