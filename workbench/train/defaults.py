"""Training defaults per dataset type and dataset size: one table, measured on the built-in samples.

``choose_defaults(dataset_type, train_examples)`` picks the row for the type and the size bucket of the
training split and returns the batch size, learning rate, schedule, epochs and image size with the reason;
``fill_from_table(ds, given)`` fills what the caller left unset from that row, with the line that says
what was chosen and why. ``workbench train`` (for every flag not given) and the loop's train notebook (for
every setting its parameters leave at 0 / '', whether the params file, ``--quick`` or nothing set it) both
use it, print the line and store the choice in the run's parameters (``config.extra["defaults"]``). The
loop's ``--quick`` variant is :data:`workbench.loop.params.QUICK`.

Why these numbers (CPU, from scratch, the built-in samples; see README "Measured here"): the tiny R-CNN
detectors learn from few images per step: batch 32 with 12 epochs is 10-12 optimizer steps per epoch on
400 images and ended at mAP50 0.69 with every shape called "triangle", batch 8 gets 4x the steps in the same
time and reached mAP50 0.96. Small data wants more epochs (steps), large data fewer. A one-cycle or
warm-up + cosine schedule reaches a good model in a fixed number of epochs where the plateau schedule waits
for the validation metric to stall.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ..data.task_types import TaskType
from ..errors import UnknownNameError

__all__ = ["Defaults", "SIZE_BUCKETS", "DEFAULTS_TABLE", "SETTINGS", "size_bucket", "choose_defaults",
           "fill_from_table"]

# The TrainConfig fields a row of the table sets (Defaults.settings), in the order the note names them
SETTINGS = ("batch_size", "lr", "schedule", "epochs", "image_size")

# (bucket name, upper bound of training examples, exclusive); the last one is open-ended
SIZE_BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("tiny", 100),
    ("small", 300),
    ("medium", 3_000),
    ("large", None),
)


@dataclass(frozen=True)
class Defaults:
    """One row of the table: what to train with, and why."""

    batch_size: int
    lr: float
    schedule: str
    epochs: int
    image_size: int | None  # None: the model's own default
    why: str
    dataset_type: str = ""
    bucket: str = ""
    train_examples: int | None = None

    def settings(self) -> dict[str, Any]:
        """The TrainConfig fields this row sets."""
        return {
            "batch_size": self.batch_size,
            "lr": self.lr,
            "schedule": self.schedule,
            "epochs": self.epochs,
            "image_size": self.image_size,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line: what was chosen for which data, and why."""
        size = "model default" if self.image_size is None else f"{self.image_size} px"
        n = "" if self.train_examples is None else f"{self.train_examples} training examples, "
        return (
            f"defaults for {self.dataset_type} ({n}{self.bucket}): batch {self.batch_size}, lr {self.lr:g}, "
            f"{self.schedule} schedule, {self.epochs} epochs, {size}; {self.why}"
        )


_DET_WHY = ("R-CNN detectors from scratch need many small steps (batch 32 stalled at mAP50 0.69, batch 8 reached "
            "0.96; at equal epochs batch 4 beat batch 8)")
_SEG_WHY = "Mask R-CNN from scratch: as detection, small batches and many steps"
_CLS_WHY = "small CNNs learn fast; one-cycle reaches full accuracy in a fixed number of epochs"
_ANO_WHY = ("PatchCore fits its memory in one pass (epochs and schedule only matter for the autoencoder; plateau, "
            "as PatchCore takes no optimizer step that a per-epoch schedule could follow)")

DEFAULTS_TABLE: dict[str, dict[str, Defaults]] = {
    TaskType.CLASSIFICATION: {
        "tiny": Defaults(16, 2e-3, "onecycle", 30, None, _CLS_WHY + "; tiny data: more epochs"),
        "small": Defaults(32, 2e-3, "onecycle", 20, None, _CLS_WHY),
        "medium": Defaults(64, 2e-3, "onecycle", 15, None, _CLS_WHY),
        "large": Defaults(128, 2e-3, "onecycle", 8, None, _CLS_WHY + "; large data: fewer epochs"),
    },
    TaskType.DETECTION: {
        "tiny": Defaults(4, 1e-3, "warmup-cosine", 24, None, _DET_WHY + "; tiny data: more epochs"),
        "small": Defaults(4, 1e-3, "warmup-cosine", 16, None, _DET_WHY),
        "medium": Defaults(8, 1e-3, "warmup-cosine", 8, None, _DET_WHY + "; 400 shapes, batch 8, 8 epochs: mAP50 0.94-0.96"),
        "large": Defaults(16, 1e-3, "warmup-cosine", 6, None, _DET_WHY + "; large data: batch 16, fewer epochs"),
    },
    TaskType.SEGMENTATION: {
        "tiny": Defaults(4, 1e-3, "warmup-cosine", 24, None, _SEG_WHY + "; tiny data: more epochs"),
        "small": Defaults(4, 1e-3, "warmup-cosine", 16, None, _SEG_WHY),
        "medium": Defaults(8, 1e-3, "warmup-cosine", 8, None, _SEG_WHY),
        "large": Defaults(16, 1e-3, "warmup-cosine", 6, None, _SEG_WHY + "; large data: batch 16, fewer epochs"),
    },
    TaskType.ANOMALY: {
        "tiny": Defaults(16, 1e-3, "plateau", 10, None, _ANO_WHY),
        "small": Defaults(16, 1e-3, "plateau", 10, None, _ANO_WHY),
        "medium": Defaults(32, 1e-3, "plateau", 8, None, _ANO_WHY),
        "large": Defaults(64, 1e-3, "plateau", 5, None, _ANO_WHY),
    },
}

def size_bucket(train_examples: int) -> str:
    """The bucket of a training split of ``train_examples`` examples."""
    for name, upper in SIZE_BUCKETS:
        if upper is None or train_examples < upper:
            return name
    return SIZE_BUCKETS[-1][0]


def choose_defaults(dataset_type: str, train_examples: int) -> Defaults:
    """The table's row for ``dataset_type`` and the size bucket of ``train_examples``."""
    try:
        rows = DEFAULTS_TABLE[dataset_type]
    except KeyError:
        raise UnknownNameError("dataset type", str(dataset_type), list(DEFAULTS_TABLE)) from None
    bucket = size_bucket(int(train_examples))
    row = rows[bucket]
    return Defaults(**{**asdict(row), "dataset_type": str(dataset_type), "bucket": bucket,
                       "train_examples": int(train_examples)})


def fill_from_table(ds: Any, given: Mapping[str, Any], *, snapshot: str | None = None,
                    directory: str | None = None,
                    name: Callable[[str, Any], str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings of :data:`SETTINGS` for training ``ds`` (a snapshot or directory of it): each value of
    ``given`` that is not None, the table's row (by the dataset's type and the size of the training split)
    for the rest. Returns ``(chosen, why)``: ``why`` holds the row, the given values as ``name(key, value)``
    calls them (default ``"key value"``) and ``note``, the line to print."""
    from .from_store import source_from_dataset

    unknown = sorted(set(given) - set(SETTINGS))
    if unknown:
        raise UnknownNameError("training setting", unknown[0], list(SETTINGS))
    n_train = source_from_dataset(ds, snapshot=snapshot, directory=directory, require_train=False).counts()["train"]
    row = choose_defaults(ds.type, n_train)
    chosen = {k: (v if given.get(k) is None else given[k]) for k, v in row.settings().items()}
    say = name or (lambda k, v: f"{k} {v}")
    named = [say(k, given[k]) for k in row.settings() if given.get(k) is not None]
    note = row.describe() + (f" (given: {', '.join(named)})" if named else "")
    return chosen, {"table": row.to_dict(), "given": named, "note": note}
