"""Who is waiting for the workspace's write lock: a cheap signal across processes, for the long import.

A long import (:mod:`.staged`) writes in short transactions. It used to sleep after every one of them so
that a writer waiting for the lock (an edit in another tab, another process) got in; with nobody waiting,
that sleep was half of the import's time. Now Workbench's own writers say when they wait, and the importer
pauses only then:

* a writer whose ``BEGIN IMMEDIATE`` finds the lock taken creates an empty file in the folder
  ``<database>-waiting`` next to the database, named after its process id, before it waits, and removes it
  once it holds the lock (or gave up). Writers that get the lock at once create nothing: an uncontended
  edit costs two extra ``PRAGMA`` statements, no file. A thread waiting for another thread of its process
  to finish a transaction (:func:`.db.transaction` runs one at a time per process) is counted in
  :data:`threads_waiting` instead;
* the importer looks at the folder after each commit (one ``scandir``; a missing folder is an empty one)
  and pauses only while a waiter is there (:func:`waiting`).

A file left by a process that died (``kill -9`` mid-wait) is ignored, and removed, when its process id is
not running; one older than :data:`STALE_S` (longer than any writer waits; a recycled process id) is
ignored too. Writers that are not Workbench (the ``sqlite3`` shell, another program) announce nothing:
they still get the lock through SQLite's busy handler, between two of the importer's transactions when
its ``BEGIN IMMEDIATE`` happens to lose the race, or once the import ends, so they may wait longer than a
Workbench edit does.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path

__all__ = ["STALE_S", "folder_for", "announce", "withdraw", "waiting", "threads_waiting"]

STALE_S = 180.0  # an announcement older than this is ignored: nobody waits so long (db.MAX_RETRY_S: 60 s)
_SUFFIX = "-waiting"
_serial = itertools.count()


def folder_for(database: Path) -> Path:
    """The folder where writers of ``database`` announce that they wait."""
    return database.with_name(database.name + _SUFFIX)


def announce(folder: Path | None) -> Path | None:
    """Say that this thread waits for the write lock: returns the file to :func:`withdraw` (None: nowhere
    to say it; the writer waits all the same)."""
    if folder is None:
        return None
    path = folder / f"{os.getpid()}-{threading.get_ident()}-{next(_serial)}"
    try:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileNotFoundError:
            folder.mkdir(exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError:  # a read-only or vanished folder: waiting works, only the importer's courtesy is lost
        return None
    os.close(fd)
    return path


def withdraw(path: Path | None) -> None:
    """The waiter holds the lock now (or stopped waiting)."""
    if path is not None:
        try:
            os.unlink(path)
        except OSError:
            pass


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name != "posix":  # no signal 0 there (os.kill would end the process): trust the file's age
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        return True
    except OSError:
        return False
    return True


class _ThreadsWaiting:
    """Threads of this process waiting for another thread's transaction (``db.transaction`` runs one at a
    time per process, whatever the database): counted here, no file."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0

    def __enter__(self) -> None:
        with self.lock:
            self.count += 1

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.count -= 1


threads_waiting = _ThreadsWaiting()


def waiting(folder: Path | None) -> int:
    """How many writers wait for the lock now: this process's threads waiting for another one's transaction
    (:data:`threads_waiting`) and live processes' announcements in ``folder`` (stale ones are removed)."""
    live = threads_waiting.count
    if folder is None:
        return live
    try:
        entries = os.scandir(folder)
    except OSError:  # no folder: nobody ever waited
        return live
    with entries:
        for entry in entries:
            try:
                pid = int(entry.name.split("-", 1)[0])
            except ValueError:
                continue  # not an announcement
            if not _running(pid):
                withdraw(Path(entry.path))
                continue
            try:
                if time.time() - entry.stat().st_mtime > STALE_S:
                    continue
            except OSError:
                continue  # withdrawn meanwhile
            live += 1
    return live
