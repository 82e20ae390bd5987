"""What a training run reads: examples, classes, the dataset type and a way to fetch image bytes.

The engine takes plain records, not the store, so it runs on anything that can hand out
:class:`~workbench.data.records.Example` objects (a store snapshot, a directory, a test fixture).
This module imports no torch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..data.records import ANOMALY_CLASSES, SPLITS, TASK_TYPES, ClassDef, Example, ImportBatch, default_color
from ..data.task_types import TaskType, type_info
from ..errors import ValidationError

__all__ = ["TrainSource", "usable_for_training", "source_from_batch"]


def usable_for_training(example: Example, dataset_type: str) -> bool:
    """Whether ``example`` carries ground truth the trainer can learn from.

    Classification and anomaly examples need their class; detection and segmentation examples need
    at least one annotation or a status other than ``new`` (an annotated image with no objects is a
    valid negative). Model proposals never count as ground truth.
    """
    truth = example.truth()
    if type_info(dataset_type).image_level:
        return example.label is not None
    return bool(truth) or example.status != "new"


@dataclass(frozen=True)
class TrainSource:
    """Everything a run needs from the data layer, as plain records.

    ``load_bytes(blob_sha256) -> bytes`` fetches an image. ``dataset``, ``snapshot_id`` and ``directory``
    name where the examples came from; they go into the run record.
    """

    examples: Sequence[Example]
    classes: Sequence[ClassDef]
    dataset_type: str
    load_bytes: Callable[[str], bytes]
    dataset: str = ""
    snapshot_id: str | None = None
    directory: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.dataset_type not in TASK_TYPES:
            raise ValidationError(
                f"unknown dataset type {self.dataset_type!r}; valid: {', '.join(TASK_TYPES)}",
                field="dataset_type",
            )
        object.__setattr__(self, "examples", tuple(self.examples))
        classes = tuple(self.classes)
        if self.dataset_type == TaskType.ANOMALY:
            # The two anomaly classes are fixed; keep the caller's colours when given.
            given = {c.name: c for c in classes}
            unknown = sorted(set(given) - set(ANOMALY_CLASSES))
            if unknown:
                raise ValidationError(
                    f"anomaly datasets have the classes good and anomalous, got {', '.join(unknown)}",
                    field="classes",
                )
            classes = tuple(
                given.get(n, ClassDef(n, default_color(i))) for i, n in enumerate(ANOMALY_CLASSES)
            )
        names = [c.name for c in classes]
        if not names:
            raise ValidationError("the dataset has no classes", field="classes")
        if len(set(names)) != len(names):
            raise ValidationError(f"duplicate class names in {names}", field="classes")
        object.__setattr__(self, "classes", classes)
        known = set(names)
        for ex in self.examples:
            if ex.split not in SPLITS:
                raise ValidationError(
                    f"unknown split {ex.split!r}; valid: {', '.join(SPLITS)}", record=ex.id, field="split"
                )
            for ann in ex.truth():
                if ann.label not in known:
                    raise ValidationError(
                        f"annotation label {ann.label!r} is not one of the classes {names}",
                        record=ex.id,
                        field="label",
                    )

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    def split(self, name: str) -> list[Example]:
        """The usable examples of one split, in a stable order (by example id)."""
        if name not in SPLITS:
            raise ValidationError(f"unknown split {name!r}; valid: {', '.join(SPLITS)}", field="split")
        chosen = [
            ex for ex in self.examples if ex.split == name and usable_for_training(ex, self.dataset_type)
        ]
        return sorted(chosen, key=lambda ex: ex.id)

    def counts(self) -> dict[str, int]:
        return {s: len(self.split(s)) for s in SPLITS}

    def fingerprint(self) -> str:
        """A hash of everything the run learns from (ids, splits, sizes, blobs, ground truth, classes).

        Resuming a run checks it, so a killed run is never continued on different data.
        """
        h = hashlib.sha256()
        h.update(json.dumps([self.dataset_type, self.class_names]).encode())
        for ex in sorted(self.examples, key=lambda e: e.id):
            if not usable_for_training(ex, self.dataset_type):
                continue
            truth = sorted(json.dumps(a.content(), sort_keys=True) for a in ex.truth())
            h.update(json.dumps([ex.id, ex.split, ex.blob, ex.width, ex.height, truth]).encode())
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        """Plain facts for the run record (params.json)."""
        return {
            "dataset": self.dataset,
            "dataset_type": self.dataset_type,
            "snapshot_id": self.snapshot_id,
            "directory": self.directory,
            "classes": [{"name": c.name, "color": c.color} for c in self.classes],
            "counts": self.counts(),
            "fingerprint": self.fingerprint(),
            **({"extra": self.extra} if self.extra else {}),
        }


def source_from_batch(
    batch: ImportBatch,
    *,
    dataset: str = "",
    dataset_type: str | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> TrainSource:
    """A source straight from an :class:`ImportBatch` (a sample or a format reader), without a store.

    Items keep the split they name; the others are shuffled with ``seed`` and cut into test, val and
    train by the fractions. Example ids are the item positions. Meant for notebooks, tests and
    benchmarks; a real dataset's splits come from the store.
    """
    import random

    from ..data.images import probe_image

    kind = dataset_type or batch.type
    if kind is None:
        raise ValidationError("the batch names no dataset type; pass dataset_type=", field="dataset_type")
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValidationError("val_fraction + test_fraction must stay below 1", field="val_fraction")
    blobs: dict[str, bytes] = {}
    free = [i for i, item in enumerate(batch.items) if item.split is None]
    random.Random(seed).shuffle(free)
    n_test, n_val = round(len(free) * test_fraction), round(len(free) * val_fraction)
    assigned = {i: "test" for i in free[:n_test]}
    assigned.update({i: "val" for i in free[n_test : n_test + n_val]})
    examples = []
    for i, item in enumerate(batch.items):
        data = item.read_bytes()
        info = probe_image(data, file=item.file_name, record=item.record, verify=False)
        sha = hashlib.sha256(data).hexdigest()
        blobs[sha] = data
        examples.append(
            Example(
                id=i,
                dataset=dataset,
                blob=sha,
                file_name=item.file_name,
                width=info.width,
                height=info.height,
                split=item.split or assigned.get(i, "train"),
                status=item.status or ("annotated" if item.annotations else "new"),
                source=item.source,
                annotations=tuple(item.annotations),
            )
        )
    return TrainSource(examples, batch.classes, kind, blobs.__getitem__, dataset=dataset)
