"""Static rendering of an example with its annotations (the PNG fallback of the canvas)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from workbench.data.records import Annotation, ClassDef
from workbench.errors import ImageError
from workbench.widgets.masks import rle_encode
from workbench.widgets.render import render_example, render_png

GREY = (100, 100, 100)
CLASSES = [ClassDef("cat", "#ff0000"), ClassDef("dog", "#00c000")]


@pytest.fixture
def grey(png):
    return png(200, 150, color=GREY)


def test_png_size_and_box_edges_in_class_colour(grey):
    data = render_png(grey, [Annotation("box", "cat", bbox=(20.0, 30.0, 50.0, 40.0))], CLASSES, tags=False)
    im = Image.open(io.BytesIO(data))
    assert im.format == "PNG" and im.size == (200, 150)
    a = np.asarray(im.convert("RGB"))
    assert tuple(a[50, 20]) == (255, 0, 0)  # left edge
    assert tuple(a[50, 69]) == (255, 0, 0)  # right edge: x + w - 1
    assert tuple(a[30, 45]) == (255, 0, 0) and tuple(a[69, 45]) == (255, 0, 0)
    assert tuple(a[50, 45]) == GREY  # inside: untouched
    assert tuple(a[50, 75]) == GREY  # outside


def test_scaled_down_to_max_size(png):
    big = png(2000, 1000, color=GREY)
    im = render_example(
        big, [Annotation("box", "dog", bbox=(400.0, 200.0, 400.0, 400.0))], CLASSES, max_size=500, tags=False
    )
    assert im.size == (500, 250)
    a = np.asarray(im)
    assert tuple(a[100, 100]) == (0, 192, 0)  # the left edge, at a quarter of the coordinates


def test_polygon_and_mask_are_tinted_proposals_dashed(grey):
    m = np.zeros((150, 200), dtype=bool)
    m[100:140, 150:190] = True
    anns = [
        Annotation("polygon", "dog", polygons=((10.0, 10.0, 60.0, 10.0, 10.0, 60.0),)),
        Annotation("mask", "cat", mask=rle_encode(m)),
        Annotation("box", "cat", bbox=(100.0, 20.0, 80.0, 60.0), proposal=True, score=0.7),
    ]
    a = np.asarray(render_example(grey, anns, CLASSES, tags=False)).astype(int)
    inside_poly, inside_mask = a[25, 20], a[120, 170]
    assert inside_poly[1] > GREY[1] + 20 and inside_poly[0] < GREY[0]  # greener, see-through
    assert inside_mask[0] > GREY[0] + 20 and inside_mask[1] < GREY[1]
    assert tuple(a[50, 50]) == GREY  # outside the triangle
    top_edge = a[20, 100:180]
    red = [(p == (255, 0, 0)).all() for p in top_edge]
    assert 0.3 < sum(red) / len(red) < 0.9  # dashed: partly drawn


def test_label_banner_and_hidden_proposals(grey):
    anns = [Annotation("label", "dog"), Annotation("label", "cat", proposal=True, score=0.4)]
    a = np.asarray(render_example(grey, anns, CLASSES))
    assert tuple(a[3, 3]) == (0, 192, 0)
    assert any(tuple(p) == (255, 0, 0) for p in a[10:60, 3])  # the proposal's banner below
    b = np.asarray(render_example(grey, anns, CLASSES, show_proposals=False))
    assert not any(tuple(p) == (255, 0, 0) for p in b[:, 3])


def test_unreadable_image_is_a_typed_error():
    with pytest.raises(ImageError, match="not a readable image"):
        render_png(b"not an image", [], CLASSES)
