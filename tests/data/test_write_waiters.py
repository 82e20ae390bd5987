"""A long import pauses between its transactions only while another Workbench writer waits for the lock:
writers announce their wait (data/write_waiters.py), in another process or another thread, and the importer
counts them after each commit; announcements of dead processes and stale ones are ignored."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from benchmarks.bench_store import make_coco
from tests.helpers import box_batch
from workbench.data import Annotation, Workspace, aggregates, staged, write_waiters
from workbench.data.transfer import import_source

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}

ANNOUNCER = """
import sys
from pathlib import Path
from workbench.data import write_waiters
p = write_waiters.announce(Path(sys.argv[1]))
print(p, flush=True)
sys.stdin.read()  # until the test closes our stdin
write_waiters.withdraw(p)
"""

EDITOR = """
import sys
from workbench.data import Annotation, Workspace
ws = Workspace(sys.argv[1])
ds = ws.dataset("d")
print("open", flush=True)
ds.add_annotation(int(sys.argv[2]), Annotation("box", "cat", bbox=(2, 2, 3, 3)))
print("done", flush=True)
ws.close()
"""


def _until(cond, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def counted(monkeypatch):
    """Small transactions, a tiny pause; counts transactions and pauses made for a waiter."""
    monkeypatch.setattr(staged, "CHUNK_ROWS", 200)
    monkeypatch.setattr(staged, "FIRST_ROWS", 50)
    monkeypatch.setattr(staged, "PAUSE_S", 0.001)
    monkeypatch.setattr(staged, "BUSY_WINDOW_S", 0.0)  # pause only at commits that find a waiter
    monkeypatch.setattr(staged, "_BUSY_UNTIL", {})
    seen = {"tx": 0, "pauses": 0}
    monkeypatch.setattr(staged, "ON_CHUNK", lambda _s: seen.__setitem__("tx", seen["tx"] + 1))
    monkeypatch.setattr(staged, "ON_PAUSE", lambda _s: seen.__setitem__("pauses", seen["pauses"] + 1))
    return seen


def _import(ws: Workspace, tmp_path: Path, name: str, seen: dict) -> None:
    src = tmp_path / "src"
    coco = src / "annotations.json" if (src / "annotations.json").exists() else make_coco(src, 40, 30)
    seen["tx"] = seen["pauses"] = 0
    ids = import_source(ws, name, coco, "coco", images_dir=src / "images").ids
    assert len(ids) == 40 and seen["tx"] > 5  # staged: several short transactions
    assert aggregates.verify(ws.conn) == [] and staged.pending(ws.conn) == []


def test_an_import_pauses_after_every_commit_while_another_process_waits_and_never_when_nobody_does(
        tmp_path, counted):
    ws = Workspace(tmp_path / "ws")
    folder = ws.conn.waiters
    _import(ws, tmp_path, "alone", counted)
    assert counted["pauses"] == 0 and not folder.exists()  # nobody waited: no pause, not even the folder
    child = subprocess.Popen([sys.executable, "-c", ANNOUNCER, str(folder)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert child.stdout is not None and child.stdin is not None
        announced = Path(child.stdout.readline().strip())
        assert announced.parent == folder and announced.name.startswith(f"{child.pid}-")
        assert write_waiters.waiting(folder) == 1
        _import(ws, tmp_path, "watched", counted)
        assert counted["pauses"] == counted["tx"]  # one pause after each commit while it waits
        child.stdin.close()
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
    assert not announced.exists() and write_waiters.waiting(folder) == 0
    _import(ws, tmp_path, "after", counted)
    assert counted["pauses"] == 0
    ws.close()


def test_after_a_waiter_the_import_keeps_pausing_for_the_busy_window(tmp_path, counted, monkeypatch):
    ws = Workspace(tmp_path / "ws")
    monkeypatch.setattr(staged, "BUSY_WINDOW_S", 3600.0)
    note = write_waiters.announce(ws.conn.waiters)  # one waiter, seen at the first commit only
    count = staged.ON_CHUNK
    assert count is not None
    monkeypatch.setattr(staged, "ON_CHUNK",  # the waiter gets in at the first pause: gone at the second commit
                        lambda s: (count(s), counted["tx"] >= 2 and write_waiters.withdraw(note)))
    _import(ws, tmp_path, "d", counted)
    assert write_waiters.waiting(ws.conn.waiters) == 0
    assert counted["pauses"] == counted["tx"]  # every commit after it paused: writers are at work
    monkeypatch.setattr(staged, "_BUSY_UNTIL", {})  # the window over: full speed again
    _import(ws, tmp_path, "e", counted)
    assert counted["pauses"] == 0
    ws.close()


def test_an_edit_in_another_process_announces_its_wait_only_while_the_lock_is_held(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ds = ws.create_dataset("d", "detection", classes="cat")
    (eid,) = ds.import_batch(box_batch(1, classes=("cat",)))
    ds.add_annotation(eid, Annotation("box", "cat", bbox=(1, 1, 2, 2)))  # uncontended writes announce nothing
    folder = ws.conn.waiters
    assert folder == tmp_path / "ws" / "workbench.db-waiting" and not folder.exists()
    ws.conn.execute("BEGIN IMMEDIATE")  # a long write of this process
    child = subprocess.Popen([sys.executable, "-c", EDITOR, str(tmp_path / "ws"), str(eid)],
                             stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert child.stdout is not None
        _until(lambda: write_waiters.waiting(folder) == 1, "the editor's announcement")
        (entry,) = os.listdir(folder)
        assert entry.startswith(f"{child.pid}-")
    finally:
        ws.conn.execute("ROLLBACK")
    try:
        assert child.stdout.read().split() == ["open", "done"] and child.wait(30) == 0
    finally:
        if child.poll() is None:
            child.kill()
    assert os.listdir(folder) == []  # withdrawn once it held the lock
    assert len(ds.example(eid).annotations) == 3
    ws.close()


def test_a_thread_waiting_for_another_threads_transaction_is_counted(tmp_path):
    a, b = Workspace(tmp_path / "ws"), Workspace(tmp_path / "ws")
    ds = a.create_dataset("d", "detection", classes="cat")
    (eid,) = ds.import_batch(box_batch(1, classes=("cat",)))
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with a.transaction():
            inside.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    inside.wait(30)
    editor = threading.Thread(target=b.dataset("d").add_annotation,
                              args=(eid, Annotation("box", "cat", bbox=(2, 2, 3, 3))))
    editor.start()
    try:
        _until(lambda: write_waiters.waiting(a.conn.waiters) == 1, "the waiting thread's announcement")
    finally:
        release.set()
        holder.join(30)
        editor.join(30)
    assert write_waiters.waiting(a.conn.waiters) == 0 and not a.conn.waiters.exists()  # counted, no file
    assert len(ds.example(eid).annotations) == 2
    a.close()
    b.close()


def test_announcements_of_dead_processes_are_removed_and_stale_ones_ignored(tmp_path, counted):
    ws = Workspace(tmp_path / "ws")
    folder = ws.conn.waiters
    folder.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    gone = folder / f"{int(dead.stdout)}-1-0"  # a waiter killed while it waited
    gone.touch()
    old = write_waiters.announce(folder)  # a live process id, but older than any wait: a recycled id
    assert old is not None
    os.utime(old, (time.time() - write_waiters.STALE_S - 60,) * 2)
    (folder / "notes.txt").touch()  # not an announcement
    assert write_waiters.waiting(folder) == 0
    assert not gone.exists() and old.exists()
    _import(ws, tmp_path, "d", counted)
    assert counted["pauses"] == 0
    write_waiters.withdraw(old)
    ws.close()
