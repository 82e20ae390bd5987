"""Seeded synthetic scenes of coloured shapes with exact ground truth (numpy only).

The built-in ``shapes-*`` samples (``workbench/data/samples.py``) are drawn here. Every scene comes from one
``numpy.random.Generator``, so the same seed gives the same pixels. Ground truth is exact because the
annotations are what was drawn:

* each shape is a polygon (a circle is a many-vertex polygon) in COCO pixel coordinates, with vertices
  rounded to 1/100 px, and the very same rounded polygon is rasterized with :func:`rasterize_polygon`
  (pixel-centre rule: pixel ``(c, r)`` is inside when the point ``(c + 0.5, r + 0.5)`` is, even-odd);
* a shape's box is the tight box of its *visible* pixels (after later shapes are drawn over it);
* backgrounds are low-saturation textures (grey with a slight tint, low-frequency shading, stripes and
  grain), shapes are saturated colours, so a shape's pixels can also be told apart by colour.

Colours do not encode the class unless ``class_colors=True``: the network has to learn the shape.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "SHAPE_CLASSES",
    "DEFECT_KINDS",
    "DrawnShape",
    "Scene",
    "rasterize_polygon",
    "shape_polygon",
    "render_shapes",
    "render_surface",
]

SHAPE_CLASSES = ("circle", "square", "triangle")
DEFECT_KINDS = ("scratch", "blob", "missing", "discoloured")

# Base hues used when class_colors=True (red-orange, green, blue).
_CLASS_HUES = {"circle": 0.02, "square": 0.33, "triangle": 0.62}
_GRAIN_SIGMA = (2.0, 5.0)  # luminance noise added to the whole image, identical on the three channels
_TINT = 6.0  # background channels differ by at most 2 * _TINT: low saturation


@dataclass(frozen=True)
class DrawnShape:
    """One drawn shape: its class, its polygon (flat x, y tuple) and the tight box of its visible pixels."""

    label: str
    polygon: tuple[float, ...]
    bbox: tuple[float, float, float, float]
    area: int  # visible pixels


@dataclass(frozen=True)
class Scene:
    image: np.ndarray  # (H, W, 3) uint8
    shapes: tuple[DrawnShape, ...]
    instance_map: np.ndarray  # (H, W) uint8: 0 background, k + 1 where shape k is visible
    defect: str | None = None  # anomaly scenes: which defect was drawn


# ---------------------------------------------------------------------------------------------- geometry
def rasterize_polygon(points: np.ndarray | list[np.ndarray], height: int, width: int) -> np.ndarray:
    """Boolean ``(height, width)`` mask of the pixels whose centres lie inside the polygon (even-odd rule).

    ``points`` is a ``(k, 2)`` array of x, y vertices in pixel coordinates (a pixel spans ``[c, c + 1)``),
    or a list of such rings (drawn together: disjoint rings give their union, a ring inside another a hole).
    Exact and vectorised: every edge yields its crossings with the pixel-row centres it spans (half-open,
    so a vertex on a row centre counts once), crossings sorted by row then x pair up into spans, and the
    spans are filled with a cumulative sum.
    """
    rings = points if isinstance(points, list) else [points]
    mask = np.zeros((height, width), dtype=bool)
    if not rings:
        return mask
    pts = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in rings]
    x0 = np.concatenate([p[:, 0] for p in pts])
    y0 = np.concatenate([p[:, 1] for p in pts])
    x1 = np.concatenate([np.concatenate([p[1:, 0], p[:1, 0]]) for p in pts])
    y1 = np.concatenate([np.concatenate([p[1:, 1], p[:1, 1]]) for p in pts])
    # rows r whose centre r + 0.5 lies in [min(y0, y1), max(y0, y1)), clipped to the image
    ra = np.clip(np.ceil(np.minimum(y0, y1) - 0.5), 0, height).astype(np.intp)
    rb = np.clip(np.ceil(np.maximum(y0, y1) - 0.5), 0, height).astype(np.intp)
    n = np.maximum(rb - ra, 0)
    total = int(n.sum())
    if total == 0:
        return mask
    edge = np.repeat(np.arange(n.size), n)
    row = ra[edge] + (np.arange(total) - np.repeat(np.cumsum(n) - n, n))
    e0x, e0y = x0[edge], y0[edge]
    x = e0x + (row + 0.5 - e0y) * ((x1[edge] - e0x) / (y1[edge] - e0y))
    order = np.lexsort((x, row))
    x, row = x[order], row[order]
    # pixel c is inside a span [a, b) when a <= c + 0.5 < b
    c_start = np.clip(np.ceil(x[0::2] - 0.5), 0, width).astype(np.intp)
    c_end = np.clip(np.ceil(x[1::2] - 0.5), 0, width).astype(np.intp)
    rows = row[0::2]
    diff = np.zeros((height, width + 1), dtype=np.int32)
    np.add.at(diff, (rows, c_start), 1)
    np.add.at(diff, (rows, c_end), -1)
    mask[:] = np.cumsum(diff[:, :width], axis=1) > 0
    return mask


def shape_polygon(label: str, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    """Vertices ``(k, 2)`` of a shape of size ``r`` centred on ``(cx, cy)``, rotated by ``angle`` radians,
    rounded to 1/100 px (the rounded polygon is both drawn and stored)."""
    if label == "circle":
        n = int(min(64, max(24, round(2 * math.pi * r / 2.5))))
        t = np.arange(n) * (2 * math.pi / n) + angle
        pts = np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)
    elif label == "square":
        s = 0.8 * r
        corners = np.array([[-s, -s], [s, -s], [s, s], [-s, s]])
        c, si = math.cos(angle), math.sin(angle)
        pts = corners @ np.array([[c, si], [-si, c]]) + (cx, cy)
    elif label == "triangle":
        rr = 1.1 * r
        t = np.arange(3) * (2 * math.pi / 3) + angle - math.pi / 2
        pts = np.stack([cx + rr * np.cos(t), cy + rr * np.sin(t)], axis=1)
    else:
        raise ValueError(f"unknown shape {label!r}; valid: {', '.join(SHAPE_CLASSES)}")
    return np.round(pts, 2)


def _extent(r: float) -> float:
    return 1.14 * r  # farthest vertex of any shape of size r from its centre (rotated square: 0.8 * sqrt 2)


def _tight_box(mask: np.ndarray) -> tuple[tuple[float, float, float, float], int]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return (0.0, 0.0, 0.0, 0.0), 0
    x0, x1, y0, y1 = int(cols[0]), int(cols[-1]), int(rows[0]), int(rows[-1])
    return (float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1)), int(mask.sum())


# ---------------------------------------------------------------------------------------------- pixels
def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Low-frequency noise: a coarse random grid, bilinearly upsampled with two small matrix products."""
    grid = rng.normal(0.0, 1.0, (cells + 1, cells + 1))

    def interp(n: int) -> np.ndarray:
        pos = (np.arange(n) + 0.5) / n * cells
        i = np.minimum(pos.astype(np.intp), cells - 1)
        f = pos - i
        m = np.zeros((n, cells + 1))
        m[np.arange(n), i] = 1 - f
        m[np.arange(n), i + 1] = f
        return m

    return interp(height) @ grid @ interp(width).T


def _background(rng: np.random.Generator, height: int, width: int, base: float | None = None) -> np.ndarray:
    """A low-saturation textured background as float ``(H, W, 3)``: shading, stripes and a tint."""
    level = rng.uniform(70.0, 185.0) if base is None else base
    lum = level + rng.uniform(10.0, 28.0) * _smooth_noise(rng, height, width, int(rng.integers(2, 6)))
    freq = rng.uniform(0.04, 0.25)
    theta = rng.uniform(0.0, math.pi)
    yy, xx = np.mgrid[0:height, 0:width]
    lum = lum + rng.uniform(0.0, 9.0) * np.sin(
        freq * (xx * math.cos(theta) + yy * math.sin(theta)) + rng.uniform(0, 2 * math.pi)
    )
    tint = rng.uniform(-_TINT, _TINT, 3)
    return lum[:, :, None] + tint


def _shape_color(rng: np.random.Generator, label: str, class_colors: bool) -> np.ndarray:
    hue = (_CLASS_HUES[label] + rng.uniform(-0.04, 0.04)) % 1.0 if class_colors else rng.uniform(0.0, 1.0)
    sat = rng.uniform(0.7, 1.0)
    val = rng.uniform(145.0, 220.0)
    return np.array(colorsys.hsv_to_rgb(hue, sat, 1.0)) * val


def _finish(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Add luminance grain (same on every channel, so saturation is kept) and convert to uint8."""
    h, w = img.shape[:2]
    grain = rng.normal(0.0, rng.uniform(*_GRAIN_SIGMA), (h, w, 1))
    return np.clip(np.rint(img + grain), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------- scenes
def _place(
    rng: np.random.Generator,
    size: int,
    r: float,
    boxes: list[tuple[float, float, float, float]],
    max_overlap: float,
    gap: float,
) -> tuple[float, float] | None:
    """A centre for a shape of size ``r`` fully inside the image whose extent box overlaps the earlier ones
    by at most ``max_overlap`` of the smaller box (``gap`` px apart when max_overlap is 0)."""
    e = _extent(r)
    lo, hi = e + 1.0, size - e - 1.0
    if hi <= lo:
        return None
    for _ in range(40):
        cx, cy = rng.uniform(lo, hi), rng.uniform(lo, hi)
        a = (cx - e, cy - e, cx + e, cy + e)
        ok = True
        for b in boxes:
            iw = min(a[2], b[2]) - max(a[0], b[0])
            ih = min(a[3], b[3]) - max(a[1], b[1])
            if max_overlap <= 0:
                if iw > -gap and ih > -gap:
                    ok = False
                    break
            elif iw > 0 and ih > 0:
                smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
                if iw * ih > max_overlap * smaller:
                    ok = False
                    break
        if ok:
            boxes.append(a)
            return cx, cy
    return None


def render_shapes(
    rng: np.random.Generator,
    size: int,
    labels: list[str],
    *,
    radius: tuple[float, float],
    max_overlap: float = 0.0,
    class_colors: bool = False,
) -> Scene:
    """Draw the shapes named in ``labels`` (in order; later ones on top) on a textured background.

    ``radius`` is the size range as a fraction of the image side. A shape that cannot be placed within the
    overlap limit is left out (the first one always fits). ``max_overlap`` is the most the extent box of a
    shape may overlap an earlier one, as a fraction of the smaller box; 0 means disjoint with a 2 px gap.
    """
    img = _background(rng, size, size)
    inst = np.zeros((size, size), dtype=np.uint8)
    boxes: list[tuple[float, float, float, float]] = []
    placed: list[tuple[str, np.ndarray]] = []
    for label in labels:
        r = rng.uniform(radius[0], radius[1]) * size
        angle = rng.uniform(0.0, 2 * math.pi)
        centre = _place(rng, size, r, boxes, max_overlap, gap=2.0)
        color = _shape_color(rng, label, class_colors)
        if centre is None:
            continue
        poly = shape_polygon(label, centre[0], centre[1], r, angle)
        m = rasterize_polygon(poly, size, size)
        placed.append((label, poly))
        inst[m] = len(placed)
        img[m] = color
    shapes = []
    for k, (label, poly) in enumerate(placed):
        box, area = _tight_box(inst == k + 1)
        if area:
            shapes.append(DrawnShape(label, tuple(float(v) for v in poly.ravel()), box, area))
    return Scene(_finish(rng, img), tuple(shapes), inst)


def _blob_polygon(rng: np.random.Generator, cx: float, cy: float, r0: float) -> np.ndarray:
    n = 40
    t = np.arange(n) * (2 * math.pi / n)
    radius = r0 * (
        1.0
        + 0.22 * np.sin(t + rng.uniform(0, 2 * math.pi))
        + 0.14 * np.sin(2 * t + rng.uniform(0, 2 * math.pi))
        + 0.08 * np.sin(3 * t + rng.uniform(0, 2 * math.pi))
    )
    return np.round(np.stack([cx + radius * np.cos(t), cy + radius * np.sin(t)], axis=1), 2)


def _scratch_polygon(rng: np.random.Generator, size: int) -> np.ndarray:
    """A thin, gently curved band: a centre line offset by half the width on both sides."""
    length = rng.uniform(0.3, 0.6) * size
    width = rng.uniform(1.6, 3.2)
    theta = rng.uniform(0, 2 * math.pi)
    bend = rng.uniform(-0.6, 0.6) / length  # curvature in 1/px
    k = 16
    s = np.linspace(-length / 2, length / 2, k)
    heading = theta + bend * s
    dx, dy = np.cos(heading), np.sin(heading)
    step = s[1] - s[0]
    cxs = np.concatenate([[0.0], np.cumsum(dx[:-1] * step)])
    cys = np.concatenate([[0.0], np.cumsum(dy[:-1] * step)])
    cxs -= cxs.mean()
    cys -= cys.mean()
    span_x, span_y = np.ptp(cxs) / 2 + width, np.ptp(cys) / 2 + width
    ox = rng.uniform(span_x + 1, size - span_x - 1)
    oy = rng.uniform(span_y + 1, size - span_y - 1)
    nx, ny = -dy * width / 2, dx * width / 2
    left = np.stack([ox + cxs + nx, oy + cys + ny], axis=1)
    right = np.stack([ox + cxs - nx, oy + cys - ny], axis=1)[::-1]
    return np.round(np.concatenate([left, right]), 2)


def render_surface(rng: np.random.Generator, size: int, defect: str | None = None) -> Scene:
    """A "good" surface (a regular grid of small teal discs on a textured background: the same layout up to
    a shift, small colour changes and grain) or one with a ``defect`` from :data:`DEFECT_KINDS`.

    With a defect, the scene's ``shapes`` hold one ``DrawnShape`` labelled ``anomalous``: its polygon is the
    defect region (the scratch or blob as drawn, the disc that is missing or discoloured) and its box the
    tight box of that rasterized region.
    """
    if defect is not None and defect not in DEFECT_KINDS:
        raise ValueError(f"unknown defect {defect!r}; valid: {', '.join(DEFECT_KINDS)}")
    period = size / 8.0
    disc_r = 0.27 * period
    img = _background(rng, size, size, base=rng.uniform(118.0, 138.0))
    disc_color = np.array([40.0, 150.0, 160.0]) * rng.uniform(0.93, 1.07)
    off_x, off_y = rng.uniform(0, period, 2)
    jitter = rng.uniform(-0.4, 0.4, (10, 10, 2))
    discs = [
        shape_polygon(
            "circle", off_x + i * period + jitter[j, i, 0], off_y + j * period + jitter[j, i, 1], disc_r, 0.0
        )
        for j in range(10)
        for i in range(10)
    ]
    region: np.ndarray | None = None
    if defect in ("missing", "discoloured"):
        inside = [k for k, d in enumerate(discs) if d.min() >= 2 and d.max() <= size - 2]
        region = discs.pop(int(rng.choice(inside)))
    img[rasterize_polygon(discs, size, size)] = disc_color
    if defect == "discoloured":
        assert region is not None
        hue = rng.uniform(0.0, 0.15) if rng.random() < 0.5 else rng.uniform(0.75, 0.95)
        img[rasterize_polygon(region, size, size)] = np.array(colorsys.hsv_to_rgb(hue, 0.8, 1.0)) * 200
    elif defect == "scratch":
        region = _scratch_polygon(rng, size)
        shade = rng.uniform(215, 245) if rng.random() < 0.5 else rng.uniform(15, 45)
        img[rasterize_polygon(region, size, size)] = shade
    elif defect == "blob":
        r0 = rng.uniform(0.05, 0.11) * size
        lim = r0 * 1.5 + 1
        region = _blob_polygon(rng, rng.uniform(lim, size - lim), rng.uniform(lim, size - lim), r0)
        img[rasterize_polygon(region, size, size)] = np.array([95.0, 62.0, 38.0]) * rng.uniform(0.7, 1.2)
    inst = np.zeros((size, size), dtype=np.uint8)
    shapes: tuple[DrawnShape, ...] = ()
    if region is not None:
        m = rasterize_polygon(region, size, size)
        inst[m] = 1
        box, area = _tight_box(m)
        shapes = (DrawnShape("anomalous", tuple(float(v) for v in region.ravel()), box, area),)
    return Scene(_finish(rng, img), shapes, inst, defect)
