"""The synthetic shape renderer: exact polygon rasterization and scenes whose ground truth is what was drawn."""

from __future__ import annotations

import math

import numpy as np
import pytest

from workbench.data.shapes import (
    DEFECT_KINDS,
    SHAPE_CLASSES,
    rasterize_polygon,
    render_shapes,
    render_surface,
    shape_polygon,
)


def inside_brute_force(rings: list[np.ndarray], height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Even-odd ray casting at every pixel centre, one pixel at a time in numpy over the edges, plus a mask
    of the pixel centres that lie (numerically) on an edge, where either answer is right."""
    yy, xx = np.mgrid[0:height, 0:width]
    px, py = xx.ravel() + 0.5, yy.ravel() + 0.5
    inside = np.zeros(px.size, dtype=bool)
    on_edge = np.zeros(px.size, dtype=bool)
    for ring in rings:
        a = np.asarray(ring, dtype=float)
        b = np.roll(a, -1, axis=0)
        for (x0, y0), (x1, y1) in zip(a, b, strict=True):
            if y0 != y1:
                crosses = (y0 <= py) != (y1 <= py)
                xi = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
                inside ^= crosses & (px < xi)
            seg = np.array([x1 - x0, y1 - y0])
            t = np.clip(((px - x0) * seg[0] + (py - y0) * seg[1]) / max(seg @ seg, 1e-12), 0, 1)
            on_edge |= np.hypot(x0 + t * seg[0] - px, y0 + t * seg[1] - py) < 1e-9
    return inside.reshape(height, width), on_edge.reshape(height, width)


def random_polygon(rng: np.random.Generator, k: int, lo: float, hi: float) -> np.ndarray:
    return np.round(rng.uniform(lo, hi, (k, 2)), 2)  # usually self-intersecting: tests the even-odd rule


@pytest.mark.parametrize("case", range(12))
def test_rasterize_matches_ray_casting(case: int) -> None:
    rng = np.random.default_rng(case)
    if case % 3 == 0:
        rings = [random_polygon(rng, int(rng.integers(3, 9)), -8, 40)]  # partly outside the image
    elif case % 3 == 1:
        label = SHAPE_CLASSES[case % len(SHAPE_CLASSES)]
        rings = [
            shape_polygon(
                label, rng.uniform(0, 32), rng.uniform(0, 28), rng.uniform(3, 14), rng.uniform(0, 6)
            )
        ]
    else:
        rings = [
            shape_polygon("circle", 10, 10, 6, 0.0),
            shape_polygon("square", 24, 18, 5, 0.3),
            shape_polygon("circle", 24, 18, 2, 0.0),  # inside the square: a hole
        ]
    got = rasterize_polygon(rings if len(rings) > 1 else rings[0], 28, 32)
    want, on_edge = inside_brute_force(rings, 28, 32)
    assert np.array_equal(got[~on_edge], want[~on_edge])


def test_rasterize_integer_square_covers_exactly_its_pixels() -> None:
    square = np.array([[10, 10], [20, 10], [20, 20], [10, 20]], dtype=float)
    m = rasterize_polygon(square, 32, 32)
    expected = np.zeros((32, 32), dtype=bool)
    expected[10:20, 10:20] = True
    assert np.array_equal(m, expected)
    assert not rasterize_polygon(square + 100, 32, 32).any()  # fully outside
    assert not rasterize_polygon([], 32, 32).any()


@pytest.mark.parametrize("label", SHAPE_CLASSES)
def test_shape_polygon_stays_within_its_extent(label: str) -> None:
    for angle in np.linspace(0, 2 * math.pi, 17):
        pts = shape_polygon(label, 50.0, 40.0, 10.0, float(angle))
        assert np.hypot(pts[:, 0] - 50.0, pts[:, 1] - 40.0).max() <= 1.14 * 10.0 + 0.01
        assert np.array_equal(pts, np.round(pts, 2))  # what is stored is what is drawn
    with pytest.raises(ValueError, match="unknown shape"):
        shape_polygon("hexagon", 0, 0, 1, 0)


def test_scene_instance_map_agrees_with_boxes_and_areas() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        scene = render_shapes(
            rng, 96, ["circle", "square", "triangle", "circle"], radius=(0.08, 0.2), max_overlap=0.2
        )
        assert scene.image.shape == (96, 96, 3) and scene.image.dtype == np.uint8
        for k, s in enumerate(scene.shapes):
            m = scene.instance_map == k + 1
            rows, cols = np.nonzero(m)
            x, y, w, h = s.bbox
            assert (x, y, x + w - 1, y + h - 1) == (cols.min(), rows.min(), cols.max(), rows.max())
            assert s.area == m.sum()


def test_disjoint_scenes_do_not_touch() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        scene = render_shapes(rng, 128, ["circle"] * 4, radius=(0.07, 0.18), max_overlap=0.0)
        for k, s in enumerate(scene.shapes):
            full = rasterize_polygon(np.array(s.polygon).reshape(-1, 2), 128, 128)
            assert np.array_equal(full, scene.instance_map == k + 1)  # nothing drawn over it


@pytest.mark.parametrize("defect", [None, *DEFECT_KINDS])
def test_surface_defect_region(defect: str | None) -> None:
    rng = np.random.default_rng(11)
    scene = render_surface(rng, 128, defect)
    assert scene.defect == defect
    if defect is None:
        assert scene.shapes == () and not scene.instance_map.any()
        return
    (region,) = scene.shapes
    pts = np.array(region.polygon).reshape(-1, 2)
    assert pts.min() >= 0 and pts.max() <= 128
    assert region.area >= 4
    with pytest.raises(ValueError, match="unknown defect"):
        render_surface(rng, 64, "crack")
