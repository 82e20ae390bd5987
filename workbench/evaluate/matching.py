"""Per-image matching of predicted instances to ground truth, for error mining (no torch).

Boxes are ``(x, y, w, h)`` in image pixels. For segmentation the IoU is taken on masks when both sides
have one (polygons and RLE are rasterized at the image size); otherwise on boxes. Matching is greedy in
descending score order, as COCO's evaluation does: each prediction takes the unmatched ground-truth
instance it overlaps most (ties: the earlier instance).

``match_image`` sorts every prediction and ground-truth instance of one image into outcomes:

* ``matched``: same class, IoU >= ``iou`` (a true positive; ``low_confidence`` when its score is below
  ``min_score``, the score from which a prediction counts as shown to the user);
* ``misclassified``: a shown prediction of another class on an unmatched instance at IoU >= ``iou``;
* ``poor_localization``: a shown prediction of the same class on an unmatched instance at
  ``loc_iou`` < IoU < ``iou``;
* ``missed``: an instance nothing above was paired with;
* ``false_positive``: a shown prediction nothing was paired with (duplicates included). ``isolated`` is
  True when it overlaps no ground-truth instance above ``loc_iou`` (an object nobody annotated, maybe).

Predictions below ``min_score`` only ever match (they never count as false positives).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ValidationError

__all__ = ["Instance", "ImageMatch", "match_image", "box_iou", "instance_mask"]


@dataclass(frozen=True)
class Instance:
    """One ground-truth or predicted object: class name, box, optional geometry, score (predictions)."""

    label: str
    bbox: tuple[float, float, float, float]
    score: float = 1.0
    polygons: tuple[tuple[float, ...], ...] | None = None
    rle: dict[str, Any] | None = None  # uncompressed {"size": [h, w], "counts": [...]}

    @property
    def has_mask(self) -> bool:
        return self.polygons is not None or self.rle is not None


@dataclass
class ImageMatch:
    """The outcome lists of one image; entries are ``(prediction index, gt index, iou)`` or an index."""

    matched: list[tuple[int, int, float]] = field(default_factory=list)
    misclassified: list[tuple[int, int, float]] = field(default_factory=list)
    poor_localization: list[tuple[int, int, float]] = field(default_factory=list)
    missed: list[int] = field(default_factory=list)
    false_positive: list[int] = field(default_factory=list)
    isolated: set[int] = field(default_factory=set)  # false positives overlapping no ground truth


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(n, 4)`` and ``(m, 4)`` xywh boxes -> ``(n, m)``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ax0, ay0, ax1, ay1 = a[:, 0:1], a[:, 1:2], a[:, 0:1] + a[:, 2:3], a[:, 1:2] + a[:, 3:4]
    bx0, by0, bx1, by1 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax1, bx1) - np.maximum(ax0, bx0), 0, None)
    ih = np.clip(np.minimum(ay1, by1) - np.maximum(ay0, by0), 0, None)
    inter = iw * ih
    union = a[:, 2:3] * a[:, 3:4] + b[:, 2] * b[:, 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def instance_mask(inst: Instance, height: int, width: int) -> np.ndarray:
    """The instance as a boolean ``(height, width)`` mask (its box when it has no polygons / RLE)."""
    crop, x0, y0 = _mask_crop(inst, height, width)
    full = np.zeros((height, width), dtype=bool)
    full[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop
    return full


def _mask_crop(inst: Instance, height: int, width: int) -> tuple[np.ndarray, int, int]:
    """The instance's mask cut to its tight box, and the box's top-left corner ``(mask, x0, y0)``.

    Polygons and boxes are rasterized inside their bounding box only (the pixel-centre rule does not
    change under whole-pixel shifts), so a small object in a large image costs a small array.
    """
    from ..data.formats._rle import rasterize, rle_to_array

    if inst.rle is not None:
        size = [int(v) for v in inst.rle["size"]]
        if size != [height, width]:
            raise ValidationError(
                f"mask size {size} does not match the image ({height}x{width})", field="mask"
            )
        m = rle_to_array(inst.rle).astype(bool)
        x0 = y0 = 0
    else:
        bx, by, bw, bh = inst.bbox
        pts = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in inst.polygons or ()]
        lo = np.min([p.min(axis=0) for p in pts], axis=0) if pts else np.array([bx, by])
        hi = np.max([p.max(axis=0) for p in pts], axis=0) if pts else np.array([bx + bw, by + bh])
        x0, y0 = max(int(np.floor(lo[0])), 0), max(int(np.floor(lo[1])), 0)
        x1, y1 = min(int(np.ceil(hi[0])) + 1, width), min(int(np.ceil(hi[1])) + 1, height)
        if x1 <= x0 or y1 <= y0:
            return np.zeros((0, 0), dtype=bool), 0, 0
        shift = np.array([x0, y0], dtype=np.float64)
        polys = [tuple((p - shift).reshape(-1)) for p in pts] or None
        m = rasterize(polys, None if polys else (bx - x0, by - y0, bw, bh), y1 - y0, x1 - x0).astype(bool)
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if len(rows) == 0:
        return np.zeros((0, 0), dtype=bool), 0, 0
    return m[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], x0 + int(cols[0]), y0 + int(rows[0])


class _Masks:
    """Masks rasterized on first use, cut to their tight boxes, so a pair's IoU only reads the overlap."""

    def __init__(self, instances: Sequence[Instance], height: int, width: int) -> None:
        self.instances, self.height, self.width = instances, height, width
        self._cache: dict[int, tuple[np.ndarray, int, int, int]] = {}

    def get(self, k: int) -> tuple[np.ndarray, int, int, int]:
        """``(crop, x0, y0, area)`` of instance ``k``."""
        if k not in self._cache:
            crop, x0, y0 = _mask_crop(self.instances[k], self.height, self.width)
            self._cache[k] = (crop, x0, y0, int(np.count_nonzero(crop)))
        return self._cache[k]

    def iou(self, i: int, other: _Masks, j: int) -> float:
        (ma, ax, ay, area_a), (mb, bx, by, area_b) = self.get(i), other.get(j)
        if area_a == 0 or area_b == 0:
            return 0.0
        x0, y0 = max(ax, bx), max(ay, by)
        x1, y1 = min(ax + ma.shape[1], bx + mb.shape[1]), min(ay + ma.shape[0], by + mb.shape[0])
        inter = 0
        if x1 > x0 and y1 > y0:
            a = ma[y0 - ay : y1 - ay, x0 - ax : x1 - ax]
            b = mb[y0 - by : y1 - by, x0 - bx : x1 - bx]
            inter = int(np.count_nonzero(a & b))
        return inter / (area_a + area_b - inter)


def _iou_matrix(
    preds: Sequence[Instance], gts: Sequence[Instance], masks: bool, size: tuple[int, int]
) -> np.ndarray:
    """Box IoU; with ``masks``, mask IoU for every pair where both have a mask and their boxes touch (a
    mask lies within its box, so pairs whose boxes do not meet overlap by nothing)."""
    if not preds or not gts:
        return np.zeros((len(preds), len(gts)))
    ious = box_iou(np.array([p.bbox for p in preds]), np.array([g.bbox for g in gts]))
    if not masks:
        return ious
    pmasks, gmasks = _Masks(preds, *size), _Masks(gts, *size)
    touching = _boxes_touch(np.array([p.bbox for p in preds]), np.array([g.bbox for g in gts]))
    for i, j in zip(*np.nonzero(touching), strict=True):
        if preds[i].has_mask and gts[j].has_mask:
            ious[i, j] = pmasks.iou(int(i), gmasks, int(j))
    return ious


def _boxes_touch(a: np.ndarray, b: np.ndarray, pad: float = 1.0) -> np.ndarray:
    """``(n, m)`` True where xywh boxes overlap or come within ``pad`` pixels (rasterization rounding)."""
    return (
        (a[:, None, 0] - pad < b[None, :, 0] + b[None, :, 2])
        & (b[None, :, 0] - pad < a[:, None, 0] + a[:, None, 2])
        & (a[:, None, 1] - pad < b[None, :, 1] + b[None, :, 3])
        & (b[None, :, 1] - pad < a[:, None, 1] + a[:, None, 3])
    )


def _pair(
    order: Sequence[int], gt_free: set[int], ious: np.ndarray, ok: Callable[[int, int, float], bool]
) -> list[tuple[int, int, float]]:
    """Greedy pairing: each prediction in ``order`` takes the free gt with the highest IoU that ``ok`` accepts."""
    pairs = []
    for i in order:
        best, best_iou = -1, -1.0
        for j in sorted(gt_free):
            v = float(ious[i, j])
            if ok(i, j, v) and v > best_iou:
                best, best_iou = j, v
        if best >= 0:
            gt_free.discard(best)
            pairs.append((i, best, best_iou))
    return pairs


def match_image(
    preds: Sequence[Instance],
    gts: Sequence[Instance],
    *,
    iou: float = 0.5,
    loc_iou: float = 0.1,
    min_score: float = 0.5,
    masks: bool = False,
    size: tuple[int, int] = (0, 0),
) -> ImageMatch:
    """Sort one image's predictions and ground truth into outcomes (see the module docstring).

    ``size`` is ``(height, width)`` of the image, needed when ``masks`` is True.
    """
    if not 0.0 < iou <= 1.0 or not 0.0 <= loc_iou < iou:
        raise ValidationError(f"need 0 <= loc_iou < iou <= 1, got loc_iou={loc_iou}, iou={iou}", field="iou")
    ious = _iou_matrix(preds, gts, masks, size)
    order = sorted(range(len(preds)), key=lambda k: (-preds[k].score, k))
    gt_free = set(range(len(gts)))
    out = ImageMatch()
    out.matched = _pair(order, gt_free, ious, lambda i, j, v: v >= iou and preds[i].label == gts[j].label)
    used = {i for i, _, _ in out.matched}
    shown = [i for i in order if i not in used and preds[i].score >= min_score]
    out.misclassified = _pair(
        shown, gt_free, ious, lambda i, j, v: v >= iou and preds[i].label != gts[j].label
    )
    used |= {i for i, _, _ in out.misclassified}
    shown = [i for i in shown if i not in used]
    out.poor_localization = _pair(
        shown, gt_free, ious, lambda i, j, v: loc_iou < v < iou and preds[i].label == gts[j].label
    )
    used |= {i for i, _, _ in out.poor_localization}
    out.missed = sorted(gt_free)
    out.false_positive = [i for i in shown if i not in used]
    out.isolated = {i for i in out.false_positive if not len(gts) or float(ious[i].max()) <= loc_iou}
    return out
