"""Run-length encoded masks: COCO's uncompressed and compressed RLE, and conversions to/from arrays.

The canonical mask in :class:`~workbench.data.records.Annotation` is COCO's *uncompressed* RLE: column-major
counts starting with a run of zeros (possibly of length 0), every later run non-empty. COCO files often hold
the *compressed* string form; :func:`decode_counts_string` / :func:`encode_counts_string` convert between
the two in pure Python (the same algorithm as pycocotools' ``maskApi.c``), validating the result, so a
malformed string is refused before anything is decoded (pycocotools' C decoder does no bounds checks).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...errors import ValidationError

__all__ = [
    "canonical_counts",
    "decode_counts_string",
    "encode_counts_string",
    "rle_from_array",
    "rle_to_array",
    "mask_to_polygons",
    "rasterize",
]

_MAX_CHUNKS = 13  # 13 * 5 bits covers any count below 2**64


def canonical_counts(counts: Sequence[int]) -> list[int]:
    """Merge zero-length interior runs so equal masks have equal counts (a leading zero run is kept)."""
    runs: list[list[int]] = []  # [value, length]
    for i, c in enumerate(counts):
        c = int(c)
        if c == 0:
            continue
        if runs and runs[-1][0] == i % 2:
            runs[-1][1] += c
        else:
            runs.append([i % 2, c])
    result = [] if runs and runs[0][0] == 0 else [0]
    result.extend(length for _value, length in runs)
    return result


def decode_counts_string(s: str | bytes, size: Sequence[int]) -> list[int]:
    """Compressed COCO RLE counts -> canonical uncompressed counts; raises ValidationError when malformed."""
    data = s.encode("ascii", "replace") if isinstance(s, str) else bytes(s)
    h, w = int(size[0]), int(size[1])
    counts: list[int] = []
    p, n = 0, len(data)
    while p < n:
        x = k = 0
        more = True
        while more:
            if p >= n:
                raise ValidationError("compressed RLE string ends in the middle of a count", field="counts")
            c = data[p] - 48
            if not 0 <= c <= 63:
                raise ValidationError(
                    f"compressed RLE string has an invalid byte {data[p]!r}", field="counts"
                )
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if k > _MAX_CHUNKS:
                raise ValidationError("compressed RLE string holds an impossibly large count", field="counts")
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        if x < 0:
            raise ValidationError("compressed RLE string decodes to a negative run length", field="counts")
        counts.append(x)
    if sum(counts) != h * w:
        raise ValidationError(f"RLE counts sum to {sum(counts)}, expected h*w = {h * w}", field="counts")
    return canonical_counts(counts)


def encode_counts_string(counts: Sequence[int]) -> str:
    """Uncompressed counts -> COCO's compressed string (what ``pycocotools.mask.encode`` produces)."""
    out: list[str] = []
    for i, c in enumerate(counts):
        x = int(c)
        if i > 2:
            x -= int(counts[i - 2])
        more = True
        while more:
            ch = x & 0x1F
            x >>= 5
            more = (x != -1) if (ch & 0x10) else (x != 0)
            if more:
                ch |= 0x20
            out.append(chr(ch + 48))
    return "".join(out)


def rle_from_array(mask: Any) -> dict[str, Any]:
    """A 2-D array (non-zero = inside) -> ``{"size": [h, w], "counts": [...]}`` uncompressed, column-major."""
    import numpy as np

    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValidationError(f"mask must be 2-D, got shape {arr.shape}", field="mask")
    h, w = arr.shape
    flat = (arr != 0).ravel(order="F").astype(np.int8)
    if flat.size == 0:
        return {"size": [int(h), int(w)], "counts": [0]}
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds).tolist()
    counts = runs if flat[0] == 0 else [0, *runs]
    return {"size": [int(h), int(w)], "counts": [int(c) for c in counts]}


def rle_to_array(rle: dict[str, Any]) -> Any:
    """Uncompressed RLE -> ``uint8`` array of shape (h, w) with 1 inside."""
    import numpy as np

    h, w = int(rle["size"][0]), int(rle["size"][1])
    counts = np.asarray(rle["counts"], dtype=np.int64)
    values = np.arange(counts.size, dtype=np.int64) % 2
    flat = np.repeat(values.astype(np.uint8), counts)
    return flat.reshape((w, h)).T.copy()


def mask_to_polygons(rle: dict[str, Any]) -> list[tuple[float, ...]]:
    """Outer contours of a mask as flat polygons (pixel-corner coordinates); lossy, for polygon-only formats."""
    import cv2
    import numpy as np

    arr = rle_to_array(rle)
    # Upsampled by 2, boundary pixel b of the big mask sits on original pixel edge (b + 1) // 2, so the
    # polygons follow pixel edges rather than pixel centres.
    big = np.kron(arr, np.ones((2, 2), dtype=np.uint8))
    contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for c in contours:
        pts = (c.reshape(-1, 2) + 1) // 2
        keep = [tuple(pts[0])]
        for q in pts[1:]:
            if tuple(q) != keep[-1]:
                keep.append(tuple(q))
        if len(keep) > 1 and keep[-1] == keep[0]:
            keep.pop()
        if len(keep) >= 3:
            polys.append(tuple(float(v) for xy in keep for v in xy))
    return polys


def rasterize(
    polygons: Sequence[Sequence[float]] | None, bbox: Sequence[float] | None, height: int, width: int
) -> Any:
    """Fill polygons (or else a box) into a ``uint8`` (h, w) array with 1 inside.

    Pixel-centre rule, even-odd (the same as the built-in samples' ground truth): a polygon traced along
    pixel edges, as :func:`mask_to_polygons` gives, fills back exactly the pixels it came from.
    """
    import numpy as np

    from ..shapes import rasterize_polygon

    if polygons:
        rings = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polygons]
    elif bbox is not None:
        x, y, w, h = (float(v) for v in bbox)
        rings = [np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])]
    else:
        rings = []
    return rasterize_polygon(rings, height, width).astype(np.uint8)
