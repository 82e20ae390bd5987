"""Checkpoints run beside the edits (a thread of their own), never inside a commit."""

from __future__ import annotations

import shutil
import sqlite3
import threading
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
    checkpointer.run()  # (closed: does nothing)
    db._Checkpointer(tmp_path / "ws" / "workbench.db").run()  # another connection's, still scheduled
    assert list((tmp_path / "ws").iterdir()) == []


def test_closing_waits_for_a_checkpoint_under_way(tmp_path, monkeypatch):
    """A checkpoint running when the workspace closes has closed its own connection when close returns:
    a connection closed later would remove the log files under whoever removes the folder (as
    ``shutil.rmtree`` found: a file listed, gone when unlinked)."""
    ws = Workspace(tmp_path / "ws")
    ws.create_dataset("d", "detection", classes="cat")
    checkpointer = ws.conn.checkpointer
    inside, release, order = threading.Event(), threading.Event(), []
    real_connect = sqlite3.connect

    class Slow:
        def __init__(self, conn):
            self.conn = conn

        def execute(self, sql):
            inside.set()
            release.wait(10)
            return self.conn.execute(sql)

        def close(self):
            order.append("checkpoint closed")
            self.conn.close()

    monkeypatch.setattr(db.sqlite3, "connect", lambda *a, **k: Slow(real_connect(*a, **k)))
    runner = threading.Thread(target=checkpointer.run)
    runner.start()
    assert inside.wait(10)
    closer = threading.Thread(target=lambda: (ws.close(), order.append("workspace closed")))
    closer.start()
    closer.join(0.3)
    assert closer.is_alive()  # waiting for the checkpoint
    release.set()
    closer.join(10)
    runner.join(10)
    assert order == ["checkpoint closed", "workspace closed"]
    checkpointer.schedule()  # after close: no timer
    assert checkpointer.timer is None
