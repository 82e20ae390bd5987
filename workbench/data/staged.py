"""Long imports in short write transactions, made visible all at once.

SQLite has one writer at a time: an import of 200,000 boxes in one transaction held the write lock for
seconds, and every edit in every other tab waited that long. A large import is written instead in short
transactions (sized to hold the lock about :data:`TARGET_HOLD_S`, at most :data:`CHUNK_ROWS` rows each, a
pause between them so a waiting writer gets the lock)
under a hidden *shadow* dataset, recorded in ``pending_imports``:

* rows of a pending import are invisible: its examples belong to the shadow dataset, which every read of
  the target (examples, counts, stats, snapshots, exports, the maintained aggregates, the dataset list)
  leaves out; the aggregates count them under the shadow;
* one short final transaction makes them visible: a new dataset is the shadow renamed (O(1)); an import into
  an existing dataset moves the examples (O(examples), not O(boxes)), its new classes and its box-size
  counts over;
* on failure the rows are removed again, in short transactions too; a process killed mid-import leaves a
  ``pending_imports`` row whose lock file nobody holds, and the next :class:`~workbench.data.Workspace`
  opened on the folder removes it (:func:`recover`).

Imports under :data:`CHUNK_ROWS` rows, and imports made inside a caller's transaction, keep the one
transaction they always had.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AlreadyExistsError, NotFoundError, ValidationError
from . import aggregates, store
from .records import STATUSES, ClassDef
from .task_types import type_info

if TYPE_CHECKING:
    from .dataset import Dataset
    from .workspace import Workspace

__all__ = ["CHUNK_ROWS", "PAUSE_S", "SCHEMA", "worth_staging", "import_prepared", "import_new", "recover",
           "pending"]

CHUNK_ROWS = 1_000  # rows (examples + annotations) per write transaction, at most
TARGET_HOLD_S = 0.02  # the lock time each transaction aims at: fewer rows when the machine is slow
MIN_ROWS = 20
PAUSE_S = 0.025  # between two of them: longer than SQLite's busy-wait steps, so a waiting writer gets in
ON_CHUNK: Callable[[float], None] | None = None  # told how long each write transaction held (benchmarks)

SCHEMA = """
CREATE TABLE IF NOT EXISTS pending_imports (
    shadow_id INTEGER PRIMARY KEY,  -- the hidden dataset the rows are written under
    target_id INTEGER,              -- the dataset they join; NULL: the shadow becomes dataset target_name
    target_name TEXT NOT NULL,
    owner TEXT NOT NULL,            -- lock file (under imports/) the importing process holds
    started_at TEXT NOT NULL
);
"""

_HIDDEN = "pending-import-"


def worth_staging(prepared: Sequence[tuple[Any, ...]]) -> bool:
    """Whether an import is too large for one short transaction."""
    return len(prepared) + sum(len(p[0].annotations) for p in prepared) > CHUNK_ROWS


def pending(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM pending_imports ORDER BY shadow_id").fetchall()


# ---------------------------------------------------------------------------------------------- locks
def _lock_dir(ws: Workspace) -> Path:
    return ws.home / "imports"


@contextmanager
def _owner_lock(ws: Workspace, owner: str, *, wait: bool) -> Iterator[bool]:
    """Hold the lock file ``owner``: yields True when held (False: another process holds it)."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): a pending import is only removed by the process that made it
        yield wait
        return
    path = _lock_dir(ws) / owner
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def _removed_after(ws: Workspace, owner: str) -> Iterator[None]:
    """Remove the lock file once the import is over (made visible or removed: no pending row refers to it)."""
    try:
        yield
    finally:
        if ws.conn.execute("SELECT 1 FROM pending_imports WHERE owner=?", (owner,)).fetchone() is None:
            (_lock_dir(ws) / owner).unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------- transactions
@contextmanager
def _short_tx(ws: Workspace, held: list[float] | None = None) -> Iterator[sqlite3.Connection]:
    """One short write transaction, timed (``held``, :data:`ON_CHUNK`), then a pause that lets others in."""
    with ws.transaction() as conn:
        start = time.perf_counter()  # the write lock is held from here (BEGIN IMMEDIATE) to the commit
        yield conn
    took = time.perf_counter() - start
    if held is not None:
        held.append(took)
    if ON_CHUNK is not None:
        ON_CHUNK(took)
    time.sleep(PAUSE_S)


def _next_size(rows: int, took: float) -> int:
    """The next transaction's row count: shrink when the last one held the lock too long, grow back slowly."""
    if took > TARGET_HOLD_S:
        rows = int(rows * max(0.25, TARGET_HOLD_S / took * 0.8))
    elif took < TARGET_HOLD_S / 2:
        rows = int(rows * 1.25) + 1
    return min(CHUNK_ROWS, max(MIN_ROWS, rows))


def _begin(ws: Workspace, dtype: str, settings: Any, classes: Sequence[ClassDef], target_id: int | None,
           target_name: str, owner: str) -> int:
    """Create the hidden shadow dataset and its ``pending_imports`` row (one short transaction)."""
    from .workspace import now

    with _short_tx(ws):
        shadow = ws.create_dataset(f"{_HIDDEN}{owner}", dtype, classes=list(classes) or None, splits=settings)
        ws.conn.execute("INSERT INTO pending_imports VALUES (?,?,?,?,?)",
                        (shadow.id, target_id, target_name, owner, now()))
    return shadow.id


# ---------------------------------------------------------------------------------------------- writing
def import_prepared(ds: Dataset, prepared: Sequence[tuple[Any, bytes, str, Any]], batch_classes: Sequence[ClassDef],
                    author: str, directory: str | None, splits: list[str], keys: list[float],
                    source_info: dict[str, Any] | None = None) -> list[int]:
    """Write validated items (``Dataset._prepare``) in short transactions and make them visible at once.

    ``ds`` is either a visible dataset (the rows go under a new shadow and are moved into ``ds`` at the
    end) or the shadow of :func:`import_new` (written under it; :func:`import_new` makes it visible)."""
    ws = ds.workspace
    row = ws.conn.execute("SELECT * FROM pending_imports WHERE shadow_id=?", (ds.id,)).fetchone()
    known = store.known_blobs(ws.conn, [p[2] for p in prepared])
    if row is not None:  # the shadow of a new dataset: just write (it is visible once import_new renames it)
        try:
            ids = _write(ds, ds.id, prepared, author, splits, keys, known)
            with _short_tx(ws) as conn:
                store.keep_source(conn, ds.id, batch_classes, source_info)
                if directory:
                    d = ds.directory_id(directory, create=True)
                    conn.executemany("INSERT OR IGNORE INTO directory_members VALUES (?,?)", [(d, e) for e in ids])
            return ids
        except BaseException:  # import_new removes the rows; the image rows this import added go too
            _discard(ws, ds.id)
            _drop_new_blobs(ws, prepared, known)
            raise
    owner = uuid.uuid4().hex
    with _owner_lock(ws, owner, wait=True), _removed_after(ws, owner):
        have = {c.name for c in ds.classes}
        new_classes = [c for c in batch_classes if c.name not in have]
        if new_classes and type_info(ds.type).fixed_classes:
            raise ValidationError(f"{ds.type} datasets have no class '{new_classes[0].name}'", field="classes")
        shadow = _begin(ws, ds.type, ds.split_settings, new_classes, ds.id, ds.name, owner)
        try:
            ids = _write(ds, shadow, prepared, author, splits, keys, known)
            _finish_into(ds, shadow, ids, directory, batch_classes, source_info)
        except BaseException:
            _discard(ws, shadow)
            _drop_new_blobs(ws, prepared, known)
            raise
    return ids


def import_new(ws: Workspace, name: str, dtype: str, classes: Sequence[ClassDef],
               run: Callable[[Dataset], list[int]]) -> tuple[Dataset, list[int]]:
    """Create dataset ``name`` filled by ``run(dataset)`` (which imports into it), visible only once
    ``run`` returned: until then the dataset is a hidden shadow; if ``run`` fails it is removed."""
    from .dataset import Dataset

    owner = uuid.uuid4().hex
    with _owner_lock(ws, owner, wait=True), _removed_after(ws, owner):
        if ws.has_dataset(name):
            raise AlreadyExistsError(f"dataset '{name}' already exists in {ws.home}")
        from .splits import SplitSettings

        shadow = _begin(ws, dtype, SplitSettings(), classes, None, name, owner)
        try:
            ids = run(Dataset(ws, shadow, name))
            with _short_tx(ws) as conn:
                if conn.execute("SELECT 1 FROM datasets WHERE name=?", (name,)).fetchone():
                    raise AlreadyExistsError(f"dataset '{name}' was created by someone else during the import")
                conn.execute("UPDATE datasets SET name=? WHERE id=?", (name, shadow))
                conn.execute("DELETE FROM pending_imports WHERE shadow_id=?", (shadow,))
        except BaseException:
            _discard(ws, shadow)
            raise
    return Dataset(ws, shadow, name), ids


def _drop_new_blobs(ws: Workspace, prepared: Sequence[tuple[Any, bytes, str, Any]], known: set[str]) -> None:
    """The image rows a failed import added, unless an example committed since refers to them."""
    new = sorted({p[2] for p in prepared} - known)
    for i in range(0, len(new), CHUNK_ROWS):
        with _short_tx(ws) as conn:
            conn.executemany("DELETE FROM blobs WHERE hash=? AND NOT EXISTS (SELECT 1 FROM examples WHERE blob=?)",
                             [(d, d) for d in new[i:i + CHUNK_ROWS]])


def _write(ds: Dataset, shadow: int, prepared: Sequence[tuple[Any, bytes, str, Any]], author: str,
           splits: list[str], keys: list[float], known: set[str]) -> list[int]:
    """Insert examples under ``shadow`` and their annotations (dataset ``ds``) in short transactions (sized by
    :func:`_next_size`); the maintained aggregates count them under the shadow as they go."""
    from .store import json_or_null
    from .workspace import now

    ws = ds.workspace
    conn = ws.conn
    stamp = now()
    class_ids = {r[0]: r[1] for r in conn.execute(
        "SELECT name, id FROM classes WHERE dataset_id IN (?, ?)", (ds.id, shadow))}
    phashes: dict[str, str | None] = {d: None if d in known else info.phash for _it, _data, d, info in prepared}
    new_ids: list[int] = []
    todo: list[tuple[str, Any]] = []  # ("example", index) / ("annotation", row without example id)
    for i, (item, _data, _digest, _info) in enumerate(prepared):
        status = item.status or ("annotated" if item.annotations else "new")
        if status not in STATUSES:
            raise ValidationError(f"unknown status {status!r}", record=item.record, field="status")
        todo.append(("example", (i, status)))
        todo.extend(("annotation", ann) for ann in item.annotations)
    pos = 0
    ex_id = 0
    rows = CHUNK_ROWS // 2
    held: list[float] = []
    while pos < len(todo):
        if held:
            rows = _next_size(rows, held[-1])
        part = todo[pos:pos + rows]
        pos += len(part)
        with _short_tx(ws, held):
            if conn.execute("SELECT 1 FROM datasets WHERE id=?", (ds.id,)).fetchone() is None:
                raise NotFoundError(f"dataset '{ds.name}' was deleted during the import; nothing was added")
            conn.execute("INSERT INTO agg_bulk VALUES (1)")  # counted set-based below; new rows: no history
            ann_rows = []
            for what, v in part:
                if what == "example":
                    i, status = v
                    item, data, digest, info = prepared[i]
                    if not ws.blobs.exists(digest):  # a concurrent failed import may have removed a shared file
                        ws.blobs.put(data, digest)
                    conn.execute(
                        "INSERT OR IGNORE INTO blobs (hash, size, width, height, format, phash) VALUES (?,?,?,?,?,?)",
                        (digest, len(data), info.width, info.height, info.format, phashes.get(digest)))
                    cur = conn.execute(
                        """INSERT INTO examples (dataset_id, blob, file_name, width, height, split, split_key, status,
                           source, created_at, updated_at, origin) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)""",
                        (shadow, digest, item.file_name, info.width, info.height, splits[i], keys[i], status,
                         item.source, stamp, stamp, json_or_null(item.origin)))
                    ex_id = int(cur.lastrowid or 0)
                    new_ids.append(ex_id)
                else:
                    ann_rows.append(store.annotation_row(ds.id, ex_id, v, class_ids, v.author or author, v.created_at or stamp))
            if ann_rows:  # ids are handed out in order inside this transaction: the range is exactly these
                first = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM annotations").fetchone()[0]
                conn.executemany(
                    """INSERT INTO annotations (example_id, dataset_id, class_id, kind, x, y, w, h, geometry,
                       score, proposal, author, created_at, updated_at, attributes, iscrowd, source_id)
                       VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
                    ann_rows)
                last = conn.execute("SELECT MAX(id) FROM annotations").fetchone()[0]
                aggregates.count_range(conn, first, last)
            conn.execute("DELETE FROM agg_bulk")
    return new_ids


def _finish_into(ds: Dataset, shadow: int, new_ids: list[int], directory: str | None,
                 batch_classes: Sequence[ClassDef] = (), source_info: dict[str, Any] | None = None) -> None:
    """The one short transaction that makes a pending import into ``ds`` visible."""
    ws = ds.workspace
    with _short_tx(ws) as conn:
        if conn.execute("SELECT 1 FROM datasets WHERE id=?", (ds.id,)).fetchone() is None:
            raise NotFoundError(f"dataset '{ds.name}' was deleted during the import; nothing was added")
        have = {r[0]: r[1] for r in conn.execute("SELECT name, id FROM classes WHERE dataset_id=?", (ds.id,))}
        pos = conn.execute("SELECT COALESCE(MAX(position) + 1, 0) FROM classes WHERE dataset_id=?",
                           (ds.id,)).fetchone()[0]
        for cid, name in conn.execute("SELECT id, name FROM classes WHERE dataset_id=? ORDER BY position",
                                      (shadow,)).fetchall():
            if name in have:  # someone added the same class meanwhile: the import's boxes take theirs
                conn.execute("INSERT OR IGNORE INTO hist_off VALUES (1)")  # still new rows: no history
                conn.execute("UPDATE annotations SET class_id=? WHERE class_id=?", (have[name], cid))  # recounted
                conn.execute("DELETE FROM hist_off")
                conn.execute("DELETE FROM classes WHERE id=?", (cid,))
            else:
                conn.execute("UPDATE classes SET dataset_id=?, position=? WHERE id=?", (ds.id, pos, cid))
                pos += 1
        aggregates.move_examples(conn, shadow, ds.id)  # O(examples), set-based
        _drop_shadow(conn, shadow)
        store.keep_source(conn, ds.id, batch_classes, source_info)
        if directory:
            d = ds.directory_id(directory, create=True)
            conn.executemany("INSERT OR IGNORE INTO directory_members VALUES (?,?)", [(d, e) for e in new_ids])
        store.touch(conn, ds.id)


def _drop_shadow(conn: sqlite3.Connection, shadow: int) -> None:
    for table in ("agg_box_size", "agg_class_split", "agg_example_set", "agg_example_removals"):
        conn.execute(f"DELETE FROM {table} WHERE dataset_id=?", (shadow,))
    conn.execute("DELETE FROM datasets WHERE id=?", (shadow,))
    conn.execute("DELETE FROM pending_imports WHERE shadow_id=?", (shadow,))


# ---------------------------------------------------------------------------------------------- removing
def _discard(ws: Workspace, shadow: int) -> None:
    """Remove a pending import's rows, in short transactions (they stay invisible meanwhile)."""
    conn = ws.conn
    while True:
        with _short_tx(ws):
            conn.execute("INSERT OR IGNORE INTO hist_off VALUES (1)")
            n = conn.execute(
                """DELETE FROM annotations WHERE id IN (SELECT a.id FROM annotations a JOIN examples e
                   ON e.id = a.example_id WHERE e.dataset_id=? LIMIT ?)""", (shadow, CHUNK_ROWS)).rowcount
            if n < CHUNK_ROWS:
                conn.execute("DELETE FROM examples WHERE id IN (SELECT id FROM examples WHERE dataset_id=? LIMIT ?)",
                             (shadow, CHUNK_ROWS))
            conn.execute("DELETE FROM hist_off")
            left = conn.execute("SELECT 1 FROM examples WHERE dataset_id=? LIMIT 1", (shadow,)).fetchone()
            if left is None:
                _drop_shadow(conn, shadow)
                return


def recover(ws: Workspace) -> int:
    """Remove the pending imports of processes that died (their lock file is free); returns how many."""
    done = 0
    for row in pending(ws.conn):
        with _owner_lock(ws, row["owner"], wait=False) as held:
            if not held:
                continue  # a live import in another process (or this one)
            still = ws.conn.execute("SELECT 1 FROM pending_imports WHERE shadow_id=?", (row["shadow_id"],)).fetchone()
            if still is not None:
                _discard(ws, int(row["shadow_id"]))
                done += 1
        (_lock_dir(ws) / row["owner"]).unlink(missing_ok=True)
    return done
