"""Box sizes of a detection or segmentation dataset: the size distribution and the boxes too small or too
large to be useful.

A box's size is ``sqrt(box area / image area)`` (1.0: the whole image), rounded to 1/:data:`SIZE_BINS` (the
store keeps a histogram of these steps up to date, and the quantiles computed here from a list of boxes
equal the ones it reads from that histogram). A box is *tiny* when a side is
under :data:`TINY_BOX_PX` pixels or under :data:`TINY_BOX_FRACTION` of the image side, *huge* when it
covers more than :data:`HUGE_BOX_FRACTION` of the image area.
"""

from __future__ import annotations

import math
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
    "SIZE_BINS",
    "EXAMPLES_LISTED",
    "size_bin",
    "size_bins",
    "quantile_from_counts",
    "BoxStats",
    "box_stats",
    "box_stats_from_arrays",
    "box_stats_from_bins",
]

TINY_BOX_PX = 4
TINY_BOX_FRACTION = 0.01
HUGE_BOX_FRACTION = 0.9
SIZE_BIN_EDGES = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)  # histogram of box sizes
SIZE_BINS = 10_000  # sizes are counted in steps of 1/SIZE_BINS
EXAMPLES_LISTED = 1000  # example ids listed per flag (a summary, not an index: the count says how many)
_EDGE_BINS = np.array([round(e * SIZE_BINS) for e in SIZE_BIN_EDGES])
_OBJECT_KINDS = frozenset(("box", "polygon", "mask"))  # anomaly regions are defects, not objects


@dataclass
class BoxStats:
    """Box sizes as ``sqrt(box area / image area)``: quantiles, a histogram over :data:`SIZE_BIN_EDGES`, per
    class count and median, and the tiny / huge boxes (how many, on how many examples, and the first
    :data:`EXAMPLES_LISTED` of those examples' ids)."""

    count: int
    quantiles: dict[str, float]
    histogram: dict[str, list[float] | list[int]]
    by_class: dict[str, dict[str, float | int]]
    tiny: int
    tiny_images: int  # examples with a tiny box
    tiny_examples: list[int]  # the first EXAMPLES_LISTED of them (smallest ids)
    huge: int
    huge_images: int
    huge_examples: list[int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "quantiles": dict(self.quantiles),
            "histogram": {k: list(v) for k, v in self.histogram.items()},
            "by_class": {k: dict(v) for k, v in self.by_class.items()},
            "tiny": {"count": self.tiny, "images": self.tiny_images, "examples": list(self.tiny_examples)},
            "huge": {"count": self.huge, "images": self.huge_images, "examples": list(self.huge_examples)},
            "thresholds": {
                "tiny_px": TINY_BOX_PX,
                "tiny_fraction": TINY_BOX_FRACTION,
                "huge_fraction": HUGE_BOX_FRACTION,
            },
        }


_QUANTILES = {"min": 0.0, "p05": 0.05, "p25": 0.25, "median": 0.5, "p75": 0.75, "p95": 0.95, "max": 1.0}


def size_bin(w: float, h: float, image_w: float, image_h: float) -> int:
    """A box's size ``sqrt(w*h / (image_w*image_h))`` in steps of 1/:data:`SIZE_BINS` (0..SIZE_BINS)."""
    return min(SIZE_BINS, max(0, round(math.sqrt(w * h / (image_w * image_h)) * SIZE_BINS)))


def size_bins(w: Any, h: Any, image_w: Any, image_h: Any) -> np.ndarray:
    """:func:`size_bin` over arrays (the same arithmetic and rounding: half to even)."""
    f = np.float64
    rel = np.sqrt(np.asarray(w, f) * np.asarray(h, f) / (np.asarray(image_w, f) * np.asarray(image_h, f)))
    return np.clip(np.rint(rel * SIZE_BINS), 0, SIZE_BINS).astype(np.int64)


def quantile_from_counts(counts: np.ndarray, q: float) -> float:
    """The ``q`` quantile (numpy's default, linear interpolation) of the sizes a histogram over
    ``0..SIZE_BINS`` counts, without expanding it."""
    n = int(counts.sum())
    cum = np.cumsum(counts)
    pos = q * (n - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    a, b = (int(np.searchsorted(cum, k, side="right")) / SIZE_BINS for k in (lo, hi))
    t = pos - lo
    return a + (b - a) * t


def box_stats_from_bins(
    by_class: Mapping[str, np.ndarray],
    tiny: tuple[int, int, list[int]],
    huge: tuple[int, int, list[int]],
) -> BoxStats:
    """:class:`BoxStats` from per-class histograms of :func:`size_bins` (arrays of ``SIZE_BINS + 1`` counts,
    classes in display order) and the tiny / huge boxes as ``(boxes, examples, example ids)`` (ids: at least
    the :data:`EXAMPLES_LISTED` smallest): what the store keeps up to date."""
    total = np.zeros(SIZE_BINS + 1, dtype=np.int64)
    classes: dict[str, dict[str, float | int]] = {}
    for name, counts in by_class.items():
        c = int(counts.sum())
        if c:
            total += counts
            classes[name] = {"count": c, "median": quantile_from_counts(counts, 0.5)}
    n = int(total.sum())
    cum = np.r_[0, np.cumsum(total)]
    edges = _EDGE_BINS.copy()
    edges[-1] += 1  # the last bucket includes 1.0
    hist = np.diff(cum[edges])
    return BoxStats(
        count=n,
        quantiles={k: quantile_from_counts(total, q) for k, q in _QUANTILES.items()} if n else {},
        histogram={"edges": list(SIZE_BIN_EDGES), "counts": [int(v) for v in hist]},
        by_class=classes,
        tiny=int(tiny[0]),
        tiny_images=int(tiny[1]),
        tiny_examples=sorted(tiny[2])[:EXAMPLES_LISTED],
        huge=int(huge[0]),
        huge_images=int(huge[1]),
        huge_examples=sorted(huge[2])[:EXAMPLES_LISTED],
    )


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
    tiny = (w < TINY_BOX_PX) | (h < TINY_BOX_PX) | (w < TINY_BOX_FRACTION * iw) | (h < TINY_BOX_FRACTION * ih)
    huge = w * h > HUGE_BOX_FRACTION * iw * ih
    bins = size_bins(w, h, iw, ih) if n else np.zeros(0, dtype=np.int64)
    flat = np.bincount(cls * (SIZE_BINS + 1) + bins, minlength=len(class_names) * (SIZE_BINS + 1)) if n else None
    by_class = {
        name: flat[k * (SIZE_BINS + 1):(k + 1) * (SIZE_BINS + 1)] if flat is not None else np.zeros(0, np.int64)
        for k, name in enumerate(class_names)
    }
    tiny_ids, huge_ids = np.unique(ids[tiny]).tolist(), np.unique(ids[huge]).tolist()
    return box_stats_from_bins(
        by_class, (int(tiny.sum()), len(tiny_ids), tiny_ids), (int(huge.sum()), len(huge_ids), huge_ids)
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
