"""Mask geometry against pycocotools."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from workbench.errors import ValidationError
from workbench.train.masks import (
    mask_bbox,
    mask_to_coco_rle,
    mask_to_rle,
    polygons_to_mask,
    resize_mask,
    rle_to_mask,
)


def _random_polygon(rng: np.random.Generator, size: int) -> list[float]:
    c = rng.uniform(size * 0.3, size * 0.7, 2)
    r = rng.uniform(size * 0.08, size * 0.25)
    angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 12))))
    return np.stack([c[0] + r * np.cos(angles), c[1] + r * np.sin(angles)], 1).reshape(-1).tolist()


@pytest.mark.parametrize("seed", range(8))
def test_polygon_raster_matches_pycocotools(seed):
    rng = np.random.default_rng(seed)
    h, w = 48, 64
    poly = _random_polygon(rng, 48)
    ours = polygons_to_mask([poly], h, w)
    ref = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([poly], h, w)))
    iou = (ours & ref).sum() / max((ours | ref).sum(), 1)
    assert ours.shape == (h, w) and ours.dtype == np.uint8
    assert iou > 0.93, iou


def test_polygon_pixel_centres_and_scale():
    square = [0, 0, 4, 0, 4, 4, 0, 4]
    m = polygons_to_mask([square], 6, 6)
    assert m.sum() == 16 and m[:4, :4].all()
    doubled = polygons_to_mask([square], 10, 10, scale=(2.0, 2.0))
    assert doubled.sum() == 64 and doubled[:8, :8].all()
    # two polygons are OR-ed; one outside the image is ignored
    two = polygons_to_mask([square, [100, 100, 110, 100, 110, 110]], 6, 6)
    assert (two == m).all()
    with pytest.raises(ValidationError):
        polygons_to_mask([[0, 0, 1, 1]], 4, 4)


@pytest.mark.parametrize("seed", range(5))
def test_rle_round_trip_and_pycocotools(seed):
    rng = np.random.default_rng(seed)
    m = (rng.random((13, 17)) > 0.6).astype(np.uint8)
    rle = mask_to_rle(m)
    assert sum(rle["counts"]) == 13 * 17 and rle["size"] == [13, 17]
    assert (rle_to_mask(rle) == m).all()
    assert (mask_utils.decode(mask_utils.frPyObjects(rle, 13, 17)) == m).all()
    compressed = mask_to_coco_rle(m)
    assert isinstance(compressed["counts"], str)
    assert (
        mask_utils.decode({"size": compressed["size"], "counts": compressed["counts"].encode()}) == m
    ).all()


def test_rle_starting_with_ones_and_bad_rle():
    m = np.ones((2, 3), np.uint8)
    assert mask_to_rle(m)["counts"] == [0, 6]
    with pytest.raises(ValidationError, match="sum"):
        rle_to_mask({"size": [2, 2], "counts": [1, 1]})
    with pytest.raises(ValidationError, match="field 'mask'"):
        rle_to_mask({"counts": [4]})


def test_bbox_and_resize():
    m = np.zeros((10, 12), np.uint8)
    m[2:5, 3:9] = 1
    assert mask_bbox(m) == (3.0, 2.0, 9.0, 5.0)
    assert mask_bbox(np.zeros((3, 3), np.uint8)) is None
    big = resize_mask(m, 20, 24)
    assert big.shape == (20, 24) and big.sum() == 4 * m.sum()
