"""Two tabs (two canvases over two connections to one workspace) editing the same shape: a stale edit is
refused in the tab that made it, which reloads the shape; undo never overwrites the other tab's later edit."""

from __future__ import annotations

import pytest

from workbench.data import Annotation, ImportBatch, ImportItem, Workspace
from workbench.data.history import entries
from workbench.errors import ConflictError, EditConflictError
from workbench.widgets.canvas_state import CanvasState
from workbench.widgets.sink import MemoryImage, MemorySink


def _drag(s, a, b):
    s.pointer_down(*a)
    s.pointer_move((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
    s.pointer_move(*b)
    s.pointer_up(*b)


def _click(s, p):
    s.pointer_down(*p)
    s.pointer_up(*p)


@pytest.fixture
def tabs(ws, png):
    """Tab A and tab B: two Workspace objects (two SQLite connections, as two kernels have) on one folder,
    each with its canvas on the same example holding one cat box at image (50, 50, 50, 25)."""
    ds = ws.create_dataset("d", "detection", classes="cat,dog")
    ds.import_batch(ImportBatch(items=[ImportItem("im.png", data=png(400, 300), split="train",
                                                  annotations=[Annotation("box", "cat", bbox=(50, 50, 50, 25))])]))
    ws_b = Workspace(ws.home)
    a = CanvasState(ds, user="alice")
    b = CanvasState(ws_b.dataset("d"), user="bob")
    for s in (a, b):
        s.set_tool("select")
    yield ds, a, b
    ws_b.close()


def _stored(ds):
    (ann,) = ds.example(ds.example_ids()[0]).annotations
    return ann


def test_a_stale_drag_is_refused_in_its_tab_which_reloads_the_shape(tabs):
    ds, a, b = tabs
    _click(a, (150, 125))  # canvas px (the 400x300 image is drawn at scale 2): inside the box
    a.key_down("2")  # alice relabels it: dog
    assert (_stored(ds).label, _stored(ds).version) == ("dog", 2)
    _click(b, (150, 125))
    with pytest.raises(EditConflictError) as err:
        _drag(b, (150, 125), (250, 225))  # bob moves the cat he still sees
    assert err.value.annotation_id == _stored(ds).id and err.value.current == 2 and err.value.by == "alice"
    assert str(_stored(ds).id) in b.message and "alice" in b.message
    s = _stored(ds)
    assert (s.label, s.bbox, s.version) == ("dog", (50.0, 50.0, 50.0, 25.0), 2)  # alice's relabel kept
    assert [(x.label, x.bbox, x.version) for x in b.annotations] == [("dog", (50.0, 50.0, 50.0, 25.0), 2)]
    assert not b.can_undo  # nothing was recorded for the refused edit
    _drag(b, (150, 125), (250, 225))  # from the reloaded view his move goes through
    s = _stored(ds)
    assert (s.label, s.bbox, s.version, s.author) == ("dog", (100.0, 100.0, 50.0, 25.0), 3, "bob")


def test_undo_never_overwrites_the_other_tabs_later_edit(tabs):
    ds, a, b = tabs
    _click(a, (150, 125))
    a.key_down("2")
    b.reload()
    _click(b, (150, 125))
    _drag(b, (150, 125), (250, 225))  # bob moves alice's dog
    with pytest.raises(EditConflictError):
        a.undo()  # alice's undo would put back the cat where it was: bob's move would be lost
    s = _stored(ds)
    assert (s.label, s.bbox, s.author) == ("dog", (100.0, 100.0, 50.0, 25.0), "bob")
    assert "reloaded" in a.message and [x.bbox for x in a.annotations] == [(100.0, 100.0, 50.0, 25.0)]
    assert not a.can_undo and not a.can_redo
    b.undo()  # bob's own undo is his: fine
    assert _stored(ds).bbox == (50.0, 50.0, 50.0, 25.0)


def test_undo_refused_after_the_tab_took_over_someone_elses_change(tabs):
    """Alice edits, Bob edits after her, Alice reloads and edits again: undoing her new edit is fine, but
    undoing further (her first edit) would overwrite Bob's change, so it is refused."""
    ds, a, b = tabs
    _click(a, (150, 125))
    a.key_down("2")  # alice: dog
    b.reload()
    _click(b, (150, 125))
    _drag(b, (150, 125), (250, 225))  # bob: moved
    a.reload()
    _click(a, (250, 225))
    a.key_down("1")  # alice: back to cat, at bob's place
    a.undo()
    assert (_stored(ds).label, _stored(ds).bbox) == ("dog", (100.0, 100.0, 50.0, 25.0))
    with pytest.raises(ConflictError):
        a.undo()
    assert (_stored(ds).label, _stored(ds).bbox) == ("dog", (100.0, 100.0, 50.0, 25.0))


def test_a_stale_delete_is_refused_and_an_undone_delete_comes_back(tabs):
    ds, a, b = tabs
    _click(a, (150, 125))
    _click(b, (150, 125))
    a.key_down("2")
    with pytest.raises(EditConflictError):
        b.key_down("Delete")  # bob deletes the cat he sees: alice made it a dog meanwhile
    assert _stored(ds).label == "dog" and b.annotations[0].label == "dog"
    _click(b, (150, 125))
    b.key_down("Delete")
    assert ds.example(ds.example_ids()[0]).annotations == ()
    with pytest.raises(EditConflictError):
        a.key_down("1")  # alice relabels the dog bob deleted
    assert a.annotations == [] and "deleted" in a.message
    actions = [(e.action, e.who) for e in entries(ds)]
    assert actions == [("update", "alice"), ("delete", "bob")]
    b.undo()  # bob brings it back (a new id): the history says so
    assert _stored(ds).label == "dog"
    assert [(e.action, e.who) for e in entries(ds)][-1] == ("add", "bob")


def test_the_memory_sink_keeps_the_same_contract(png):
    sink = MemorySink("detection", ["cat", "dog"],
                      [MemoryImage(png(400, 300), 400, 300, annotations=[Annotation("box", "cat", bbox=(50, 50, 50, 25))])])
    a, b = CanvasState(sink, user="alice"), CanvasState(sink, user="bob")
    for s in (a, b):
        s.set_tool("select")
        _click(s, (150, 125))
    a.key_down("2")
    with pytest.raises(EditConflictError):
        _drag(b, (150, 125), (250, 225))
    (s,) = sink.example(1).annotations
    assert (s.label, s.bbox, s.version) == ("dog", (50.0, 50.0, 50.0, 25.0), 2)
    assert b.annotations[0].label == "dog"


def test_a_class_label_over_one_the_tab_never_saw_is_refused(ws, png):
    ds = ws.create_dataset("c", "classification", classes="cat,dog")
    ds.import_batch(ImportBatch(items=[ImportItem("im.png", data=png(400, 300), split="train")]))
    ws_b = Workspace(ws.home)
    a, b = CanvasState(ds, user="alice"), CanvasState(ws_b.dataset("c"), user="bob")
    a.key_down("1")  # alice: cat
    with pytest.raises(EditConflictError, match="added by alice"):
        b.key_down("2")  # bob still sees no label: his dog would silently replace alice's cat
    ex = ds.example(ds.example_ids()[0])
    assert ex.label == "cat" and b.example.label == "cat" and [x.label for x in b.annotations] == ["cat"]
    b.key_down("2")  # from the reloaded view: an edit of alice's label, by version
    assert ds.example(ex.id).label == "dog"
    with pytest.raises(EditConflictError):
        a.undo()  # alice's undo (delete her cat) would delete bob's dog
    assert ds.example(ex.id).label == "dog"
    ws_b.close()
