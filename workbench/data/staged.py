"""Long imports in short write transactions, made visible all at once.

SQLite has one writer at a time: an import of 200,000 boxes in one transaction held the write lock for
seconds, and every edit in every other tab waited that long. A large import is written instead in short
transactions (sized to hold the lock about :data:`TARGET_HOLD_S`, at most :data:`CHUNK_ROWS` rows each, their
rows built before each one opens, a pause between them when a writer waits for the lock, so it gets in:
:mod:`.write_waiters`)
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

Imports of at most :data:`STAGE_ROWS` rows, and imports made inside a caller's transaction, keep the one
transaction they always had.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import AlreadyExistsError, NotFoundError, ValidationError
from ..progress import ProgressFn, Stage
from . import aggregates, store, write_waiters
from .records import STATUSES, ClassDef
from .task_types import type_info

if TYPE_CHECKING:
    from .dataset import Dataset
    from .workspace import Workspace

__all__ = ["CHUNK_ROWS", "PAUSE_S", "IDLE_PAUSE_S", "SCHEMA", "worth_staging", "import_prepared", "import_new", "recover",
           "pending"]

CHUNK_ROWS = 20_000  # rows (examples + annotations) per write transaction, at most (the hold time decides)
STAGE_ROWS = 1_000  # imports of more rows than this (or than CHUNK_ROWS) are staged
FIRST_ROWS = 500  # the first transaction's rows (then sized by the time it held the lock)
DELETE_ROWS = 1_000  # rows removed per transaction when a failed import is removed
TARGET_HOLD_S = 0.02  # the lock time each transaction aims at: fewer rows when the machine is slow
MIN_ROWS = 20
PAUSE_S = 0.025  # between two of them while writers are at work: they try the lock every 1-2 ms (db.POLL_S)
BUSY_WINDOW_S = 1.0  # writers are at work from a commit that found one waiting until this long after
IDLE_PAUSE_S = 0.0  # between two of them while nobody waits (tests slow an import down with it)
ON_PAUSE: Callable[[float], None] | None = None  # told of each pause made for a waiting writer (tests)
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
_READY_AT: dict[int, float] = {}  # id(workspace) -> when its next short transaction may open
_BUSY_UNTIL: dict[int, float] = {}  # id(workspace) -> until when it pauses after each transaction


def worth_staging(prepared: Iterable[tuple[Any, ...]]) -> bool:
    """Whether an import is too large for one short transaction."""
    limit = min(CHUNK_ROWS, STAGE_ROWS)
    rows = 0
    for p in prepared:  # (stops at the limit: a large import is not counted through)
        rows += 1 + len(p[0].annotations)
        if rows > limit:
            return True
    return False


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
    """One short write transaction, timed (``held``, :data:`ON_CHUNK`). While other Workbench writers are at
    work (one waited for the lock at a commit in the last :data:`BUSY_WINDOW_S`: :mod:`.write_waiters`),
    the next one opens :data:`PAUSE_S` after this one ended, so that they get in (they try the lock every
    millisecond or two while they wait: ``db.POLL_S``; the work done between two transactions counts
    towards the pause); otherwise at once. Writers that do not announce themselves (the ``sqlite3`` shell,
    other programs) still get the lock through SQLite's busy handler, between two transactions or after
    the import: later."""
    wait = _READY_AT.pop(id(ws), 0.0) - time.perf_counter()
    if wait > 0:
        time.sleep(wait)
    with ws.transaction() as conn:
        start = time.perf_counter()  # the write lock is held from here (BEGIN IMMEDIATE) to the commit
        yield conn
    took = time.perf_counter() - start
    if held is not None:
        held.append(took)
    if ON_CHUNK is not None:
        ON_CHUNK(took)
    now = time.perf_counter()
    waited = write_waiters.waiting(getattr(ws.conn, "waiters", None)) > 0
    if waited:
        _BUSY_UNTIL[id(ws)] = now + BUSY_WINDOW_S
    pause = IDLE_PAUSE_S
    if waited or now < _BUSY_UNTIL.get(id(ws), 0.0):  # writers are at work: let them in after each transaction
        pause = max(pause, PAUSE_S)
        if ON_PAUSE is not None:
            ON_PAUSE(pause)
    if pause > 0:
        _READY_AT[id(ws)] = now + pause


def _next_size(rows: int, took: float) -> int:
    """The next transaction's row count: shrink when the last one held the lock too long, grow towards the
    target when it held it briefly (at most doubling)."""
    if took > TARGET_HOLD_S:
        rows = int(rows * max(0.25, TARGET_HOLD_S / took * 0.8))
    elif took < TARGET_HOLD_S * 0.7:
        rows = int(rows * min(2.0, TARGET_HOLD_S * 0.85 / max(took, 1e-4))) + 1
    return min(CHUNK_ROWS, max(MIN_ROWS, rows))


def _begin(ws: Workspace, dtype: str, settings: Any, classes: Sequence[ClassDef], target_id: int | None,
           target_name: str, owner: str) -> int:
    """Create the hidden shadow dataset and its ``pending_imports`` row (one short transaction)."""
    from .basics import now

    with _short_tx(ws):
        shadow = ws.create_dataset(f"{_HIDDEN}{owner}", dtype, classes=list(classes) or None, splits=settings)
        ws.conn.execute("INSERT INTO pending_imports VALUES (?,?,?,?,?)",
                        (shadow.id, target_id, target_name, owner, now()))
    return shadow.id


# ---------------------------------------------------------------------------------------------- writing
def import_prepared(ds: Dataset, prepared: Sequence[tuple[Any, bytes | None, str, Any]],
                    batch_classes: Sequence[ClassDef], author: str, directory: str | None, splits: list[str],
                    keys: list[float], source_info: dict[str, Any] | None = None,
                    ready: Callable[[int], None] | None = None,
                    replan: Callable[[int | None], tuple[list[str], list[float]]] | None = None,
                    progress: ProgressFn | None = None) -> list[int]:
    """Write validated items (``Dataset._prepare``) in short transactions and make them visible at once.

    ``ds`` is either a visible dataset (the rows go under a new shadow and are moved into ``ds`` at the
    end) or the shadow of :func:`import_new` (written under it; :func:`import_new` makes it visible).
    ``ready(end)``, when given, is called before the rows of items ``[.., end)`` are written (it returns
    once their images are stored: :mod:`.bulk_import`; it may fill those entries of ``prepared``, ``splits``
    and ``keys`` only then); it is called with ``len(prepared)`` before the end. ``replan(first_id)``, when
    given, is called once every row is written and gives the splits and keys the rows get instead (they were
    written with provisional ones: :func:`_resplit`); ``first_id``: the id from which the rows are in ``ds``
    itself (the shadow of :func:`import_new`), None when they are not. ``progress`` hears of the rows
    written ("writing rows", in examples)."""
    ws = ds.workspace
    row = ws.conn.execute("SELECT * FROM pending_imports WHERE shadow_id=?", (ds.id,)).fetchone()
    added: set[str] = set()  # the image rows this import added (removed again if it fails)
    if row is not None:  # the shadow of a new dataset: just write (it is visible once import_new renames it)
        try:
            ids = _write(ds, ds.id, prepared, author, splits, keys, added, ready, progress)
            if replan is not None:  # (the rows are in ``ds`` itself: the plan leaves them out)
                _resplit(ws, ids, splits, keys, *replan(ids[0] if ids else None))
            with _short_tx(ws) as conn:
                store.keep_source(conn, ds.id, batch_classes, source_info)
                if directory:
                    d = ds.directory_id(directory, create=True)
                    conn.executemany(store.INSERT_MEMBER, [(d, e) for e in ids])
            return ids
        except BaseException:  # import_new removes the rows; the image rows this import added go too
            _discard(ws, ds.id)
            _drop_new_blobs(ws, added)
            raise
    owner = uuid.uuid4().hex
    with _owner_lock(ws, owner, wait=True), _removed_after(ws, owner):
        have = {c.name for c in ds.classes}
        new_classes = [c for c in batch_classes if c.name not in have]
        if new_classes and type_info(ds.type).fixed_classes:
            raise ValidationError(f"{ds.type} datasets have no class '{new_classes[0].name}'", field="classes")
        shadow = _begin(ws, ds.type, ds.split_settings, new_classes, ds.id, ds.name, owner)
        try:
            ids = _write(ds, shadow, prepared, author, splits, keys, added, ready, progress)
            if replan is not None:
                _resplit(ws, ids, splits, keys, *replan(None))
            _finish_into(ds, shadow, ids, directory, batch_classes, source_info)
        except BaseException:
            _discard(ws, shadow)
            _drop_new_blobs(ws, added)
            raise
    return ids


def import_new(ws: Workspace, name: str, dtype: str, classes: Sequence[ClassDef],
               run: Callable[[Dataset], list[int]],
               open_dataset: Callable[[Workspace, int, str], Dataset]) -> tuple[Dataset, list[int]]:
    """Create dataset ``name`` filled by ``run(dataset)`` (which imports into it), visible only once
    ``run`` returned: until then the dataset is a hidden shadow; if ``run`` fails it is removed.
    ``open_dataset(ws, id, name)`` makes the Dataset (the caller's class: this module sits below it)."""
    owner = uuid.uuid4().hex
    with _owner_lock(ws, owner, wait=True), _removed_after(ws, owner):
        if ws.has_dataset(name):
            raise AlreadyExistsError(f"dataset '{name}' already exists in {ws.home}")
        from .splits import SplitSettings

        shadow = _begin(ws, dtype, SplitSettings(), classes, None, name, owner)
        try:
            ids = run(open_dataset(ws, shadow, name))
            with _short_tx(ws) as conn:
                if conn.execute("SELECT 1 FROM datasets WHERE name=?", (name,)).fetchone():
                    raise AlreadyExistsError(f"dataset '{name}' was created by someone else during the import")
                conn.execute("UPDATE datasets SET name=? WHERE id=?", (name, shadow))
                conn.execute("DELETE FROM pending_imports WHERE shadow_id=?", (shadow,))
        except BaseException:
            _discard(ws, shadow)
            raise
    return open_dataset(ws, shadow, name), ids


def _drop_new_blobs(ws: Workspace, added: set[str]) -> None:
    """The image rows a failed import added, unless an example committed since refers to them."""
    new = sorted(added)
    step = min(CHUNK_ROWS, DELETE_ROWS)
    for i in range(0, len(new), step):
        with _short_tx(ws) as conn:
            conn.executemany("DELETE FROM blobs WHERE hash=? AND NOT EXISTS (SELECT 1 FROM examples WHERE blob=?)",
                             [(d, d) for d in new[i:i + step]])


def _chunks(prepared: Sequence[tuple[Any, bytes | None, str, Any]], first: int
            ) -> Generator[tuple[int, int], float | None, None]:
    """Split the items into runs of about the row count :func:`_next_size` asks for (an example and all its
    annotations in one run): yields (start, end) item indexes; ``send`` the last hold time back."""
    start, rows = 0, first
    while start < len(prepared):
        end, n = start, 0
        while end < len(prepared) and (n == 0 or n + 1 + len(prepared[end][0].annotations) <= rows):
            n += 1 + len(prepared[end][0].annotations)
            end += 1
        took = yield start, end
        if took is not None:
            rows = _next_size(rows, took)
        start = end


def _write(ds: Dataset, shadow: int, prepared: Sequence[tuple[Any, bytes | None, str, Any]], author: str,
           splits: list[str], keys: list[float], added: set[str],
           ready: Callable[[int], None] | None = None, progress: ProgressFn | None = None) -> list[int]:
    """Insert examples under ``shadow`` and their annotations (dataset ``ds``) in short transactions (sized by
    :func:`_next_size`); the maintained aggregates count them under the shadow as they go. Each
    transaction's rows and counts (:func:`aggregates.count_new`) are made before it opens, and inserted
    with one ``executemany`` per table. ``added`` collects the image rows it adds.
    ``prepared`` items may carry ``None`` for the bytes (:mod:`.bulk_import`: stored already, not kept)."""
    from .basics import now
    from .store import json_or_null

    ws = ds.workspace
    conn = ws.conn
    stamp = now()
    class_ids = {r[0]: r[1] for r in conn.execute(
        "SELECT name, id FROM classes WHERE dataset_id IN (?, ?)", (ds.id, shadow))}
    statuses = []
    for item, *_rest in prepared:
        status = item.status or ("annotated" if item.annotations else "new")
        if status not in STATUSES:
            raise ValidationError(f"unknown status {status!r}", record=item.record, field="status")
        statuses.append(status)
    new_ids: list[int] = []
    held: list[float] = []
    boxes: list[np.ndarray] = []  # every transaction's NewCounts.box_keys
    stage = Stage(progress, "import", "writing rows", len(prepared), "examples")
    runs = _chunks(prepared, max(1, min(CHUNK_ROWS, FIRST_ROWS)))
    took: float | None = None
    while True:
        try:
            start, end = runs.send(took) if took is not None else next(runs)
        except StopIteration:
            break
        part = range(start, end)
        if ready is not None:
            ready(end)
        digests = {prepared[i][2] for i in part}
        known = store.known_blobs(conn, sorted(digests - added)) | (digests & added)  # (before this import: not added)
        blob_rows = []
        example_rows = []
        for i in part:
            item, data, digest, info = prepared[i]
            blob_rows.append((digest, info.nbytes if data is None else len(data), info.width, info.height,
                              info.format, None if digest in known else info.phash))
            example_rows.append((shadow, digest, item.file_name, info.width, info.height, splits[i], keys[i],
                                 statuses[i], item.source, stamp, stamp, json_or_null(item.origin)))
        ann_parts = [[store.annotation_row(ds.id, 0, a, class_ids, a.author or author, a.created_at or stamp)
                      for a in prepared[i][0].annotations] for i in part]
        counts = aggregates.count_new([(splits[i], prepared[i][3].width, prepared[i][3].height) for i in part],
                                      ann_parts)  # counted here, before the write lock is taken
        boxes.append(counts.box_keys)  # written once, at the end: a bin per box and transaction else
        with _short_tx(ws, held):
            if conn.execute("SELECT 1 FROM datasets WHERE id=?", (ds.id,)).fetchone() is None:
                raise NotFoundError(f"dataset '{ds.name}' was deleted during the import; nothing was added")
            gone = ws.blobs.missing(digests)  # a concurrent failed import may have removed a shared image
            for i in part:
                item, data, digest, _info = prepared[i]
                if digest in gone:
                    ws.blobs.put(data if data is not None else _bytes_of(item, digest), digest)
                    gone.discard(digest)
            conn.execute("INSERT INTO agg_bulk VALUES (1)")  # counted set-based below; new rows: no history
            conn.executemany(store.INSERT_BLOB, blob_rows)
            added |= digests - known
            # the per-row triggers agg_bulk makes no-ops go for the transaction (their calls cost a third of
            # an annotation's insert); the example-set version is bumped once instead of per example
            with aggregates.row_triggers_off(conn):
                before = conn.execute("SELECT COALESCE(MAX(id), 0) FROM examples").fetchone()[0]
                conn.executemany(store.INSERT_EXAMPLE, example_rows)
                aggregates.bump_examples(conn, shadow)
                # every example past ``before`` is one of these (this transaction holds the write lock): a
                # rowid range, not a dataset filter (which would scan the shadow's earlier rows every time)
                ids = [r[0] for r in conn.execute("SELECT id FROM examples WHERE id > ? ORDER BY id", (before,))]
                if len(ids) != len(example_rows):  # cannot happen while this transaction holds the write lock
                    raise RuntimeError(f"inserted {len(example_rows)} examples, found {len(ids)}")
                new_ids.extend(ids)
                ann_rows = [(ex_id, *row[1:]) for ex_id, rows in zip(ids, ann_parts, strict=True) for row in rows]
                conn.executemany(store.INSERT_ANNOTATION, ann_rows)
                # every annotation of these examples is in this transaction (_chunks keeps an example whole)
                aggregates.add_new(conn, shadow, ids, [splits[i] for i in part], counts)
            conn.execute("DELETE FROM agg_bulk")
        took = held[-1]
        stage.advance(end - start)
    if ready is not None:
        ready(len(prepared))
    sizes = aggregates.box_counts(boxes)
    keys_left = list(sizes)
    step = max(1, CHUNK_ROWS // 4)  # (an upsert costs about 4 rows' insert)
    for k in range(0, len(keys_left), step):  # the box sizes, still under the shadow (verify skips them)
        with _short_tx(ws, held) as conn:
            aggregates.add_box_sizes(conn, shadow, {key: sizes[key] for key in keys_left[k:k + step]})
    stage.close()
    return new_ids


def _resplit(ws: Workspace, ids: Sequence[int], splits: Sequence[str], keys: Sequence[float],
             planned: Sequence[str], planned_keys: Sequence[float]) -> None:
    """Give the examples just written (``ids``, written with ``splits`` / ``keys``) the planned ones, in short
    transactions; only those that differ are updated (a large import's provisional split is its planned
    split for all but its val / test share). The aggregates follow through their triggers, as for any split
    change. The rows are still invisible (under the shadow)."""
    changed = [(s, k, e) for e, old, s, old_k, k in zip(ids, splits, planned, keys, planned_keys, strict=True)
               if s != old or k != old_k]
    for i in range(0, len(changed), DELETE_ROWS):
        with _short_tx(ws) as conn:
            conn.executemany("UPDATE examples SET split=?, split_key=? WHERE id=?", changed[i:i + DELETE_ROWS])


def _bytes_of(item: Any, digest: str) -> bytes:
    """An item's image bytes read again (its blob went meanwhile), refused if the file changed since."""
    from .blobs import sha256_bytes

    data = item.read_bytes()
    if sha256_bytes(data) != digest:
        raise ValidationError("image file changed during the import; import again", file=str(item.path),
                              record=item.record, field="file_name")
    return bytes(data)


def _finish_into(ds: Dataset, shadow: int, new_ids: list[int], directory: str | None,
                 batch_classes: Sequence[ClassDef] = (), source_info: dict[str, Any] | None = None) -> None:
    """The one short transaction that makes a pending import into ``ds`` visible."""
    ws = ds.workspace
    with _short_tx(ws) as conn:
        if conn.execute("SELECT 1 FROM datasets WHERE id=?", (ds.id,)).fetchone() is None:
            raise NotFoundError(f"dataset '{ds.name}' was deleted during the import; nothing was added")
        have = store.class_ids(conn, ds.id)
        pos = conn.execute(store.NEXT_CLASS_POSITION, (ds.id,)).fetchone()[0]
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
            conn.executemany(store.INSERT_MEMBER, [(d, e) for e in new_ids])
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
    step = min(CHUNK_ROWS, DELETE_ROWS)
    while True:
        with _short_tx(ws):
            conn.execute("INSERT OR IGNORE INTO hist_off VALUES (1)")
            n = conn.execute(
                """DELETE FROM annotations WHERE id IN (SELECT a.id FROM annotations a JOIN examples e
                   ON e.id = a.example_id WHERE e.dataset_id=? LIMIT ?)""", (shadow, step)).rowcount
            if n < step:
                conn.execute("DELETE FROM examples WHERE id IN (SELECT id FROM examples WHERE dataset_id=? LIMIT ?)",
                             (shadow, step))
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
