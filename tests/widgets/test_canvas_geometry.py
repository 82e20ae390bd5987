"""Geometry, masks and the undo history of the annotation canvas, in isolation."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.data.records import Annotation
from workbench.widgets.geometry import (
    ShapeIndex,
    ViewTransform,
    clamp_box,
    hit_handle,
    normalize_box,
    point_in_polygon,
    resize_box,
    translate_box,
    translate_polygons,
)
from workbench.widgets.masks import (
    apply_stroke,
    mask_rgba,
    rle_contains,
    rle_decode,
    rle_encode,
    rle_translate,
    stroke_mask,
)
from workbench.widgets.undo import AddCommand, AnnRef, DeleteCommand, History, UpdateCommand


# ---------------------------------------------------------------------------------------------- view
def test_view_transform_round_trip_fit_and_zoom_fixed_point():
    v = ViewTransform.fit(400, 100, 800, 600)  # wide image: fits the width, centred vertically
    assert (v.scale, v.offset_x, v.offset_y) == (2.0, 0.0, 200.0)
    assert v.to_image(*v.to_canvas(123.25, 45.5)) == pytest.approx((123.25, 45.5))
    z = v.zoomed_at(300, 250, 3.0)
    assert z.scale == 6.0 and z.to_image(300, 250) == pytest.approx(v.to_image(300, 250))
    assert v.zoomed_at(0, 0, 1e9).scale == ViewTransform.MAX_SCALE
    assert v.zoomed_at(0, 0, 1e-9).scale == ViewTransform.MIN_SCALE
    pts = v.points_to_canvas((1.0, 2.0, 3.0, 4.0))
    assert pts.tolist() == [[2.0, 204.0], [6.0, 208.0]]


# ---------------------------------------------------------------------------------------------- boxes
BOX = (10.0, 20.0, 30.0, 40.0)  # corners (10, 20) - (40, 60)


@pytest.mark.parametrize(
    "handle,to,expected",
    [
        ("nw", (0, 0), (0.0, 0.0, 40.0, 60.0)),
        ("n", (99, 10), (10.0, 10.0, 30.0, 50.0)),
        ("ne", (50, 15), (10.0, 15.0, 40.0, 45.0)),
        ("e", (45, 0), (10.0, 20.0, 35.0, 40.0)),
        ("se", (50, 70), (10.0, 20.0, 40.0, 50.0)),
        ("s", (0, 65), (10.0, 20.0, 30.0, 45.0)),
        ("sw", (5, 65), (5.0, 20.0, 35.0, 45.0)),
        ("w", (0, 99), (0.0, 20.0, 40.0, 40.0)),
        ("w", (50, 30), (40.0, 20.0, 10.0, 40.0)),  # past the opposite edge: flipped, normalised
        ("se", (500, 500), (10.0, 20.0, 90.0, 80.0)),  # clamped to the 100 x 100 image
    ],
)
def test_resize_box_each_handle(handle, to, expected):
    assert resize_box(BOX, handle, *to, 100, 100) == expected


def test_box_helpers():
    assert normalize_box(40, 60, 10, 20) == BOX
    assert clamp_box((-5.0, 90.0, 20.0, 20.0), 100, 100) == (0.0, 90.0, 15.0, 10.0)
    assert clamp_box((120.0, 0.0, 5.0, 5.0), 100, 100) is None
    assert translate_box(BOX, 100, -100, 100, 100) == (70.0, 0.0, 30.0, 40.0)
    assert hit_handle(BOX, 41.0, 61.5, 2.0) == "se"
    assert hit_handle(BOX, 25.0, 20.5, 1.0) == "n"
    assert hit_handle(BOX, 25.0, 40.0, 2.0) is None
    moved = translate_polygons([(10.0, 10.0, 90.0, 10.0, 50.0, 95.0)], 20.0, 20.0, 100, 100)
    assert moved == ((20.0, 15.0, 100.0, 15.0, 60.0, 100.0),)  # the shift stops at the image edge


def test_shape_index_exact_tests_for_polygons_and_masks():
    tri = Annotation("polygon", "a", polygons=((0.0, 0.0, 100.0, 0.0, 0.0, 100.0),))
    m = np.zeros((100, 100), dtype=bool)
    m[80:90, 80:90] = True
    mask = Annotation("mask", "a", mask=rle_encode(m))
    idx = ShapeIndex([tri, mask, Annotation("label", "a")])
    assert len(idx) == 2
    assert idx.hit(20, 20) == 0
    assert idx.hit(80, 70) is None  # inside the triangle's box, outside the triangle
    assert idx.hit(85.5, 85.5) == 1
    assert idx.hit(79.5, 85.0) is None and idx.hit(79.5, 85.0, tolerance=1.0) == 1
    assert point_in_polygon(10, 10, tri.polygons[0]) and not point_in_polygon(60, 60, tri.polygons[0])


# ---------------------------------------------------------------------------------------------- masks
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools vs numpy 2
@pytest.mark.parametrize("seed", range(4))
def test_rle_round_trip_and_agrees_with_pycocotools(seed):
    mask_util = pytest.importorskip("pycocotools.mask")
    rng = np.random.default_rng(seed)
    m = rng.random((23, 17)) > 0.6
    m[0, 0] = bool(seed % 2)  # starts with a 1 or a 0
    rle = rle_encode(m)
    assert rle["size"] == [23, 17] and sum(rle["counts"]) == 23 * 17
    assert (rle_decode(rle) == m).all()
    coco = mask_util.decode(mask_util.frPyObjects(rle, 23, 17)).astype(bool)
    assert (coco == m).all()
    assert Annotation("mask", "a", mask=rle).area == m.sum()
    for r, c in [(0, 0), (5, 3), (22, 16), (11, 9)]:
        assert rle_contains(rle, c + 0.5, r + 0.5) == m[r, c]
    assert not rle_contains(rle, -1, 5) and not rle_contains(rle, 17.0, 5)


def test_mask_shift_stroke_and_rgba():
    m = np.zeros((50, 60), dtype=bool)
    m[10:20, 5:15] = True
    shifted = rle_decode(rle_translate(rle_encode(m), 3.4, -2.6))
    assert shifted[7:17, 8:18].all() and shifted.sum() == 100
    assert rle_translate(rle_encode(m), 100, 0) is None
    half = rle_decode(rle_translate(rle_encode(m), -10, 0))  # pushed half off the left edge
    assert half[10:20, 0:5].all() and half.sum() == 50
    s = stroke_mask([(20.0, 25.0), (40.0, 25.0)], 4.0, 50, 60)
    assert s[25, 20] and s[25, 40] and s[22, 30] and not s[19, 30] and not s[25, 46]
    assert apply_stroke(None, s, erase=True) is None
    painted = apply_stroke(rle_encode(m), s, erase=False)
    assert rle_decode(painted).sum() == (m | s).sum()
    rgba, origin = mask_rgba(rle_encode(m), "#ff8000")
    assert origin == (5, 10) and rgba.shape == (10, 10, 4)
    assert tuple(rgba[0, 0]) == (255, 128, 0, 110)


# ---------------------------------------------------------------------------------------------- undo
class _Target:
    """A minimal EditTarget: a dict store with changing ids, and the calls made."""

    def __init__(self):
        self.rows: dict[int, Annotation] = {}
        self.next_id = 1
        self.calls: list[str] = []
        self.history = History(limit=2)

    def store_add(self, ann, author):
        self.calls.append("add")
        saved = Annotation(**{**ann.__dict__, "id": self.next_id, "author": author})
        self.rows[self.next_id] = saved
        self.next_id += 1
        return saved

    def store_update(self, annotation_id, ann, author):
        self.calls.append("update")
        if annotation_id not in self.rows:
            raise KeyError(annotation_id)
        self.rows[annotation_id] = Annotation(**{**ann.__dict__, "id": annotation_id})
        return self.rows[annotation_id]

    def store_delete(self, annotation_id):
        self.calls.append("delete")
        del self.rows[annotation_id]

    def rebind(self, ref, new_id):
        self.history.rebind(ref, new_id)


def test_history_replays_commands_with_rebound_ids_and_is_bounded():
    t = _Target()
    h = t.history
    a = Annotation("box", "a", bbox=(1.0, 1.0, 5.0, 5.0))
    ref = AnnRef()
    h.execute(AddCommand(ref, a, "me"), t)
    assert ref.id == 1 and h.ref(1) is ref
    b = Annotation("box", "a", bbox=(2.0, 2.0, 5.0, 5.0))
    h.execute(UpdateCommand(ref, t.rows[1], b, "me"), t)
    h.execute(DeleteCommand(ref, t.rows[1], "me"), t)
    assert len(h) == 2  # the oldest command (the add) fell off
    h.undo(t)
    assert ref.id == 2 and h.ref(2) is ref and 1 not in t.rows
    h.undo(t)
    assert t.rows[2].bbox == (1.0, 1.0, 5.0, 5.0)
    assert h.undo(t) is None and not h.can_undo and h.can_redo
    h.redo(t)
    h.redo(t)
    assert t.rows == {} and h.redo(t) is None
    assert t.calls == ["add", "update", "delete", "add", "update", "update", "delete"]
