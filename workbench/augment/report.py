"""How many boxes a pipeline loses or cuts: the number behind "boxes lost or clipped" in the preview.

``box_loss_report`` draws each example ``draws`` times (seeds from ``draw_seed(seed, draw, example
index)``) through the whole pipeline, then once more per box-affecting transform on its own (with its ``p``
forced to 1: the effect *when it fires*), and counts, over all box draws:

- dropped: the instance did not come out (pushed out of view, under ``min_visibility``, covered by a
  dropout hole, or its mask emptied);
- clipped: it came out but the image border cut off more than ``threshold`` of its (transformed) area.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ValidationError
from .config import enabled_transforms, validate
from .pipeline import BOX_TYPES, Augmenter, draw_seed
from .specs import transform_spec

__all__ = ["box_loss_report"]


def _example(ex: Any, i: int) -> tuple[np.ndarray, Any, Any, Any]:
    if not isinstance(ex, (tuple, list)) or len(ex) not in (3, 4):
        raise ValidationError(
            "each example must be (image, boxes, labels) or (image, boxes, labels, masks)",
            record=f"example {i}",
        )
    image, boxes, labels = ex[0], ex[1], ex[2]
    masks = ex[3] if len(ex) == 4 else None
    return image, boxes, labels, masks


def _run(aug: Augmenter, examples: list[tuple[Any, ...]], draws: int, seed: int) -> dict[str, Any]:
    boxes = dropped = clipped = 0
    for d in range(draws):
        for i, (image, bxs, labels, masks) in enumerate(examples):
            try:
                out = aug(image, bxs, labels, masks, seed=draw_seed(seed, d, i))
            except ValidationError as exc:
                raise exc.located(record=f"example {i}") from None
            n = len(out.kept) + out.dropped
            boxes += n
            dropped += out.dropped
            clipped += out.clipped
    return {
        "boxes": boxes,
        "dropped": dropped,
        "clipped": clipped,
        "dropped_fraction": dropped / boxes if boxes else 0.0,
        "clipped_fraction": clipped / boxes if boxes else 0.0,
    }


def box_loss_report(
    config: dict[str, Any],
    dataset_type: str,
    examples: Sequence[tuple[Any, ...]],
    *,
    draws: int = 10,
    seed: int = 0,
    threshold: float = 0.5,
    per_transform: bool = True,
) -> dict[str, Any]:
    """Fractions of boxes dropped and clipped by more than ``threshold``, overall and per transform.

    ``examples``: ``(image, boxes, labels)`` or ``(image, boxes, labels, masks)`` tuples. Returns
    ``{"draws", "examples", "threshold", "boxes", "dropped", "clipped", "dropped_fraction",
    "clipped_fraction", "per_transform": [{"index", "name", "boxes", "dropped_fraction",
    "clipped_fraction", ...}]}``; fractions are over all box draws. Only transforms that can move or cover
    boxes get a per-transform row (photometric ones never change a box).
    """
    if dataset_type not in BOX_TYPES:
        raise ValidationError(
            f"box loss applies to {' and '.join(BOX_TYPES)} datasets, not {dataset_type!r}",
            field="dataset_type",
        )
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValidationError(f"draws must be a positive integer, got {draws!r}", field="draws")
    cfg = validate(config)
    exs = [_example(ex, i) for i, ex in enumerate(examples)]
    overall = _run(Augmenter(cfg, dataset_type, clip_threshold=threshold), exs, draws, seed)
    rows = []
    if per_transform:
        for index, entry in enabled_transforms(cfg):
            if not transform_spec(entry["name"]).affects_boxes:
                continue
            alone = copy.deepcopy(cfg)
            alone["transforms"] = [dict(entry, params=dict(entry["params"], p=1.0))]
            row = _run(Augmenter(alone, dataset_type, clip_threshold=threshold), exs, draws, seed)
            rows.append({"index": index, "name": entry["name"], **row})
    return {
        "draws": draws,
        "examples": len(exs),
        "threshold": threshold,
        **overall,
        "per_transform": rows,
    }
