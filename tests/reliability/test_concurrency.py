"""Several processes on one workspace at once: four writers annotating their own and the same examples,
one importing, one reading stats. No lost update (each writer's committed edits are all there, counted
exactly), no "database is locked" reaching anyone, the box everybody edits ends as one writer's last
committed edit (never a mix; an edit made from a stale view is refused, never a silent overwrite, and every
committed one is in the history), readers never see half an import. And the ways a clash can end: a
ConflictError that says what to do when the lock outlasts the wait, an EditConflictError for an edit or an
undo over another writer's later change or delete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from tests.helpers import box_batch
from tests.reliability.killing import ROOT
from tests.reliability.workers import BATCH_SIZE, BATCHES, CLASSES, EDITS, contested_content
from workbench.data import Annotation, Workspace, db
from workbench.data.history import entries
from workbench.errors import ConflictError, EditConflictError
from workbench.widgets.canvas_state import CanvasState

WRITERS = 4


def _setup(home):
    with Workspace(home) as ws:
        ds = ws.create_dataset("d", "detection", classes=",".join(CLASSES))
        ids = ds.import_batch(box_batch(2 * WRITERS + 3, classes=("cat",), size=(64, 48)))
        contested_example = ids[-1]
        contested = ds.example(contested_example).annotations[0].id
        meta = {
            "own": {str(i): ids[2 * i : 2 * i + 2] for i in range(WRITERS)},
            "shared": ids[2 * WRITERS : 2 * WRITERS + 2],
            "contested_example": contested_example,
            "contested": contested,
            "examples": len(ids),
            "annotations": {e.id: len(e.annotations) for e in ds.examples()},
        }
    (home.parent / "meta.json").write_text(json.dumps(meta))
    return meta


def _start(kind, home, out, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    err = open(out.with_suffix(".stderr"), "w")  # noqa: SIM115 - closed after the process ends
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.workers", kind, str(home), str(out), *map(str, args)],
        cwd=ROOT,
        env=env,
        stderr=err,
    )
    return proc, err


def test_writers_importer_and_reader_at_once_lose_nothing(tmp_path):
    home = tmp_path / "ws"
    meta = _setup(home)
    procs = {}
    for i in range(WRITERS):
        procs[f"writer{i}"] = _start("writer", home, tmp_path / f"writer{i}.json", i)
    procs["importer"] = _start("importer", home, tmp_path / "importer.json")
    procs["reader"] = _start("reader", home, tmp_path / "reader.json")
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready-*"))) < len(procs):  # all opened the workspace and wait
        assert time.monotonic() < deadline and all(p.poll() is None for p, _ in procs.values()), (
            "a worker died"
        )
        time.sleep(0.01)
    (tmp_path / "go").touch()
    try:
        for name, (proc, _) in procs.items():
            if name != "reader":
                proc.wait(timeout=240)
        (tmp_path / "stop").touch()
        procs["reader"][0].wait(timeout=60)
    finally:
        for proc, err in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            err.close()
    for name, (proc, _) in procs.items():
        stderr = (tmp_path / f"{name}.stderr").read_text()
        assert proc.returncode == 0, f"{name}: {stderr[-2000:]}"
        assert "locked" not in stderr.lower() and "Traceback" not in stderr, f"{name}: {stderr[-2000:]}"
    results = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in procs}
    spans = [r["span"] for name, r in results.items() if name != "reader"]
    assert max(s for s, _ in spans) < min(e for _, e in spans), f"the writers did not overlap: {spans}"
    order = [
        i for _, i in sorted((u["t"], i) for i in range(WRITERS) for u in results[f"writer{i}"]["updates"])
    ]
    assert sum(a != b for a, b in zip(order, order[1:], strict=False)) >= WRITERS, (
        "contested edits never interleaved"
    )

    with Workspace(home) as ws:
        ds = ws.dataset("d")
        assert ws.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok" and ws.check() == []
        present = {a.id: a for e in ds.examples() for a in e.annotations}
        contested = present[meta["contested"]]
        for i in range(WRITERS):
            r = results[f"writer{i}"]
            assert len(r["added"]) == EDITS // 2 and len(set(r["added"])) == len(r["added"])
            kept = set(r["added"]) - set(r["deleted"])
            assert kept <= set(present), f"writer{i} lost {sorted(kept - set(present))}"
            assert not set(r["deleted"]) & set(present)
            by_author = sum(1 for a in present.values() if a.author == f"writer{i}" and a.id != contested.id)
            assert by_author == len(kept), f"writer{i}: {by_author} boxes in the store, {len(kept)} committed"
        for n, ex in enumerate(meta["shared"]):  # every writer's boxes on the shared examples, none lost
            adds_here = WRITERS * sum(1 for s in range(EDITS) if s % 4 == 1 and (s // 4) % 2 == n)
            assert len(ds.example(ex).annotations) == meta["annotations"][ex] + adds_here

        # the contested box: the whole of one writer's last edit, by that writer (the last committed edit
        # wins; an edit made from a stale view was refused, and every committed one is in the history)
        committed = sum(len(results[f"writer{i}"]["updates"]) for i in range(WRITERS))
        kept = [e for e in entries(ds, annotation_id=contested.id) if e.action == "update"]
        assert len(kept) == committed and contested.version == 1 + committed
        assert [e.who for e in kept].count("writer0") == len(results["writer0"]["updates"])
        lasts = {i: results[f"writer{i}"]["updates"][-1] for i in range(WRITERS) if results[f"writer{i}"]["updates"]}
        winner = int(contested.author.removeprefix("writer"))
        label, box = contested_content(winner, lasts[winner]["seq"])
        assert (contested.label, tuple(contested.bbox)) == (label, box)
        latest = max(lasts.values(), key=lambda u: u["t"])
        assert lasts[winner] is latest or latest["t"] - lasts[winner]["t"] < 0.05

        # the importer's batches are whole and the reader never saw a part of one
        assert [b["examples"] for b in results["importer"]["batches"]] == [BATCH_SIZE] * BATCHES
        assert {d["name"]: d["examples"] for d in ds.directories()} == {
            f"imp{k}": BATCH_SIZE for k in range(1, BATCHES + 1)
        }
        assert ds.count() == meta["examples"] + BATCHES * BATCH_SIZE
    assert results["reader"]["reads"] > 0 and results["reader"]["torn"] == []
    print(
        "\n"
        + "; ".join(
            [
                f"writer{i}: {len(results[f'writer{i}']['added'])} boxes added, {len(results[f'writer{i}']['deleted'])} "
                f"deleted, {len(results[f'writer{i}']['updates'])} edits of the contested box"
                for i in range(WRITERS)
            ]
            + [
                f"importer: {BATCHES} x {BATCH_SIZE} images",
                f"reader: {results['reader']['reads']} stats reads",
                f"contested box won by writer{winner}",
            ]
        )
    )


@pytest.fixture
def short_waits(monkeypatch):
    """Give up on a held lock after 0.5 s instead of a minute."""
    monkeypatch.setattr(db, "BUSY_TIMEOUT_S", 0.05)
    monkeypatch.setattr(db, "MAX_RETRY_S", 0.5)


def test_a_lock_held_past_the_wait_is_a_clear_conflict_error(tmp_path, short_waits):
    a, b = Workspace(tmp_path / "w"), Workspace(tmp_path / "w")
    ds_a = a.create_dataset("d", "detection", classes="cat")
    (eid,) = ds_a.import_batch(box_batch(1, classes=("cat",)))
    ds_b = b.dataset("d")
    a.conn.execute("BEGIN IMMEDIATE")  # another process in the middle of a long write
    try:
        t0 = time.monotonic()
        with pytest.raises(ConflictError) as info:
            ds_b.add_annotation(eid, Annotation("box", "cat", bbox=(1, 1, 3, 3)))
        assert time.monotonic() - t0 < 5
        msg = str(info.value)
        assert "\n" not in msg and "locked by another process" in msg and "try again" in msg
        assert "database is locked" not in msg
    finally:
        a.conn.execute("ROLLBACK")
    ds_b.add_annotation(eid, Annotation("box", "cat", bbox=(1, 1, 3, 3)))  # the same call, once free
    assert len(ds_a.example(eid).annotations) == 2
    a.close()
    b.close()


def test_a_short_lock_is_waited_out_not_reported(tmp_path):
    a, b = Workspace(tmp_path / "w"), Workspace(tmp_path / "w")
    ds_a = a.create_dataset("d", "detection", classes="cat")
    (eid,) = ds_a.import_batch(box_batch(1, classes=("cat",)))
    a.conn.execute("BEGIN IMMEDIATE")
    threading.Timer(0.3, lambda: a.conn.execute("COMMIT")).start()
    b.dataset("d").add_annotation(eid, Annotation("box", "cat", bbox=(1, 1, 3, 3)))
    assert len(b.dataset("d").example(eid).annotations) == 2
    a.close()
    b.close()


def test_same_box_edited_in_two_canvases_the_stale_edit_is_refused(tmp_path):
    a, b = Workspace(tmp_path / "w"), Workspace(tmp_path / "w")
    ds_a = a.create_dataset("d", "detection", classes="cat,dog")
    (eid,) = ds_a.import_batch(box_batch(1, classes=("cat",), size=(64, 48)))
    ca, cb = CanvasState(ds_a, user="alice"), CanvasState(b.dataset("d"), user="bob")
    orig = ca.truth()[0]
    assert cb.truth()[0] == orig
    from dataclasses import replace

    ca.commit_edit(orig, replace(orig, label="dog", bbox=(1.0, 1.0, 5.0, 5.0)))
    with pytest.raises(EditConflictError, match=f"annotation {orig.id} was changed by alice"):
        cb.commit_edit(cb.truth()[0], replace(cb.truth()[0], bbox=(9.0, 9.0, 3.0, 3.0)))  # bob's view is stale
    (final,) = ds_a.example(eid).annotations
    assert (final.label, final.bbox, final.author) == ("dog", (1.0, 1.0, 5.0, 5.0), "alice")  # alice's edit kept
    assert cb.truth()[0].label == "dog" and "alice" in cb.message  # bob's tab reloaded it and says why
    cb.commit_edit(cb.truth()[0], replace(cb.truth()[0], bbox=(9.0, 9.0, 3.0, 3.0)))  # from the reloaded view
    with pytest.raises(EditConflictError):
        ca.undo()  # alice's undo would put back what she replaced, over bob's later edit: refused
    (final,) = ds_a.example(eid).annotations
    assert (final.label, final.bbox, final.author) == ("dog", (9.0, 9.0, 3.0, 3.0), "bob")
    a.close()
    b.close()


def test_editing_a_box_another_writer_deleted_is_a_clear_conflict(tmp_path):
    a, b = Workspace(tmp_path / "w"), Workspace(tmp_path / "w")
    ds_a = a.create_dataset("d", "detection", classes="cat")
    (eid,) = ds_a.import_batch(box_batch(1, classes=("cat",), size=(64, 48)))
    ca, cb = CanvasState(ds_a, user="alice"), CanvasState(b.dataset("d"), user="bob")
    target = cb.truth()[0]
    ca.select(ca.truth()[0].id)
    ca.delete_selected()
    from dataclasses import replace

    with pytest.raises(EditConflictError, match=f"annotation {target.id} was deleted") as info:
        cb.commit_edit(target, replace(target, bbox=(2.0, 2.0, 4.0, 4.0)))
    assert "\n" not in str(info.value) and cb.truth() == []  # bob's tab reloaded: the box is gone
    assert ds_a.example(eid).annotations == ()  # the delete stands, nothing half-written
    a.close()
    b.close()
