"""Annotation versions and the append-only edit history: nothing deleted or overwritten is lost for good.

Every annotation row carries ``version``, bumped by every update (``Dataset.update_annotation``). An edit
or delete made from a stale view (the version its editor read is no longer the stored one) is refused
with :class:`~workbench.errors.EditConflictError`, so two tabs never silently overwrite each other.

SQLite triggers write ``annotation_history`` inside the transaction of every change, whatever code path
makes it (canvas edits, classification label replacement, proposals replaced by mining, examples
deleted): who, when, dataset, example, annotation, action (``add`` / ``update`` / ``delete``) and the
annotation as JSON before and after. Bulk imports of new examples (``agg_bulk`` set) are not logged row by
row: nothing existed before them. "Who" is the actor the writing method names (``acting``), else the
row's author. The history is never updated or deleted by Workbench; :func:`restore` brings a deleted
annotation back (or an edited one to its earlier content) as a new edit.

Installed on open like the maintained aggregates: the triggers are recreated when this module defines
them differently from the Workbench that made the workspace (``meta`` key ``history``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, ValidationError
from ..text import check_author
from .records import Annotation

if TYPE_CHECKING:
    from .dataset import Dataset

__all__ = ["HistoryEntry", "install", "register_functions", "acting", "entries", "restore", "annotation_from_json",
           "forget_dataset", "FINGERPRINT"]

ACTIONS = ("add", "update", "delete")


def _json(r: str) -> str:
    return f"""json_object('label', (SELECT name FROM classes WHERE id = {r}.class_id), 'kind', {r}.kind,
        'x', {r}.x, 'y', {r}.y, 'w', {r}.w, 'h', {r}.h, 'geometry', json({r}.geometry), 'score', {r}.score,
        'proposal', {r}.proposal, 'author', {r}.author, 'created_at', {r}.created_at,
        'updated_at', {r}.updated_at, 'version', {r}.version, 'attributes', json({r}.attributes),
        'iscrowd', {r}.iscrowd, 'source_id', {r}.source_id)"""


def _log(action: str, r: str, before: str, after: str, who: str) -> str:
    return f"""INSERT INTO annotation_history (at, who, dataset_id, example_id, annotation_id, action, before, after)
        VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), {who}, {r}.dataset_id, {r}.example_id, {r}.id,
                '{action}', {before}, {after});"""


_CHANGED = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in
                       ("class_id", "kind", "x", "y", "w", "h", "geometry", "score", "proposal", "version",
                        "attributes", "iscrowd", "source_id"))

TABLE = """
CREATE TABLE IF NOT EXISTS annotation_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    who TEXT NOT NULL,
    dataset_id INTEGER NOT NULL,
    example_id INTEGER NOT NULL,
    annotation_id INTEGER NOT NULL,
    action TEXT NOT NULL,
    before TEXT,
    after TEXT
);
CREATE INDEX IF NOT EXISTS annotation_history_example ON annotation_history (dataset_id, example_id);
CREATE INDEX IF NOT EXISTS annotation_history_annotation ON annotation_history (annotation_id);
"""

TRIGGERS = f"""
CREATE TRIGGER hist_annotation_insert AFTER INSERT ON annotations
WHEN NOT EXISTS (SELECT 1 FROM agg_bulk) AND NOT EXISTS (SELECT 1 FROM hist_off)
BEGIN {_log("add", "NEW", "NULL", _json("NEW"), "COALESCE(NULLIF(wb_actor(), ''), NEW.author)")}
END;
CREATE TRIGGER hist_annotation_update AFTER UPDATE ON annotations
WHEN ({_CHANGED}) AND NOT EXISTS (SELECT 1 FROM hist_off)
BEGIN {_log("update", "NEW", _json("OLD"), _json("NEW"), "COALESCE(NULLIF(wb_actor(), ''), NEW.author)")}
END;
CREATE TRIGGER hist_annotation_delete AFTER DELETE ON annotations WHEN NOT EXISTS (SELECT 1 FROM hist_off)
BEGIN {_log("delete", "OLD", _json("OLD"), "NULL", "wb_actor()")}
END;
CREATE TRIGGER hist_no_update BEFORE UPDATE ON annotation_history
BEGIN SELECT RAISE(ABORT, 'the annotation history is append-only'); END;
CREATE TRIGGER hist_no_delete BEFORE DELETE ON annotation_history WHEN NOT EXISTS (SELECT 1 FROM hist_off)
BEGIN SELECT RAISE(ABORT, 'the annotation history is append-only'); END;
"""

FINGERPRINT = hashlib.sha256((TABLE + TRIGGERS).encode()).hexdigest()[:16]


def register_functions(conn: sqlite3.Connection) -> None:
    """``wb_actor()``: who the current write is made by (see :func:`acting`); every connection registers it."""
    ref = weakref.ref(conn)

    def actor() -> str:
        c = ref()
        return str(getattr(c, "actor", "") or "") if c is not None else ""

    conn.create_function("wb_actor", 0, actor)


@contextmanager
def acting(conn: sqlite3.Connection, who: str) -> Iterator[None]:
    """Writes on ``conn`` inside the block are recorded in the history as made by ``who`` (checked:
    :func:`workbench.text.check_author`)."""
    check_author(who)
    prev = getattr(conn, "actor", "")
    conn.actor = who  # type: ignore[attr-defined]
    try:
        yield
    finally:
        conn.actor = prev  # type: ignore[attr-defined]


def install(conn: sqlite3.Connection, statements: Callable[[str], Iterator[str]]) -> None:
    """Add the ``version`` column and the history table to a workspace that lacks them, and (re)create the
    triggers when their definition changed. Run inside the opening transaction."""
    cols = {r[1] for r in conn.execute("PRAGMA table_info(annotations)")}
    if "version" not in cols:
        conn.execute("ALTER TABLE annotations ADD COLUMN version INTEGER NOT NULL DEFAULT 1")
    conn.execute("CREATE TABLE IF NOT EXISTS hist_off (on_ INTEGER PRIMARY KEY)")  # a row: not logged (below)
    for stmt in statements(TABLE):
        conn.execute(stmt)
    row = conn.execute("SELECT value FROM meta WHERE key='history'").fetchone()
    if row is not None and row[0] == FINGERPRINT:
        return
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger' AND name LIKE 'hist%'").fetchall():
        conn.execute(f'DROP TRIGGER "{name}"')
    for stmt in statements(TRIGGERS):
        conn.execute(stmt)
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('history', ?)", (FINGERPRINT,))


def forget_dataset(conn: sqlite3.Connection, dataset_id: int) -> None:
    """A whole dataset is being deleted: its annotations go without a history row each, and its history
    goes with it (as its snapshots do), so a later dataset that reuses the id starts clean. Run inside the
    deleting transaction, before the annotations are deleted."""
    conn.execute("INSERT OR IGNORE INTO hist_off VALUES (1)")
    conn.execute("DELETE FROM annotations WHERE dataset_id=?", (dataset_id,))
    conn.execute("DELETE FROM annotation_history WHERE dataset_id=?", (dataset_id,))
    conn.execute("DELETE FROM hist_off")


@dataclass(frozen=True)
class HistoryEntry:
    """One change of one annotation, as the history keeps it."""

    id: int
    at: str
    who: str
    dataset: str
    example_id: int
    annotation_id: int
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "who": self.who, "dataset": self.dataset,
                "example_id": self.example_id, "annotation_id": self.annotation_id, "action": self.action,
                "before": self.before, "after": self.after}


def entries(ds: Dataset, example_id: int | None = None, annotation_id: int | None = None,
            limit: int | None = None) -> list[HistoryEntry]:
    """The history of dataset ``ds`` (or of one example / annotation of it), oldest first."""
    sql = "SELECT * FROM annotation_history WHERE dataset_id=?"
    args: list[Any] = [ds.id]
    if example_id is not None:
        sql += " AND example_id=?"
        args.append(int(example_id))
    if annotation_id is not None:
        sql += " AND annotation_id=?"
        args.append(int(annotation_id))
    sql += " ORDER BY id"
    if limit is not None:
        sql = f"SELECT * FROM ({sql} DESC LIMIT ?) ORDER BY id"
        args.append(int(limit))
    return [HistoryEntry(r["id"], r["at"], r["who"], ds.name, r["example_id"], r["annotation_id"], r["action"],
                         json.loads(r["before"]) if r["before"] else None,
                         json.loads(r["after"]) if r["after"] else None)
            for r in ds.conn.execute(sql, args)]


def annotation_from_json(d: dict[str, Any]) -> Annotation:
    """The annotation a history JSON (``before`` / ``after``) describes, without store identity."""
    g = d.get("geometry") or {}
    bbox = (d["x"], d["y"], d["w"], d["h"]) if d.get("x") is not None else None
    return Annotation(
        kind=d["kind"], label=d["label"], bbox=bbox,
        polygons=tuple(tuple(p) for p in g["polygons"]) if "polygons" in g else None,
        mask=g.get("mask"), score=d.get("score"), proposal=bool(d.get("proposal")), author=d.get("author") or "",
        stored=True, attributes=dict(d.get("attributes") or {}), iscrowd=bool(d.get("iscrowd")),
        source_id=d.get("source_id"))


def restore(ds: Dataset, entry_id: int, author: str) -> Annotation:
    """Undo one history entry as a new edit by ``author``: a deleted annotation is added again (with a new
    id), an edited one gets its earlier content back (refused if it changed again since), an added one is
    deleted. Returns the annotation as stored now (the deleted one for an ``add``)."""
    row = ds.conn.execute("SELECT * FROM annotation_history WHERE id=? AND dataset_id=?",
                          (int(entry_id), ds.id)).fetchone()
    if row is None:
        raise NotFoundError(f"dataset '{ds.name}' has no history entry {entry_id}")
    action = row["action"]
    if action == "delete":
        return ds.add_annotation(row["example_id"], annotation_from_json(json.loads(row["before"])), author)
    after = json.loads(row["after"])
    if action == "update":
        before = annotation_from_json(json.loads(row["before"]))
        return ds.update_annotation(row["annotation_id"], replace(before, version=after["version"]), author)
    if action == "add":
        gone = annotation_from_json(after)
        ds.delete_annotation(row["annotation_id"], version=after["version"], author=author)
        return gone
    raise ValidationError(f"history entry {entry_id} has an unknown action {action!r}", field="action")
