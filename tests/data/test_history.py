"""Annotation versions (a stale edit or delete is refused, never a silent overwrite) and the append-only
history every write path keeps (nothing deleted is lost for good), its CLI, restore, and the migration of a
workspace made before them."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.helpers import box_batch, png_bytes
from workbench.cli import main
from workbench.data import Annotation, ImportBatch, ImportItem, Workspace, aggregates, db
from workbench.data.history import annotation_from_json, entries, restore
from workbench.errors import EditConflictError, NotFoundError, ValidationError


@pytest.fixture
def two(ws):
    """The same dataset through two Workspace objects (two connections: two kernels or tabs)."""
    ds = ws.create_dataset("d", "detection", classes="cat,dog")
    ds.import_batch(box_batch(2))
    other = Workspace(ws.home)
    yield ds, other.dataset("d")
    other.close()


def _first(ds):
    return ds.example(ds.example_ids()[0]).annotations[0]


def test_a_stale_update_or_delete_is_refused_naming_the_annotation(two):
    a, b = two
    seen_a, seen_b = _first(a), _first(b)
    assert seen_a.version == seen_b.version == 1
    moved = a.update_annotation(seen_a.id, Annotation("box", "dog", bbox=(1, 2, 10, 8), version=seen_a.version),
                                "alice")
    assert moved.version == 2
    with pytest.raises(EditConflictError) as err:  # bob's drag from the view he loaded before alice's relabel
        b.update_annotation(seen_b.id, Annotation("box", "cat", bbox=(5, 5, 10, 8), version=seen_b.version), "bob")
    e = err.value
    assert (e.annotation_id, e.expected, e.current, e.by) == (seen_a.id, 1, 2, "alice")
    assert f"annotation {seen_a.id}" in str(e) and "alice" in str(e)
    with pytest.raises(EditConflictError):
        b.delete_annotation(seen_b.id, version=seen_b.version, author="bob")
    now = _first(a)
    assert (now.label, now.bbox, now.version, now.author) == ("dog", (1.0, 2.0, 10.0, 8.0), 2, "alice")
    b.delete_annotation(now.id, version=2, author="bob")  # from the current version: fine
    with pytest.raises(EditConflictError) as err:  # alice edits what bob deleted
        a.update_annotation(now.id, Annotation("box", "cat", bbox=(1, 2, 10, 8), version=2), "alice")
    assert err.value.current is None and "deleted" in str(err.value) and err.value.by == "bob"
    with pytest.raises(NotFoundError):  # never existed: not a conflict
        a.update_annotation(10_000, Annotation("box", "cat", bbox=(1, 2, 10, 8), version=1), "alice")
    assert aggregates.verify(a.conn) == []


def test_history_of_a_deleted_box_and_its_restore(ws):
    ds = ws.create_dataset("d", "detection", classes="cat,dog")
    (ex,) = ds.import_batch(box_batch(1))
    box = ds.add_annotation(ex, Annotation("box", "dog", bbox=(3, 4, 5, 6)), "alice")
    ds.delete_annotation(box.id, version=box.version, author="bob")
    assert len(ds.example(ex).annotations) == 1
    (added, deleted) = entries(ds, example_id=ex)
    assert (added.action, added.who, added.annotation_id) == ("add", "alice", box.id)
    assert (deleted.action, deleted.who, deleted.after) == ("delete", "bob", None)
    assert annotation_from_json(deleted.before).content() == box.content()
    assert deleted.before["author"] == "alice" and deleted.before["version"] == 1
    back = restore(ds, deleted.id, "carol")
    assert back.content() == box.content() and back.id != box.id
    assert sorted(a.content()["bbox"] for a in ds.example(ex).annotations)[1] == [3, 4, 5, 6]
    assert entries(ds)[-1].action == "add" and entries(ds)[-1].who == "carol"
    with pytest.raises(NotFoundError):
        restore(ds, 999, "carol")
    assert aggregates.verify(ws.conn) == []


def test_restore_of_an_edit_is_refused_when_the_shape_changed_again(ws):
    ds = ws.create_dataset("d", "detection", classes="cat,dog")
    (ex,) = ds.import_batch(box_batch(1))
    a = ds.example(ex).annotations[0]
    v2 = ds.update_annotation(a.id, Annotation("box", "dog", bbox=(1, 1, 4, 4), version=1), "alice")
    first_edit = entries(ds)[-1]
    ds.update_annotation(a.id, Annotation("box", "dog", bbox=(2, 2, 4, 4), version=v2.version), "bob")
    with pytest.raises(EditConflictError):
        restore(ds, first_edit.id, "alice")
    last = entries(ds)[-1]
    restored = restore(ds, last.id, "bob")  # the latest edit reverts fine
    assert restored.bbox == (1.0, 1.0, 4.0, 4.0) and ds.example(ex).annotations[0].bbox == (1.0, 1.0, 4.0, 4.0)


def test_every_write_path_keeps_history_in_its_own_transaction(ws):
    cls = ws.create_dataset("c", "classification", classes="a,b")
    (ex,) = cls.import_batch(ImportBatch(items=[ImportItem("x.png", data=png_bytes(), annotations=[
        Annotation("label", "a")])]))
    assert entries(cls) == []  # a bulk import of new examples replaces nothing
    cls.set_label(ex, "b", author="alice")  # the label replacement: the old label is deleted
    assert [(e.action, e.who, (e.before or e.after)["label"]) for e in entries(cls)] == [
        ("delete", "alice", "a"), ("add", "alice", "b")]
    det = ws.create_dataset("d", "detection", classes="cat,dog")
    ids = det.import_batch(box_batch(3))
    props = det.replace_annotations(ids[0], [Annotation("box", "dog", bbox=(1, 1, 3, 3), score=0.9, proposal=True)],
                                    author="run:1", proposals=True)
    det.replace_annotations(ids[0], [Annotation("box", "cat", bbox=(2, 2, 3, 3), score=0.8, proposal=True)],
                            author="run:2", proposals=True)  # mining replaces earlier proposals
    gone = [e for e in entries(det) if e.action == "delete"]
    assert [(e.annotation_id, e.who) for e in gone] == [(props[0].id, "run:2")]
    truth = det.example(ids[0]).truth()
    det.replace_annotations(ids[0], [], author="dave")  # truth replaced by nothing
    assert {e.annotation_id for e in entries(det) if e.action == "delete" and e.who == "dave"} == {truth[0].id}
    victim = det.example(ids[1]).annotations[0]
    det.delete_examples([ids[1]], author="frank")  # a deleted example's shapes are kept in the history
    assert [(e.action, e.who) for e in entries(det, example_id=ids[1])] == [("delete", "frank")]
    assert entries(det, example_id=ids[1])[0].before["x"] == victim.bbox[0]
    u = det.example(ids[2]).annotations[0]
    det.update_annotation(u.id, Annotation("box", "dog", bbox=u.bbox), "erin")
    assert entries(det)[-1].before["label"] == "cat" and entries(det)[-1].after["label"] == "dog"
    n = len(entries(det))
    with pytest.raises(ValidationError):  # a refused write leaves no history either
        det.update_annotation(u.id, Annotation("box", "zebra", bbox=u.bbox), "erin")
    assert len(entries(det)) == n
    with pytest.raises(RuntimeError):
        with ws.transaction():
            det.delete_annotation(u.id, author="erin")
            raise RuntimeError("rolled back")
    assert len(entries(det)) == n and det.example(ids[2]).annotations  # history rolled back with the edit


def test_the_history_is_append_only(ws):
    ds = ws.create_dataset("d", "detection", classes="cat")
    (ex,) = ds.import_batch(box_batch(1, classes=("cat",)))
    ds.delete_annotation(ds.example(ex).annotations[0].id)
    for sql in ("UPDATE annotation_history SET who='x'", "DELETE FROM annotation_history"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            with ws.transaction():
                ws.conn.execute(sql)
    assert len(entries(ds)) == 1


def test_history_cli(ws, capsys, monkeypatch):
    ds = ws.create_dataset("d", "detection", classes="cat,dog")
    ids = ds.import_batch(box_batch(2))
    a = ds.example(ids[1]).annotations[0]
    ds.update_annotation(a.id, Annotation("box", "dog", bbox=a.bbox, version=1), "alice")
    with pytest.raises(ValidationError):  # an author is a name: no escape sequence is written
        ds.delete_annotation(a.id, author="bob\x1b[31m")
    import workbench.data.dataset as dataset_module
    import workbench.data.history as history_module

    with monkeypatch.context() as m:  # written as a version from before authors were checked wrote it
        m.setattr(history_module, "check_author", lambda who: who)
        m.setattr(dataset_module, "check_author", lambda who: who)
        ds.delete_annotation(a.id, author="bob\x1b[31m")
    home = str(ws.home)
    assert main(["--home", home, "history", "d"]) == 0
    out = capsys.readouterr().out
    assert "update" in out and "delete" in out and "alice" in out and "\x1b" not in out and "bob\\x1b[31m" in out
    assert main(["--home", home, "history", "d", "--example", str(ids[0]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["--home", home, "history", "d", "--example", str(ids[1]), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["action"] for r in rows] == ["update", "delete"] and rows[1]["before"]["label"] == "dog"
    assert main(["--home", home, "history", "d", "--restore", str(rows[1]["id"]), "--author", "carol"]) == 0
    assert "restored" in capsys.readouterr().out
    (back,) = ds.example(ids[1]).annotations
    assert (back.label, back.bbox) == ("dog", a.bbox)
    assert main(["--home", home, "history", "nope"]) == 2


def test_a_workspace_from_the_previous_version_gains_versions_and_history_on_open(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ds = ws.create_dataset("d", "detection", classes="cat,dog")
    ids = ds.import_batch(box_batch(3))
    ws.close()
    conn = sqlite3.connect(tmp_path / "ws" / "workbench.db")  # as schema version 3 left it
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger' AND name LIKE 'hist%'"):
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("DROP TABLE annotation_history")
    conn.execute("DROP TABLE hist_off")
    conn.execute("ALTER TABLE annotations DROP COLUMN version")
    conn.execute("DROP TABLE pending_imports")
    conn.execute("UPDATE meta SET value='3' WHERE key='schema_version'")
    conn.execute("DELETE FROM meta WHERE key='history'")
    conn.commit()
    conn.close()
    ws = Workspace(tmp_path / "ws")
    ds = ws.dataset("d")
    a = ds.example(ids[0]).annotations[0]
    assert a.version == 1
    ds.delete_annotation(a.id, version=1, author="alice")
    assert [(e.action, e.who) for e in entries(ds)] == [("delete", "alice")]
    assert ws.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(db.SCHEMA_VERSION)
    assert aggregates.verify(ws.conn) == [] and ws.check() == []
    ws.close()


def test_deleting_a_dataset_takes_its_history_along(ws):
    ds = ws.create_dataset("d", "detection", classes="cat,dog")
    (ex,) = ds.import_batch(box_batch(1))
    ds.delete_annotation(ds.example(ex).annotations[0].id)
    ws.delete_dataset("d")
    again = ws.create_dataset("d", "detection", classes="cat,dog")
    assert entries(again) == [] and ws.conn.execute("SELECT COUNT(*) FROM annotation_history").fetchone()[0] == 0
