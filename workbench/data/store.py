"""The SQL a dataset runs, by name: every statement :class:`~workbench.data.dataset.Dataset` executes, the
helper that runs an ``IN (...)`` query in chunks SQLite accepts, and the conversions between records and
rows (an annotation's row, its geometry and kept JSON maps).

Statements are module constants named for what they do (``INSERT_EXAMPLE``, ``TOUCH_DATASET``...); the
few that take a variable part say so with a ``{placeholder}`` filled by :func:`in_chunks` (``{q}``: the
``?`` list) or by :func:`example_filter` (``{where}``: the examples of a dataset, a split, a status, a
directory). The schema itself is :mod:`.db`'s.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from .records import Annotation, ClassDef

__all__ = [
    "MAX_VARIABLES", "in_chunks", "example_filter", "json_or_null", "json_of", "geometry_json",
    "annotation_row", "annotation_from_row", "class_ids", "class_names", "known_blobs", "touch",
    "keep_source", "ANNOTATION_COLUMNS",
    # datasets
    "DATASET_ROW", "TOUCH_DATASET", "KEEP_SOURCE_INFO", "SET_AUGMENT",
    # classes
    "CLASSES", "CLASS_IDS", "NEXT_CLASS_POSITION", "INSERT_CLASS", "RENAME_CLASS", "SET_CLASS_COLOR",
    "KEEP_CLASS_ORIGIN", "KEEP_CLASS_ORIGIN_BY_ID",
    # images
    "BLOB_REFERENCED", "INSERT_BLOB", "KNOWN_BLOBS",
    # examples
    "INSERT_EXAMPLE", "EXAMPLE_ROW", "EXAMPLES_BY_ID", "SPLIT_COUNTS", "SPLIT_COUNTS_OF", "SPLIT_MEMBERS", "EXAMPLE_IDS",
    "EXAMPLE_COUNT", "EXAMPLE_ROWS", "EXAMPLE_STATUSES", "MARK_ANNOTATED", "TOUCH_EXAMPLE", "SET_STATUS",
    "DELETE_EXAMPLE",
    # annotations
    "INSERT_ANNOTATION", "UPDATE_ANNOTATION", "DELETE_ANNOTATION", "ANNOTATIONS_OF_EXAMPLES",
    "ANNOTATIONS_IN_RANGE", "SHAPE_COUNT", "IMAGE_LABEL", "DELETE_IMAGE_LABEL", "ANNOTATION_EXAMPLE",
    "ANNOTATION_DELETED", "LAST_EDITOR", "ANNOTATION_VERSION", "ANNOTATION_CREATED_VERSION",
    "COUNT_OTHER_ANNOTATIONS", "DELETE_ANNOTATIONS_OF",
    # directories
    "DIRECTORY_ID", "DIRECTORY_NAMES", "INSERT_DIRECTORY", "DIRECTORIES", "MEMBER_COUNT", "INSERT_MEMBER",
    "DELETE_MEMBER", "DELETE_DIRECTORY",
]

MAX_VARIABLES = 900  # values per ``IN (...)`` list: under SQLite's oldest default limit of 999 variables

# ---------------------------------------------------------------------------------------------- datasets
DATASET_ROW = "SELECT * FROM datasets WHERE id=?"
TOUCH_DATASET = "UPDATE datasets SET version = version + 1 WHERE id=?"
KEEP_SOURCE_INFO = "UPDATE datasets SET source_info=? WHERE id=? AND source_info IS NULL"  # the first source's
SET_AUGMENT = "UPDATE datasets SET augment=? WHERE id=?"

# ---------------------------------------------------------------------------------------------- classes
CLASSES = "SELECT name, color, origin FROM classes WHERE dataset_id=? ORDER BY position"
CLASS_IDS = "SELECT name, id FROM classes WHERE dataset_id=?"
NEXT_CLASS_POSITION = "SELECT COALESCE(MAX(position) + 1, 0) FROM classes WHERE dataset_id=?"
INSERT_CLASS = "INSERT INTO classes (dataset_id, name, color, position) VALUES (?,?,?,?)"
RENAME_CLASS = "UPDATE classes SET name=? WHERE id=?"
SET_CLASS_COLOR = "UPDATE classes SET color=? WHERE dataset_id=? AND name=?"
KEEP_CLASS_ORIGIN = "UPDATE classes SET origin=? WHERE dataset_id=? AND name=? AND origin IS NULL"
KEEP_CLASS_ORIGIN_BY_ID = "UPDATE classes SET origin=? WHERE id=? AND origin IS NULL"

# ---------------------------------------------------------------------------------------------- images
BLOB_REFERENCED = "SELECT 1 FROM blobs WHERE hash=?"
INSERT_BLOB = "INSERT OR IGNORE INTO blobs (hash, size, width, height, format, phash) VALUES (?,?,?,?,?,?)"
KNOWN_BLOBS = "SELECT hash FROM blobs WHERE hash IN ({q})"

# ---------------------------------------------------------------------------------------------- examples
INSERT_EXAMPLE = """INSERT INTO examples (dataset_id, blob, file_name, width, height, split, split_key, status,
    source, created_at, updated_at, origin) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"""
EXAMPLE_ROW = "SELECT * FROM examples WHERE id=? AND dataset_id=?"
EXAMPLES_BY_ID = "SELECT e.* FROM examples e WHERE e.dataset_id=? AND e.id IN ({q})"
SPLIT_COUNTS = "SELECT split, COUNT(*) FROM examples WHERE dataset_id=? AND id < ? GROUP BY split"  # (ids below)
SPLIT_COUNTS_OF = "SELECT split, COUNT(*) FROM examples WHERE id IN ({q}) GROUP BY split"  # of some examples
SPLIT_MEMBERS = ("SELECT e.file_name, e.blob, b.phash, e.split FROM examples e JOIN blobs b ON b.hash = e.blob "
                 "WHERE e.dataset_id=? AND e.id < ? ORDER BY e.id")
# over example_filter's ``{where}``
EXAMPLE_IDS = "SELECT e.id {where} ORDER BY e.id"
EXAMPLE_COUNT = "SELECT COUNT(*) {where}"
EXAMPLE_ROWS = "SELECT e.* {where} ORDER BY e.id"
EXAMPLE_STATUSES = "SELECT e.id, e.status {where} ORDER BY e.id"
MARK_ANNOTATED = ("UPDATE examples SET status=CASE status WHEN 'new' THEN 'annotated' ELSE status END, "
                  "updated_at=? WHERE id=?")
TOUCH_EXAMPLE = "UPDATE examples SET updated_at=? WHERE id=?"
SET_STATUS = "UPDATE examples SET status=?, updated_at=? WHERE id=?"
DELETE_EXAMPLE = "DELETE FROM examples WHERE id=?"

# ---------------------------------------------------------------------------------------------- annotations
ANNOTATION_COLUMNS = ("example_id, dataset_id, class_id, kind, x, y, w, h, geometry, score, proposal, author, "
                      "created_at, updated_at, attributes, iscrowd, source_id")  # annotation_row's order
INSERT_ANNOTATION = (f"INSERT INTO annotations ({ANNOTATION_COLUMNS}) "
                     "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
UPDATE_ANNOTATION = """UPDATE annotations SET class_id=?, kind=?, x=?, y=?, w=?, h=?, geometry=?, score=?,
    proposal=?, author=?, updated_at=?, attributes=?, iscrowd=?, source_id=?, version=version + 1 WHERE id=?"""
DELETE_ANNOTATION = "DELETE FROM annotations WHERE id=?"
ANNOTATIONS_OF_EXAMPLES = "SELECT * FROM annotations WHERE example_id IN ({q}) ORDER BY id"
ANNOTATIONS_IN_RANGE = ("SELECT * FROM annotations WHERE dataset_id=? AND example_id BETWEEN ? AND ? "
                        "ORDER BY id")
SHAPE_COUNT = "SELECT COUNT(*) FROM annotations WHERE example_id=?"
IMAGE_LABEL = ("SELECT id, version, author FROM annotations WHERE example_id=? AND kind=? AND proposal=0 "
               "AND x IS NULL")
DELETE_IMAGE_LABEL = "DELETE FROM annotations WHERE example_id=? AND kind=? AND proposal=0 AND x IS NULL"
ANNOTATION_EXAMPLE = "SELECT example_id, version, author FROM annotations WHERE id=? AND dataset_id=?"
ANNOTATION_DELETED = ("SELECT 1 FROM annotation_history WHERE annotation_id=? AND dataset_id=? "
                      "AND action='delete'")
LAST_EDITOR = "SELECT who FROM annotation_history WHERE annotation_id=? ORDER BY id DESC LIMIT 1"
ANNOTATION_VERSION = "SELECT version FROM annotations WHERE id=? AND dataset_id=?"
ANNOTATION_CREATED_VERSION = "SELECT created_at, version FROM annotations WHERE id=?"
COUNT_OTHER_ANNOTATIONS = "SELECT COUNT(*) FROM annotations WHERE example_id=? AND proposal<>?"
DELETE_ANNOTATIONS_OF = "DELETE FROM annotations WHERE example_id=? AND proposal=?"

# ---------------------------------------------------------------------------------------------- directories
DIRECTORY_ID = "SELECT id FROM directories WHERE dataset_id=? AND name=?"
DIRECTORY_NAMES = "SELECT name FROM directories WHERE dataset_id=? ORDER BY name"
INSERT_DIRECTORY = "INSERT INTO directories (dataset_id, name, created_at) VALUES (?,?,?)"
DIRECTORIES = """SELECT d.name, COUNT(m.example_id) AS examples FROM directories d
    LEFT JOIN directory_members m ON m.directory_id = d.id WHERE d.dataset_id=? GROUP BY d.id ORDER BY d.name"""
MEMBER_COUNT = "SELECT COUNT(*) FROM directory_members WHERE directory_id=?"
INSERT_MEMBER = "INSERT OR IGNORE INTO directory_members VALUES (?,?)"
DELETE_MEMBER = "DELETE FROM directory_members WHERE directory_id=? AND example_id=?"
DELETE_DIRECTORY = "DELETE FROM directories WHERE id=?"

# example_filter's parts
_EXAMPLES_OF = "FROM examples e WHERE e.dataset_id=?"
_AND_SPLIT = " AND e.split=?"
_AND_STATUS = " AND e.status=?"
_AND_IN_DIRECTORY = " AND e.id IN (SELECT example_id FROM directory_members WHERE directory_id=?)"


# ---------------------------------------------------------------------------------------------- running
def in_chunks(conn: sqlite3.Connection, sql: str, values: Sequence[Any], before: Sequence[Any] = (),
              size: int = MAX_VARIABLES) -> Iterator[sqlite3.Row]:
    """The rows of ``sql`` over ``values`` in chunks of at most ``size``: ``{q}`` in ``sql`` becomes each
    chunk's ``?`` list, bound after the fixed ``before`` parameters. Rows come chunk by chunk, in each
    chunk's own order."""
    for start in range(0, len(values), size):
        part = list(values[start:start + size])
        yield from conn.execute(sql.format(q=",".join("?" * len(part))), [*before, *part])


def example_filter(dataset_id: int, split: str | None = None, status: str | None = None,
                   directory_id: int | None = None) -> tuple[str, list[Any]]:
    """``(where, args)``: the ``FROM ... WHERE`` of a dataset's examples (of one split, status, directory)
    for the ``{where}`` of :data:`EXAMPLE_IDS`, :data:`EXAMPLE_COUNT`, :data:`EXAMPLE_ROWS`,
    :data:`EXAMPLE_STATUSES`."""
    sql = _EXAMPLES_OF
    args: list[Any] = [dataset_id]
    if split is not None:
        sql += _AND_SPLIT
        args.append(split)
    if status is not None:
        sql += _AND_STATUS
        args.append(status)
    if directory_id is not None:
        sql += _AND_IN_DIRECTORY
        args.append(directory_id)
    return sql, args


# ---------------------------------------------------------------------------------------------- rows
def json_or_null(d: dict[str, Any]) -> str | None:
    """A kept JSON map as stored: NULL when empty (rows of older workspaces read the same)."""
    return json.dumps(d, separators=(",", ":"), ensure_ascii=False, sort_keys=True) if d else None


def json_of(text: str | None) -> dict[str, Any]:
    """A kept JSON map as read (``{}`` for NULL)."""
    return dict(json.loads(text)) if text else {}


def geometry_json(ann: Annotation) -> str | None:
    """The ``geometry`` column of an annotation: its polygons and mask as JSON (NULL when it has neither)."""
    g: dict[str, Any] = {}
    if ann.polygons is not None:
        g["polygons"] = [list(p) for p in ann.polygons]
    if ann.mask is not None:
        g["mask"] = ann.mask
    return json.dumps(g, separators=(",", ":")) if g else None


def annotation_row(dataset_id: int, example_id: int, ann: Annotation, class_ids: dict[str, int], author: str,
                   stamp: str) -> tuple:
    """The values of :data:`INSERT_ANNOTATION` for ``ann`` (columns :data:`ANNOTATION_COLUMNS`)."""
    b = ann.bbox
    geometry = geometry_json(ann) if ann.polygons is not None or ann.mask is not None else None
    attributes = json_or_null(ann.attributes) if ann.attributes else None  # (no calls for a plain box)
    return (example_id, dataset_id, class_ids[ann.label], ann.kind,
            b[0] if b else None, b[1] if b else None, b[2] if b else None, b[3] if b else None,
            geometry, ann.score, int(ann.proposal), author, stamp, stamp, attributes, int(ann.iscrowd),
            ann.source_id)


def annotation_from_row(r: sqlite3.Row, names: dict[int, str]) -> Annotation:
    """The stored annotation of row ``r`` (``names``: class id -> class name)."""
    g = json.loads(r["geometry"]) if r["geometry"] else {}
    bbox = (r["x"], r["y"], r["w"], r["h"]) if r["x"] is not None else None
    return Annotation(
        kind=r["kind"], label=names[r["class_id"]], bbox=bbox,
        polygons=tuple(tuple(p) for p in g["polygons"]) if "polygons" in g else None,
        mask=g.get("mask"), score=r["score"], proposal=bool(r["proposal"]), author=r["author"],
        created_at=r["created_at"], id=r["id"], version=r["version"], stored=True,
        attributes=json_of(r["attributes"]), iscrowd=bool(r["iscrowd"]), source_id=r["source_id"])


# ---------------------------------------------------------------------------------------------- small steps
def class_ids(conn: sqlite3.Connection, dataset_id: int) -> dict[str, int]:
    """``{class name: class id}`` of a dataset."""
    return {r[0]: r[1] for r in conn.execute(CLASS_IDS, (dataset_id,))}


def class_names(conn: sqlite3.Connection, dataset_id: int) -> dict[int, str]:
    """``{class id: class name}`` of a dataset."""
    return {r[1]: r[0] for r in conn.execute(CLASS_IDS, (dataset_id,))}


def known_blobs(conn: sqlite3.Connection, digests: Sequence[str]) -> set[str]:
    """Which of the image hashes ``digests`` the store has a row for."""
    return {r[0] for r in in_chunks(conn, KNOWN_BLOBS, digests)}


def touch(conn: sqlite3.Connection, dataset_id: int) -> None:
    """Bump the dataset's change counter (every change does; widgets and the stats cache read it)."""
    conn.execute(TOUCH_DATASET, (dataset_id,))


def keep_source(conn: sqlite3.Connection, dataset_id: int, classes: Iterable[ClassDef],
                source_info: dict[str, Any] | None) -> None:
    """What the first source said of its classes and of itself (kept where nothing was kept before)."""
    for c in classes:
        if c.origin:
            conn.execute(KEEP_CLASS_ORIGIN, (json_or_null(c.origin), dataset_id, c.name))
    if source_info:
        conn.execute(KEEP_SOURCE_INFO, (json_or_null(source_info), dataset_id))
