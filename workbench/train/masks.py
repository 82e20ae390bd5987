"""Mask geometry in numpy: polygons and COCO RLE to binary masks and back, and resizing.

Masks are ``uint8`` arrays of shape ``(H, W)`` holding 0 or 1. RLE is COCO's uncompressed form
``{"size": [h, w], "counts": [...]}``: column-major runs that start with a run of zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ValidationError

__all__ = [
    "polygons_to_mask",
    "rle_to_mask",
    "mask_to_rle",
    "mask_to_coco_rle",
    "mask_bbox",
    "resize_mask",
]


def polygons_to_mask(
    polygons: Sequence[Sequence[float]], height: int, width: int, *, scale: tuple[float, float] = (1.0, 1.0)
) -> np.ndarray:
    """Rasterize flat ``(x0, y0, x1, y1, ...)`` polygons into a ``height`` x ``width`` mask.

    ``scale`` = ``(sx, sy)`` multiplies the coordinates first (to draw at a resized resolution).
    Pixel ``(i, j)`` is inside when its centre ``(j + 0.5, i + 0.5)`` is (even-odd rule), which agrees
    with pycocotools to within a pixel along the edges. Several polygons are OR-ed together.
    """
    mask = np.zeros((height, width), dtype=np.uint8)
    sx, sy = scale
    for poly in polygons:
        pts = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        if len(pts) < 3:
            raise ValidationError(f"a polygon needs at least 3 points, got {len(pts)}", field="polygons")
        pts = pts * np.array([sx, sy])
        x0 = max(int(np.floor(pts[:, 0].min())), 0)
        x1 = min(int(np.ceil(pts[:, 0].max())) + 1, width)
        y0 = max(int(np.floor(pts[:, 1].min())), 0)
        y1 = min(int(np.ceil(pts[:, 1].max())) + 1, height)
        if x0 >= x1 or y0 >= y1:
            continue
        ys = np.arange(y0, y1, dtype=np.float64)[:, None] + 0.5
        xs = np.arange(x0, x1, dtype=np.float64)[None, :] + 0.5
        inside = np.zeros((y1 - y0, x1 - x0), dtype=bool)
        nxt = np.roll(pts, -1, axis=0)
        for (ax, ay), (bx, by) in zip(pts, nxt, strict=True):
            if ay == by:
                continue
            crosses = (ay > ys) != (by > ys)  # (rows, 1)
            x_at = (bx - ax) * (ys - ay) / (by - ay) + ax
            inside ^= crosses & (xs < x_at)
        mask[y0:y1, x0:x1] |= inside.astype(np.uint8)
    return mask


def rle_to_mask(rle: dict[str, Any]) -> np.ndarray:
    """Decode an uncompressed COCO RLE to an ``(h, w)`` uint8 mask."""
    try:
        h, w = (int(v) for v in rle["size"])
        counts = np.asarray(rle["counts"], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as e:
        raise ValidationError(f"mask is not an uncompressed RLE dict ({e})", field="mask") from None
    if counts.ndim != 1 or (counts < 0).any() or int(counts.sum()) != h * w:
        raise ValidationError(f"mask counts do not sum to h*w = {h * w}", field="mask")
    values = np.arange(len(counts)) % 2
    flat = np.repeat(values.astype(np.uint8), counts)
    return np.ascontiguousarray(flat.reshape(w, h).T)


def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """Encode a binary mask as uncompressed COCO RLE (the store's form)."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValidationError(f"mask must be 2-D, got shape {m.shape}", field="mask")
    h, w = m.shape
    flat = (m.T.reshape(-1) > 0).astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        runs = [0, *runs]
    return {"size": [int(h), int(w)], "counts": [int(r) for r in runs]}


def mask_to_coco_rle(mask: np.ndarray) -> dict[str, Any]:
    """Encode a binary mask as compressed COCO RLE with ``counts`` as text (COCO results format)."""
    from pycocotools import mask as mask_utils

    m = np.asfortranarray((np.asarray(mask) > 0).astype(np.uint8))
    rle = mask_utils.encode(m)
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def mask_bbox(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """Tight ``(x0, y0, x1, y1)`` pixel-edge box of a mask, or None when the mask is empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of a 2-D mask."""
    import cv2

    if mask.shape == (height, width):
        return mask
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
