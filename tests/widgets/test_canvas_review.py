"""Review flow on the canvas: proposals that repeat a labelled shape merge on accept; a save the store fails
keeps the shape on screen as unsaved with a message; messages clear on the next action."""

from __future__ import annotations

import sqlite3

import pytest

from workbench.data.records import Annotation
from workbench.errors import WorkbenchError
from workbench.widgets.canvas_state import CanvasSettings
from workbench.widgets.review import box_iou, review_overlay
from workbench.widgets.scene import annotation_scene


def drag(s, a, b):
    s.pointer_down(*a)
    s.pointer_move((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
    s.pointer_move(*b)
    s.pointer_up(*b)


def box(x, y, w, h, label="cat", **kw) -> Annotation:
    return Annotation("box", label, bbox=(x, y, w, h), **kw)


def test_box_iou():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0


def _reviewed(mk, **kw):
    anns = {
        1: [
            box(100, 100, 50, 40),  # the person's box
            box(102, 101, 50, 40, proposal=True, score=0.9),  # the model says the same: already labelled
            box(104, 100, 48, 40, label="dog", proposal=True, score=0.8),  # same place, other class: new
            box(300, 200, 40, 40, proposal=True, score=0.7),  # elsewhere: new
        ]
    }
    return mk("detection", annotations=anns, **kw)


def test_already_labelled_proposals_are_tagged_and_merge_on_accept(mk):
    s, sink = _reviewed(mk)
    truth, dup, other_class, elsewhere = s.annotations
    assert [p.id for p in s.already_labelled()] == [dup.id]
    scene = review_overlay(s, annotation_scene(s))
    assert [t.text for t in scene.texts].count("already labelled") == 1
    s.select(dup.id)
    s.key_down("a")
    assert sink.take() == [("delete_annotation", dup.id)]  # merged: no duplicate box
    assert [(a.label, a.bbox) for a in sink.truth()] == [("cat", (100.0, 100.0, 50.0, 40.0))]
    assert "already labelled" in s.message
    s.undo()
    assert any(a.id != truth.id and a.proposal and a.label == "cat" for a in sink.stored())


def test_accept_all_merges_the_repeats_and_accepts_the_rest(mk):
    s, sink = _reviewed(mk)
    assert s.accept_all() == 3
    assert sorted((a.label, a.bbox) for a in sink.truth()) == [
        ("cat", (100.0, 100.0, 50.0, 40.0)),
        ("cat", (300.0, 200.0, 40.0, 40.0)),
        ("dog", (104.0, 100.0, 48.0, 40.0)),
    ]
    assert [p for p in sink.stored() if p.proposal] == []
    assert "1 already labelled, merged" in s.message
    s.undo()
    assert len([p for p in sink.stored() if p.proposal]) == 3 and len(sink.truth()) == 1


def test_merge_threshold_is_a_setting(mk):
    s, _ = _reviewed(mk, settings=CanvasSettings(merge_iou=0.99))
    assert s.already_labelled() == []


class Failing:
    """Makes the sink's next writes fail the way a real store can."""

    def __init__(self, sink, exc: BaseException) -> None:
        self.sink, self.exc = sink, exc
        self.orig = sink.add_annotation

    def __enter__(self):
        def fail(*_a, **_k):
            raise self.exc

        self.sink.add_annotation = fail
        return self

    def __exit__(self, *exc):
        del self.sink.add_annotation  # back to the class method
        return False


@pytest.mark.parametrize(
    "exc", [sqlite3.OperationalError("database is locked"), OSError(28, "No space left on device")]
)
def test_a_failed_save_keeps_the_shape_as_unsaved(mk, exc):
    s, sink = mk("detection")
    with Failing(sink, exc), pytest.raises(WorkbenchError, match="not saved") as info:
        drag(s, (100, 100), (200, 150))
    assert "kept on screen as unsaved" in str(info.value)
    assert sink.truth() == [] and s.annotations == [] and not s.can_undo
    assert [a.bbox for a in s.unsaved] == [(50.0, 50.0, 50.0, 25.0)] and s.unsaved_count == 1
    scene = review_overlay(s, annotation_scene(s))
    assert any("(unsaved)" in t.text for t in scene.texts)
    assert sink.example(1).status == "new"
    s.next()
    s.previous()  # still there after browsing away and back
    assert len(s.unsaved) == 1
    s.key_down("s", ctrl=True)  # the store works again: Ctrl+S saves it
    assert [a.bbox for a in sink.truth()] == [(50.0, 50.0, 50.0, 25.0)] and s.unsaved == []
    assert "saved 1" in s.message and sink.example(1).status == "annotated"
    s.undo()
    assert sink.truth() == []


def test_a_failed_save_in_the_view_is_a_message_not_an_exception(mk):
    pytest.importorskip("ipycanvas")
    from workbench.widgets.canvas import AnnotationCanvas

    _, sink = mk("detection")
    c = AnnotationCanvas(sink, user="ann")
    with Failing(sink, sqlite3.OperationalError("disk I/O error")):
        c._guard(c.state.pointer_down)(100, 100)
        c._guard(c.state.pointer_move)(200, 150)
        c._guard(c.state.pointer_up)(200, 150)
    assert "not saved" in c.message.value and "disk I/O error" in c.message.value
    assert "1 UNSAVED" in c.progress_label.value
    c.next_button.click()  # the next action clears the message
    assert c.message.value == ""


def test_messages_clear_on_the_next_action(mk):
    s, _ = mk("detection")
    s.key_down("p")  # no polygon tool here
    assert "no polygon tool" in s.message
    s.key_down("n")
    assert s.message == ""
    s.previous()
    s.previous()
    assert "first" in s.message
    s.pointer_down(10, 10)
    assert s.message == ""
    s.pointer_up(10, 10)


def test_open_in_canvas_scrolls_it_into_view(tmp_path):
    pytest.importorskip("ipycanvas")
    from workbench.data import Workspace
    from workbench.data.transfer import add_sample
    from workbench.widgets.app import WorkbenchApp

    with Workspace(tmp_path / "ws") as ws:
        ds, ids = add_sample(ws, "shapes", "shapes-detection", count=4, seed=0)
        app = WorkbenchApp(ds, user="ana")
        sent = []
        app.canvas.focus.send = lambda msg: sent.append(msg)
        app.tabs.selected_index = 3
        app.open_example(ids[2])
        assert app.canvas.state.example.id == ids[2] and app.tabs.selected_index == 0
        assert sent == [{"scroll": True}]


def test_view_highlights_the_examples_class_and_space_release(mk):
    pytest.importorskip("ipycanvas")
    from workbench.widgets.canvas import AnnotationCanvas

    _, sink = mk("classification")
    c = AnnotationCanvas(sink, user="ann")

    def highlighted():
        return [n for n, b in c.class_buttons.items() if b.layout.border]

    assert highlighted() == []  # no class yet: nothing highlighted (not the first class)
    c._guard(c.state.key_down)("2")  # dog, and on to image 2
    assert c.state.example.id == 2 and highlighted() == []  # image 2 has no class: not "the last used"
    c.prev_button.click()
    assert highlighted() == ["dog"]
    assert "wb-shortcuts" in c.shortcuts._dom_classes and c.shortcuts.layout.display == "none"
    c.help_button.click()
    assert c.shortcuts.layout.display == "block" and "next image still new" in c.shortcuts.value
    c._guard(c.state.key_down)(" ")  # Space held: pan
    assert c.state.space_pan
    c.focus._handle(c.focus, {"event": "space_up"}, [])  # the page reports the release
    assert not c.state.space_pan
