"""The canvas state against the real SQLite store (``workbench.data.Dataset``), not the in-memory fake."""

from __future__ import annotations

import pytest

from workbench.data import Annotation, ImportBatch, ImportItem
from workbench.widgets.canvas_state import CanvasSettings, CanvasState
from workbench.widgets.sink import AnnotationSink


def _dataset(ws, png, type_, classes, anns=None):
    ds = ws.create_dataset(f"d-{type_}", type_, classes=classes)
    items = [
        ImportItem(
            file_name=f"im{i}.png",
            data=png(400, 300, color=(i, 2 * i, 3 * i)),
            annotations=list((anns or {}).get(i, [])),
            split="train",
        )
        for i in range(3)
    ]
    ds.import_batch(ImportBatch(items=items))
    return ds


def _drag(s, a, b):
    s.pointer_down(*a)
    s.pointer_move(*b)
    s.pointer_up(*b)


def test_dataset_is_an_annotation_sink(ws, png):
    assert isinstance(_dataset(ws, png, "detection", "cat,dog"), AnnotationSink)


def test_box_edits_and_undo_in_the_store(ws, png):
    ds = _dataset(ws, png, "detection", "cat,dog")
    s = CanvasState(ds, user="ann")
    ex = s.example.id
    _drag(s, (100, 100), (200, 150))
    (a,) = ds.example(ex).annotations
    assert a.bbox == (50.0, 50.0, 50.0, 25.0) and a.author == "ann"
    assert ds.example(ex).status == "annotated" and s.progress_text.startswith("1 / 3 annotated")
    _drag(s, (150, 120), (170, 140))  # inside the selected box: moves it (and selects it on purpose)
    s.key_down("2")
    s.key_down("Delete")
    assert ds.example(ex).annotations == ()
    s.undo()
    (b,) = ds.example(ex).annotations
    assert (b.label, b.bbox) == ("dog", (60.0, 60.0, 50.0, 25.0))  # SQLite may hand out the same id again
    s.undo()
    s.undo()
    s.undo()
    assert ds.example(ex).annotations == ()
    s.redo()
    assert ds.example(ex).annotations[0].bbox == (50.0, 50.0, 50.0, 25.0)
    s.next()
    s.next()  # browsing: example 2 stays new
    assert ds.progress() == (1, 3)
    s.previous()
    s.done()  # example 2 has no boxes: confirmed as a negative
    assert ds.progress() == (2, 3) and ds.example(s.ids[1]).status == "annotated"


@pytest.mark.parametrize("type_,classes", [("classification", "cat,dog"), ("anomaly", None)])
def test_label_replacement_matches_the_store(ws, png, type_, classes):
    ds = _dataset(ws, png, type_, classes)
    s = CanvasState(ds, user="ann", settings=CanvasSettings(advance_on_class=False))
    ex = s.example.id
    s.key_down("1")
    s.key_down("2")
    s.key_down("2")
    stored = ds.example(ex).annotations
    assert [a.label for a in stored] == [s.class_names[1]] and s.annotations == list(stored)
    s.undo()
    assert [a.label for a in ds.example(ex).annotations] == [s.class_names[0]]
    if type_ == "anomaly":
        _drag(s, (100, 100), (200, 150))
        (a,) = ds.example(ex).annotations
        assert (a.label, a.bbox) == ("anomalous", (50.0, 50.0, 50.0, 25.0))


def test_proposals_accept_and_reject_in_the_store(ws, png):
    props = {
        0: [
            Annotation("box", "cat", bbox=(10.0, 10.0, 40.0, 40.0), proposal=True, score=0.9),
            Annotation("box", "dog", bbox=(200.0, 100.0, 50.0, 50.0), proposal=True, score=0.3),
        ]
    }
    ds = _dataset(ws, png, "detection", "cat,dog", props)
    s = CanvasState(ds, user="ann")
    ex = s.example.id
    assert s.accept_proposal() and s.reject_proposal()
    (a,) = ds.example(ex).annotations
    assert (a.label, a.proposal, a.author) == ("cat", False, "ann")
    s.undo()
    s.undo()
    assert sorted(a.proposal for a in ds.example(ex).annotations) == [True, True]
