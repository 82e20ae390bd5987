"""Checkpoints run beside the edits (a thread of their own), never inside a commit."""

from __future__ import annotations

import shutil
import sqlite3
import time

from tests.helpers import box_batch
from workbench.data import Annotation, db
from workbench.data.workspace import Workspace


def test_edits_reach_the_database_file_without_a_checkpoint_in_the_commit(tmp_path, monkeypatch):
    monkeypatch.setattr(db, "CHECKPOINT_DELAY_S", 0.05)
    runs = []
    real = db._Checkpointer.run
    monkeypatch.setattr(db._Checkpointer, "run", lambda self: runs.append(1) or real(self))
    ws = Workspace(tmp_path / "ws")
    assert ws.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    ds = ws.create_dataset("d", "detection", classes="cat")
    (eid,) = ds.import_batch(box_batch(1, classes=("cat",)))
    runs.clear()
    for k in range(20):  # a burst of edits: one checkpoint after it, not one per edit
        ds.add_annotation(eid, Annotation("box", "cat", bbox=(1, 1, 2 + k % 5, 3)))
    deadline = time.monotonic() + 10
    while not runs and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    assert 1 <= len(runs) <= 3
    # the database file alone (no write-ahead log beside it) already holds every edit
    shutil.copy(tmp_path / "ws" / "workbench.db", tmp_path / "copy.db")
    alone = sqlite3.connect(tmp_path / "copy.db")
    assert alone.execute("SELECT COUNT(*) FROM annotations WHERE example_id=?", (eid,)).fetchone()[0] == 21
    alone.close()
    ws.close()


def test_a_checkpoint_for_a_removed_workspace_creates_nothing(tmp_path):
    ws = Workspace(tmp_path / "ws")
    checkpointer = ws.conn.checkpointer
    ws.close()
    shutil.rmtree(tmp_path / "ws")
    (tmp_path / "ws").mkdir()
    checkpointer.run()
    assert list((tmp_path / "ws").iterdir()) == []
