"""A workspace: one folder with ``workbench.db`` (SQLite, WAL) and ``blobs/`` (images by content hash: small
ones in ``blobs/small.sqlite``, the rest as files; see :mod:`.blobs`).

Several processes may open the same workspace at once (two notebook kernels and a CLI, say): every write
is one short ``BEGIN IMMEDIATE`` transaction, retried while another writer holds the lock.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import AlreadyExistsError, NotFoundError, ValidationError
from . import db, history, staged
from .basics import check_new_name, now
from .blobs import BlobStore
from .limits import check_classes
from .records import TASK_TYPES, ClassDef, default_color
from .splits import SplitSettings
from .task_types import type_info

if TYPE_CHECKING:
    from .dataset import Dataset

__all__ = ["Workspace", "default_home", "now", "check_new_name"]

DB_NAME = "workbench.db"


def default_home() -> Path:
    return Path(os.environ.get("WORKBENCH_HOME") or "workbench-data")


def parse_classes(spec: str | list | tuple | None) -> list[ClassDef]:
    """``"a,b,c"`` or ``"a=#ff0000,b=#00ff00"`` or a list of names / ClassDefs / (name, colour)."""
    if spec is None:
        return []
    items: list = [s.strip() for s in spec.split(",") if s.strip()] if isinstance(spec, str) else list(spec)
    out: list[ClassDef] = []
    for i, item in enumerate(items):
        if isinstance(item, ClassDef):
            out.append(item)
        elif isinstance(item, tuple):
            out.append(ClassDef(item[0], item[1] or default_color(i)))
        elif isinstance(item, str) and "=" in item:
            name, color = item.split("=", 1)
            out.append(ClassDef(name.strip(), color.strip()))
        else:
            out.append(ClassDef(str(item), default_color(i)))
    seen: set[str] = set()
    dup: set[str] = set()
    for c in out:  # linear: a source with 50,000 categories must be refused at once, not after minutes
        (dup if c.name in seen else seen).add(c.name)
    if dup:
        raise ValidationError(f"class names repeat: {', '.join(sorted(dup))}", field="classes")
    return out


class Workspace:
    """The root object: ``Workspace(home)`` opens (creating if needed) a workspace folder."""

    def __init__(self, home: str | Path | None = None) -> None:
        self.home = Path(home) if home is not None else default_home()
        self.home.mkdir(parents=True, exist_ok=True)
        self.blobs = BlobStore(self.home / "blobs")
        self.conn: sqlite3.Connection = db.connect(self.home / DB_NAME)
        if staged.pending(self.conn):  # an import a killed process left half written: remove it
            staged.recover(self)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        checkpointer = getattr(self.conn, "checkpointer", None)
        if checkpointer is not None:  # a timer that fires after close would write beside a removed folder
            checkpointer.cancel()
        self.conn.close()
        self.blobs.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self.home)!r})"

    def transaction(self):
        return db.transaction(self.conn)

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    # ------------------------------------------------------------------ datasets
    def create_dataset(
        self,
        name: str,
        type: str,
        *,
        classes: str | list | tuple | None = None,
        description: str = "",
        splits: SplitSettings | None = None,
    ) -> Dataset:
        from .dataset import Dataset

        check_new_name(name, "dataset")
        if type not in TASK_TYPES:
            raise ValidationError(f"unknown dataset type {type!r}; valid: {', '.join(TASK_TYPES)}",
                                  field="type")
        class_defs = parse_classes(classes)
        check_classes(name, len(class_defs))
        info = type_info(type)
        if info.fixed_classes:
            given = {c.name: c for c in class_defs}
            extra = set(given) - set(info.fixed_classes)
            if extra:
                raise ValidationError(
                    f"{type} datasets have the classes {' and '.join(info.fixed_classes)} only, not "
                    f"{', '.join(sorted(extra))}",
                    field="classes",
                )
            class_defs = [given.get(n, ClassDef(n, c))
                          for n, c in zip(info.fixed_classes, info.fixed_colors, strict=True)]
        settings = (splits or SplitSettings()).to_dict()
        with self.transaction():
            if self.conn.execute("SELECT 1 FROM datasets WHERE name=?", (name,)).fetchone():
                raise AlreadyExistsError(f"dataset '{name}' already exists in {self.home}")
            cur = self.conn.execute(
                "INSERT INTO datasets (name, type, description, settings, created_at) VALUES (?,?,?,?,?)",
                (name, type, description, json.dumps(settings), now()),
            )
            ds_id = int(cur.lastrowid or 0)
            for pos, c in enumerate(class_defs):
                self.conn.execute(
                    "INSERT INTO classes (dataset_id, name, color, position) VALUES (?,?,?,?)",
                    (ds_id, c.name, c.color, pos),
                )
        return Dataset(self, ds_id, name)

    def dataset(self, name: str) -> Dataset:
        from .dataset import Dataset

        row = self.conn.execute("SELECT id FROM datasets WHERE name=?", (name,)).fetchone()
        if row is None:
            known = [r[0] for r in self.conn.execute(
                "SELECT name FROM datasets WHERE id NOT IN (SELECT shadow_id FROM pending_imports) ORDER BY name")]
            hint = f"; datasets here: {', '.join(known)}" if known else "; this workspace has none yet"
            raise NotFoundError(f"no dataset '{name}' in {self.home}{hint}")
        return Dataset(self, int(row[0]), name)

    def has_dataset(self, name: str) -> bool:
        return self.conn.execute("SELECT 1 FROM datasets WHERE name=?", (name,)).fetchone() is not None

    def datasets(self) -> list[dict]:
        """Every dataset with its type and counts (examples, annotations)."""
        rows = self.conn.execute(
            """SELECT d.name, d.type, d.description,
                      (SELECT COUNT(*) FROM examples e WHERE e.dataset_id=d.id) AS examples,
                      (SELECT COALESCE(SUM(n), 0) FROM agg_class_split a WHERE a.dataset_id=d.id) AS annotations,
                      (SELECT COUNT(*) FROM classes c WHERE c.dataset_id=d.id) AS classes
               FROM datasets d WHERE d.id NOT IN (SELECT shadow_id FROM pending_imports) ORDER BY d.name"""
        ).fetchall()
        return [dict(r) for r in rows]

    def delete_dataset(self, name: str) -> None:
        ds = self.dataset(name)
        with self.transaction():
            history.forget_dataset(self.conn, ds.id)
            self.conn.execute("DELETE FROM datasets WHERE id=?", (ds.id,))

    # ------------------------------------------------------------------ images
    def load_bytes(self, blob: str) -> bytes:
        return self.blobs.get(blob)

    def gc(self, *, grace_s: float = 3600.0) -> dict:
        """Remove images (files, rows of ``blobs/small.sqlite``) and blob rows that nothing references
        (examples or snapshots).

        A process killed during an import can leave images stored but never committed: they are invisible
        (no row points at them) and this reclaims them. Images stored less than ``grace_s`` ago are kept,
        since a running import stores its images before its transaction commits.
        """
        import time

        from .snapshots import snapshot_blobs

        cutoff = time.time() - grace_s

        with self.transaction():
            referenced = {r[0] for r in self.conn.execute("SELECT DISTINCT blob FROM examples")}
            referenced |= snapshot_blobs(self.conn)
            rows = {r[0] for r in self.conn.execute("SELECT hash FROM blobs")}
            dead_rows = rows - referenced
            self.conn.executemany("DELETE FROM blobs WHERE hash=?", [(h,) for h in dead_rows])
            on_disk = self.blobs.all()
            dead_files = self.blobs.stored_before(on_disk - (rows - dead_rows), cutoff)
            self.blobs.remove_many(dead_files)
            temps = [p for p in self.blobs.temp_files() if p.stat().st_mtime < cutoff]
            for p in temps:
                p.unlink(missing_ok=True)
        if dead_files:
            self.blobs.shrink()
        return {"rows_removed": len(dead_rows), "files_removed": len(dead_files), "temp_removed": len(temps)}

    def check(self) -> list[str]:
        """Integrity problems: SQLite's integrity check plus missing image files. Empty when sound."""
        problems = [r[0] for r in self.conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
        problems += [f"foreign key violation in {r[0]}" for r in self.conn.execute("PRAGMA foreign_key_check")]
        problems += self.blobs.check()
        rows = [r[0] for r in self.conn.execute("SELECT hash FROM blobs ORDER BY hash")]
        gone = self.blobs.missing(rows)
        problems += [f"image {h} is in the database but missing on disk" for h in rows if h in gone]
        return problems
