"""Train / val / test assignment: seeded, reproducible, and stable.

Each example gets a key in [0, 1) from a hash of (seed, image hash, file name). When examples are added,
the new ones fill whatever val and test are short of their targets for the new total (lowest keys first);
the rest go to train. Existing examples never move, so adding data never takes an example out of val or
test. Targets: ``val = min(val_max, floor(n * val_fraction))``, the same for test (10% up to 100 each by
default, settable per dataset).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from ..errors import ValidationError

__all__ = ["SplitSettings", "split_key", "split_targets", "assign_splits", "MIN_TRAIN_EXAMPLES"]

MIN_TRAIN_EXAMPLES = 10


@dataclass(frozen=True)
class SplitSettings:
    val_fraction: float = 0.1
    val_max: int = 100
    test_fraction: float = 0.1
    test_max: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("val_fraction", "test_fraction"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0.0 <= v < 1.0:
                raise ValidationError(f"{name} must be in [0, 1), got {v!r}", field=name)
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValidationError("val_fraction + test_fraction must be below 1", field="val_fraction")
        for name in ("val_max", "test_max", "seed"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValidationError(f"{name} must be a non-negative integer, got {v!r}", field=name)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SplitSettings:
        known = {k: d[k] for k in ("val_fraction", "val_max", "test_fraction", "test_max", "seed") if k in d}
        return cls(**known)


def split_key(seed: int, blob: str, file_name: str) -> float:
    """A deterministic pseudo-random number in [0, 1) for one example."""
    h = hashlib.sha256(f"{seed}\0{blob}\0{file_name}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def split_targets(n: int, settings: SplitSettings) -> tuple[int, int]:
    """How many of ``n`` examples belong in val and in test."""
    n_val = min(settings.val_max, math.floor(n * settings.val_fraction + 1e-9))
    n_test = min(settings.test_max, math.floor(n * settings.test_fraction + 1e-9))
    return n_val, n_test


def assign_splits(
    new_keys: Sequence[float], *, current_val: int, current_test: int, total_after: int,
    settings: SplitSettings,
) -> list[str]:
    """Splits for new examples (in the order of ``new_keys``) given the counts already in the dataset."""
    want_val, want_test = split_targets(total_after, settings)
    need_val = max(0, want_val - current_val)
    need_test = max(0, want_test - current_test)
    order = sorted(range(len(new_keys)), key=lambda i: (new_keys[i], i))
    out = ["train"] * len(new_keys)
    for rank, i in enumerate(order):
        if rank < need_val:
            out[i] = "val"
        elif rank < need_val + need_test:
            out[i] = "test"
    return out
