"""SQLite plumbing: the schema, connections in WAL mode, and one-transaction-per-action with retries.

Every user action runs inside ``transaction(conn)``: ``BEGIN IMMEDIATE`` (so two writers never deadlock
on a lock upgrade), commit on success, rollback on any exception. "database is locked" is retried with
bounded exponential backoff and never reaches the user unless the wait runs out.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from ..errors import ConflictError
from . import aggregates, history, staged, write_waiters

__all__ = ["SCHEMA_VERSION", "connect", "transaction", "retrying"]

SCHEMA_VERSION = 4  # 2: maintained aggregates (aggregates.py); 3: what sources say (_KEPT_COLUMNS);
#                    4: annotation versions + history (history.py), pending imports (staged.py)
BUSY_TIMEOUT_S = 10.0
MAX_RETRY_S = 60.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS datasets (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    settings TEXT NOT NULL DEFAULT '{}',
    augment TEXT,
    created_at TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS classes (
    id INTEGER PRIMARY KEY,
    dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    color TEXT NOT NULL,
    position INTEGER NOT NULL,
    UNIQUE (dataset_id, name)
);
CREATE TABLE IF NOT EXISTS blobs (
    hash TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    format TEXT NOT NULL,
    phash TEXT
);
CREATE TABLE IF NOT EXISTS examples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    blob TEXT NOT NULL REFERENCES blobs(hash),
    file_name TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    split TEXT NOT NULL CHECK (split IN ('train', 'val', 'test')),
    split_key REAL NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('new', 'annotated', 'reviewed')),
    source TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS examples_dataset ON examples (dataset_id, split);
CREATE INDEX IF NOT EXISTS examples_roboflow ON examples (dataset_id) WHERE instr(file_name, '.rf.') > 0;
CREATE INDEX IF NOT EXISTS examples_new ON examples (dataset_id, id) WHERE status = 'new';  -- stats' unannotated list
CREATE TABLE IF NOT EXISTS annotations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    example_id INTEGER NOT NULL REFERENCES examples(id) ON DELETE CASCADE,
    dataset_id INTEGER NOT NULL,
    class_id INTEGER NOT NULL REFERENCES classes(id),
    kind TEXT NOT NULL,
    x REAL, y REAL, w REAL, h REAL,
    geometry TEXT,
    score REAL,
    proposal INTEGER NOT NULL DEFAULT 0,
    author TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS annotations_example ON annotations (example_id);
CREATE INDEX IF NOT EXISTS annotations_dataset_class ON annotations (dataset_id, class_id);
CREATE TABLE IF NOT EXISTS directories (
    id INTEGER PRIMARY KEY,
    dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    UNIQUE (dataset_id, name)
);
CREATE TABLE IF NOT EXISTS directory_members (
    directory_id INTEGER NOT NULL REFERENCES directories(id) ON DELETE CASCADE,
    example_id INTEGER NOT NULL REFERENCES examples(id) ON DELETE CASCADE,
    PRIMARY KEY (directory_id, example_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS directory_members_example ON directory_members (example_id);
CREATE TABLE IF NOT EXISTS snapshots (
    id TEXT NOT NULL,
    dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    directory TEXT,
    message TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    examples INTEGER NOT NULL,
    annotations INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (dataset_id, id)
);
CREATE TABLE IF NOT EXISTS stats_cache (
    dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    version INTEGER NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (dataset_id, key)
);
CREATE TABLE IF NOT EXISTS duplicate_index (  -- duplicate_index.py, kept for stats: rebuilt when examples go
    dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    near INTEGER NOT NULL,
    removals INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (dataset_id, near)
);
"""


# Columns added after a workspace may have been made (added on open when missing; NULL / 0 for old rows).
# What the source says beyond geometry: annotation attributes (JSON) and crowd flag, the source's own ids of
# an example or class (JSON), the dataset-level info of its source (COCO info / licenses, JSON).
_KEPT_COLUMNS = (
    ("annotations", "attributes", "TEXT"),
    ("annotations", "iscrowd", "INTEGER NOT NULL DEFAULT 0"),
    ("annotations", "source_id", ""),  # no type: an integer id stays an integer, a string a string
    ("examples", "origin", "TEXT"),
    ("classes", "origin", "TEXT"),
    ("datasets", "source_info", "TEXT"),
)


def _add_kept_columns(conn: sqlite3.Connection) -> None:
    for table, column, decl in _KEPT_COLUMNS:
        have = {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}
        if column not in have:
            conn.execute(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {decl}'.rstrip())


def _install_aggregates(conn: sqlite3.Connection) -> None:
    """Create the maintained counts and their triggers, or replace them when this Workbench defines them
    differently from the one that made the workspace (then they are recounted once)."""
    row = conn.execute("SELECT value FROM meta WHERE key='aggregates'").fetchone()
    if row is not None and row[0] == aggregates.FINGERPRINT:
        return
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger' AND name LIKE 'agg%'").fetchall():
        conn.execute(f'DROP TRIGGER "{name}"')
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='index' AND name LIKE 'agg%' "
                                "AND sql IS NOT NULL").fetchall():
        conn.execute(f'DROP INDEX "{name}"')
    for stmt in _statements(aggregates.SCHEMA):
        conn.execute(stmt)
    aggregates.rebuild(conn)
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('aggregates', ?)", (aggregates.FINGERPRINT,))


def _statements(script: str) -> Iterator[str]:
    """The statements of ``script`` (a trigger body's own semicolons do not end a statement)."""
    stmt = ""
    for piece in script.split(";"):
        stmt += piece + ";"
        if sqlite3.complete_statement(stmt):
            if stmt.strip(" \n;"):
                yield stmt
            stmt = ""

_local = threading.local()
T = TypeVar("T")


def _is_locked(e: BaseException) -> bool:
    return isinstance(e, sqlite3.OperationalError) and (
        "locked" in str(e).lower() or "busy" in str(e).lower()
    )


def retrying(fn: Callable[[], T], *, max_wait: float | None = None) -> T:
    """Run ``fn`` and retry it with jittered exponential backoff while the database is locked, for at most
    ``max_wait`` seconds (default: :data:`MAX_RETRY_S`, read at each call)."""
    if max_wait is None:
        max_wait = MAX_RETRY_S
    delay = 0.01
    deadline = time.monotonic() + max_wait
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as e:
            if not _is_locked(e) or time.monotonic() + delay > deadline:
                if _is_locked(e):
                    raise ConflictError(
                        f"the workspace database stayed locked by another process for {max_wait:.0f} s; "
                        "try again when the other writer has finished"
                    ) from None
                raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 1.0)


def connect(path: Path) -> sqlite3.Connection:
    """Open (and create or migrate) the workspace database."""
    conn = sqlite3.connect(
        str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False, factory=_Connection
    )
    conn.row_factory = sqlite3.Row
    aggregates.register_functions(conn)
    history.register_functions(conn)
    conn.checkpointer = _Checkpointer(Path(path))
    conn.waiters = write_waiters.folder_for(Path(path))
    conn.busy_ms = int(BUSY_TIMEOUT_S * 1000)

    def setup() -> None:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a killed process loses nothing committed
        conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run beside the edits (_Checkpointer)
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={conn.busy_ms}")
        with transaction(conn):
            for stmt in _statements(SCHEMA):
                conn.execute(stmt)
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise ConflictError(
                    f"{path}: workspace schema version {row[0]} is newer than this Workbench "
                    f"({SCHEMA_VERSION}); upgrade Workbench"
                )
            elif int(row[0]) < SCHEMA_VERSION:
                conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))
            _add_kept_columns(conn)
            _install_aggregates(conn)
            history.install(conn, _statements)
            for stmt in _statements(staged.SCHEMA):
                conn.execute(stmt)

    retrying(setup)
    return conn


CHECKPOINT_DELAY_S = 0.5


class _Checkpointer:
    """Copies the write-ahead log back into the database shortly after writes, on a thread of its own, so
    no edit waits for it: SQLite's automatic checkpoint runs inside the commit that crosses 1,000 pages and
    made one edit in a hundred take 10-15 ms on a 100,000-example store. Passive: it never blocks a writer
    or a reader; a killed process leaves the log, which the next opener reads as usual."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.timer: threading.Timer | None = None
        self.running = threading.Lock()  # held while a checkpoint has the database open
        self.closed = False

    def schedule(self) -> None:
        with self.lock:
            if self.timer is None and not self.closed:
                self.timer = threading.Timer(CHECKPOINT_DELAY_S, self.run)
                self.timer.daemon = True
                self.timer.start()

    def cancel(self) -> None:
        """The connection closes: no checkpoint after that, and one already running has closed its own
        connection when this returns (the folder may be going: a connection closed after the workspace's
        would remove the log files under whoever removes the folder; the next opener reads the log as usual)."""
        with self.lock:
            self.closed = True
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
        with self.running:  # a checkpoint under way finishes first (PASSIVE, a second at most)
            pass

    def run(self) -> None:
        with self.lock:
            self.timer = None
            if self.closed:
                return
            self.running.acquire()
        try:  # mode=rw: never create a database that is gone (a removed workspace)
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=rw", uri=True, timeout=1.0)
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                conn.close()
        except sqlite3.Error:
            pass  # busy or gone: the next write schedules another
        finally:
            self.running.release()


class _Connection(sqlite3.Connection):
    """A workspace connection: knows its checkpointer."""

    checkpointer: _Checkpointer | None = None
    waiters: Path | None = None  # where its writers say they wait for the lock (write_waiters)
    busy_ms = int(BUSY_TIMEOUT_S * 1000)  # its busy timeout (set again after a BEGIN tried without waiting)


_tx_depth: dict[int, int] = {}
_tx_lock = threading.RLock()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One committed transaction (nesting joins the outer one). Rolls back on any exception."""
    key = id(conn)
    if not _tx_lock.acquire(blocking=False):  # another thread is in a transaction: say so while waiting
        with write_waiters.threads_waiting:
            _tx_lock.acquire()
    try:
        depth = _tx_depth.get(key, 0)
        _tx_depth[key] = depth + 1
        try:
            if depth == 0:
                _begin(conn)
            try:
                yield conn
            except BaseException:
                if depth == 0:
                    conn.execute("ROLLBACK")
                raise
            else:
                if depth == 0:
                    retrying(lambda: conn.execute("COMMIT"))
                    checkpointer = getattr(conn, "checkpointer", None)
                    if checkpointer is not None:
                        checkpointer.schedule()
        finally:
            _tx_depth[key] = depth
            if depth == 0:
                _tx_depth.pop(key, None)
    finally:
        _tx_lock.release()


POLL_S = (0.001, 0.002, 0.025)  # an announced writer tries the lock every 1 ms, 2 ms after 50 ms, 25 ms after 1 s


def _begin(conn: sqlite3.Connection) -> None:
    """``BEGIN IMMEDIATE``. On a workspace connection it is tried at once; when another writer holds the
    lock, the wait is announced (:mod:`.write_waiters`: a long import pauses for announced writers) and the
    lock tried again every :data:`POLL_S` (SQLite's busy handler sleeps up to 100 ms between tries, which
    would miss the importer's pause) until it is held or the wait runs out (a :class:`ConflictError`, as
    :func:`retrying` raises)."""
    folder = getattr(conn, "waiters", None)
    if folder is None:
        retrying(lambda: conn.execute("BEGIN IMMEDIATE"))
        return
    note = None
    busy_ms = getattr(conn, "busy_ms", int(BUSY_TIMEOUT_S * 1000))
    conn.execute("PRAGMA busy_timeout=0")
    try:
        start = time.monotonic()
        max_wait = busy_ms / 1000 + MAX_RETRY_S
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as e:
                if not _is_locked(e):
                    raise
            if note is None:
                note = write_waiters.announce(folder)
            waited = time.monotonic() - start
            if waited > max_wait:
                raise ConflictError(
                    f"the workspace database stayed locked by another process for {max_wait:.0f} s; "
                    "try again when the other writer has finished"
                ) from None
            time.sleep(POLL_S[0] if waited < 0.05 else POLL_S[1] if waited < 1.0 else POLL_S[2])
    finally:
        write_waiters.withdraw(note)
        conn.execute(f"PRAGMA busy_timeout={busy_ms}")
