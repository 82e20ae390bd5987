"""A dataset in a workspace: classes, examples, annotations and directories.

Every public method that changes something is one committed transaction. Imports are all-or-nothing:
every image and annotation is validated before anything is written, and a failure leaves the store as it
was (image files written for a failed import are removed again).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import (
    AlreadyExistsError,
    EditConflictError,
    NotFoundError,
    TooFewExamplesError,
    ValidationError,
    WorkbenchError,
)
from ..progress import ProgressFn, Stage
from ..text import check_author
from . import aggregates, bulk_import, staged, store
from .basics import check_new_name, now
from .blobs import sha256_bytes
from .history import acting
from .image_pool import check_items
from .images import check_image
from .limits import check_classes, check_shapes
from .records import (
    KINDS_FOR_TYPE,
    SPLITS,
    STATUSES,
    Annotation,
    ClassDef,
    Example,
    ImportBatch,
    default_color,
)
from .split_groups import Member, assign_grouped
from .splits import MIN_TRAIN_EXAMPLES, SplitSettings, split_key
from .store import json_of, json_or_null
from .task_types import type_info

if TYPE_CHECKING:
    from .workspace import Workspace

_log = logging.getLogger(__name__)
STORE_ROWS = 256  # images an in-memory import stores per transaction of the small images' table

__all__ = ["Dataset", "drop_unreferenced"]


def drop_unreferenced(ws: Workspace, digests: Iterable[str], *, rolled_back_later: bool) -> None:
    """Remove images an import wrote, unless a committed row points at them (a failed import's
    clean-up: :meth:`Dataset.import_batch`, the bulk import and ``transfer.import_source`` call it).

    Inside an enclosing transaction the rows this import inserted will be rolled back, so every file
    it wrote goes. Other writers re-check their files inside their own transaction (see
    ``Dataset._insert_prepared``), so removing a file they are about to reference cannot dangle.
    """
    unused = []
    for d in digests:
        used = None
        if not rolled_back_later:
            try:
                used = ws.conn.execute(store.BLOB_REFERENCED, (d,)).fetchone()
            except sqlite3.Error:
                used = None
        if not used:
            unused.append(d)
    ws.blobs.remove_many(unused)


class Dataset:
    def __init__(self, workspace: Workspace, id: int, name: str) -> None:
        self.split_notes: list[str] = []  # what the last import's split drawing had to give up, if anything
        self.workspace = workspace
        self.id = id
        self.name = name

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, type={self.type!r})"

    @property
    def conn(self) -> sqlite3.Connection:
        return self.workspace.conn

    def _tx(self):
        return self.workspace.transaction()

    def _row(self) -> sqlite3.Row:
        row = self.conn.execute(store.DATASET_ROW, (self.id,)).fetchone()
        if row is None:
            raise NotFoundError(f"dataset '{self.name}' was deleted")
        return row

    # ------------------------------------------------------------------ properties
    @property
    def type(self) -> str:
        return str(self._row()["type"])

    @property
    def description(self) -> str:
        return str(self._row()["description"])

    @property
    def split_settings(self) -> SplitSettings:
        return SplitSettings.from_dict(json.loads(self._row()["settings"]))

    @property
    def classes(self) -> list[ClassDef]:
        rows = self.conn.execute(store.CLASSES, (self.id,)).fetchall()
        return [ClassDef(r[0], r[1], origin=json_of(r[2]), stored=True) for r in rows]

    @property
    def source_info(self) -> dict[str, Any]:
        """What the imported source said about the dataset as a whole (COCO ``info`` / ``licenses``)."""
        return json_of(self._row()["source_info"])

    def _class_ids(self) -> dict[str, int]:
        return store.class_ids(self.conn, self.id)

    def class_names(self) -> dict[int, str]:
        """``{class id: class name}`` (the store's ids, as in its aggregate tables)."""
        return store.class_names(self.conn, self.id)

    # ------------------------------------------------------------------ classes
    def add_class(self, name: str, color: str | None = None) -> ClassDef:
        dtype = self.type
        fixed = type_info(dtype).fixed_classes
        if fixed:
            raise ValidationError(f"{dtype} datasets have the fixed classes {' and '.join(fixed)}", field="classes")
        with self._tx():
            pos = self.conn.execute(store.NEXT_CLASS_POSITION, (self.id,)).fetchone()[0]
            c = ClassDef(name, color or default_color(pos))
            ids = self._class_ids()
            if name in ids:
                raise AlreadyExistsError(f"dataset '{self.name}' already has a class '{name}'")
            check_classes(self.name, len(ids) + 1)
            self.conn.execute(store.INSERT_CLASS, (self.id, c.name, c.color, pos))
            self._touch()
        return c

    def rename_class(self, old: str, new: str) -> None:
        ClassDef(new, "#000000")  # validates the name
        with self._tx():
            ids = self._class_ids()
            if old not in ids:
                raise NotFoundError(f"dataset '{self.name}' has no class '{old}'")
            if new in ids:
                raise AlreadyExistsError(f"dataset '{self.name}' already has a class '{new}'")
            fixed = type_info(self.type).fixed_classes
            if fixed:
                raise ValidationError(f"{self.type} classes {' and '.join(fixed)} cannot be renamed", field="classes")
            self.conn.execute(store.RENAME_CLASS, (new, ids[old]))
            self._touch()

    def set_class_color(self, name: str, color: str) -> None:
        c = ClassDef(name, color, stored=True)  # an existing class: only the colour is new
        with self._tx():
            cur = self.conn.execute(store.SET_CLASS_COLOR, (c.color, self.id, name))
            if cur.rowcount == 0:
                raise NotFoundError(f"dataset '{self.name}' has no class '{name}'")
            self._touch()

    # ------------------------------------------------------------------ import
    def import_batch(self, batch: ImportBatch, *, author: str = "import", directory: str | None = None,
                     source_file: str | None = None, progress: ProgressFn | None = None) -> list[int]:
        """Add every item of ``batch`` or nothing. Returns the new example ids in item order. ``progress``
        hears of each stage (:mod:`workbench.progress`).

        A large import (more than ``staged.CHUNK_ROWS`` rows) made outside a caller's transaction is written
        in short transactions, invisible until one short final commit makes all of it visible (see
        :mod:`.staged`): other writers never wait for more than one of them; its images are stored while
        the rows are written, their bytes not kept (:mod:`.bulk_import`)."""
        check_author(author)
        if not self.conn.in_transaction and bulk_import.is_large(batch):
            return bulk_import.import_batch(self, batch, author=author, directory=directory,
                                            source_file=source_file, progress=progress)
        prepared = self._prepare(batch, source_file, progress)
        written: list[str] = []
        nested = self.conn.in_transaction
        try:
            storing = Stage(progress, "import", "storing images", len(prepared), "images")
            for k in range(0, len(prepared), STORE_ROWS):  # small images: a transaction per run of them
                run = [(data, digest) for _item, data, digest, _info in prepared[k:k + STORE_ROWS]]
                written += [d for (_data, d), new in zip(run, self.workspace.blobs.put_many(run), strict=True)
                            if new]
                storing.advance(len(run))
            storing.close()
            if written:
                self.workspace.blobs.sync()
            if batch.info and self.source_info and self.source_info != batch.info:
                batch.report.note(f"dataset '{self.name}' keeps the info / licenses of its first source")
            if nested or not staged.worth_staging(prepared):
                return self._insert_prepared(prepared, batch.classes, author, directory, batch.info)
            splits, keys = self.plan_splits(prepared)
            ids = staged.import_prepared(self, prepared, batch.classes, author, directory, splits, keys,
                                         batch.info, progress=progress)
        except BaseException:
            self.drop_unreferenced(written, rolled_back_later=nested)
            raise
        self.warm_duplicates(len(ids), progress)
        return ids

    def _prepare(self, batch: ImportBatch, source_file: str | None,
                 progress: ProgressFn | None = None) -> list[tuple[Any, bytes, str, Any]]:
        """Validate every item of ``batch`` (limits first, then images and annotations) before any write."""
        dtype = self.type
        if batch.type is not None and batch.type != dtype and batch.type not in type_info(dtype).also_takes:
            raise ValidationError(
                f"the source holds {batch.type} data but dataset '{self.name}' is {dtype}",
                file=source_file or batch.source or None, field="type",
            )
        allowed = KINDS_FOR_TYPE[dtype]
        known = {c.name for c in self.classes} | {c.name for c in batch.classes}
        check_classes(self.name, len(known), file=source_file or batch.source or None)
        for idx, item in enumerate(batch.items):  # before any image is read
            check_shapes(len(item.annotations), file=str(item.path) if item.path else (item.file_name or source_file),
                         record=item.record if item.record is not None else idx)
        check_items(batch.items, progress=progress)  # one decode per image its reader did not check, in parallel
        prepared: list[tuple[Any, bytes, str, Any]] = []
        reading = Stage(progress, "import", "reading images", len(batch.items), "images")
        for idx, item in enumerate(batch.items):
            file = str(item.path) if item.path else (item.file_name or source_file)
            record = item.record if item.record is not None else idx
            try:
                data = item.read_bytes()
            except OSError as e:
                raise ValidationError(f"cannot read image: {e.strerror or e}", file=file, record=record,
                                      field="file_name") from None
            info = item.checked
            if info is None or info.sha256 != sha256_bytes(data):  # the file changed since it was checked
                info = item.checked = check_image(data, file=file, record=record)
            for ann in item.annotations:
                try:
                    if ann.kind not in allowed:
                        raise ValidationError(
                            f"a {dtype} dataset takes {'/'.join(allowed)} annotations, not {ann.kind}",
                            field="kind")
                    if ann.label not in known:
                        raise ValidationError(f"unknown class '{ann.label}'", field="label")
                    ann.check_inside(info.width, info.height)
                except ValidationError as e:
                    raise e.located(file=file, record=record) from None
            prepared.append((item, data, info.sha256, info))
            reading.advance()
        reading.close()
        return prepared

    def drop_unreferenced(self, digests: Iterable[str], *, rolled_back_later: bool) -> None:
        """:func:`drop_unreferenced` in this dataset's workspace."""
        drop_unreferenced(self.workspace, digests, rolled_back_later=rolled_back_later)

    def _insert_prepared(self, prepared, batch_classes: Sequence[ClassDef], author: str,
                         directory: str | None, source_info: dict[str, Any] | None = None) -> list[int]:
        settings = self.split_settings
        stamp = now()
        with self._tx():
            ids = self._class_ids()
            pos = len(ids)
            for c in batch_classes:
                if c.name not in ids:
                    if type_info(self.type).fixed_classes:
                        raise ValidationError(f"{self.type} datasets have no class '{c.name}'", field="classes")
                    cur = self.conn.execute(store.INSERT_CLASS, (self.id, c.name, c.color, pos))
                    ids[c.name] = int(cur.lastrowid or 0)
                    pos += 1
                if c.origin:  # the first source to name a class gives its origin
                    self.conn.execute(store.KEEP_CLASS_ORIGIN_BY_ID, (json_or_null(c.origin), ids[c.name]))
            if source_info:
                self.conn.execute(store.KEEP_SOURCE_INFO, (json_or_null(source_info), self.id))
            splits, keys = self.plan_splits(prepared, settings)
            gone = self.workspace.blobs.missing(d for _it, _data, d, _info in prepared)
            if gone:  # a concurrent failed import may have removed a shared image
                self.workspace.blobs.put_many([(data, d) for _it, data, d, _info in prepared if d in gone],
                                              fsync=True)
            known = store.known_blobs(self.conn, [d for _it, _data, d, _info in prepared])
            self.conn.executemany(
                store.INSERT_BLOB,
                [(d, len(data), info.width, info.height, info.format, None if d in known else info.phash)
                 for _it, data, d, info in prepared])
            dir_id = self.directory_id(directory, create=True) if directory else None
            new_ids: list[int] = []
            ann_rows = []
            for i, (item, _data, digest, info) in enumerate(prepared):
                status = item.status or ("annotated" if item.annotations else "new")
                if status not in STATUSES:
                    raise ValidationError(f"unknown status {status!r}", record=item.record, field="status")
                cur = self.conn.execute(
                    store.INSERT_EXAMPLE,
                    (self.id, digest, item.file_name, info.width, info.height, splits[i], keys[i], status,
                     item.source, stamp, stamp, json_or_null(item.origin)))
                ex_id = int(cur.lastrowid or 0)
                new_ids.append(ex_id)
                for ann in item.annotations:
                    ann_rows.append(self._ann_row(ex_id, ann, ids, ann.author or author, ann.created_at or stamp))
            with aggregates.bulk_insert(self.conn, min(new_ids, default=0)):  # counted once, set-based
                self.conn.executemany(store.INSERT_ANNOTATION, ann_rows)
            if dir_id is not None:
                self.conn.executemany(store.INSERT_MEMBER, [(dir_id, e) for e in new_ids])
            self._touch()
        self.warm_duplicates()
        return new_ids

    def plan_splits(self, prepared, settings: SplitSettings | None = None, *,
                    written_from: int | None = None) -> tuple[list[str], list[float]]:
        """The split and split key of each prepared item (explicit ones kept, the rest assigned; copies of one
        source image kept together). Sets ``split_notes``. ``written_from``: the items' own rows are in this
        dataset already, from this example id on (``bulk_import`` plans after writing them): left out."""
        settings = settings or self.split_settings
        below = written_from if written_from is not None else 1 << 62
        counts = dict(self.conn.execute(store.SPLIT_COUNTS, (self.id, below)).fetchall())
        total_after = sum(counts.values()) + len(prepared)
        explicit = [it.split for it, *_ in prepared]
        auto_idx = [i for i, s in enumerate(explicit) if s is None]
        keys = [split_key(settings.seed, prepared[i][2], prepared[i][0].file_name) for i in range(len(prepared))]
        cur_val = counts.get("val", 0) + explicit.count("val")
        cur_test = counts.get("test", 0) + explicit.count("test")
        splits, broken = assign_grouped(  # copies of one source image (name, content, pHash) stay together
            [Member(it.file_name, d, info.phash, it.split, keys[i]) for i, (it, _b, d, info) in enumerate(prepared)],
            self._split_members(below) if auto_idx else [], current_val=cur_val, current_test=cur_test,
            total_after=total_after, settings=settings)
        groups = ("1 group of copies of one image was too large to keep in one split and was split" if broken == 1
                  else f"{broken} groups of copies of one image were too large to keep in one split and were split")
        self.split_notes = [f"{groups} to fill val / test (stats lists them)"] if broken else []
        return splits, keys

    def _split_members(self, below: int) -> list[Member]:
        """Every example (of id below ``below``) as the split grouping sees it (file name, image, pHash, split),
        by id."""
        return [Member(*r) for r in self.conn.execute(store.SPLIT_MEMBERS, (self.id, below))]

    def warm_duplicates(self, new_images: int = 0, progress: ProgressFn | None = None) -> None:
        """Bring the kept duplicate search up to date now that examples came in (only the new images are
        compared; a large import searches them all), so the next ``stats`` reads it instead. Best effort,
        after the import committed: if an image cannot be hashed, ``stats`` says so when asked.
        ``progress`` hears of it as a stage over the ``new_images`` (a second or more on a large import)."""
        from .stats import warm_duplicates

        stage = Stage(progress, "import", "searching near duplicates", new_images, "images")
        try:
            warm_duplicates(self)
        except WorkbenchError as e:
            _log.info("duplicate search after the import of dataset %r left for stats: %s", self.name, e)
        stage.advance(new_images)
        stage.close()

    def _ann_row(self, example_id: int, ann: Annotation, class_ids: dict[str, int], author: str,
                 stamp: str) -> tuple:
        return store.annotation_row(self.id, example_id, ann, class_ids, author, stamp)

    def _touch(self) -> None:
        store.touch(self.conn, self.id)

    @property
    def version(self) -> int:
        """A counter bumped by every change (widgets poll it to know when to refresh)."""
        return int(self._row()["version"])

    # ------------------------------------------------------------------ reading
    def _filter_sql(self, split: str | None, directory: str | None, status: str | None) -> tuple[str, list]:
        if split is not None and split not in SPLITS:
            raise ValidationError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}", field="split")
        return store.example_filter(self.id, split, status,
                                    self.directory_id(directory) if directory is not None else None)

    def example_ids(self, split: str | None = None, directory: str | None = None,
                    status: str | None = None) -> list[int]:
        sql, args = self._filter_sql(split, directory, status)
        return [r[0] for r in self.conn.execute(store.EXAMPLE_IDS.format(where=sql), args)]

    def count(self, split: str | None = None, directory: str | None = None, status: str | None = None) -> int:
        sql, args = self._filter_sql(split, directory, status)
        return int(self.conn.execute(store.EXAMPLE_COUNT.format(where=sql), args).fetchone()[0])

    def example(self, example_id: int) -> Example:
        found = self.examples(ids=[example_id])
        if not found:
            raise NotFoundError(f"dataset '{self.name}' has no example {example_id}")
        return found[0]

    def examples(self, ids: Sequence[int] | None = None, split: str | None = None,
                 directory: str | None = None, status: str | None = None) -> list[Example]:
        """Examples with their annotations (in id order, or in the order of ``ids``)."""
        if ids is None:
            sql, args = self._filter_sql(split, directory, status)
            rows = self.conn.execute(store.EXAMPLE_ROWS.format(where=sql), args).fetchall()
        else:
            rows = list(store.in_chunks(self.conn, store.EXAMPLES_BY_ID, ids, before=[self.id]))
            order = {i: n for n, i in enumerate(ids)}
            rows.sort(key=lambda r: order[r["id"]])
        anns = self._annotations_for([r["id"] for r in rows])
        return [
            Example(id=r["id"], dataset=self.name, blob=r["blob"], file_name=r["file_name"], width=r["width"],
                    height=r["height"], split=r["split"], status=r["status"], source=r["source"],
                    annotations=tuple(anns.get(r["id"], ())), origin=json_of(r["origin"]))
            for r in rows
        ]

    def _annotations_for(self, example_ids: list[int]) -> dict[int, list[Annotation]]:
        names = self.class_names()
        out: dict[int, list[Annotation]] = {}
        if not example_ids:
            return out
        if len(example_ids) > store.MAX_VARIABLES:
            lo, hi = min(example_ids), max(example_ids)
            cur: Iterable[sqlite3.Row] = self.conn.execute(store.ANNOTATIONS_IN_RANGE, (self.id, lo, hi))
            wanted: set[int] | None = set(example_ids)
        else:
            cur = store.in_chunks(self.conn, store.ANNOTATIONS_OF_EXAMPLES, example_ids)  # one chunk
            wanted = None
        for r in cur:
            if wanted is not None and r["example_id"] not in wanted:
                continue
            out.setdefault(r["example_id"], []).append(store.annotation_from_row(r, names))
        return out

    def load_bytes(self, blob: str) -> bytes:
        return self.workspace.load_bytes(blob)

    def progress(self, directory: str | None = None) -> tuple[int, int]:
        """(examples annotated or reviewed, examples) in the dataset or a directory."""
        total = self.count(directory=directory)
        return total - self.count(directory=directory, status="new"), total

    def statuses(self, split: str | None = None, directory: str | None = None) -> dict[int, str]:
        """``{example id: status}`` in one query (the canvas's progress and its jumps to a status)."""
        sql, args = self._filter_sql(split, directory, None)
        return {int(r[0]): r[1] for r in self.conn.execute(store.EXAMPLE_STATUSES.format(where=sql), args)}

    # ------------------------------------------------------------------ editing (one transaction each)
    def _example_row(self, example_id: int) -> sqlite3.Row:
        row = self.conn.execute(store.EXAMPLE_ROW, (example_id, self.id)).fetchone()
        if row is None:
            raise NotFoundError(f"dataset '{self.name}' has no example {example_id}")
        return row

    def _check_annotation(self, ann: Annotation, ex: sqlite3.Row, class_ids: dict[str, int]) -> None:
        allowed = KINDS_FOR_TYPE[self.type]
        if ann.kind not in allowed:
            raise ValidationError(f"a {self.type} dataset takes {'/'.join(allowed)} annotations, not {ann.kind}",
                                  record=ex["id"], field="kind")
        if ann.label not in class_ids:
            raise ValidationError(f"unknown class '{ann.label}'; classes: {', '.join(class_ids)}",
                                  record=ex["id"], field="label")
        try:
            ann.check_inside(ex["width"], ex["height"])
        except ValidationError as e:
            raise e.located(record=ex["id"]) from None

    def _shape_count(self, example_id: int) -> int:
        return int(self.conn.execute(store.SHAPE_COUNT, (example_id,)).fetchone()[0])

    def _mark_annotated(self, example_id: int, stamp: str) -> None:
        self.conn.execute(store.MARK_ANNOTATED, (stamp, example_id))

    def add_annotation(self, example_id: int, ann: Annotation, author: str = "", *, actor: str = "",
                       replace_label: bool = True) -> Annotation:
        """Add ``ann`` by ``author``; ``actor``: who the history records as making the change (default: the
        author; an undo that puts back someone else's shape passes the person undoing). A class label
        replaces the example's label; ``replace_label=False`` (the editor saw no label) refuses with
        :class:`~workbench.errors.EditConflictError` when someone labelled the example meanwhile."""
        check_author(author)
        stamp = now()
        with self._tx(), acting(self.conn, actor or author or ann.author):
            ex = self._example_row(example_id)
            ids = self._class_ids()
            self._check_annotation(ann, ex, ids)
            check_shapes(self._shape_count(example_id) + 1, record=example_id)
            if ann.kind in ("label", "anomaly") and not ann.proposal and ann.bbox is None:
                if not replace_label:
                    there = self.conn.execute(store.IMAGE_LABEL, (example_id, ann.kind)).fetchone()
                    if there is not None:
                        raise EditConflictError(there["id"], expected=None, current=there["version"],
                                                by=there["author"], dataset=self.name)
                self.conn.execute(store.DELETE_IMAGE_LABEL, (example_id, ann.kind))
            cur = self.conn.execute(store.INSERT_ANNOTATION,
                                    self._ann_row(example_id, ann, ids, author or ann.author, stamp))
            if not ann.proposal:
                self._mark_annotated(example_id, stamp)
            self._touch()
        return replace(ann, id=int(cur.lastrowid or 0), author=author or ann.author, created_at=stamp, version=1)

    def set_label(self, example_id: int, label: str, author: str = "") -> Annotation:
        """Classification / anomaly: set the example's class (replacing the previous one)."""
        kind = type_info(self.type).label_kind or "label"  # another type refuses it by kind
        return self.add_annotation(example_id, Annotation(kind=kind, label=label), author)

    def _ann_example(self, annotation_id: int, version: int | None = None) -> int:
        """The example of an annotation, refusing a stale ``version`` (the one its editor read; None: any)."""
        row = self.conn.execute(store.ANNOTATION_EXAMPLE, (annotation_id, self.id)).fetchone()
        if row is None:
            if version is not None and self.conn.execute(  # it existed: someone deleted it meanwhile
                    store.ANNOTATION_DELETED, (annotation_id, self.id)).fetchone():
                who = self.conn.execute(store.LAST_EDITOR, (annotation_id,)).fetchone()
                raise EditConflictError(annotation_id, expected=version, current=None, by=who[0] if who else "",
                                        dataset=self.name)
            raise NotFoundError(f"dataset '{self.name}' has no annotation {annotation_id}")
        if version is not None and int(row["version"]) != int(version):
            raise EditConflictError(annotation_id, expected=version, current=int(row["version"]),
                                    by=row["author"], dataset=self.name)
        return int(row[0])

    def annotation_version(self, annotation_id: int) -> int | None:
        """The stored version of an annotation (None when it does not exist)."""
        row = self.conn.execute(store.ANNOTATION_VERSION, (annotation_id, self.id)).fetchone()
        return None if row is None else int(row[0])

    def update_annotation(self, annotation_id: int, ann: Annotation, author: str = "", *,
                          actor: str = "") -> Annotation:
        """Replace an annotation's content (the author and time are updated, the version bumped).

        ``ann.version`` is the version the editor read: when someone changed or deleted the annotation
        since, nothing is written and :class:`~workbench.errors.EditConflictError` says so (``None``: no
        check, last writer wins)."""
        check_author(author)
        stamp = now()
        with self._tx(), acting(self.conn, actor or author or ann.author):
            example_id = self._ann_example(annotation_id, ann.version)
            ex = self._example_row(example_id)
            ids = self._class_ids()
            self._check_annotation(ann, ex, ids)
            row = self._ann_row(example_id, ann, ids, author or ann.author, stamp)
            self.conn.execute(store.UPDATE_ANNOTATION, (*row[2:12], stamp, *row[14:17], annotation_id))
            created, version = self.conn.execute(store.ANNOTATION_CREATED_VERSION, (annotation_id,)).fetchone()
            if not ann.proposal:
                self._mark_annotated(example_id, stamp)
            self._touch()
        return replace(ann, id=annotation_id, author=author or ann.author, created_at=created, version=version)

    def delete_annotation(self, annotation_id: int, version: int | None = None, author: str = "") -> None:
        """Delete an annotation (kept in the history). ``version``: the one the deleter read; a stale one is
        refused with :class:`~workbench.errors.EditConflictError` (None: no check)."""
        with self._tx(), acting(self.conn, author):
            example_id = self._ann_example(annotation_id, version)
            self.conn.execute(store.DELETE_ANNOTATION, (annotation_id,))
            self.conn.execute(store.TOUCH_EXAMPLE, (now(), example_id))
            self._touch()

    def replace_annotations(self, example_id: int, anns: Sequence[Annotation], author: str = "",
                            *, proposals: bool = False) -> list[Annotation]:
        """Swap the example's annotations (or only its proposals) for ``anns`` in one transaction."""
        stamp = now()
        with self._tx(), acting(self.conn, author):
            ex = self._example_row(example_id)
            ids = self._class_ids()
            for a in anns:
                self._check_annotation(a, ex, ids)
            kept = self.conn.execute(store.COUNT_OTHER_ANNOTATIONS, (example_id, int(proposals))).fetchone()[0]
            check_shapes(kept + len(anns), record=example_id)
            self.conn.execute(store.DELETE_ANNOTATIONS_OF, (example_id, int(proposals)))
            out = []
            for a in anns:
                cur = self.conn.execute(store.INSERT_ANNOTATION,
                                        self._ann_row(example_id, a, ids, author or a.author, stamp))
                out.append(replace(a, id=int(cur.lastrowid or 0), author=author or a.author, created_at=stamp,
                                   version=1))
            if anns and not proposals:
                self._mark_annotated(example_id, stamp)
            self._touch()
        return out

    def set_status(self, example_id: int, status: str) -> None:
        if status not in STATUSES:
            raise ValidationError(f"unknown status {status!r}; valid: {', '.join(STATUSES)}", field="status")
        with self._tx():
            self._example_row(example_id)
            self.conn.execute(store.SET_STATUS, (status, now(), example_id))
            self._touch()

    def delete_examples(self, example_ids: Sequence[int], author: str = "") -> None:
        """Delete examples (their annotations are kept in the history, as deleted by ``author``)."""
        with self._tx(), acting(self.conn, author):
            for e in example_ids:
                self._example_row(e)
            self.conn.executemany(store.DELETE_EXAMPLE, [(e,) for e in example_ids])
            self._touch()

    # ------------------------------------------------------------------ training sets
    def training_examples(self, split: str = "train", directory: str | None = None) -> list[Example]:
        """Annotated examples of one split, refusing a training set under 10 examples."""
        exs = [e for e in self.examples(split=split, directory=directory) if e.truth()]
        if split == "train" and len(exs) < MIN_TRAIN_EXAMPLES:
            where = f"directory '{directory}' of " if directory else ""
            raise TooFewExamplesError(
                f"{where}dataset '{self.name}' has {len(exs)} annotated training examples; at least "
                f"{MIN_TRAIN_EXAMPLES} are needed to train (annotate or import more)")
        return exs

    # ------------------------------------------------------------------ augmentation config
    def augment_config(self) -> dict | None:
        raw = self._row()["augment"]
        return json.loads(raw) if raw else None

    def set_augment_config(self, config: dict) -> None:
        with self._tx():
            self.conn.execute(store.SET_AUGMENT, (json.dumps(config), self.id))
            self._touch()

    # ------------------------------------------------------------------ directories
    def directory_id(self, name: str, *, create: bool = False) -> int:
        """The store's id of directory ``name`` (``create``: made when missing, inside the caller's
        transaction); a missing one is a :class:`~workbench.errors.NotFoundError` listing the directories."""
        row = self.conn.execute(store.DIRECTORY_ID, (self.id, name)).fetchone()
        if row is not None:
            return int(row[0])
        if not create:
            known = [r[0] for r in self.conn.execute(store.DIRECTORY_NAMES, (self.id,))]
            raise NotFoundError(f"dataset '{self.name}' has no directory '{name}'"
                                + (f"; directories: {', '.join(known)}" if known else ""))
        check_new_name(name, "directory")
        cur = self.conn.execute(store.INSERT_DIRECTORY, (self.id, name, now()))
        return int(cur.lastrowid or 0)

    def create_directory(self, name: str) -> None:
        with self._tx():
            if self.conn.execute(store.DIRECTORY_ID, (self.id, name)).fetchone():
                raise AlreadyExistsError(f"dataset '{self.name}' already has a directory '{name}'")
            self.directory_id(name, create=True)

    def directories(self) -> list[dict]:
        rows = self.conn.execute(store.DIRECTORIES, (self.id,)).fetchall()
        return [dict(r) for r in rows]

    def mirror(self, directory: str, example_ids: Sequence[int]) -> int:
        """Put existing examples into ``directory`` (created if missing); annotations stay shared."""
        with self._tx():
            for e in example_ids:
                self._example_row(e)
            d = self.directory_id(directory, create=True)
            before = self.conn.execute(store.MEMBER_COUNT, (d,)).fetchone()[0]
            self.conn.executemany(store.INSERT_MEMBER, [(d, e) for e in example_ids])
            added = self.conn.execute(store.MEMBER_COUNT, (d,)).fetchone()[0] - before  # triggers count in total_changes
            self._touch()
        return added

    def copy_without_annotations(self, example_ids: Sequence[int], directory: str | None = None) -> list[int]:
        """New examples over the same image bytes (no annotations), keeping each original's split."""
        stamp = now()
        with self._tx():
            rows = [self._example_row(e) for e in example_ids]
            d = self.directory_id(directory, create=True) if directory else None
            new_ids = []
            for r in rows:
                cur = self.conn.execute(
                    store.INSERT_EXAMPLE,
                    (self.id, r["blob"], r["file_name"], r["width"], r["height"], r["split"], r["split_key"],
                     "new", f"copy:{r['id']}", stamp, stamp, r["origin"]))
                new_ids.append(int(cur.lastrowid or 0))
            if d is not None:
                self.conn.executemany(store.INSERT_MEMBER, [(d, e) for e in new_ids])
            self._touch()
        return new_ids

    def remove_from_directory(self, directory: str, example_ids: Sequence[int]) -> None:
        """Take examples out of a directory; the examples themselves stay in the dataset."""
        with self._tx():
            d = self.directory_id(directory)
            self.conn.executemany(store.DELETE_MEMBER, [(d, e) for e in example_ids])
            self._touch()

    def delete_directory(self, directory: str) -> None:
        with self._tx():
            self.conn.execute(store.DELETE_DIRECTORY, (self.directory_id(directory),))
            self._touch()

    # ------------------------------------------------------------------ snapshots
    def snapshot(self, message: str = "", directory: str | None = None):
        """Freeze the dataset (or a directory) now; returns its SnapshotInfo (same content, same id)."""
        from .snapshots import take_snapshot

        return take_snapshot(self, message=message, directory=directory)

    def snapshots(self):
        from .snapshots import list_snapshots

        return list_snapshots(self)

    def load_snapshot(self, snapshot_id: str):
        from .snapshots import load_snapshot

        return load_snapshot(self, snapshot_id)

    def diff(self, a: str, b: str) -> dict:
        from .snapshots import diff_snapshots

        return diff_snapshots(self.load_snapshot(a), self.load_snapshot(b))
