"""Snapshots: a dataset (or one directory of it) frozen into an immutable, content-hashed record.

The id is the SHA-256 (first 16 hex digits) of the canonical JSON of what the data says: classes, and per
example its image hash, file name, size, split and annotation contents (not who made them or when). Same
content, same id. The payload keeps everything (authors and times too), so a snapshot reads back exactly.
Image files referenced by a snapshot are never garbage-collected. What a source said beyond geometry (an
annotation's attributes and crowd flag, an example's or class's origin, the dataset's source info) is part
of the content only where present, so a snapshot of data without it keeps the id it always had.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError
from ..text import check_text
from .records import Annotation, ClassDef, Example

if TYPE_CHECKING:
    from .dataset import Dataset

__all__ = ["Snapshot", "SnapshotInfo", "take_snapshot", "list_snapshots", "load_snapshot", "diff_snapshots",
           "snapshot_blobs"]


@dataclass(frozen=True)
class SnapshotInfo:
    id: str
    dataset: str
    directory: str | None
    message: str
    created_at: str
    examples: int
    annotations: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Snapshot:
    info: SnapshotInfo
    type: str
    classes: tuple[ClassDef, ...]
    examples: tuple[Example, ...]
    source_info: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def id(self) -> str:
        return self.info.id

    def split(self, name: str) -> list[Example]:
        return [e for e in self.examples if e.split == name]


def _example_payload(e: Example) -> dict[str, Any]:
    d = {"id": e.id, "blob": e.blob, "file_name": e.file_name, "width": e.width, "height": e.height,
         "split": e.split, "status": e.status, "source": e.source,
         "annotations": [a.to_dict() for a in e.annotations]}
    if e.origin:
        d["origin"] = e.origin
    return d


def _class_payload(c: ClassDef) -> list[Any]:
    return [c.name, c.color, c.origin] if c.origin else [c.name, c.color]


def _content_of(payload: dict[str, Any]) -> dict[str, Any]:
    content = {
        "type": payload["type"],
        "classes": payload["classes"],
        "examples": [
            {k: e[k] for k in ("blob", "file_name", "width", "height", "split", "origin") if k in e}
            | {"annotations": sorted(
                json.dumps(Annotation.from_dict(a).content(), sort_keys=True) for a in e["annotations"])}
            for e in payload["examples"]
        ],
    }
    if payload.get("source_info"):
        content["source_info"] = payload["source_info"]
    return content


def _digest(payload: dict[str, Any]) -> str:
    canon = json.dumps(_content_of(payload), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def take_snapshot(ds: Dataset, *, message: str = "", directory: str | None = None) -> SnapshotInfo:
    from .basics import now

    check_text(message, what="snapshot message", field="message")
    with ds.workspace.transaction():  # read and write in one transaction: a consistent view
        examples = ds.examples(directory=directory)
        payload: dict[str, Any] = {
            "dataset": ds.name, "type": ds.type, "directory": directory,
            "classes": [_class_payload(c) for c in ds.classes],
            "examples": [_example_payload(e) for e in examples],
        }
        source_info = ds.source_info
        if source_info:
            payload["source_info"] = source_info
        sid = _digest(payload)
        n_ann = sum(len(e.truth()) for e in examples)
        existing = ds.conn.execute("SELECT 1 FROM snapshots WHERE dataset_id=? AND id=?", (ds.id, sid)).fetchone()
        if existing is None:
            blob = zlib.compress(json.dumps(payload, separators=(",", ":")).encode(), 6)
            ds.conn.execute(
                """INSERT INTO snapshots (id, dataset_id, directory, message, created_at, examples, annotations,
                   payload) VALUES (?,?,?,?,?,?,?,?)""",
                (sid, ds.id, directory, message, now(), len(examples), n_ann, blob))
    return _info(ds, sid)


def _info(ds: Dataset, sid: str) -> SnapshotInfo:
    row = ds.conn.execute(
        "SELECT id, directory, message, created_at, examples, annotations FROM snapshots WHERE dataset_id=? "
        "AND id=?", (ds.id, sid)).fetchone()
    if row is None:
        matches = ds.conn.execute("SELECT id FROM snapshots WHERE dataset_id=? AND id LIKE ?",
                                  (ds.id, sid + "%")).fetchall()
        if len(matches) == 1:
            return _info(ds, matches[0][0])
        raise NotFoundError(f"dataset '{ds.name}' has no snapshot '{sid}'"
                            + (" (prefix is ambiguous)" if matches else ""))
    return SnapshotInfo(row["id"], ds.name, row["directory"], row["message"], row["created_at"],
                        row["examples"], row["annotations"])


def list_snapshots(ds: Dataset) -> list[SnapshotInfo]:
    ids = [r[0] for r in ds.conn.execute(
        "SELECT id FROM snapshots WHERE dataset_id=? ORDER BY created_at, id", (ds.id,))]
    return [_info(ds, i) for i in ids]


def load_snapshot(ds: Dataset, sid: str) -> Snapshot:
    info = _info(ds, sid)
    raw = ds.conn.execute("SELECT payload FROM snapshots WHERE dataset_id=? AND id=?",
                          (ds.id, info.id)).fetchone()[0]
    payload = json.loads(zlib.decompress(raw))
    examples = tuple(
        Example(id=e["id"], dataset=ds.name, blob=e["blob"], file_name=e["file_name"], width=e["width"],
                height=e["height"], split=e["split"], status=e["status"], source=e["source"],
                annotations=tuple(Annotation.from_dict(a) for a in e["annotations"]), origin=e.get("origin", {}))
        for e in payload["examples"])
    classes = tuple(ClassDef(c[0], c[1], origin=c[2] if len(c) > 2 else {}, stored=True) for c in payload["classes"])
    return Snapshot(info=info, type=payload["type"], classes=classes, examples=examples,
                    source_info=payload.get("source_info", {}))


def diff_snapshots(a: Snapshot, b: Snapshot) -> dict[str, Any]:
    """What changed from ``a`` to ``b``: examples added / removed, annotations or split changed, classes."""
    ea = {e.id: e for e in a.examples}
    eb = {e.id: e for e in b.examples}

    def content(e: Example) -> list[str]:
        return sorted(json.dumps(x.content(), sort_keys=True) for x in e.annotations)

    changed = [i for i in sorted(ea.keys() & eb.keys()) if content(ea[i]) != content(eb[i])]
    moved = [i for i in sorted(ea.keys() & eb.keys()) if ea[i].split != eb[i].split]
    ca = {c.name: c.color for c in a.classes}
    cb = {c.name: c.color for c in b.classes}
    return {
        "from": a.id, "to": b.id,
        "added": sorted(eb.keys() - ea.keys()),
        "removed": sorted(ea.keys() - eb.keys()),
        "annotations_changed": changed,
        "split_changed": moved,
        "classes_added": sorted(cb.keys() - ca.keys()),
        "classes_removed": sorted(ca.keys() - cb.keys()),
    }


def snapshot_blobs(conn: sqlite3.Connection) -> set[str]:
    out: set[str] = set()
    for (raw,) in conn.execute("SELECT payload FROM snapshots"):
        out.update(e["blob"] for e in json.loads(zlib.decompress(raw))["examples"])
    return out
