"""Box sizes of a detection or segmentation dataset: the size distribution and the boxes too small or too
large to be useful.

A box's size is ``sqrt(box area / image area)`` (1.0: the whole image). A box is *tiny* when a side is
under :data:`TINY_BOX_PX` pixels or under :data:`TINY_BOX_FRACTION` of the image side, *huge* when it
covers more than :data:`HUGE_BOX_FRACTION` of the image area.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ValidationError
from .records import Example

__all__ = [
    "TINY_BOX_PX",
    "TINY_BOX_FRACTION",
    "HUGE_BOX_FRACTION",
    "SIZE_BIN_EDGES",
    "BoxStats",
    "box_stats",
    "box_stats_from_arrays",
]

TINY_BOX_PX = 4
TINY_BOX_FRACTION = 0.01
HUGE_BOX_FRACTION = 0.9
SIZE_BIN_EDGES = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)  # histogram of box sizes
_OBJECT_KINDS = frozenset(("box", "polygon", "mask"))  # anomaly regions are defects, not objects


@dataclass
class BoxStats:
    """Box sizes as ``sqrt(box area / image area)``: quantiles, a histogram over :data:`SIZE_BIN_EDGES`, per
    class count and median, and the tiny / huge boxes (how many, on which examples)."""

    count: int
    quantiles: dict[str, float]
    histogram: dict[str, list[float] | list[int]]
    by_class: dict[str, dict[str, float | int]]
    tiny: int
    tiny_examples: list[int]
    huge: int
    huge_examples: list[int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "quantiles": dict(self.quantiles),
            "histogram": {k: list(v) for k, v in self.histogram.items()},
            "by_class": {k: dict(v) for k, v in self.by_class.items()},
            "tiny": {"count": self.tiny, "examples": list(self.tiny_examples)},
            "huge": {"count": self.huge, "examples": list(self.huge_examples)},
            "thresholds": {
                "tiny_px": TINY_BOX_PX,
                "tiny_fraction": TINY_BOX_FRACTION,
                "huge_fraction": HUGE_BOX_FRACTION,
            },
        }


_QUANTILES = {"min": 0.0, "p05": 0.05, "p25": 0.25, "median": 0.5, "p75": 0.75, "p95": 0.95, "max": 1.0}


def box_stats_from_arrays(
    widths: Any,
    heights: Any,
    image_widths: Any,
    image_heights: Any,
    class_index: Any,
    example_ids: Any,
    class_names: Sequence[str],
) -> BoxStats:
    """:class:`BoxStats` from parallel arrays, one entry per box (what a SQL query returns)."""
    w = np.asarray(widths, dtype=np.float64)
    h = np.asarray(heights, dtype=np.float64)
    iw = np.asarray(image_widths, dtype=np.float64)
    ih = np.asarray(image_heights, dtype=np.float64)
    cls = np.asarray(class_index, dtype=np.int64)
    ids = np.asarray(example_ids, dtype=np.int64)
    if not (w.shape == h.shape == iw.shape == ih.shape == cls.shape == ids.shape):
        raise ValidationError("box arrays differ in length", field="boxes")
    n = int(w.size)
    if n and (iw.min() <= 0 or ih.min() <= 0):
        raise ValidationError("an image has a zero width or height", field="width")
    rel = np.sqrt(w * h / (iw * ih)) if n else w
    tiny = (w < TINY_BOX_PX) | (h < TINY_BOX_PX) | (w < TINY_BOX_FRACTION * iw) | (h < TINY_BOX_FRACTION * ih)
    huge = w * h > HUGE_BOX_FRACTION * iw * ih
    quantiles = (
        {k: float(v) for k, v in zip(_QUANTILES, np.quantile(rel, list(_QUANTILES.values())), strict=True)}
        if n
        else {}
    )
    hist, _ = np.histogram(np.clip(rel, 0.0, 1.0), bins=np.asarray(SIZE_BIN_EDGES))
    by_class: dict[str, dict[str, float | int]] = {}
    if n:
        order = np.argsort(cls, kind="stable")
        sc, sr = cls[order], rel[order]
        starts = np.flatnonzero(np.r_[True, sc[1:] != sc[:-1]])
        ends = np.r_[starts[1:], n]
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            by_class[class_names[int(sc[a])]] = {"count": b - a, "median": float(np.median(sr[a:b]))}
    return BoxStats(
        count=n,
        quantiles=quantiles,
        histogram={"edges": list(SIZE_BIN_EDGES), "counts": [int(v) for v in hist]},
        by_class=by_class,
        tiny=int(tiny.sum()),
        tiny_examples=np.unique(ids[tiny]).tolist(),
        huge=int(huge.sum()),
        huge_examples=np.unique(ids[huge]).tolist(),
    )


def box_stats(
    examples: Sequence[Example], image_sizes: Mapping[int, tuple[int, int]] | None = None
) -> BoxStats:
    """Box size distribution and tiny / huge boxes over the objects (boxes, polygons, masks) of
    ``examples``. ``image_sizes`` (example id -> (width, height)) overrides the examples' own sizes."""
    ws: list[float] = []
    hs: list[float] = []
    labels: list[str] = []
    per_example: list[int] = []  # boxes per example, to repeat the image size and id
    sizes: list[tuple[int, int]] = []
    ids: list[int] = []
    object_kinds = _OBJECT_KINDS
    for ex in examples:
        before = len(ws)
        for a in ex.annotations:
            bb = a.bbox
            if bb is None or a.proposal or a.kind not in object_kinds:
                continue
            ws.append(bb[2])
            hs.append(bb[3])
            labels.append(a.label)
        if len(ws) > before:
            per_example.append(len(ws) - before)
            size = image_sizes.get(ex.id) if image_sizes is not None else None
            sizes.append(size if size is not None else (ex.width, ex.height))
            ids.append(ex.id)
    names = list(dict.fromkeys(labels))
    code = {n: k for k, n in enumerate(names)}
    reps = np.array(per_example, dtype=np.int64)
    wh = np.repeat(np.array(sizes, dtype=np.float64).reshape(-1, 2), reps, axis=0)
    return box_stats_from_arrays(
        ws,
        hs,
        wh[:, 0],
        wh[:, 1],
        [code[n] for n in labels],
        np.repeat(np.array(ids, dtype=np.int64), reps),
        names,
    )
