"""The store: datasets, classes, imports (all-or-nothing), editing, directories, snapshots, durability."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.helpers import box_batch, png_bytes
from workbench.data import Annotation, ImportBatch, ImportItem, SplitSettings, Workspace
from workbench.data.records import ClassDef
from workbench.errors import (
    AlreadyExistsError,
    ImageError,
    NotFoundError,
    TooFewExamplesError,
    ValidationError,
)


def store_state(ws: Workspace) -> tuple:
    """Everything visible in the store, for 'unchanged' assertions."""
    tables = ["datasets", "classes", "examples", "annotations", "blobs", "directories", "directory_members",
              "snapshots"]
    rows = tuple(tuple(map(tuple, ws.conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall())) for t in tables)
    return rows, frozenset(ws.blobs.all())


def test_workspace_is_wal_and_creates_folder(tmp_path):
    w = Workspace(tmp_path / "new")
    assert (tmp_path / "new" / "workbench.db").exists()
    assert w.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    w.close()


def test_default_home_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "h"))
    with Workspace() as w:
        assert w.home == tmp_path / "h"


@pytest.mark.parametrize("dtype", ["classification", "detection", "segmentation", "anomaly"])
def test_create_each_type(ws, dtype):
    ds = ws.create_dataset("d", dtype, classes=None if dtype == "anomaly" else "a,b=#00ff00")
    assert ds.type == dtype
    names = [c.name for c in ds.classes]
    assert names == (["good", "anomalous"] if dtype == "anomaly" else ["a", "b"])
    if dtype != "anomaly":
        assert ds.classes[1].color == "#00ff00"
        assert ds.classes[0].color.startswith("#")


def test_create_errors(ws):
    ws.create_dataset("d", "detection")
    with pytest.raises(AlreadyExistsError):
        ws.create_dataset("d", "detection")
    with pytest.raises(ValidationError, match="unknown dataset type"):
        ws.create_dataset("e", "regression")
    with pytest.raises(ValidationError, match="repeat"):
        ws.create_dataset("f", "detection", classes="a,a")
    with pytest.raises(ValidationError, match="colour"):
        ws.create_dataset("g", "detection", classes="a=red")
    with pytest.raises(NotFoundError, match="datasets here: d"):
        ws.dataset("nope")


def test_classes_add_rename_recolor(ws):
    ds = ws.create_dataset("d", "detection", classes="cat")
    ids = ds.import_batch(box_batch(3, classes=("cat",)))
    ds.add_class("dog")
    ds.rename_class("cat", "kitten")
    ds.set_class_color("dog", "#123456")
    assert [(c.name, c.color) for c in ds.classes][1] == ("dog", "#123456")
    assert ds.example(ids[0]).annotations[0].label == "kitten"  # renamed everywhere
    with pytest.raises(AlreadyExistsError):
        ds.add_class("dog")
    with pytest.raises(NotFoundError):
        ds.rename_class("cat", "x")


def test_import_keeps_bytes_and_records_provenance(ws):
    ds = ws.create_dataset("d", "detection")
    batch = box_batch(4)
    ids = ds.import_batch(batch, author="alice")
    for i, item in zip(ids, batch.items, strict=True):
        e = ds.example(i)
        assert ds.load_bytes(e.blob) == item.data
        assert (e.width, e.height) == (40, 30)
        assert e.status == "annotated"
        assert e.annotations[0].author == "alice" and e.annotations[0].created_at
    assert [c.name for c in ds.classes] == ["cat", "dog"]


def test_images_stored_once_by_hash(ws):
    ds = ws.create_dataset("d", "detection")
    data = png_bytes(seed=7)
    ds.import_batch(ImportBatch([ImportItem("a.png", data=data), ImportItem("b.png", data=data)]))
    assert len(ws.blobs.all()) == 1
    assert ds.count() == 2


def _bad_batches():
    good = png_bytes()
    yield "corrupt image", ImportBatch([ImportItem("ok.png", data=good), ImportItem("bad.png", data=good[:40])]), ImageError
    yield "not an image", ImportBatch([ImportItem("x.jpg", data=b"hello world")]), ImageError
    yield "box outside", ImportBatch([ImportItem("a.png", data=good, annotations=[
        Annotation("box", "cat", bbox=(30.0, 0.0, 10.0, 5.0))])], [ClassDef("cat", "#ff0000")]), ValidationError
    yield "unknown class", ImportBatch([ImportItem("a.png", data=good, annotations=[
        Annotation("box", "zebra", bbox=(0.0, 0.0, 10.0, 5.0))])]), ValidationError
    yield "wrong kind", ImportBatch([ImportItem("a.png", data=good, annotations=[
        Annotation("label", "cat")])], [ClassDef("cat", "#ff0000")]), ValidationError
    yield "wrong type", ImportBatch([ImportItem("a.png", data=good)], type="classification"), ValidationError


@pytest.mark.parametrize("name,batch,err", list(_bad_batches()), ids=[b[0] for b in _bad_batches()])
def test_bad_import_changes_nothing(ws, name, batch, err):
    ds = ws.create_dataset("d", "detection", classes="cat")
    ds.import_batch(box_batch(3, classes=("cat",)))
    before = store_state(ws)
    with pytest.raises(err) as exc:
        ds.import_batch(batch)
    assert store_state(ws) == before
    msg = str(exc.value)
    assert "\n" not in msg and ("record" in msg or ".png" in msg or ".jpg" in msg or "source" in msg)


def test_failure_inside_transaction_rolls_back_and_removes_new_images(ws, monkeypatch):
    ds = ws.create_dataset("d", "detection")
    before = store_state(ws)
    calls = {"n": 0}
    orig = ds._ann_row

    def boom(*a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("disk on fire")
        return orig(*a, **k)

    monkeypatch.setattr(ds, "_ann_row", boom)
    with pytest.raises(RuntimeError):
        ds.import_batch(box_batch(8))
    assert store_state(ws) == before


def test_edit_annotations_one_transaction_each(ws):
    ds = ws.create_dataset("d", "detection", classes="cat,dog")
    (eid,) = ds.import_batch(ImportBatch([ImportItem("a.png", data=png_bytes(40, 30))]))
    assert ds.example(eid).status == "new"
    a = ds.add_annotation(eid, Annotation("box", "cat", bbox=(1, 1, 5, 5)), author="bob")
    assert a.id and a.author == "bob"
    assert ds.example(eid).status == "annotated"
    u = ds.update_annotation(a.id, Annotation("box", "dog", bbox=(2, 2, 6, 6)), author="carol")
    got = ds.example(eid).annotations[0]
    assert (got.label, got.bbox, got.author, got.id) == ("dog", (2, 2, 6, 6), "carol", u.id)
    with pytest.raises(ValidationError, match="outside"):
        ds.update_annotation(a.id, Annotation("box", "dog", bbox=(35, 2, 20, 6)))
    assert ds.example(eid).annotations[0].bbox == (2, 2, 6, 6)
    ds.delete_annotation(a.id)
    assert ds.example(eid).annotations == ()
    with pytest.raises(NotFoundError):
        ds.delete_annotation(a.id)
    ds.set_status(eid, "reviewed")
    assert ds.example(eid).status == "reviewed"


def test_set_label_replaces_previous(ws):
    ds = ws.create_dataset("c", "classification", classes="a,b")
    (eid,) = ds.import_batch(ImportBatch([ImportItem("a.png", data=png_bytes())]))
    ds.set_label(eid, "a")
    ds.set_label(eid, "b")
    assert [x.label for x in ds.example(eid).annotations] == ["b"]
    assert ds.example(eid).label == "b"


@pytest.mark.parametrize("n,val,test", [(5, 0, 0), (10, 1, 1), (25, 2, 2), (999, 99, 99), (1000, 100, 100),
                                        (1500, 100, 100)])
def test_split_sizes(ws, n, val, test):
    ds = ws.create_dataset("d", "detection", classes="cat")
    items = [ImportItem(f"{i}.png", data=png_bytes(8, 8, seed=i)) for i in range(n)]
    ds.import_batch(ImportBatch(items))
    assert (ds.count(split="val"), ds.count(split="test"), ds.count(split="train")) == (val, test, n - val - test)


def test_split_settings_per_dataset(ws):
    ds = ws.create_dataset("d", "detection", splits=SplitSettings(val_fraction=0.2, val_max=3, test_fraction=0.3))
    ds.import_batch(ImportBatch([ImportItem(f"{i}.png", data=png_bytes(8, 8, seed=i)) for i in range(20)]))
    assert (ds.count(split="val"), ds.count(split="test")) == (3, 6)


def test_splits_stable_and_reproducible(tmp_path):
    def build(home, chunks):
        w = Workspace(home)
        ds = w.create_dataset("d", "detection")
        start = 0
        for c in chunks:
            ds.import_batch(ImportBatch([ImportItem(f"{i}.png", data=png_bytes(8, 8, seed=i))
                                         for i in range(start, start + c)]))
            start += c
        out = {e.file_name: e.split for e in ds.examples()}
        w.close()
        return out

    a = build(tmp_path / "a", [300])
    b = build(tmp_path / "b", [300])
    assert a == b  # same seed, same data: same splits
    grown = build(tmp_path / "c", [100, 50, 150, 400])
    steps = build(tmp_path / "d", [100])
    # adding examples never moves an existing one out of val or test
    for name, split in steps.items():
        assert grown[name] == split
    assert sum(s == "val" for s in grown.values()) == 70


def test_training_examples_refuse_fewer_than_10(ws):
    ds = ws.create_dataset("d", "detection")
    ds.import_batch(box_batch(9))
    with pytest.raises(TooFewExamplesError, match="at least 10"):
        ds.training_examples()
    ds.import_batch(box_batch(20, seed=1))
    assert len(ds.training_examples()) >= 10


def test_mirror_shares_annotations_and_remove_keeps_example(ws):
    ds = ws.create_dataset("d", "detection")
    ids = ds.import_batch(box_batch(6))
    assert ds.mirror("review", ids[:3]) == 3
    assert ds.mirror("review", ids[:3]) == 0  # idempotent
    ds.mirror("hard", ids[1:2])
    ann = ds.example(ids[1]).annotations[0]
    ds.update_annotation(ann.id, Annotation("box", "dog", bbox=(0, 0, 3, 3)), author="x")
    for d in ("review", "hard"):
        (e,) = [e for e in ds.examples(directory=d) if e.id == ids[1]]
        assert e.annotations[0].label == "dog"
    ds.remove_from_directory("review", [ids[0]])
    assert ds.example_ids(directory="review") == ids[1:3]
    assert ds.count() == 6
    assert {d["name"]: d["examples"] for d in ds.directories()} == {"hard": 1, "review": 2}
    with pytest.raises(NotFoundError, match="directories: hard, review"):
        ds.example_ids(directory="nope")


def test_copy_without_annotations(ws):
    ds = ws.create_dataset("d", "detection")
    ids = ds.import_batch(box_batch(3))
    new = ds.copy_without_annotations(ids, directory="relabel")
    assert len(new) == 3 and not set(new) & set(ids)
    for old, n in zip(ids, new, strict=True):
        eo, en = ds.example(old), ds.example(n)
        assert en.blob == eo.blob and en.split == eo.split
        assert en.annotations == () and en.status == "new"
    assert len(ws.blobs.all()) == 3  # same image bytes, stored once
    ds.add_annotation(new[0], Annotation("box", "cat", bbox=(0, 0, 2, 2)))
    assert len(ds.example(ids[0]).annotations) == 1  # original untouched


def test_snapshots_same_content_same_id_and_exact_readback(ws):
    ds = ws.create_dataset("d", "detection")
    ids = ds.import_batch(box_batch(12))
    s1 = ds.snapshot("v1")
    assert ds.snapshot("again").id == s1.id
    snap = ds.load_snapshot(s1.id)
    assert tuple(ds.examples()) == snap.examples
    assert snap.info.examples == 12 and snap.info.message == "v1"
    ds.add_annotation(ids[0], Annotation("box", "dog", bbox=(0, 0, 4, 4)))
    ds.delete_annotation(ds.example(ids[1]).annotations[0].id)
    new = ds.import_batch(box_batch(2, seed=5))
    ds.delete_examples([ids[2]])
    s2 = ds.snapshot("v2")
    assert s2.id != s1.id
    d = ds.diff(s1.id, s2.id)
    assert d["added"] == new and d["removed"] == [ids[2]]
    assert d["annotations_changed"] == [ids[0], ids[1]]
    assert [s.id for s in ds.snapshots()] == [s1.id, s2.id]
    assert ds.load_snapshot(s1.id[:8]).id == s1.id  # prefix works
    # snapshot of a directory
    ds.mirror("r", ids[3:5])
    sd = ds.snapshot(directory="r")
    assert sd.examples == 2 and sd.directory == "r"
    # snapshot images survive deletion + gc
    ds.delete_examples(ds.example_ids())
    ws.gc(grace_s=0)
    for e in ds.load_snapshot(s1.id).examples:
        assert ws.load_bytes(e.blob)


def test_same_content_in_two_workspaces_same_id(tmp_path):
    ids = []
    for name in ("a", "b"):
        with Workspace(tmp_path / name) as w:
            ds = w.create_dataset("d", "detection")
            ds.import_batch(box_batch(5))
            ids.append(ds.snapshot(name).id)
    assert ids[0] == ids[1]


def test_gc_removes_orphan_files_only(ws):
    ds = ws.create_dataset("d", "detection")
    ds.import_batch(box_batch(2))
    orphan, _ = ws.blobs.put(b"not referenced")
    assert ws.gc(grace_s=3600)["files_removed"] == 0  # too young
    res = ws.gc(grace_s=0)
    assert res["files_removed"] == 1 and not ws.blobs.exists(orphan)
    assert ws.check() == []


WRITER = textwrap.dedent("""
    import sys
    from workbench.data import Workspace, Annotation
    w = Workspace(sys.argv[1])
    ds = w.dataset("d")
    eid = ds.example_ids()[0]
    i = 0
    while True:
        a = ds.add_annotation(eid, Annotation("box", "cat", bbox=(1.0, 1.0, 2.0 + (i % 20), 2.0)), author="w")
        print(a.id, flush=True)
        i += 1
""")


def test_kill_and_reopen_keeps_every_committed_edit(tmp_path):
    home = tmp_path / "ws"
    with Workspace(home) as w:
        w.create_dataset("d", "detection", classes="cat").import_batch(
            ImportBatch([ImportItem("a.png", data=png_bytes(40, 30))]))
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    for round_ in range(3):
        p = subprocess.Popen([sys.executable, str(script), str(home)], stdout=subprocess.PIPE, text=True)
        acked = []
        deadline = time.monotonic() + 20
        while len(acked) < 30 + 20 * round_ and time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            acked.append(int(line))
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        assert acked, p.returncode
        with Workspace(home) as w:
            assert w.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            present = {a.id for a in w.dataset("d").example(1).annotations}
            assert set(acked) <= present


def test_two_connections_interleave(tmp_path):
    a, b = Workspace(tmp_path / "w"), Workspace(tmp_path / "w")
    ds_a = a.create_dataset("d", "detection", classes="cat")
    (eid,) = ds_a.import_batch(ImportBatch([ImportItem("a.png", data=png_bytes(40, 30))]))
    ds_b = b.dataset("d")
    for i in range(20):
        (ds_a if i % 2 else ds_b).add_annotation(eid, Annotation("box", "cat", bbox=(0, 0, 1 + i, 1)))
    assert len(a.dataset("d").example(eid).annotations) == 20
    a.close()
    b.close()


def test_reader_sees_consistent_state_while_writer_holds_lock(tmp_path):
    a = Workspace(tmp_path / "w")
    ds = a.create_dataset("d", "detection", classes="cat")
    ds.import_batch(box_batch(3, classes=("cat",)))
    b = Workspace(tmp_path / "w")
    with a.transaction():
        a.conn.execute("DELETE FROM annotations")
        assert b.dataset("d").count() == 3
        assert sum(len(e.annotations) for e in b.dataset("d").examples()) == 3  # WAL: reader not blocked
    assert sum(len(e.annotations) for e in b.dataset("d").examples()) == 0
    a.close()
    b.close()


def test_newer_schema_refused(tmp_path):
    Workspace(tmp_path / "w").close()
    c = sqlite3.connect(tmp_path / "w" / "workbench.db")
    c.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    c.commit()
    c.close()
    with pytest.raises(Exception, match="newer"):
        Workspace(tmp_path / "w")


def test_import_into_directory(ws):
    ds = ws.create_dataset("d", "detection")
    ids = ds.import_batch(box_batch(4), directory="batch1")
    assert ds.example_ids(directory="batch1") == ids


def test_path_items_read_from_disk(ws, tmp_path):
    p = Path(tmp_path / "x.png")
    p.write_bytes(png_bytes())
    ds = ws.create_dataset("d", "detection")
    (eid,) = ds.import_batch(ImportBatch([ImportItem("x.png", path=p)]))
    assert ds.load_bytes(ds.example(eid).blob) == p.read_bytes()
    with pytest.raises(ValidationError, match="cannot read"):
        ds.import_batch(ImportBatch([ImportItem("y.png", path=tmp_path / "missing.png")]))


def test_a_polygon_stored_before_a_check_existed_still_reads(ws):
    """Polygons with no area are refused now; a workspace that holds one (an older Workbench let YOLO
    imports through) still opens that example, and a new one is refused."""
    ds = ws.create_dataset("seg", "segmentation")
    ds.add_class("cat")
    (eid,) = ds.import_batch(ImportBatch([ImportItem("a.png", data=png_bytes(40, 40))]))
    good = ds.add_annotation(eid, Annotation("polygon", "cat", polygons=((2.0, 2.0, 9.0, 2.0, 9.0, 9.0),)))
    flat = '{"polygons": [[2.0, 2.0, 5.0, 5.0, 9.0, 9.0]]}'
    with ds._tx():
        ws.conn.execute("UPDATE annotations SET geometry=? WHERE id=?", (flat, good.id))
    (ann,) = ds.example(eid).annotations
    assert ann.polygons == ((2.0, 2.0, 5.0, 5.0, 9.0, 9.0),) and ann.area == 0
    with pytest.raises(ValidationError, match="no area"):
        Annotation("polygon", "cat", polygons=((2.0, 2.0, 5.0, 5.0, 9.0, 9.0),))
