"""CanvasState: tools, selection, zoom, undo, proposals, navigation -- no kernel, no browser.

The default canvas is 800 x 600 and the images 400 x 300, so the fitted view has scale 2 and no offset:
canvas point (cx, cy) is image point (cx / 2, cy / 2) until a test zooms or pans.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pytest

from workbench.data.records import Annotation
from workbench.errors import EditConflictError, NotFoundError, UnknownNameError, ValidationError
from workbench.widgets.canvas_state import TOOLS_FOR_TYPE, CanvasSettings, CanvasState
from workbench.widgets.keys import KeyMap
from workbench.widgets.masks import rle_decode


def drag(s: CanvasState, a, b, steps: int = 4) -> None:
    s.pointer_down(*a)
    for k in range(1, steps + 1):
        s.pointer_move(a[0] + (b[0] - a[0]) * k / steps, a[1] + (b[1] - a[1]) * k / steps)
    s.pointer_up(*b)


def click(s: CanvasState, p) -> None:
    s.pointer_down(*p)
    s.pointer_up(*p)


def box(x, y, w, h, label="cat", **kw) -> Annotation:
    return Annotation("box", label, bbox=(x, y, w, h), **kw)


# ---------------------------------------------------------------------------------------------- per type
def _annotate_once(s: CanvasState) -> None:
    """The primary annotate gesture of each type."""
    if s.type == "classification":
        s.key_down("2")
    elif s.type == "detection":
        drag(s, (100, 100), (200, 150))
    elif s.type == "segmentation":
        for p in [(100, 100), (200, 100), (200, 200)]:
            click(s, p)
        click(s, (102, 101))  # near the first vertex: closes
    else:
        s.key_down("2")


EXPECTED = {
    "classification": Annotation("label", "dog"),
    "detection": box(50.0, 50.0, 50.0, 25.0),
    "segmentation": Annotation("polygon", "cat", polygons=((50.0, 50.0, 100.0, 50.0, 100.0, 100.0),)),
    "anomaly": Annotation("anomaly", "anomalous"),
}


@pytest.mark.parametrize("type_", list(EXPECTED))
def test_annotate_undo_redo_each_type(type_, mk):
    s, sink = mk(type_)
    _annotate_once(s)
    writes = sink.take()
    assert [w[0] for w in writes] == ["add_annotation"]  # exactly one store call per action
    assert writes[0][1] == 1 and writes[0][3] == "ann"
    (stored,) = sink.truth()
    assert stored.content() == EXPECTED[type_].content()
    assert stored.author == "ann"
    s.key_down("z", ctrl=True)  # undo: the shape goes and the example is new again
    assert sink.take() == [("set_status", 1, "new"), ("delete_annotation", stored.id)]
    assert sink.example(1).status == "new"
    assert sink.truth() == [] and s.annotations == []
    s.key_down("Z", shift=True, ctrl=True)
    assert [w[0] for w in sink.take()] == ["add_annotation"]
    (again,) = sink.truth()
    assert again.content() == stored.content() and again.id != stored.id
    assert s.annotations == [again]


@pytest.mark.parametrize("type_,tools", list(TOOLS_FOR_TYPE.items()))
def test_tools_offered_per_type(type_, tools, mk):
    s, _ = mk(type_)
    assert s.tools == tools and s.tool == tools[0]
    with pytest.raises(UnknownNameError, match="valid"):
        s.set_tool("lasso")


@pytest.mark.parametrize("type_", list(EXPECTED))
def test_navigation_reads_only_the_opened_example(type_, mk):
    s, sink = mk(type_)
    sink.reads.clear()
    s.next()
    assert [r for r in sink.reads if r[0] in ("example", "load_bytes")] == [("example", 2)]
    s.image_bytes()
    s.image_bytes()  # cached
    assert [r for r in sink.reads if r[0] == "load_bytes"] == [("load_bytes", sink.example(2).blob)]


# ---------------------------------------------------------------------------------------------- boxes
@pytest.mark.parametrize(
    "a,b",
    [((100, 100), (200, 150)), ((200, 150), (100, 100)), ((200, 100), (100, 150)), ((100, 150), (200, 100))],
)
def test_box_corners_normalised_whatever_the_drag_direction(a, b, mk):
    s, sink = mk("detection")
    drag(s, a, b)
    assert sink.truth()[0].bbox == (50.0, 50.0, 50.0, 25.0)


def test_tiny_drag_is_a_click_and_box_is_clamped_to_image(mk):
    s, sink = mk("detection")
    drag(s, (100, 100), (102, 101))
    assert sink.take() == []
    drag(s, (700, 500), (900, 700))  # past the image's bottom-right corner
    assert sink.truth()[0].bbox == (350.0, 250.0, 50.0, 50.0)
    drag(s, (-50, -50), (-10, -20))  # entirely outside: nothing to keep
    assert len(sink.truth()) == 1


def test_pointer_leaving_the_canvas_ends_the_drag_clamped(mk):
    s, sink = mk("detection")
    s.pointer_down(700, 500)
    s.pointer_move(790, 590)
    s.pointer_out(820, 640)
    assert sink.truth()[0].bbox == (350.0, 250.0, 50.0, 50.0)


def test_zoom_then_pan_then_draw_lands_in_image_pixels(mk):
    s, sink = mk("detection")
    s.pointer_move(300, 200)  # the wheel zooms around the last pointer position
    s.zoom_at(300, 200, 2.0)
    # image point under the cursor stays put: (150, 100) at scale 4 -> offset (300 - 600, 200 - 400)
    assert (s.view.scale, s.view.offset_x, s.view.offset_y) == (4.0, -300.0, -200.0)
    s.pan_by(-50, 30)
    drag(s, (100, 100), (300, 260))
    # by hand: image = (canvas - offset) / scale with offset (-350, -170)
    assert sink.truth()[0].bbox == pytest.approx((112.5, 67.5, 50.0, 40.0))
    s.reset_view()
    assert s.view.scale == 2.0


def test_wheel_zooms_around_the_pointer(mk):
    s, _ = mk("detection")
    s.pointer_move(250, 120)
    before = s.view.to_image(250, 120)
    s.wheel(-300)
    assert s.view.scale > 2.0
    assert s.view.to_image(250, 120) == pytest.approx(before)
    s.wheel(+300)
    assert s.view.scale == pytest.approx(2.0)


def test_pan_tool_and_pan_limits_keep_the_image_in_view(mk):
    s, _ = mk("detection")
    s.set_tool("pan")
    drag(s, (400, 300), (450, 280))
    assert (s.view.offset_x, s.view.offset_y) == (50.0, -20.0)
    s.pan_by(5000, 5000)
    x, y = s.view.to_canvas(0, 0)
    assert x <= 800 - 32 and y <= 600 - 32


def test_select_smallest_then_topmost(mk):
    anns = {
        1: [
            box(10, 10, 200, 200, id=None),
            box(50, 50, 20, 20, "dog"),
            box(100, 100, 30, 30),
            box(100, 100, 30, 30, "bird"),
        ]
    }
    s, sink = mk("detection", annotations=anns)
    ids = [a.id for a in s.annotations]
    click(s, (120, 120))  # image (60, 60): inside the big and the small box
    assert s.selected_id == ids[1]
    click(s, (60, 60))  # image (30, 30): only the big one
    assert s.selected_id == ids[0]
    click(s, (230, 230))  # two identical boxes: the topmost (drawn last)
    assert s.selected_id == ids[3]
    click(s, (700, 550))
    assert s.selected_id is None
    assert sink.take() == []  # selecting writes nothing


def test_handles_tolerance_is_in_screen_pixels(mk):
    s, _ = mk("detection", annotations={1: [box(100, 100, 50, 40)]})
    s.set_tool("select")
    click(s, (250, 240))
    sel = s.selected
    for zoom in (1.0, 4.0):
        s.reset_view()
        s.zoom_at(0, 0, zoom)
        hx, hy = s.view.to_canvas(150, 140)  # the south-east corner
        assert _grab_mode(s, hx + 5, hy + 5) == "resize"  # 5 screen px off: a handle
        assert _grab_mode(s, hx + 12, hy + 12) != "resize"  # 12 screen px off: not
    assert s.selected == sel


def _grab_mode(s: CanvasState, cx, cy) -> str | None:
    tool = s._tools[s.tool]
    grabbed = tool._grab(s, cx, cy)
    return None if grabbed is None else grabbed.mode


def test_resize_move_and_delete_one_store_call_each(mk):
    s, sink = mk("detection", annotations={1: [box(100, 100, 50, 40)]})
    (aid,) = [a.id for a in s.annotations]
    click(s, (250, 240))
    assert s.selected_id == aid
    drag(s, (300, 280), (340, 300))  # se handle to image (170, 150)
    assert [w[0] for w in sink.take()] == ["update_annotation"]
    assert sink.truth()[0].bbox == (100.0, 100.0, 70.0, 50.0)
    drag(s, (240, 240), (220, 200))  # the body, moved by (-10, -20)
    assert sink.truth()[0].bbox == (90.0, 80.0, 70.0, 50.0)
    drag(s, (180, 160), (340, 200))  # nw handle past the se corner: flips, stays normalised
    assert sink.truth()[0].bbox == (160.0, 100.0, 10.0, 30.0)
    assert [w[0] for w in sink.take()] == ["update_annotation", "update_annotation"]
    drag(s, (330, 230), (-400, -400))  # move beyond the image: clamped, size kept
    assert sink.truth()[0].bbox == (0.0, 0.0, 10.0, 30.0)
    sink.take()
    s.key_down("Backspace")
    assert sink.take() == [("delete_annotation", aid)]
    assert s.selected_id is None


def test_preview_hides_the_stored_shape_while_dragging(mk):
    s, _ = mk("detection", annotations={1: [box(100, 100, 50, 40)]})
    click(s, (250, 240))
    s.take_dirty()
    s.pointer_down(250, 240)
    s.pointer_move(260, 250)
    assert s.interaction.editing_id == s.selected_id
    assert s.take_dirty() == {"annotations", "interaction"}
    s.pointer_move(270, 260)
    assert s.take_dirty() == {"interaction"}  # only the interaction layer while the drag goes on
    s.key_down("Escape")
    assert s.interaction.editing_id is None and s.interaction.preview is None


def test_undo_chain_tracks_new_ids(mk):
    s, sink = mk("detection")
    drag(s, (100, 100), (200, 150))  # add
    first = s.selected_id
    drag(s, (150, 120), (170, 140))  # move by (10, 10)
    s.key_down("Delete")
    assert sink.truth() == []
    sink.take()
    s.undo()  # re-add: a new id
    (readded,) = sink.truth()
    assert readded.id != first and readded.bbox == (60.0, 60.0, 50.0, 25.0)
    s.undo()  # undo the move on the NEW id
    assert sink.take()[-1][:2] == ("update_annotation", readded.id)
    assert sink.truth()[0].bbox == (50.0, 50.0, 50.0, 25.0)
    s.undo()  # undo the add: deletes the new id
    assert sink.take()[-1] == ("delete_annotation", readded.id)
    assert not s.can_undo and s.can_redo
    for _ in range(3):
        s.redo()
    assert sink.truth() == [] and not s.can_redo
    s.undo()
    assert sink.truth()[0].bbox == (60.0, 60.0, 50.0, 25.0)


def test_history_is_kept_per_example_and_bounded(mk):
    s, sink = mk("detection", settings=CanvasSettings(undo_limit=3, histories_kept=2))
    for k in range(5):
        drag(s, (100 + 40 * k, 100), (130 + 40 * k, 130))
    assert len(s.history) == 3
    s.next()
    assert not s.can_undo  # another example, its own (empty) history
    drag(s, (100, 100), (150, 150))
    s.previous()
    s.undo()
    assert len(sink.truth(1)) == 4 and len(sink.truth(2)) == 1
    s.next()
    s.next()  # example 3: example 1's history is now the oldest of 3 and dropped
    s.goto(1)
    assert not s.can_undo


def test_undo_refused_by_the_store_reloads_the_example(mk):
    s, sink = mk("detection")
    drag(s, (100, 100), (200, 150))
    (a,) = sink.truth()
    sink.delete_annotation(a.id)  # someone else deleted it
    with pytest.raises(EditConflictError):
        s.undo()
    assert s.annotations == [] and not s.can_undo and "reloaded" in s.message


def test_class_keys_and_class_change_of_the_selection(mk):
    s, sink = mk("detection")
    s.key_down("3")
    drag(s, (100, 100), (200, 150))
    assert sink.truth()[0].label == "bird"
    sink.take()
    s.key_down("1")  # the just-drawn box is not selected on purpose: "1" is for the next shape
    assert sink.take() == [] and s.current_class == "cat" and sink.truth()[0].label == "bird"
    s.key_down("3")
    click(s, (150, 125))  # a click selects it on purpose
    s.key_down("1")  # the selection takes the class
    assert [w[0] for w in sink.take()] == ["update_annotation"]
    assert sink.truth()[0].label == "cat"
    s.key_down("1")  # same class: nothing to write
    s.key_down("9")  # no ninth class: ignored
    assert sink.take() == []
    with pytest.raises(UnknownNameError, match="cat, dog"):
        s.set_class("zebra")


def test_drawing_needs_a_class(png):
    from workbench.widgets.sink import MemoryImage, MemorySink

    s = CanvasState(MemorySink("detection", [], [MemoryImage(png(), 400, 300)]))
    with pytest.raises(ValidationError, match="add a class first"):
        drag(s, (100, 100), (200, 150))
    assert s.pressed is False
    s.add_class("car")
    drag(s, (100, 100), (200, 150))
    assert s.annotations[0].label == "car"


# ---------------------------------------------------------------------------------------------- labels
def test_classification_label_keys_replace_the_label(mk):
    s, sink = mk("classification", settings=CanvasSettings(advance_on_class=False))
    s.key_down("1")
    s.key_down("2")
    w = sink.take()
    assert [x[0] for x in w] == ["add_annotation", "update_annotation"]
    assert [a.label for a in sink.truth()] == ["dog"]
    s.key_down("Delete")  # nothing selected: the label goes
    assert sink.truth() == []
    s.undo()
    s.undo()
    assert [a.label for a in sink.truth()] == ["cat"]


def test_anomaly_good_anomalous_and_regions(mk):
    s, sink = mk("anomaly")
    assert s.class_names == ["good", "anomalous"]
    s.key_down("1")
    assert [(a.label, a.bbox) for a in sink.truth()] == [("good", None)]
    drag(s, (100, 100), (200, 150))  # a region makes it anomalous: one update
    (a,) = sink.truth()
    assert (a.label, a.bbox, a.polygons) == ("anomalous", (50.0, 50.0, 50.0, 25.0), None)
    s.set_tool("polygon")
    for p in [(400, 400), (500, 400), (500, 500)]:
        click(s, p)
    s.key_down("Enter")  # closes the polygon being drawn
    (a,) = sink.truth()
    assert len(a.polygons) == 2 and a.polygons[0] == (50.0, 50.0, 100.0, 50.0, 100.0, 75.0, 50.0, 75.0)
    assert [w[0] for w in sink.take()] == ["add_annotation", "update_annotation", "update_annotation"]
    s.key_down("1")  # good again: the region goes
    (a,) = sink.truth()
    assert (a.label, a.bbox, a.polygons) == ("good", None, None)


# ---------------------------------------------------------------------------------------------- polygons
def test_polygon_close_by_first_vertex_tolerance_in_screen_px(mk):
    s, sink = mk("segmentation")
    s.zoom_at(0, 0, 4.0)  # scale 8: 8 screen px is 1 image px
    pts = [(100, 100), (300, 100), (300, 300)]
    for p in pts:
        click(s, p)
    click(s, (112, 100))  # 12 screen px from the first vertex: a fourth vertex, not a close
    assert len(s.interaction.polygon) == 4 and sink.take() == []
    click(s, (106, 104))  # within 8 screen px: closes
    (poly,) = sink.truth()
    assert poly.polygons[0] == pytest.approx((12.5, 12.5, 37.5, 12.5, 37.5, 37.5, 14.0, 12.5))


def test_polygon_escape_backspace_and_enter(mk):
    s, sink = mk("segmentation")
    for p in [(100, 100), (200, 100)]:
        click(s, p)
    s.key_down("Enter")  # 2 points: not closed, kept
    assert len(s.interaction.polygon) == 2 and "3 points" in s.message
    s.key_down("Escape")
    assert s.interaction.polygon == []
    for p in [(100, 100), (200, 100), (200, 200), (150, 300)]:
        click(s, p)
    s.key_down("Backspace")  # takes back the last vertex, deletes nothing
    s.key_down("z", ctrl=True)  # so does Ctrl+Z while drawing
    assert len(s.interaction.polygon) == 2 and sink.take() == []
    click(s, (150, 250))
    s.key_down("Enter")
    assert sink.truth()[0].polygons[0] == (50.0, 50.0, 100.0, 50.0, 75.0, 125.0)
    for p in [(100, 100), (200, 100), (300, 100)]:  # collinear: no area, not kept
        click(s, p)
    s.key_down("Enter")
    assert len(sink.truth()) == 1 and "no area" in s.message


def test_navigation_drops_an_unfinished_polygon(mk):
    s, sink = mk("segmentation")
    for p in [(100, 100), (200, 100), (200, 200)]:
        click(s, p)
    s.skip()
    assert s.interaction.polygon == [] and sink.take() == []


def test_select_tool_moves_polygons(mk):
    anns = {1: [Annotation("polygon", "cat", polygons=((10.0, 10.0, 50.0, 10.0, 30.0, 40.0),))]}
    s, sink = mk("segmentation", annotations=anns)
    s.set_tool("select")
    drag(s, (60, 40), (80, 60))  # press on the shape selects and moves it in one gesture
    assert sink.truth()[0].polygons[0] == (20.0, 20.0, 60.0, 20.0, 40.0, 50.0)
    assert [w[0] for w in sink.take()] == ["update_annotation"]


# ---------------------------------------------------------------------------------------------- brush
def test_brush_paints_a_mask_in_image_pixels_and_eraser_removes_it(mk):
    s, sink = mk("segmentation")
    s.set_tool("brush")
    s.set_brush_radius(5)
    s.zoom_at(0, 0, 2.0)  # scale 4: the radius stays 5 IMAGE px
    drag(s, (200, 200), (400, 200))  # image (50, 50) -> (100, 50)
    (m,) = sink.truth()
    assert m.kind == "mask" and m.mask["size"] == [300, 400]
    px = rle_decode(m.mask)
    assert px[50, 50] and px[50, 100] and px[53, 75]
    assert not px[57, 75] and not px[50, 107] and not px[50, 40]
    assert m.bbox == pytest.approx((45.0, 45.0, 61.0, 10.0), abs=1.0)
    sink.take()
    drag(s, (300, 160), (300, 240))  # paint again with the mask selected: merged, one update
    assert [w[0] for w in sink.take()] == ["update_annotation"]
    assert rle_decode(sink.truth()[0].mask)[58, 75]
    s.set_tool("eraser")
    s.set_brush_radius(40)
    drag(s, (200, 200), (400, 200))  # erases everything: the mask is deleted
    assert [w[0] for w in sink.take()] == ["delete_annotation"]
    assert sink.truth() == []
    s.undo()
    assert sink.truth()[0].kind == "mask"


def test_eraser_with_nothing_under_it_says_so(mk):
    s, sink = mk("segmentation")
    s.set_tool("eraser")
    drag(s, (200, 200), (260, 200))
    assert sink.take() == [] and "nothing to erase" in s.message


# ---------------------------------------------------------------------------------------------- proposals
def _props():
    return {
        1: [
            box(10, 10, 40, 40, proposal=True, score=0.9, author="run:7"),
            box(200, 100, 50, 50, "dog", proposal=True, score=0.6, author="run:7"),
        ]
    }


def test_accept_reject_and_correct_proposals(mk):
    s, sink = mk("detection", annotations=_props())
    p1, p2 = s.annotations
    s.key_down("a")  # nothing selected: the best proposal
    (acc,) = sink.truth()
    assert acc.id == p1.id and not acc.proposal and acc.author == "ann" and acc.score is None
    assert [w[0] for w in sink.take()] == ["update_annotation"]
    click(s, (450, 250))
    s.key_down("x")  # reject ("r" is the brush)
    assert sink.take() == [("delete_annotation", p2.id)]
    s.undo()  # the rejected proposal comes back as a proposal, by its model
    back = [a for a in sink.stored() if a.proposal]
    assert len(back) == 1 and back[0].author == "run:7" and back[0].score == 0.6


def test_editing_a_proposal_accepts_it(mk):
    s, sink = mk("detection", annotations=_props())
    click(s, (450, 250))
    drag(s, (450, 250), (470, 250))  # move it: corrected, so accepted
    (a,) = sink.truth()
    assert a.bbox == (210.0, 100.0, 50.0, 50.0) and a.author == "ann" and not a.proposal


def test_accept_all_is_one_undo_step(mk):
    s, sink = mk("detection", annotations=_props())
    assert s.accept_all() == 2
    assert len(sink.truth()) == 2 and [w[0] for w in sink.take()] == ["update_annotation"] * 2
    s.undo()
    assert sink.truth() == [] and len(sink.stored()) == 2


def test_classification_accept_over_an_existing_label(mk):
    anns = {1: [Annotation("label", "cat"), Annotation("label", "dog", proposal=True, score=0.8)]}
    s, sink = mk("classification", annotations=anns)
    s.accept_proposal()
    assert [a.label for a in sink.truth()] == ["dog"] and not sink.stored()[0].proposal
    assert [w[0] for w in sink.take()] == ["delete_annotation", "update_annotation"]
    s.undo()
    assert [a.label for a in sink.truth()] == ["cat"]
    assert [(a.label, a.proposal) for a in sink.stored() if a.proposal] == [("dog", True)]


def test_classification_key_on_a_proposal_accepts_it(mk):
    anns = {1: [Annotation("label", "dog", proposal=True, score=0.8)]}
    s, sink = mk("classification", annotations=anns)
    s.key_down("2")
    assert [(a.label, a.proposal, a.author) for a in sink.stored()] == [("dog", False, "ann")]
    assert len(sink.take()) == 1


# ---------------------------------------------------------------------------------------------- navigation
def test_next_previous_skip_goto_and_progress(mk):
    s, sink = mk("detection")
    assert s.progress_text.startswith("0 / 3 annotated")
    assert s.skip() and s.example.id == 2 and sink.take() == []
    assert s.previous() and s.example.id == 1
    assert not s.previous() and "first" in s.message
    s.key_down("n")  # browsing never writes
    s.key_down("ArrowLeft")
    s.key_down("PageDown")
    s.key_down("PageUp")
    assert sink.take() == [] and s.example.id == 1
    s.key_down("Enter")  # done: an empty detection example is a confirmed negative, then the next one
    assert sink.take() == [("set_status", 1, "annotated")] and s.example.id == 2
    assert s.progress_text == "1 / 3 annotated · new 2 · annotated 1 · reviewed 0"
    s.goto(3)
    assert not s.next() and "last" in s.message
    with pytest.raises(NotFoundError):
        s.goto(99)


def test_next_does_not_confirm_an_unlabelled_classification_example(mk):
    s, sink = mk("classification")
    s.next()
    s.previous()
    s.key_down("Enter")  # no class yet: nothing to be done with
    assert sink.take() == [] and "class first" in s.message and s.example.id == 1


def test_review_directory_marks_reviewed(mk):
    s, sink = mk(
        "detection",
        directories={2: ("review",), 3: ("review",)},
        directory="review",
        statuses={2: "annotated"},
    )
    assert s.ids == [2, 3]
    s.next()
    s.previous()
    assert sink.take() == []
    s.done()
    assert sink.take() == [("set_status", 2, "reviewed")]
    assert s.status_counts == {"new": 1, "annotated": 0, "reviewed": 1}  # example 3 is still new
    assert s.progress_text.startswith("1 / 2 annotated")


def test_empty_canvas_does_nothing(mk):
    s, sink = mk("detection", directories={2: ("review",)}, split="val")
    assert s.ids == [] and s.example is None
    drag(s, (100, 100), (200, 200))
    s.key_down("n")
    s.key_down("Enter")
    assert sink.take() == [] and s.progress_text.startswith("0 / 0 annotated")


# ---------------------------------------------------------------------------------------------- keys, layers
@pytest.mark.parametrize(
    "key,shift,ctrl,selected,action",
    [
        ("n", False, False, False, "next"),
        ("ArrowRight", False, False, False, "next"),
        ("PageDown", False, False, True, "next"),
        ("PageUp", False, False, True, "previous"),
        ("ArrowLeft", False, False, False, "previous"),
        ("ArrowLeft", False, False, True, "nudge:-1:0"),
        ("ArrowDown", True, False, True, "nudge:0:10"),
        ("ArrowRight", False, True, True, "grow:1:0"),
        ("ArrowUp", True, True, True, "grow:0:-10"),
        ("Tab", False, False, False, "select_next"),
        ("Tab", True, False, True, "select_previous"),
        ("7", False, False, False, "class:c7"),
        ("0", False, False, False, "class:c10"),
        ("Delete", False, False, False, "delete"),
        ("Backspace", False, False, False, "delete"),
        ("Escape", False, False, False, "cancel"),
        ("Enter", False, False, False, "done"),
        ("Enter", True, False, False, "mark_new"),
        ("z", False, True, False, "undo"),
        ("Z", True, True, False, "redo"),
        ("z", True, True, False, "redo"),
        ("y", False, True, False, "redo"),
        ("N", True, False, False, "next"),
        ("b", False, False, False, "tool:box"),
        ("p", False, False, False, "tool:polygon"),
        ("r", False, False, False, "tool:brush"),
        ("e", False, False, False, "tool:eraser"),
        ("v", False, False, False, "tool:select"),
        ("f", False, False, False, "reset_view"),
        (" ", False, False, False, "pan_hold"),
        ("?", True, False, False, "help"),
        ("u", False, False, False, "next_new"),
        ("q", False, False, False, None),
    ],
)
def test_keymap(key, shift, ctrl, selected, action):
    km = KeyMap([f"c{i}" for i in range(1, 13)])
    assert km.resolve(key, shift, ctrl, selected=selected) == action


def test_every_keymap_action_runs(mk):
    s, _ = mk("detection")
    for action in sorted(s.keymap.actions()):
        s.do(action)
    with pytest.raises(UnknownNameError):
        s.do("explode")


def test_dirty_layers(mk):
    s, _ = mk("detection", annotations={1: [box(100, 100, 50, 40)]})
    assert s.take_dirty() == {"image", "annotations", "interaction", "toolbar"}
    assert s.take_dirty() == set()
    s.pointer_move(10, 10)
    assert s.take_dirty() == set()  # hovering with the box tool changes nothing
    click(s, (250, 240))
    assert s.take_dirty() == {"interaction", "toolbar"}  # selection lives on the interaction layer
    s.pointer_down(10, 10)
    s.pointer_move(60, 60)
    assert s.take_dirty() == {"interaction"}
    s.pointer_up(60, 60)
    assert s.take_dirty() == {"annotations", "interaction", "toolbar"}
    s.wheel(-100)
    assert s.take_dirty() == {"image", "annotations", "interaction"}
    with pytest.raises(UnknownNameError):
        s.mark("background")


def test_not_a_sink_is_refused():
    with pytest.raises(ValidationError, match="lacks"):
        CanvasState(object())


# ---------------------------------------------------------------------------------------------- scale
def test_hit_testing_1000_boxes_under_a_millisecond(mk):
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1800, (1000, 2))
    wh = rng.uniform(5, 150, (1000, 2))
    anns = [box(float(x), float(y), float(w), float(h)) for (x, y), (w, h) in zip(xy, wh, strict=True)]
    s, _ = mk("detection", w=2000, h=2000, annotations={1: anns})
    s.hit_annotation(0, 0)  # builds the index
    times = []
    for x, y in rng.uniform(0, 1900, (300, 2)):
        t = time.perf_counter()
        s.hit_annotation(float(x), float(y))
        times.append(time.perf_counter() - t)
    assert statistics.median(times) < 1e-3


def test_state_modules_load_no_widget_library():
    import subprocess
    import sys

    code = (
        "import sys, workbench.widgets.canvas_state, workbench.widgets.render, workbench.widgets.sink; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'ipywidgets', 'ipycanvas', 'plotly', 'torch'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
