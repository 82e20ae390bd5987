"""Pure geometry for the annotation canvas: the view transform, box handles and hit-testing.

Everything stored is in IMAGE pixels (continuous coordinates: pixel ``(c, r)`` spans ``[c, c + 1)``);
only the :class:`ViewTransform` knows about the canvas. Tolerances that the user feels (how close a click
must be to a handle or to a polygon's first vertex) are given in SCREEN pixels and divided by the scale.
No ipywidgets here: this module is unit-tested without a kernel or a browser.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..data.records import Annotation
from .masks import rle_contains

__all__ = [
    "HANDLES",
    "ViewTransform",
    "normalize_box",
    "clamp_point",
    "clamp_box",
    "box_corners",
    "handle_points",
    "hit_handle",
    "resize_box",
    "translate_box",
    "translate_polygons",
    "rect_polygon",
    "point_in_polygon",
    "distance_to_polyline",
    "ShapeIndex",
]

Box = tuple[float, float, float, float]  # x, y, w, h in image pixels

# The 8 resize handles of a box, named by compass direction, as (fx, fy) fractions of the box.
HANDLES: dict[str, tuple[float, float]] = {
    "nw": (0.0, 0.0),
    "n": (0.5, 0.0),
    "ne": (1.0, 0.0),
    "e": (1.0, 0.5),
    "se": (1.0, 1.0),
    "s": (0.5, 1.0),
    "sw": (0.0, 1.0),
    "w": (0.0, 0.5),
}


@dataclass(frozen=True)
class ViewTransform:
    """``canvas = image * scale + offset``; the inverse maps events back to image pixels."""

    scale: float = 1.0
    offset_x: float = 0.0
    offset_y: float = 0.0

    MIN_SCALE = 0.02
    MAX_SCALE = 64.0

    @classmethod
    def fit(cls, image_w: int, image_h: int, canvas_w: int, canvas_h: int) -> ViewTransform:
        """The whole image, centred, as large as fits (small images are enlarged too)."""
        s = min(canvas_w / image_w, canvas_h / image_h)
        s = min(max(s, cls.MIN_SCALE), cls.MAX_SCALE)
        return cls(s, (canvas_w - image_w * s) / 2.0, (canvas_h - image_h * s) / 2.0)

    def to_image(self, cx: float, cy: float) -> tuple[float, float]:
        return ((cx - self.offset_x) / self.scale, (cy - self.offset_y) / self.scale)

    def to_canvas(self, x: float, y: float) -> tuple[float, float]:
        return (x * self.scale + self.offset_x, y * self.scale + self.offset_y)

    def to_canvas_box(self, box: Box) -> Box:
        x, y = self.to_canvas(box[0], box[1])
        return (x, y, box[2] * self.scale, box[3] * self.scale)

    def points_to_canvas(self, flat: Sequence[float]) -> np.ndarray:
        """A flat ``x0, y0, x1, y1...`` polygon as an ``(n, 2)`` array of canvas points."""
        pts = np.asarray(flat, dtype=np.float64).reshape(-1, 2)
        return pts * self.scale + (self.offset_x, self.offset_y)

    def zoomed_at(self, cx: float, cy: float, factor: float) -> ViewTransform:
        """Zoom by ``factor`` keeping the image point under canvas point ``(cx, cy)`` where it is."""
        new_scale = min(max(self.scale * factor, self.MIN_SCALE), self.MAX_SCALE)
        ix, iy = self.to_image(cx, cy)
        return ViewTransform(new_scale, cx - ix * new_scale, cy - iy * new_scale)

    def panned(self, dx: float, dy: float) -> ViewTransform:
        return ViewTransform(self.scale, self.offset_x + dx, self.offset_y + dy)

    def kept_visible(
        self, image_w: int, image_h: int, canvas_w: int, canvas_h: int, margin: float = 32.0
    ) -> ViewTransform:
        """This transform with the offset limited so at least ``margin`` canvas px of the image stay in view."""
        w, h = image_w * self.scale, image_h * self.scale
        mx, my = min(margin, w), min(margin, h)
        ox = min(max(self.offset_x, mx - w), canvas_w - mx)
        oy = min(max(self.offset_y, my - h), canvas_h - my)
        return ViewTransform(self.scale, ox, oy)


# ---------------------------------------------------------------------------------------------- boxes
def normalize_box(x0: float, y0: float, x1: float, y1: float) -> Box:
    """The box spanned by two corners, whichever way the drag went."""
    return (min(x0, x1), min(y0, y1), abs(x1 - x0), abs(y1 - y0))


def clamp_point(x: float, y: float, width: int, height: int) -> tuple[float, float]:
    return (min(max(x, 0.0), float(width)), min(max(y, 0.0), float(height)))


def clamp_box(box: Box, width: int, height: int) -> Box | None:
    """The part of ``box`` inside the image, or None when nothing of it is."""
    x0, y0 = clamp_point(box[0], box[1], width, height)
    x1, y1 = clamp_point(box[0] + box[2], box[1] + box[3], width, height)
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


def box_corners(box: Box) -> tuple[float, float, float, float]:
    return (box[0], box[1], box[0] + box[2], box[1] + box[3])


def handle_points(box: Box) -> dict[str, tuple[float, float]]:
    x, y, w, h = box
    return {name: (x + fx * w, y + fy * h) for name, (fx, fy) in HANDLES.items()}


def hit_handle(box: Box, x: float, y: float, tolerance: float) -> str | None:
    """The handle of ``box`` nearest to ``(x, y)`` within ``tolerance`` (image px), or None."""
    best, best_d = None, tolerance
    for name, (hx, hy) in handle_points(box).items():
        d = max(abs(hx - x), abs(hy - y))
        if d <= best_d:
            best, best_d = name, d
    return best


def resize_box(box: Box, handle: str, x: float, y: float, width: int, height: int) -> Box:
    """``box`` with the edges that ``handle`` controls moved to ``(x, y)`` (clamped to the image).

    Dragging a handle past the opposite edge flips the box: the result is always normalised.
    """
    fx, fy = HANDLES[handle]
    x, y = clamp_point(x, y, width, height)
    x0, y0, x1, y1 = box_corners(box)
    if fx == 0.0:
        x0 = x
    elif fx == 1.0:
        x1 = x
    if fy == 0.0:
        y0 = y
    elif fy == 1.0:
        y1 = y
    return normalize_box(x0, y0, x1, y1)


def translate_box(box: Box, dx: float, dy: float, width: int, height: int) -> Box:
    """``box`` moved by ``(dx, dy)`` but kept whole inside the image (its size never changes)."""
    x = min(max(box[0] + dx, 0.0), max(float(width) - box[2], 0.0))
    y = min(max(box[1] + dy, 0.0), max(float(height) - box[3], 0.0))
    return (x, y, box[2], box[3])


# ---------------------------------------------------------------------------------------------- polygons
def translate_polygons(
    polys: Sequence[Sequence[float]], dx: float, dy: float, width: int, height: int
) -> tuple[tuple[float, ...], ...]:
    """Polygons moved by ``(dx, dy)``, the shift limited so every vertex stays inside the image."""
    xs = [v for p in polys for v in p[0::2]]
    ys = [v for p in polys for v in p[1::2]]
    dx = min(max(dx, -min(xs)), width - max(xs))
    dy = min(max(dy, -min(ys)), height - max(ys))
    out = []
    for p in polys:
        q = list(p)
        q[0::2] = [v + dx for v in p[0::2]]
        q[1::2] = [v + dy for v in p[1::2]]
        out.append(tuple(q))
    return tuple(out)


def rect_polygon(box: Box) -> tuple[float, ...]:
    x0, y0, x1, y1 = box_corners(box)
    return (x0, y0, x1, y0, x1, y1, x0, y1)


def point_in_polygon(x: float, y: float, flat: Sequence[float]) -> bool:
    """Even-odd rule (ray casting), like the rasterizer of the samples."""
    xs, ys = flat[0::2], flat[1::2]
    n = len(xs)
    inside = False
    j = n - 1
    for i in range(n):
        if (ys[i] > y) != (ys[j] > y):
            xi = xs[i] + (y - ys[i]) * (xs[j] - xs[i]) / (ys[j] - ys[i])
            if x < xi:
                inside = not inside
        j = i
    return inside


def distance_to_polyline(x: float, y: float, flat: Sequence[float], closed: bool = True) -> float:
    pts = list(zip(flat[0::2], flat[1::2], strict=True))
    if closed:
        pts.append(pts[0])
    best = math.inf
    for (ax, ay), (bx, by) in zip(pts, pts[1:], strict=False):
        vx, vy = bx - ax, by - ay
        ll = vx * vx + vy * vy
        t = 0.0 if ll == 0 else min(max(((x - ax) * vx + (y - ay) * vy) / ll, 0.0), 1.0)
        best = min(best, math.hypot(x - (ax + t * vx), y - (ay + t * vy)))
    return best


# ---------------------------------------------------------------------------------------------- hit-testing
class ShapeIndex:
    """Hit-testing over the annotations of one example.

    Built once per change of the annotation list: the boxes sit in numpy arrays, so a click costs one
    vectorised containment test whatever the number of shapes; only the few candidates whose box contains
    the point get the exact test (polygon / mask). Among hits the smallest shape wins (a box inside a box
    stays reachable), ties go to the topmost (drawn last).
    """

    def __init__(self, annotations: Sequence[Annotation]) -> None:
        self._anns = list(annotations)
        rows = [(i, a.bbox) for i, a in enumerate(self._anns) if a.bbox is not None]
        self._pos = np.array([i for i, _ in rows], dtype=np.intp)
        b = np.array([bb for _, bb in rows], dtype=np.float64).reshape(-1, 4)
        self._x0, self._y0 = b[:, 0], b[:, 1]
        self._x1, self._y1 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
        self._area = np.array([self._anns[i].area for i in self._pos], dtype=np.float64)

    def __len__(self) -> int:
        return len(self._pos)

    def hit(self, x: float, y: float, tolerance: float = 0.0) -> int | None:
        """Position (in the annotation list) of the shape under ``(x, y)``, or None."""
        if not len(self._pos):
            return None
        t = tolerance
        cand = np.flatnonzero(
            (self._x0 - t <= x) & (x <= self._x1 + t) & (self._y0 - t <= y) & (y <= self._y1 + t)
        )
        if not cand.size:
            return None
        order = cand[np.lexsort((-self._pos[cand], self._area[cand]))]  # smallest area, then topmost
        for k in order:
            pos = int(self._pos[k])
            if self._exact(self._anns[pos], x, y, t):
                return pos
        return None

    @staticmethod
    def _exact(ann: Annotation, x: float, y: float, t: float) -> bool:
        if ann.polygons is not None:
            return any(
                point_in_polygon(x, y, p) or (t > 0 and distance_to_polyline(x, y, p) <= t)
                for p in ann.polygons
            )
        if ann.mask is not None:
            if rle_contains(ann.mask, x, y):
                return True
            if t <= 0:
                return False
            return any(rle_contains(ann.mask, x + dx, y + dy) for dx in (-t, 0, t) for dy in (-t, 0, t))
        return True  # a box: containment (with tolerance) was tested already
