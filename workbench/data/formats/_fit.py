"""Fitting read geometry to its image: boxes and polygons that stick out of the image by a hair (an
annotation tool's rounding, a vertex dragged onto the border) are clipped, and counted; ones further out
are refused unless the user asked to clip (``--clip-boxes``, which clips polygons too). Also resolves a
path an annotation file gives relative to itself (``../images/x.jpg``) while keeping it inside the
import folder. Private to ``workbench.data.formats``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath, PureWindowsPath

from ...errors import ImportFormatError, UnsafePathError, ValidationError
from ..images import ImageInfo
from ..records import Annotation, ImportBatch, polygon_area
from .paths import safe_join

__all__ = ["BORDER_TOLERANCE", "clip_polygon", "fit", "resolve_inside", "report"]

BORDER_TOLERANCE = 1e-3  # of the image side: geometry out by at most this much is clipped, not refused
CLIP_HINT = "--clip-boxes clips boxes and polygons to the image"


def clip_polygon(poly: tuple[float, ...], width: float, height: float) -> tuple[float, ...] | None:
    """``poly`` (flat x,y pairs) clipped to [0, width] x [0, height] (Sutherland-Hodgman); None when no
    area is left."""
    pts = list(zip(poly[0::2], poly[1::2], strict=True))
    for axis, bound, keep_below in ((0, 0.0, False), (0, float(width), True), (1, 0.0, False),
                                    (1, float(height), True)):
        if not pts:
            break
        out: list[tuple[float, float]] = []

        def inside(p: tuple[float, float], axis: int = axis, bound: float = bound,
                   keep_below: bool = keep_below) -> bool:
            return p[axis] <= bound if keep_below else p[axis] >= bound

        for i, cur in enumerate(pts):
            prev = pts[i - 1]
            if inside(cur):
                if not inside(prev):
                    out.append(_cross(prev, cur, axis, bound))
                out.append(cur)
            elif inside(prev):
                out.append(_cross(prev, cur, axis, bound))
        pts = out
    # drop repeated consecutive points the clipping leaves on the border
    dedup = [p for i, p in enumerate(pts) if p != pts[i - 1]] if len(pts) > 1 else pts
    flat = tuple(v for p in dedup for v in p)
    if len(dedup) < 3 or polygon_area(flat) <= 0:
        return None
    return flat


def _cross(a: tuple[float, float], b: tuple[float, float], axis: int, bound: float) -> tuple[float, float]:
    t = (bound - a[axis]) / (b[axis] - a[axis])
    p = (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))
    return (bound, p[1]) if axis == 0 else (p[0], bound)


def _outside_by(ann: Annotation, width: int, height: int) -> tuple[float, float]:
    """How far (in pixels, across x and across y) the geometry reaches outside the image; 0 when inside."""
    if ann.polygons is not None:
        xs = [v for p in ann.polygons for v in p[0::2]]
        ys = [v for p in ann.polygons for v in p[1::2]]
        x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
    elif ann.bbox is not None:
        x, y, w, h = ann.bbox
        x0, y0, x1, y1 = x, y, x + w, y + h
    else:
        return 0.0, 0.0
    return max(0.0, -x0, x1 - width), max(0.0, -y0, y1 - height)


def fit(
    ann: Annotation, info: ImageInfo, *, clip: bool, file: str, record: object
) -> tuple[Annotation | None, bool]:
    """(``ann`` placed in the image, whether it was clipped). Geometry inside is kept as is; out by at most
    :data:`BORDER_TOLERANCE` of the image side (or half a pixel), or anything out with ``clip``, is clipped
    (None when nothing is left); further out raises ImportFormatError naming ``--clip-boxes``. The tolerance
    is per axis: 1e-3 of the width across x, of the height across y, as in normalized YOLO coordinates."""
    W, H = info.width, info.height
    if ann.mask is not None:
        try:
            ann.check_inside(W, H)
        except ValidationError as e:
            raise ImportFormatError(e.detail, file=file, record=record, field=e.field) from None
        return ann, False
    out_x, out_y = _outside_by(ann, W, H)
    if out_x == 0.0 and out_y == 0.0:
        return ann, False
    out = max(out_x, out_y)
    if (out_x > max(0.5, BORDER_TOLERANCE * W) or out_y > max(0.5, BORDER_TOLERANCE * H)) and not clip:
        field = "polygons" if ann.polygons is not None else "bbox"
        raise ImportFormatError(
            f"{ann.kind} reaches {out:.3g} px outside the {W}x{H} image ({CLIP_HINT})",
            file=file, record=record, field=field,
        )
    if ann.polygons is not None:
        polys = [c for c in (clip_polygon(p, W, H) for p in ann.polygons) if c is not None]
        if not polys:
            return None, True
        return replace(ann, polygons=tuple(polys), bbox=None), True
    return ann.clipped(W, H), True


def resolve_inside(root: Path, base: Path, rel: str, *, file: str, record: object, field: str) -> Path:
    """``base / rel`` (``rel`` relative to ``base``, backslashes allowed, ``..`` allowed while it stays
    inside ``root``), checked by :func:`safe_join` against ``root``. Absolute paths are refused."""
    if not isinstance(rel, str) or not rel.strip():
        raise ImportFormatError(f"expected a non-empty path, got {rel!r}", file=file, record=record, field=field)
    norm = PureWindowsPath(rel).as_posix() if "\\" in rel else rel
    if PurePosixPath(norm).is_absolute() or PureWindowsPath(rel).drive:
        raise UnsafePathError(f"absolute path {rel!r} is not allowed; paths must be relative",
                              file=file, record=record, field=field)
    root_r = Path(root).resolve()
    joined = os.path.normpath(os.path.join(str(Path(base).resolve()), norm))
    if not Path(joined).is_relative_to(root_r):
        raise UnsafePathError(f"path {rel!r} leaves the import folder {root_r}", file=file, record=record,
                              field=field)
    return safe_join(root_r, Path(joined).relative_to(root_r).as_posix() or ".", file=file, record=record,
                     field=field)


def report(batch: ImportBatch, skipped: Counter[str], clipped: Counter[str], notes: Sequence[str] = ()) -> None:
    """Put what a reader left out (``skipped``: reason -> count), clipped, or wants said into
    ``batch.report``."""
    rep = batch.report
    for reason, n in skipped.items():
        rep.skip(reason, n)
    for reason, n in clipped.items():
        rep.clip(reason, n)
    for note in notes:
        rep.note(note)
