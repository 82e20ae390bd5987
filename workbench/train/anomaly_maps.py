"""Anomaly maps as data: resized to an example's pixels, stored compactly in prediction rows, turned into a
region (the pixels at or above the decision threshold), scored against ground-truth regions, drawn.

A prediction row of a map-producing anomaly model carries:

- ``map``: ``{"size": [h, w], "values": [[...], ...]}``, the anomaly map on a coarse grid (at most
  ``MAP_GRID`` cells a side, values rounded to 5 significant digits); :func:`map_from_row` resizes it to
  any image size (bilinear).
- ``region`` (only when the image is called anomalous): ``{"bbox": [x, y, w, h], "segmentation": COCO
  compressed RLE}`` in the example's original pixels: where the full-resolution map reaches the threshold.

Ground truth: an anomalous example's ``anomaly`` annotations (mask, polygons or box) OR-ed together; a good
example's mask is empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data.records import ANOMALY_CLASSES, Example

__all__ = [
    "MAP_GRID",
    "resize_map",
    "compact_map",
    "map_from_row",
    "map_region",
    "truth_mask",
    "has_regions",
    "overlay_map",
]

MAP_GRID = 32


def resize_map(amap: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a 2-D float map to ``height x width`` (pixel centres aligned)."""
    import cv2

    a = np.asarray(amap, dtype=np.float32)
    if a.shape == (height, width):
        return a
    return cv2.resize(a, (int(width), int(height)), interpolation=cv2.INTER_LINEAR)


def compact_map(amap: np.ndarray, grid: int = MAP_GRID) -> dict[str, Any]:
    """The ``map`` entry of a prediction row (see the module doc)."""
    a = np.asarray(amap, dtype=np.float32)
    h, w = a.shape
    if max(h, w) > grid:
        s = grid / max(h, w)
        a = resize_map(a, max(1, round(h * s)), max(1, round(w * s)))
    values = [[float(f"{v:.5g}") for v in row] for row in a.tolist()]
    return {"size": [int(a.shape[0]), int(a.shape[1])], "values": values}


def map_from_row(row: dict[str, Any], height: int, width: int) -> np.ndarray | None:
    """A prediction row's map at ``height x width`` pixels, or None when the row carries none."""
    entry = row.get("map")
    if not entry:
        return None
    return resize_map(np.asarray(entry["values"], dtype=np.float32), height, width)


def map_region(amap: np.ndarray, threshold: float) -> dict[str, Any] | None:
    """The pixels of a (full-resolution) map at or above ``threshold``: bbox and COCO RLE, or None."""
    from .masks import mask_bbox, mask_to_coco_rle

    mask = np.asarray(amap) >= threshold
    box = mask_bbox(mask)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    return {"bbox": [x0, y0, x1 - x0, y1 - y0], "segmentation": mask_to_coco_rle(mask)}


def truth_mask(ex: Example) -> np.ndarray:
    """The example's ground-truth anomaly region (``height x width`` uint8); empty for a good example."""
    from .masks import polygons_to_mask, rle_to_mask

    h, w = int(ex.height), int(ex.width)
    mask = np.zeros((h, w), dtype=np.uint8)
    if ex.label != ANOMALY_CLASSES[1]:
        return mask
    for a in ex.targets():
        if a.kind != "anomaly":
            continue
        if a.mask is not None:
            m = rle_to_mask(dict(a.mask))
            if m.shape == (h, w):
                mask |= m
        elif a.polygons is not None:
            mask |= polygons_to_mask([list(p) for p in a.polygons], h, w)
        elif a.bbox is not None:
            x, y, bw, bh = a.bbox
            mask[max(0, int(y)) : int(np.ceil(y + bh)), max(0, int(x)) : int(np.ceil(x + bw))] = 1
    return mask


def has_regions(examples: Sequence[Example]) -> bool:
    """Whether some anomalous example has a region drawn (so pixel AUROC means something)."""
    return any(
        ex.label == ANOMALY_CLASSES[1]
        and any(a.kind == "anomaly" and (a.mask or a.polygons or a.bbox) for a in ex.targets())
        for ex in examples
    )


def overlay_map(
    image: np.ndarray,
    amap: np.ndarray,
    *,
    low: float | None = None,
    high: float | None = None,
    alpha: float = 0.5,
) -> np.ndarray:
    """``image`` (H x W x 3 uint8) with ``amap`` (any size; resized) blended in as a blue-to-red heat map.

    Values map linearly from ``low`` (transparent) to ``high`` (full ``alpha``, red); they default to the
    map's minimum and maximum. Pass the decision threshold as ``low`` to show only what counts.
    """
    img = np.asarray(image, dtype=np.uint8)
    h, w = img.shape[:2]
    a = resize_map(amap, h, w)
    lo = float(a.min()) if low is None else float(low)
    hi = float(a.max()) if high is None else float(high)
    t = np.clip((a - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(a)
    heat = np.stack([255 * t, 64 * (1 - np.abs(2 * t - 1)), 255 * (1 - t)], axis=-1)
    weight = (alpha * t)[..., None]
    rgb = img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=-1)
    return (rgb[..., :3] * (1 - weight) + heat * weight).round().clip(0, 255).astype(np.uint8)
