"""Counts the store keeps up to date as it changes, so ``stats`` answers in milliseconds at any size.

SQLite triggers maintain them inside the transaction of every write (imports, canvas edits, deletes,
split moves), whatever code path makes the write, so they can never disagree with the annotations they
summarise (:func:`verify` recounts and compares; the tests run it after every kind of change):

- ``agg_example_class``: per example and class, how many annotations (model proposals left out), how many
  are labels, objects, tiny and huge boxes; one row per class present on an example.
- ``agg_class_split``: per dataset, split and class, the same summed, plus how many examples hold the
  class (``images``): what the balance table shows.
- ``agg_box_size``: per dataset and class, a histogram of box sizes ``sqrt(box area / image area)``
  rounded to :data:`SIZE_BINS` steps; quantiles, medians and the size histogram are read from it.
- ``agg_example_set``: a per-dataset counter bumped when examples come, go, change split or directory
  membership: the near-duplicate search (which only depends on those) is cached against it.
- ``agg_example_removals``: a per-dataset counter bumped when examples go or change split, image or
  dataset (not when they come): while it stands still, the kept duplicate index
  (:mod:`.duplicate_index`) only needs the examples added since.

The size of a box is rounded to 1/:data:`SIZE_BINS` (1e-4 of the image side) in the pure-Python report
too (:func:`~workbench.data.box_sizes.size_bins`), so the store's numbers equal a recount exactly.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from .box_sizes import HUGE_BOX_FRACTION, SIZE_BINS, TINY_BOX_FRACTION, TINY_BOX_PX, size_bin, size_bins

_LABELS = frozenset(("label", "anomaly"))  # the same kinds as the SQL below
_OBJECTS = frozenset(("box", "polygon", "mask"))

__all__ = ["SCHEMA", "register_functions", "rebuild", "verify", "bulk_insert", "count_range", "move_examples",
           "FINGERPRINT", "NewCounts", "count_new", "add_new", "box_counts", "add_box_sizes", "bump_examples",
           "row_triggers_off", "BULK_TRIGGERS"]

_LABEL_KINDS = "('label', 'anomaly')"
_OBJECT_KINDS = "('box', 'polygon', 'mask')"


def register_functions(conn: sqlite3.Connection) -> None:
    """The SQL functions the triggers call; every connection to a workspace registers them."""
    conn.create_function("wb_size_bin", 4, size_bin, deterministic=True)


def _flags(a: str) -> dict[str, str]:
    """SQL for one annotation row ``a`` (NEW or OLD) on example ``e``: its contribution to each count."""
    box = f"{a}.w IS NOT NULL AND {a}.kind IN {_OBJECT_KINDS}"
    tiny = (f"{a}.w < {TINY_BOX_PX} OR {a}.h < {TINY_BOX_PX} OR {a}.w < {TINY_BOX_FRACTION!r} * e.width "
            f"OR {a}.h < {TINY_BOX_FRACTION!r} * e.height")
    huge = f"{a}.w * {a}.h > {HUGE_BOX_FRACTION!r} * e.width * e.height"
    return {
        "labels": f"(CASE WHEN {a}.kind IN {_LABEL_KINDS} THEN 1 ELSE 0 END)",
        "objects": f"(CASE WHEN {a}.kind IN {_OBJECT_KINDS} THEN 1 ELSE 0 END)",
        "tiny": f"(CASE WHEN {box} AND ({tiny}) THEN 1 ELSE 0 END)",
        "huge": f"(CASE WHEN {box} AND ({huge}) THEN 1 ELSE 0 END)",
        "box": box,
    }


def _add(a: str) -> str:
    f = _flags(a)
    return f"""
    INSERT INTO agg_example_class (example_id, class_id, dataset_id, split, n, labels, objects, tiny, huge)
        SELECT {a}.example_id, {a}.class_id, e.dataset_id, e.split, 1, {f['labels']}, {f['objects']},
               {f['tiny']}, {f['huge']}
        FROM examples e WHERE e.id = {a}.example_id
        ON CONFLICT (example_id, class_id) DO UPDATE SET n = n + 1, labels = labels + excluded.labels,
            objects = objects + excluded.objects, tiny = tiny + excluded.tiny, huge = huge + excluded.huge;
    INSERT INTO agg_box_size (dataset_id, class_id, bin, n)
        SELECT e.dataset_id, {a}.class_id, wb_size_bin({a}.w, {a}.h, e.width, e.height), 1
        FROM examples e WHERE e.id = {a}.example_id AND {f['box']}
        ON CONFLICT (dataset_id, class_id, bin) DO UPDATE SET n = n + 1;"""


def _remove(a: str) -> str:
    f = _flags(a)
    bin_of = (f"SELECT e.dataset_id, {a}.class_id, wb_size_bin({a}.w, {a}.h, e.width, e.height) "
              f"FROM examples e WHERE e.id = {a}.example_id AND {f['box']}")
    return f"""
    UPDATE agg_example_class SET n = n - 1,
        labels = labels - {f['labels']}, objects = objects - {f['objects']},
        tiny = tiny - (SELECT {f['tiny']} FROM examples e WHERE e.id = {a}.example_id),
        huge = huge - (SELECT {f['huge']} FROM examples e WHERE e.id = {a}.example_id)
        WHERE example_id = {a}.example_id AND class_id = {a}.class_id;
    DELETE FROM agg_example_class WHERE example_id = {a}.example_id AND class_id = {a}.class_id AND n <= 0;
    UPDATE agg_box_size SET n = n - 1 WHERE (dataset_id, class_id, bin) IN ({bin_of});
    DELETE FROM agg_box_size WHERE n <= 0 AND (dataset_id, class_id, bin) IN ({bin_of});"""


def _class_split(sign: str, r: str) -> str:
    """Add (``+``) or subtract (``-``) an ``agg_example_class`` row ``r`` to its ``agg_class_split`` row."""
    if sign == "+":
        return f"""
    INSERT INTO agg_class_split (dataset_id, split, class_id, n, labels, images, label_images)
        VALUES ({r}.dataset_id, {r}.split, {r}.class_id, {r}.n, {r}.labels, 1, {r}.labels > 0)
        ON CONFLICT (dataset_id, split, class_id) DO UPDATE SET n = n + excluded.n,
            labels = labels + excluded.labels, images = images + 1,
            label_images = label_images + excluded.label_images;"""
    return f"""
    UPDATE agg_class_split SET n = n - {r}.n, labels = labels - {r}.labels, images = images - 1,
        label_images = label_images - ({r}.labels > 0)
        WHERE dataset_id = {r}.dataset_id AND split = {r}.split AND class_id = {r}.class_id;"""


def _bump(dataset: str, table: str = "agg_example_set") -> str:
    return f"""
    INSERT INTO {table} (dataset_id, version) VALUES ({dataset}, 1)
        ON CONFLICT (dataset_id) DO UPDATE SET version = version + 1;"""


_DIR_DATASET = "(SELECT dataset_id FROM directories WHERE id = {}.directory_id)"

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS agg_example_class (
    example_id INTEGER NOT NULL,
    class_id INTEGER NOT NULL,
    dataset_id INTEGER NOT NULL,
    split TEXT NOT NULL,
    n INTEGER NOT NULL,
    labels INTEGER NOT NULL,
    objects INTEGER NOT NULL,
    tiny INTEGER NOT NULL,
    huge INTEGER NOT NULL,
    PRIMARY KEY (example_id, class_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS agg_example_class_tiny ON agg_example_class (dataset_id, example_id, tiny) WHERE tiny > 0;
CREATE INDEX IF NOT EXISTS agg_example_class_huge ON agg_example_class (dataset_id, example_id, huge) WHERE huge > 0;
CREATE TABLE IF NOT EXISTS agg_class_split (
    dataset_id INTEGER NOT NULL,
    split TEXT NOT NULL,
    class_id INTEGER NOT NULL,
    n INTEGER NOT NULL,
    labels INTEGER NOT NULL,
    images INTEGER NOT NULL,
    label_images INTEGER NOT NULL,
    PRIMARY KEY (dataset_id, split, class_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agg_box_size (
    dataset_id INTEGER NOT NULL,
    class_id INTEGER NOT NULL,
    bin INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (dataset_id, class_id, bin)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agg_bulk (on_ INTEGER PRIMARY KEY);  -- a row while an import counts in bulk
CREATE TABLE IF NOT EXISTS agg_move (on_ INTEGER PRIMARY KEY);  -- a row while move_examples moves in bulk
CREATE TABLE IF NOT EXISTS agg_example_set (
    dataset_id INTEGER PRIMARY KEY,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS agg_example_removals (
    dataset_id INTEGER PRIMARY KEY,
    version INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS agg_annotation_insert AFTER INSERT ON annotations WHEN NEW.proposal = 0 AND NOT EXISTS (SELECT 1 FROM agg_bulk)
BEGIN {_add("NEW")}
END;
CREATE TRIGGER IF NOT EXISTS agg_annotation_delete AFTER DELETE ON annotations WHEN OLD.proposal = 0 AND NOT EXISTS (SELECT 1 FROM agg_bulk)
BEGIN {_remove("OLD")}
END;
CREATE TRIGGER IF NOT EXISTS agg_annotation_update_old
AFTER UPDATE OF example_id, class_id, kind, w, h, proposal ON annotations WHEN OLD.proposal = 0
BEGIN {_remove("OLD")}
END;
CREATE TRIGGER IF NOT EXISTS agg_annotation_update_new
AFTER UPDATE OF example_id, class_id, kind, w, h, proposal ON annotations WHEN NEW.proposal = 0
BEGIN {_add("NEW")}
END;
CREATE TRIGGER IF NOT EXISTS agg_example_class_insert AFTER INSERT ON agg_example_class
WHEN NOT EXISTS (SELECT 1 FROM agg_bulk)
BEGIN {_class_split("+", "NEW")}
END;
CREATE TRIGGER IF NOT EXISTS agg_example_class_delete AFTER DELETE ON agg_example_class
BEGIN {_class_split("-", "OLD")}
END;
CREATE TRIGGER IF NOT EXISTS agg_example_class_update AFTER UPDATE ON agg_example_class
WHEN NOT EXISTS (SELECT 1 FROM agg_move)
BEGIN {_class_split("-", "OLD")} {_class_split("+", "NEW")}
END;
CREATE TRIGGER IF NOT EXISTS agg_example_delete BEFORE DELETE ON examples
BEGIN
    DELETE FROM annotations WHERE example_id = OLD.id;  -- while the example (its size) is still there
    {_bump("OLD.dataset_id")}
    {_bump("OLD.dataset_id", "agg_example_removals")}
END;
CREATE TRIGGER IF NOT EXISTS agg_example_insert AFTER INSERT ON examples
BEGIN {_bump("NEW.dataset_id")}
END;
CREATE TRIGGER IF NOT EXISTS agg_example_split AFTER UPDATE OF split, blob, dataset_id ON examples
WHEN NOT EXISTS (SELECT 1 FROM agg_move)
BEGIN
    UPDATE agg_example_class SET split = NEW.split, dataset_id = NEW.dataset_id WHERE example_id = NEW.id;
    {_bump("OLD.dataset_id")}
    {_bump("NEW.dataset_id")}
    {_bump("OLD.dataset_id", "agg_example_removals")}
    {_bump("NEW.dataset_id", "agg_example_removals")}
END;
CREATE TRIGGER IF NOT EXISTS agg_member_insert AFTER INSERT ON directory_members
BEGIN {_bump(_DIR_DATASET.format("NEW"))}
END;
CREATE TRIGGER IF NOT EXISTS agg_member_delete AFTER DELETE ON directory_members
BEGIN {_bump(_DIR_DATASET.format("OLD"))}
END;
"""

FINGERPRINT = hashlib.sha256(SCHEMA.encode()).hexdigest()[:16]  # a workspace records which definitions it has


def _recount(table: str, only: str = "") -> str:
    """The SELECT that counts ``table`` from scratch (``only``: an extra condition on annotations ``a``)."""
    f = _flags("a")
    where = f"a.proposal = 0{' AND ' + only if only else ''}"
    if table == "agg_example_class":
        return f"""
        SELECT a.example_id, a.class_id, e.dataset_id, e.split, COUNT(*) AS n, SUM({f['labels']}) AS labels,
               SUM({f['objects']}) AS objects, SUM({f['tiny']}) AS tiny, SUM({f['huge']}) AS huge
        FROM annotations a JOIN examples e ON e.id = a.example_id WHERE {where}
        GROUP BY a.example_id, a.class_id"""
    if table == "agg_box_size":
        return f"""
        SELECT e.dataset_id, a.class_id, wb_size_bin(a.w, a.h, e.width, e.height) AS b, COUNT(*)
        FROM annotations a JOIN examples e ON e.id = a.example_id
        WHERE {where} AND {f['box']} GROUP BY e.dataset_id, a.class_id, b"""
    return f"""
        SELECT dataset_id, split, class_id, SUM(n), SUM(labels), COUNT(*), SUM(labels > 0)
        FROM ({_recount("agg_example_class", only)}) GROUP BY dataset_id, split, class_id"""


_TABLES = ("agg_example_class", "agg_class_split", "agg_box_size")


@contextmanager
def bulk_insert(conn: sqlite3.Connection, first_example: int) -> Iterator[None]:
    """Insert new examples' annotations without the per-row triggers, then count them set-based (an import
    of 1,000,000 boxes: seconds instead of minutes). Only for annotations of examples whose ids start at
    ``first_example``, all inserted inside the block. Run inside a transaction."""
    conn.execute("INSERT INTO agg_bulk VALUES (1)")
    yield
    only = "a.example_id >= ?"
    conn.execute(f"INSERT INTO agg_example_class {_recount('agg_example_class', only)}", (first_example,))
    conn.execute(f"""INSERT INTO agg_class_split (dataset_id, split, class_id, n, labels, images, label_images)
        {_recount('agg_class_split', only)}
        ON CONFLICT (dataset_id, split, class_id) DO UPDATE SET n = n + excluded.n,
            labels = labels + excluded.labels, images = images + excluded.images,
            label_images = label_images + excluded.label_images""", (first_example,))
    conn.execute(f"""INSERT INTO agg_box_size {_recount('agg_box_size', only)}
        ON CONFLICT (dataset_id, class_id, bin) DO UPDATE SET n = n + excluded.n""", (first_example,))
    conn.execute("DELETE FROM agg_bulk")


def rebuild(conn: sqlite3.Connection) -> None:
    """Recount every maintained table from the annotations (a workspace made before they existed).
    Run inside a transaction."""
    for table in _TABLES:
        conn.execute(f"DELETE FROM {table}")
    with bulk_insert(conn, 0):
        pass


def verify(conn: sqlite3.Connection) -> list[str]:
    """Compare every maintained table with a fresh recount; the differences, described (empty: all agree).
    The box sizes of a pending import's hidden dataset are left out: it writes them in its last transaction
    (:func:`add_box_sizes`), before the one that makes its rows visible."""
    problems = []
    pending = {r[0] for r in conn.execute("SELECT shadow_id FROM pending_imports")}
    for table in _TABLES:
        kept = {tuple(r) for r in conn.execute(f"SELECT * FROM {table}")
                if table != "agg_class_split" or r[5] != 0}  # a class split emptied by deletes stays as zeros
        fresh = {tuple(r) for r in conn.execute(_recount(table))}
        if table == "agg_box_size" and pending:
            kept = {r for r in kept if r[0] not in pending}
            fresh = {r for r in fresh if r[0] not in pending}
        if kept != fresh:
            problems.append(f"{table}: {len(kept - fresh)} rows kept that a recount does not give, "
                            f"{len(fresh - kept)} recounted rows missing")
    return problems


def count_range(conn: sqlite3.Connection, first_id: int, last_id: int) -> None:
    """Count the annotations with ids ``first_id..last_id``, inserted just now in this transaction while
    ``agg_bulk`` held the per-row triggers off, set-based (a long import's short transactions: its
    examples' annotations may span several of them, so existing rows are added to, not replaced)."""
    only = "a.id BETWEEN ? AND ?"
    args = (first_id, last_id)
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS agg_new_pairs (example_id INTEGER, class_id INTEGER, "
                 "PRIMARY KEY (example_id, class_id)) WITHOUT ROWID")
    conn.execute("DELETE FROM temp.agg_new_pairs")
    conn.execute(f"""INSERT INTO temp.agg_new_pairs SELECT DISTINCT a.example_id, a.class_id FROM annotations a
        WHERE a.proposal = 0 AND {only} AND NOT EXISTS (SELECT 1 FROM agg_example_class c
            WHERE c.example_id = a.example_id AND c.class_id = a.class_id)""", args)
    # existing (example, class) rows: the update trigger moves their class-split sums by the difference
    conn.execute(f"""INSERT INTO agg_example_class {_recount('agg_example_class', only)}
        ON CONFLICT (example_id, class_id) DO UPDATE SET n = n + excluded.n, labels = labels + excluded.labels,
            objects = objects + excluded.objects, tiny = tiny + excluded.tiny, huge = huge + excluded.huge""", args)
    conn.execute("""INSERT INTO agg_class_split (dataset_id, split, class_id, n, labels, images, label_images)
        SELECT c.dataset_id, c.split, c.class_id, SUM(c.n), SUM(c.labels), COUNT(*), SUM(c.labels > 0)
        FROM agg_example_class c JOIN temp.agg_new_pairs p ON p.example_id = c.example_id AND p.class_id = c.class_id
        GROUP BY c.dataset_id, c.split, c.class_id
        ON CONFLICT (dataset_id, split, class_id) DO UPDATE SET n = n + excluded.n,
            labels = labels + excluded.labels, images = images + excluded.images,
            label_images = label_images + excluded.label_images""")
    conn.execute(f"""INSERT INTO agg_box_size {_recount('agg_box_size', only)}
        ON CONFLICT (dataset_id, class_id, bin) DO UPDATE SET n = n + excluded.n""", args)
    conn.execute("DELETE FROM temp.agg_new_pairs")


@dataclass
class NewCounts:
    """The maintained counts of new examples' annotations, counted in Python (:func:`count_new`) before
    the write transaction opens; :func:`add_new` adds them once the examples have their ids."""

    per_example: list[list[tuple[int, int, int, int, int, int]]]  # per example: (class, n, labels, objects, tiny, huge)
    class_split: dict[tuple[str, int], list[int]]  # (split, class) -> [n, labels, images, label_images]
    box_keys: np.ndarray  # per box: class * (SIZE_BINS + 1) + size bin (counted by box_counts, written apart)


def count_new(examples: Sequence[tuple[str, int, int]], annotations: Sequence[Sequence[Sequence[Any]]]
              ) -> NewCounts:
    """Count new examples' annotations the way the triggers do (the same kinds, thresholds, arithmetic and
    size bins; :func:`verify` compares with a recount): ``examples`` gives each one's (split, width,
    height), ``annotations`` its annotation rows (``store.annotation_row``'s values: class id at 2, kind
    at 3, x y w h at 4-7, proposal at 10). Model proposals are not counted."""
    per_example: list[list[tuple[int, int, int, int, int, int]]] = []
    class_split: dict[tuple[str, int], list[int]] = {}
    # the boxes' sizes, binned together at the end (size_bins: size_bin over arrays; a call per box cost a
    # third of the count)
    box_class: list[int] = []
    box_w: list[float] = []
    box_h: list[float] = []
    box_iw: list[int] = []
    box_ih: list[int] = []
    for (split, width, height), rows in zip(examples, annotations, strict=True):
        per: dict[int, list[int]] = {}
        tiny_w, tiny_h = TINY_BOX_FRACTION * width, TINY_BOX_FRACTION * height
        huge_area = HUGE_BOX_FRACTION * width * height
        for r in rows:
            if r[10]:
                continue
            cid, kind, w, h = r[2], r[3], r[6], r[7]
            c = per.get(cid)
            if c is None:
                c = per[cid] = [0, 0, 0, 0, 0]
            c[0] += 1
            if kind in _LABELS:
                c[1] += 1
            elif kind in _OBJECTS:
                c[2] += 1
                if w is not None:  # stored as REAL: compared and binned as floats, as SQLite does
                    fw, fh = float(w), float(h)
                    if fw < TINY_BOX_PX or fh < TINY_BOX_PX or fw < tiny_w or fh < tiny_h:
                        c[3] += 1
                    if fw * fh > huge_area:
                        c[4] += 1
                    box_class.append(cid)
                    box_w.append(fw)
                    box_h.append(fh)
                    box_iw.append(width)
                    box_ih.append(height)
        out = []
        for cid, (n, labels, objects, tiny, huge) in per.items():
            out.append((cid, n, labels, objects, tiny, huge))
            cs = class_split.get((split, cid))
            if cs is None:
                cs = class_split[(split, cid)] = [0, 0, 0, 0]
            cs[0] += n
            cs[1] += labels
            cs[2] += 1
            cs[3] += labels > 0
        per_example.append(out)
    box_keys = (np.asarray(box_class, np.int64) * (SIZE_BINS + 1) + size_bins(box_w, box_h, box_iw, box_ih)
                if box_class else np.empty(0, np.int64))
    return NewCounts(per_example, class_split, box_keys)


def box_counts(box_keys: Sequence[np.ndarray]) -> dict[tuple[int, int], int]:
    """(class, size bin) -> boxes, from :class:`NewCounts`' ``box_keys`` of any number of counts."""
    if not box_keys:
        return {}
    keys, boxes = np.unique(np.concatenate(box_keys), return_counts=True)
    return {divmod(k, SIZE_BINS + 1): b for k, b in zip(keys.tolist(), boxes.tolist(), strict=True)}


# The per-row insert triggers that ``agg_bulk`` turns into no-ops; a trigger whose WHEN is false still costs
# its call: 2.2 of an annotation's 7.2 us insert here (measured with the triggers as they are, WHEN 0, none).
# ``agg_example_insert`` (a dataset's example-set version, bumped per example) is bumped once per transaction
# instead (:func:`bump_examples`).
BULK_TRIGGERS = ("agg_annotation_insert", "hist_annotation_insert", "agg_example_class_insert",
                 "agg_example_insert")


@contextmanager
def row_triggers_off(conn: sqlite3.Connection) -> Iterator[None]:
    """Inside a write transaction: drop :data:`BULK_TRIGGERS` and create them again, the same SQL, at the
    end of the block. Transactional like every change SQLite makes: other connections never see them gone,
    and an error in the block rolls the transaction back, the triggers with it (they are not put back by
    hand then: the caller's transaction must roll back)."""
    if not conn.in_transaction:
        raise RuntimeError("row_triggers_off needs an open write transaction")
    marks = ",".join("?" * len(BULK_TRIGGERS))
    kept = [(r[0], r[1]) for r in conn.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN ({marks})", BULK_TRIGGERS)]
    for name, _sql in kept:
        conn.execute(f'DROP TRIGGER "{name}"')
    yield
    for _name, sql in kept:
        conn.execute(sql)


def bump_examples(conn: sqlite3.Connection, dataset_id: int) -> None:
    """Say that examples came to ``dataset_id`` (what ``agg_example_insert`` does per example)."""
    conn.execute(_bump("?").strip(), (dataset_id,))


def add_box_sizes(conn: sqlite3.Connection, dataset_id: int, box_size: dict[tuple[int, int], int]) -> None:
    """Add (class, size bin) -> boxes counts to ``agg_box_size``. Run inside a transaction."""
    conn.executemany("""INSERT INTO agg_box_size (dataset_id, class_id, bin, n) VALUES (?,?,?,?)
        ON CONFLICT (dataset_id, class_id, bin) DO UPDATE SET n = n + excluded.n""",
                     [(dataset_id, cid, b, n) for (cid, b), n in box_size.items()])


def add_new(conn: sqlite3.Connection, dataset_id: int, example_ids: Sequence[int], splits: Sequence[str],
            counts: NewCounts) -> None:
    """Add :func:`count_new`'s counts of examples just inserted (ids ``example_ids``, all their annotations
    inserted in this transaction while ``agg_bulk`` held the per-row triggers off) to the maintained
    tables, but the box sizes: :func:`add_box_sizes` of :func:`box_counts` adds those (once for a whole
    import). Run inside that transaction."""
    conn.executemany(
        "INSERT INTO agg_example_class (example_id, class_id, dataset_id, split, n, labels, objects, tiny, huge) "
        "VALUES (?,?,?,?,?,?,?,?,?)",
        [(ex, cid, dataset_id, split, n, labels, objects, tiny, huge)
         for ex, split, per in zip(example_ids, splits, counts.per_example, strict=True)
         for cid, n, labels, objects, tiny, huge in per])
    conn.executemany("""INSERT INTO agg_class_split (dataset_id, split, class_id, n, labels, images, label_images)
        VALUES (?,?,?,?,?,?,?)
        ON CONFLICT (dataset_id, split, class_id) DO UPDATE SET n = n + excluded.n,
            labels = labels + excluded.labels, images = images + excluded.images,
            label_images = label_images + excluded.label_images""",
                     [(dataset_id, split, cid, *v) for (split, cid), v in counts.class_split.items()])


def move_examples(conn: sqlite3.Connection, source: int, target: int) -> None:
    """Move every example of dataset ``source`` (a pending import's shadow, which holds nothing else) into
    dataset ``target``, with their counts, set-based: no per-example trigger work, so the one transaction
    that makes a large import visible stays short. Only additions for ``target``: its removals counter
    stands still (the kept duplicate index just extends). Run inside a transaction."""
    conn.execute("INSERT INTO agg_move VALUES (1)")
    conn.execute("UPDATE examples SET dataset_id=? WHERE dataset_id=?", (target, source))
    conn.execute("UPDATE agg_example_class SET dataset_id=? WHERE dataset_id=?", (target, source))
    conn.execute("""INSERT INTO agg_class_split (dataset_id, split, class_id, n, labels, images, label_images)
        SELECT ?, split, class_id, n, labels, images, label_images FROM agg_class_split WHERE dataset_id=?
        ON CONFLICT (dataset_id, split, class_id) DO UPDATE SET n = n + excluded.n,
            labels = labels + excluded.labels, images = images + excluded.images,
            label_images = label_images + excluded.label_images""", (target, source))
    conn.execute("""INSERT INTO agg_box_size (dataset_id, class_id, bin, n)
        SELECT ?, class_id, bin, n FROM agg_box_size WHERE dataset_id=?
        ON CONFLICT (dataset_id, class_id, bin) DO UPDATE SET n = n + excluded.n""", (target, source))
    for table in ("agg_class_split", "agg_box_size", "agg_example_set", "agg_example_removals"):
        conn.execute(f"DELETE FROM {table} WHERE dataset_id=?", (source,))
    conn.execute(_bump("?").strip(), (target,))
    conn.execute("DELETE FROM agg_move")
