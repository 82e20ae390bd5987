"""``stats`` for a dataset or directory, counted in SQL so it answers quickly on large datasets
(100,000 examples / 1,000,000 boxes). The rules (thresholds, warning codes) live in :mod:`.quality`;
this module only gathers the numbers they judge."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from .box_sizes import EXAMPLES_LISTED, SIZE_BINS, BoxStats, box_stats_from_arrays, box_stats_from_bins
from .duplicate_index import DuplicateIndex
from .duplicate_index import duplicates_of as find_duplicates
from .duplicates import NearDuplicates
from .quality import build_report
from .records import SPLITS
from .split_groups import held_and_train, join_straddling, source_stem
from .store import in_chunks
from .task_types import TYPE_INFO

if TYPE_CHECKING:
    from .dataset import Dataset

__all__ = ["dataset_stats", "warm_duplicates"]

_LABEL_TYPES = tuple(t.value for t, info in TYPE_INFO.items() if info.image_level)


def dataset_stats(ds: Dataset, *, directory: str | None = None, near_duplicates: bool = True,
                  use_cache: bool = True) -> dict[str, Any]:
    """Counts per split and per class per split, balance warnings, box sizes, duplicates, unannotated.

    JSON-ready: ``examples``, ``annotations``, ``splits``, ``classes``, ``warnings`` and the rest of
    :class:`~workbench.data.quality.QualityReport`'s fields. The result is cached against the dataset's
    change counter, so asking again before anything changed costs one small read. The counts come from
    tables the store keeps up to date as it changes (:mod:`.aggregates`), and the near-duplicate search is
    cached until examples come or go, so after an edit the answer costs milliseconds, not a pass over
    every annotation. ``use_cache=False`` recounts everything but the maintained tables.
    """
    key = json.dumps([directory, near_duplicates])
    if use_cache:
        row = ds.conn.execute(
            "SELECT s.payload FROM stats_cache s JOIN datasets d ON d.id = s.dataset_id "
            "WHERE s.dataset_id=? AND s.key=? AND s.version = d.version", (ds.id, key)).fetchone()
        if row is not None:
            cached = json.loads(row[0])
            dups_at = cached.pop(_DUPS_AT, None)
            if dups_at is None:
                return cached
            kept = _kept_duplicates(ds, *dups_at)
            if kept is not None:  # the duplicate part is kept once, with the duplicate search's answer
                cached["near_duplicates"] = kept[0].to_dict()
                return cached
    out = _compute(ds, directory, near_duplicates, use_cache)
    dups_at = out.pop(_DUPS_AT, None)
    version = out.pop("_version")
    if use_cache:
        stored = {**out, "near_duplicates": None, _DUPS_AT: dups_at} if dups_at is not None else out
        with ds.workspace.transaction():
            ds.conn.execute("INSERT OR REPLACE INTO stats_cache VALUES (?,?,?,?)",
                            (ds.id, key, version, json.dumps(stored)))
    return out


_DUPS_AT = "_near_duplicates_at"  # in a cached stats payload: where its duplicate part is kept
_DUPS_MEMO: dict[tuple[Any, ...], tuple[NearDuplicates, list[list[int]] | None]] = {}
_DUPS_MEMO_SIZE = 8


def _memo_key(ds: Dataset, key: str, version: int) -> tuple[Any, ...]:
    """A kept duplicate answer is known by its workspace, dataset (and its creation time: a workspace made
    again at the same place starts over), cache key and example-set version."""
    created = ds.conn.execute("SELECT created_at FROM datasets WHERE id=?", (ds.id,)).fetchone()
    return (str(ds.workspace.home), ds.id, created[0] if created else None, key, version)


def _kept_duplicates(ds: Dataset, key: str, version: int,
                     ) -> tuple[NearDuplicates, list[list[int]] | None] | None:
    """The duplicate search's kept answer for ``key`` at example-set ``version`` and the groups straddling
    splits (None if not kept with it), or None when the store has no such answer. Parsed once per process:
    on a large dataset with many duplicates the answer is megabytes of JSON, and every ``stats`` after an
    edit needs it again (the example set did not change). The answer is shared: callers only read it."""
    if ds.conn.execute("SELECT 1 FROM stats_cache WHERE dataset_id=? AND key=? AND version=?",
                       (ds.id, key, version)).fetchone() is None:
        return None
    memo = _memo_key(ds, key, version)
    kept = _DUPS_MEMO.get(memo)
    if kept is not None:
        return kept
    hit = ds.conn.execute("SELECT payload FROM stats_cache WHERE dataset_id=? AND key=? AND version=?",
                          (ds.id, key, version)).fetchone()
    if hit is None:
        return None
    payload = json.loads(hit[0])
    straddling = payload.pop("copies_across_splits", None)
    kept = (NearDuplicates.from_dict(payload), None if straddling is None else [list(g) for g in straddling])
    for old in list(_DUPS_MEMO)[: max(0, len(_DUPS_MEMO) - _DUPS_MEMO_SIZE + 1)]:  # the oldest go
        _DUPS_MEMO.pop(old, None)  # (another thread may have removed it first)
    _DUPS_MEMO[memo] = kept
    return kept


def _compute(ds: Dataset, directory: str | None, near_duplicates: bool, use_cache: bool) -> dict[str, Any]:
    conn = ds.conn
    dtype = ds.type
    label_types = dtype in _LABEL_TYPES
    with ds.workspace.transaction():  # one consistent read
        version = ds.version
        where, args = "e.dataset_id=?", [ds.id]
        if directory is not None:
            where += " AND e.id IN (SELECT example_id FROM directory_members WHERE directory_id=?)"
            args.append(ds.directory_id(directory))
        splits = dict.fromkeys(SPLITS, 0)
        splits.update(dict(conn.execute(f"SELECT split, COUNT(*) FROM examples e WHERE {where} GROUP BY split",
                                        args).fetchall()))
        classes = ds.classes
        names = ds.class_names()
        counts: dict[str, dict[str, int]] = {
            c.name: {"train": 0, "val": 0, "test": 0, "total": 0, "images": 0} for c in classes}
        # the store keeps these counts up to date (aggregates.py); a directory sums its examples' rows
        if directory is None:
            rows = conn.execute("SELECT split, class_id, n, labels, images, label_images FROM agg_class_split "
                                "WHERE dataset_id=? AND images > 0", (ds.id,)).fetchall()
        else:
            rows = conn.execute(
                f"""SELECT c.split, c.class_id, SUM(c.n), SUM(c.labels), COUNT(*), SUM(c.labels > 0)
                    FROM agg_example_class c JOIN examples e ON e.id = c.example_id WHERE {where}
                    GROUP BY c.split, c.class_id""", args).fetchall()
        n_ann = 0
        for split, cid, n, labels, images, label_images in rows:
            row = counts[names[cid]]
            k = label_images if label_types else n
            row[split] += k
            row["total"] += k
            row["images"] += label_images if label_types else images
            n_ann += labels if label_types else n
        status_filter = "" if label_types else " AND e.status='new'"
        column = "labels" if label_types else "objects"
        missing = [r[0] for r in conn.execute(
            f"""SELECT e.id FROM examples e WHERE {where}{status_filter} AND NOT EXISTS (
                SELECT 1 FROM agg_example_class c WHERE c.example_id = e.id AND c.{column} > 0)
                ORDER BY e.id""", args)]
        boxes = None if label_types else _box_stats(ds, where, args, directory is None)
        dups, straddling, dups_at = _near_duplicates(ds, where, args, directory, near_duplicates, use_cache)
    report = build_report(dtype, classes, counts, sum(splits.values()), missing, boxes, dups, straddling)
    out = report.to_dict()
    out.update(dataset=ds.name, directory=directory, examples=sum(splits.values()), annotations=n_ann,
               splits=splits, copies_across_splits=straddling, _version=version)
    if dups_at is not None:
        out[_DUPS_AT] = list(dups_at)
    return out


def _straddling_copies(ds: Dataset, where: str, args: list[Any], dups: NearDuplicates) -> list[list[int]]:
    """Groups of copies of one source image (the same Roboflow ``.rf.`` stem, the same image, near
    duplicates) with examples both in train and in val or test (:mod:`.split_groups`). Cached with the
    duplicate search (the same things change it)."""
    conn = ds.conn
    split_of: dict[int, str] = dict(conn.execute(  # val and test: few; every other example is in train
        f"SELECT e.id, e.split FROM examples e WHERE {where} AND e.split IN ('val', 'test')", args).fetchall())
    by_stem: dict[str, list[int]] = {}
    for eid, name in conn.execute(  # a partial index holds the Roboflow names (db.py)
            f"SELECT e.id, e.file_name FROM examples e WHERE {where} AND instr(e.file_name, '.rf.') > 0",
            args):
        stem = source_stem(name)
        if stem is not None:
            by_stem.setdefault(stem, []).append(eid)
    stems = [g for g in by_stem.values() if len(g) > 1]
    if stems:
        return join_straddling(stems + [list(g) for g in dups.cross_split], split_of)
    return held_and_train(dups.cross_split, split_of)


def _box_stats(ds: Dataset, where: str, args: list[Any], whole: bool) -> BoxStats:
    conn = ds.conn
    order = [c.name for c in ds.classes]  # classes.position is the index into this list
    if not whole:  # a directory: from its boxes (same size steps, same rules)
        cur = conn.cursor()
        cur.row_factory = None
        arr = np.array(cur.execute(
            f"""SELECT a.w, a.h, e.width, e.height, c.position, a.example_id FROM annotations a
                JOIN examples e ON e.id = a.example_id JOIN classes c ON c.id = a.class_id
                WHERE {where} AND a.proposal=0 AND a.w IS NOT NULL AND a.kind IN ('box', 'polygon', 'mask')""",
            args).fetchall(), dtype=np.float64).reshape(-1, 6)
        return box_stats_from_arrays(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4], arr[:, 5], order)
    position = {cid: order.index(name) for cid, name in ds.class_names().items()}
    cur = conn.cursor()
    cur.row_factory = None  # plain tuples: one row per class and size step (thousands)
    rows = np.array(cur.execute("SELECT class_id, bin, n FROM agg_box_size WHERE dataset_id=?",
                                (ds.id,)).fetchall(), dtype=np.int64).reshape(-1, 3)
    table = np.zeros((len(order), SIZE_BINS + 1), dtype=np.int64)
    if len(rows):
        class_ids, inverse = np.unique(rows[:, 0], return_inverse=True)
        table[np.array([position[int(c)] for c in class_ids])[inverse], rows[:, 1]] = rows[:, 2]
    hist = {name: table[i] for i, name in enumerate(order)}
    flagged = {}
    for flag in ("tiny", "huge"):  # from a partial index over the examples that have any
        boxes, images = conn.execute(f"SELECT COALESCE(SUM({flag}), 0), COUNT(DISTINCT example_id) FROM "
                                     f"agg_example_class WHERE dataset_id=? AND {flag} > 0", (ds.id,)).fetchone()
        ids = [r[0] for r in conn.execute(f"SELECT DISTINCT example_id FROM agg_example_class WHERE dataset_id=? "
                                          f"AND {flag} > 0 ORDER BY example_id LIMIT ?", (ds.id, EXAMPLES_LISTED))]
        flagged[flag] = (int(boxes), int(images), ids)
    return box_stats_from_bins(hist, flagged["tiny"], flagged["huge"])


def warm_duplicates(ds: Dataset) -> None:
    """Search the whole dataset's duplicates now and keep the answer (imports call this once they commit,
    so the first ``stats`` after an import reads it). The search reads one consistent snapshot without the
    write lock (it takes seconds on a large dataset: edits must not wait for it); what it found is kept in
    one short write transaction."""
    conn = ds.conn
    if conn.in_transaction:  # inside a caller's transaction: part of it
        _near_duplicates(ds, "e.dataset_id=?", [ds.id], None, True, True)
        return
    found: list[tuple[str, tuple]] = []
    conn.execute("BEGIN DEFERRED")  # a read: takes no lock
    try:
        _near_duplicates(ds, "e.dataset_id=?", [ds.id], None, True, True, found)
    finally:
        conn.execute("ROLLBACK")  # it wrote nothing
    with ds.workspace.transaction():
        for sql, params in found:
            conn.execute(sql, params)


def _keep(conn: Any, found: list[tuple[str, tuple]] | None, sql: str, params: tuple) -> None:
    """Write a cached answer now, or (``found``) collect it for a short write transaction later."""
    if found is None:
        conn.execute(sql, params)
    else:
        found.append((sql, params))


def _near_duplicates(ds: Dataset, where: str, args: list[Any], directory: str | None,
                     near: bool, use_cache: bool,
                     found: list[tuple[str, tuple]] | None = None,
                     ) -> tuple[NearDuplicates, list[list[int]], tuple[str, int] | None]:
    """Duplicates depend only on which examples there are (images, splits): cached against the counter the
    store bumps when examples come, go, move split or directory, not on annotation edits. For the whole
    dataset the store also keeps the search's index: when examples were only added since, just the new
    images are hashed and compared (:mod:`.duplicate_index`). Also says where the answer is kept with the
    groups straddling splits (``(key, version)``), or None when it is not."""
    conn = ds.conn
    key = json.dumps(["near_duplicates", directory, near])
    row = conn.execute("SELECT version FROM agg_example_set WHERE dataset_id=?", (ds.id,)).fetchone()
    version = row[0] if row else 0
    kept = _kept_duplicates(ds, key, version) if use_cache else None
    if kept is not None:
        dups, straddling = kept
        if straddling is not None:
            return dups, [list(g) for g in straddling], (key, version)
        return dups, _straddling_copies(ds, where, args, dups), None
    if directory is None:
        dups = _whole_dataset_duplicates(ds, near, use_cache, found)
    else:
        ids, blobs, splits, hashes = _example_rows(ds, where, args, "")
        dups = find_duplicates(ids, blobs, splits, ds.load_bytes if near else None, hashes=hashes if near else None)
    straddling = _straddling_copies(ds, where, args, dups)
    if use_cache:
        _keep(conn, found, "INSERT OR REPLACE INTO stats_cache VALUES (?,?,?,?)",
              (ds.id, key, version, json.dumps({**dups.to_dict(), "copies_across_splits": straddling})))
    return dups, straddling, (key, version) if use_cache and found is None else None


def _example_rows(ds: Dataset, where: str, args: list[Any], more: str) -> tuple[list, list, list, dict]:
    """ids, blobs, splits of the examples (``more``: an extra condition), and the hashes the store has."""
    cur = ds.conn.cursor()
    cur.row_factory = None  # plain tuples: 100,000 rows
    rows = cur.execute(f"""SELECT e.id, e.blob, e.split, b.phash FROM examples e JOIN blobs b ON b.hash = e.blob
                           WHERE {where}{more} ORDER BY e.id""", args).fetchall()
    ids, blobs, splits, phashes = (list(c) for c in zip(*rows, strict=True)) if rows else ([], [], [], [])
    return ids, blobs, splits, {b: h for b, h in zip(blobs, phashes, strict=True) if h}


INCREMENTAL_MAX_SHARE = 0.25  # more new examples than this share of the indexed ones: search from nothing


def _whole_dataset_duplicates(ds: Dataset, near: bool, use_cache: bool,
                              found: list[tuple[str, tuple]] | None = None) -> NearDuplicates:
    conn = ds.conn
    row = conn.execute("SELECT version FROM agg_example_removals WHERE dataset_id=?", (ds.id,)).fetchone()
    removals = row[0] if row else 0
    load = ds.load_bytes if near else None
    index = None
    if use_cache:
        kept = conn.execute("SELECT payload FROM duplicate_index WHERE dataset_id=? AND near=? AND removals=?",
                            (ds.id, int(near), removals)).fetchone()
        if kept is not None:
            index = DuplicateIndex.from_bytes(kept[0])
            last = int(index.ids[-1]) if len(index.ids) else 0
            ids, blobs, splits, hashes = _example_rows(ds, "e.dataset_id=?", [ds.id], f" AND e.id > {last}")
            if len(ids) > max(100, INCREMENTAL_MAX_SHARE * len(index.ids)):
                index = None  # a large import: the banded search over everything is faster
            elif ids:
                known: dict[str, int] = {}
                wanted = sorted(set(blobs))
                known.update((r[0], r[1]) for r in in_chunks(  # which of their images examples here already show
                    conn, "SELECT blob, MIN(id) FROM examples WHERE dataset_id=? AND id <= ? AND blob IN ({q}) "
                    "GROUP BY blob", wanted, before=[ds.id, last], size=500))
                index = index.extend(ids, blobs, splits, known, load, hashes=hashes if near else None)
            else:
                return index.result()  # only directory membership changed
    if index is None:
        ids, blobs, splits, hashes = _example_rows(ds, "e.dataset_id=?", [ds.id], "")
        index = DuplicateIndex.build(ids, blobs, splits, load, hashes=hashes if near else None)
    if use_cache:
        _keep(conn, found, "INSERT OR REPLACE INTO duplicate_index VALUES (?,?,?,?)",
              (ds.id, int(near), removals, index.to_bytes()))
    return index.result()
