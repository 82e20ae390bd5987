"""Masks for the brush tool: uncompressed column-major RLE (as in ``records.py``) <-> boolean arrays.

An RLE is ``{"size": [h, w], "counts": [...]}``: run lengths over the pixels in column-major (Fortran)
order, the first run counting zeros (it may be 0). A brush stroke is rasterised with PIL (round caps and
joins, so a stroke is the union of discs of the brush radius along the path) and merged into a mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "rle_encode",
    "rle_decode",
    "rle_contains",
    "rle_translate",
    "stroke_mask",
    "apply_stroke",
    "mask_rgba",
]


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """Boolean ``(h, w)`` array -> uncompressed RLE (column-major, first run counts zeros)."""
    m = np.asarray(mask, dtype=bool)
    h, w = m.shape
    flat = m.ravel(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0, *counts]
    return {"size": [int(h), int(w)], "counts": [int(c) for c in counts]}


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """Uncompressed RLE -> boolean ``(h, w)`` array."""
    h, w = rle["size"]
    counts = np.asarray(rle["counts"], dtype=np.int64)
    values = (np.arange(counts.size) % 2).astype(bool)
    flat = np.repeat(values, counts)
    return flat.reshape((w, h)).T


def rle_contains(rle: dict[str, Any], x: float, y: float) -> bool:
    """Whether the pixel holding the image point ``(x, y)`` is set (no full decode)."""
    h, w = rle["size"]
    c, r = int(np.floor(x)), int(np.floor(y))
    if not (0 <= c < w and 0 <= r < h):
        return False
    idx = c * h + r
    ends = np.cumsum(rle["counts"])
    run = int(np.searchsorted(ends, idx, side="right"))
    return run % 2 == 1


def rle_translate(rle: dict[str, Any], dx: float, dy: float) -> dict[str, Any] | None:
    """The mask shifted by whole pixels (rounded); pixels pushed off the image are lost; None when empty."""
    m = rle_decode(rle)
    h, w = m.shape
    ix, iy = int(round(dx)), int(round(dy))
    if abs(ix) >= w or abs(iy) >= h:
        return None
    out = np.zeros_like(m)
    out[max(0, iy) : h + min(0, iy), max(0, ix) : w + min(0, ix)] = m[
        max(0, -iy) : h - max(0, iy), max(0, -ix) : w - max(0, ix)
    ]
    return rle_encode(out) if out.any() else None


def stroke_mask(points: Sequence[tuple[float, float]], radius: float, height: int, width: int) -> np.ndarray:
    """Boolean ``(height, width)`` mask of a brush stroke through ``points`` (image px) of ``radius``."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(img)
    r = max(float(radius), 0.5)
    # pixel (c, r) is covered when its centre is; PIL draws in pixel-index coordinates, so shift by 0.5
    pts = [(x - 0.5, y - 0.5) for x, y in points]
    if len(pts) > 1:
        draw.line(pts, fill=255, width=max(1, int(round(2 * r))), joint="curve")
    for x, y in pts:
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return np.asarray(img) > 0


def apply_stroke(rle: dict[str, Any] | None, stroke: np.ndarray, *, erase: bool) -> dict[str, Any] | None:
    """``rle`` with ``stroke`` painted in (or erased); None when the result is empty."""
    if rle is None:
        base = np.zeros(stroke.shape, dtype=bool)
    else:
        base = rle_decode(rle)
    out = base & ~stroke if erase else base | stroke
    return rle_encode(out) if out.any() else None


def mask_rgba(rle: dict[str, Any], color: str, alpha: int = 110) -> tuple[np.ndarray, tuple[int, int]]:
    """The mask cropped to its set pixels as an RGBA array in ``color``, and the crop's (x, y) origin."""
    m = rle_decode(rle)
    rows = np.flatnonzero(m.any(axis=1))
    cols = np.flatnonzero(m.any(axis=0))
    if not rows.size:
        return np.zeros((1, 1, 4), dtype=np.uint8), (0, 0)
    crop = m[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    rgba = np.zeros((*crop.shape, 4), dtype=np.uint8)
    rgba[..., 0] = int(color[1:3], 16)
    rgba[..., 1] = int(color[3:5], 16)
    rgba[..., 2] = int(color[5:7], 16)
    rgba[..., 3] = np.where(crop, alpha, 0)
    return rgba, (int(cols[0]), int(rows[0]))
