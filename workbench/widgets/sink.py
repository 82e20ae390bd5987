"""What the annotation canvas needs from a dataset, and an in-memory implementation of it.

:class:`AnnotationSink` is the exact subset of ``workbench.data.Dataset`` the canvas calls; every write is
one committed transaction in the store, so the canvas saves each change as it happens. :class:`MemorySink`
implements the same contract in memory (the same validation and the same side effects as the store:
adding a truth label replaces the previous one, a truth annotation marks its example annotated; every
annotation has a version bumped by each update, and an update (``ann.version``) or delete (``version``)
from a stale version is refused with ``EditConflictError``). Tests and
benchmarks use it; so can a notebook that annotates a handful of images without a workspace.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from ..data.limits import check_classes, check_shapes
from ..data.records import (
    ANOMALY_CLASSES,
    KINDS_FOR_TYPE,
    SPLITS,
    STATUSES,
    TASK_TYPES,
    Annotation,
    ClassDef,
    Example,
    default_color,
)
from ..data.task_types import type_info
from ..errors import AlreadyExistsError, EditConflictError, NotFoundError, ValidationError

__all__ = ["AnnotationSink", "MemorySink", "MemoryImage"]


@runtime_checkable
class AnnotationSink(Protocol):
    """The dataset methods the canvas uses (``workbench.data.Dataset`` has all of them)."""

    @property
    def classes(self) -> list[ClassDef]: ...

    @property
    def type(self) -> str: ...

    def example_ids(self, split: str | None = None, directory: str | None = None) -> list[int]: ...

    def example(self, example_id: int) -> Example: ...

    def load_bytes(self, blob: str) -> bytes: ...

    def add_annotation(self, example_id: int, ann: Annotation, author: str, *, actor: str = "",
                       replace_label: bool = True) -> Annotation: ...

    def update_annotation(self, annotation_id: int, ann: Annotation, author: str, *, actor: str = "") -> Annotation: ...

    def delete_annotation(self, annotation_id: int, version: int | None = None, author: str = "") -> None: ...

    def set_status(self, example_id: int, status: str) -> None: ...

    def add_class(self, name: str, color: str | None = None) -> ClassDef: ...

    def progress(self, directory: str | None = None) -> tuple[int, int]: ...

    def statuses(self, split: str | None = None, directory: str | None = None) -> dict[int, str]: ...


@dataclass
class MemoryImage:
    """One image to put in a :class:`MemorySink`: its encoded bytes and size, its annotations."""

    data: bytes
    width: int
    height: int
    file_name: str = ""
    split: str = "train"
    annotations: Sequence[Annotation] = ()
    directories: Sequence[str] = ()
    status: str | None = None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class MemorySink:
    """An :class:`AnnotationSink` held in memory, with the store's validation and side effects."""

    def __init__(
        self,
        type: str,
        classes: Sequence[ClassDef | str],
        images: Sequence[MemoryImage],
        name: str = "memory",
    ) -> None:
        if type not in TASK_TYPES:
            raise ValidationError(
                f"unknown dataset type {type!r}; valid: {', '.join(TASK_TYPES)}", field="type"
            )
        self._type = type
        self.name = name
        defs = [
            c if isinstance(c, ClassDef) else ClassDef(c, default_color(i)) for i, c in enumerate(classes)
        ]
        if type_info(type).fixed_classes:  # fixed classes, as in the store
            given = {c.name: c for c in defs}
            defs = [
                given.get(n, ClassDef(n, c))
                for n, c in zip(ANOMALY_CLASSES, ("#2ca02c", "#d62728"), strict=True)
            ]
        self._classes: list[ClassDef] = defs
        self._ids = itertools.count(1)
        self._examples: dict[int, Example] = {}
        self._blobs: dict[str, bytes] = {}
        self._dirs: dict[str, list[int]] = {}
        self._deleted_by: dict[int, str] = {}  # annotation id -> who deleted it (stale edits name them)
        for n, im in enumerate(images, start=1):
            if im.split not in SPLITS:
                raise ValidationError(f"unknown split {im.split!r}", record=n, field="split")
            blob = f"blob{n:06d}"
            self._blobs[blob] = im.data
            anns = []
            for a in im.annotations:
                self._check(a, n, im.width, im.height)
                anns.append(replace(a, id=next(self._ids), created_at=a.created_at or _now(), version=1))
            status = im.status or ("annotated" if any(not a.proposal for a in anns) else "new")
            self._examples[n] = Example(
                id=n,
                dataset=name,
                blob=blob,
                file_name=im.file_name or f"image_{n:05d}.png",
                width=im.width,
                height=im.height,
                split=im.split,
                status=status,
                annotations=tuple(anns),
            )
            for d in im.directories:
                self._dirs.setdefault(d, []).append(n)

    # ------------------------------------------------------------------ reading
    @property
    def classes(self) -> list[ClassDef]:
        return list(self._classes)

    @property
    def type(self) -> str:
        return self._type

    def example_ids(self, split: str | None = None, directory: str | None = None) -> list[int]:
        ids = sorted(self._examples)
        if directory is not None:
            if directory not in self._dirs:
                raise NotFoundError(f"dataset '{self.name}' has no directory '{directory}'")
            members = set(self._dirs[directory])
            ids = [i for i in ids if i in members]
        if split is not None:
            ids = [i for i in ids if self._examples[i].split == split]
        return ids

    def example(self, example_id: int) -> Example:
        try:
            return self._examples[example_id]
        except KeyError:
            raise NotFoundError(f"dataset '{self.name}' has no example {example_id}") from None

    def load_bytes(self, blob: str) -> bytes:
        try:
            return self._blobs[blob]
        except KeyError:
            raise NotFoundError(f"no image {blob}") from None

    def progress(self, directory: str | None = None) -> tuple[int, int]:
        ids = self.example_ids(directory=directory)
        return sum(self._examples[i].status != "new" for i in ids), len(ids)

    def statuses(self, split: str | None = None, directory: str | None = None) -> dict[int, str]:
        return {i: self._examples[i].status for i in self.example_ids(split=split, directory=directory)}

    # ------------------------------------------------------------------ writing
    def _check(self, ann: Annotation, example_id: int, width: int, height: int) -> None:
        allowed = KINDS_FOR_TYPE[self._type]
        if ann.kind not in allowed:
            raise ValidationError(
                f"a {self._type} dataset takes {'/'.join(allowed)} annotations, not {ann.kind}",
                record=example_id,
                field="kind",
            )
        if ann.label not in {c.name for c in self._classes}:
            raise ValidationError(f"unknown class '{ann.label}'", record=example_id, field="label")
        try:
            ann.check_inside(width, height)
        except ValidationError as e:
            raise e.located(record=example_id) from None

    def _find(self, annotation_id: int, version: int | None = None) -> tuple[Example, int]:
        for ex in self._examples.values():
            for k, a in enumerate(ex.annotations):
                if a.id == annotation_id:
                    if version is not None and a.version != version:
                        raise EditConflictError(annotation_id, expected=version, current=a.version, by=a.author,
                                                dataset=self.name)
                    return ex, k
        if version is not None and annotation_id in self._deleted_by:
            raise EditConflictError(annotation_id, expected=version, current=None,
                                    by=self._deleted_by[annotation_id], dataset=self.name)
        raise NotFoundError(f"dataset '{self.name}' has no annotation {annotation_id}")

    def _marked(self, ex: Example, ann: Annotation) -> str:
        return "annotated" if ex.status == "new" and not ann.proposal else ex.status

    def add_annotation(self, example_id: int, ann: Annotation, author: str = "", *, actor: str = "",
                       replace_label: bool = True) -> Annotation:
        ex = self.example(example_id)
        self._check(ann, example_id, ex.width, ex.height)
        check_shapes(len(ex.annotations) + 1, record=example_id)
        anns = list(ex.annotations)
        if ann.kind in ("label", "anomaly") and not ann.proposal and ann.bbox is None:
            there = next((a for a in anns if a.kind == ann.kind and not a.proposal and a.bbox is None), None)
            if there is not None and not replace_label and there.id is not None:
                raise EditConflictError(there.id, expected=None, current=there.version, by=there.author,
                                        dataset=self.name)
            for a in anns:
                if a.kind == ann.kind and not a.proposal and a.bbox is None and a.id is not None:
                    self._deleted_by[a.id] = actor or author or ann.author
            anns = [a for a in anns if not (a.kind == ann.kind and not a.proposal and a.bbox is None)]
        saved = replace(ann, id=next(self._ids), author=author or ann.author, created_at=_now(), version=1)
        anns.append(saved)
        self._examples[example_id] = replace(ex, annotations=tuple(anns), status=self._marked(ex, ann))
        return saved

    def update_annotation(self, annotation_id: int, ann: Annotation, author: str = "", *,
                          actor: str = "") -> Annotation:
        ex, k = self._find(annotation_id, ann.version)
        self._check(ann, ex.id, ex.width, ex.height)
        anns = list(ex.annotations)
        saved = replace(ann, id=annotation_id, author=author or ann.author, created_at=anns[k].created_at,
                        version=(anns[k].version or 1) + 1)
        anns[k] = saved
        self._examples[ex.id] = replace(ex, annotations=tuple(anns), status=self._marked(ex, ann))
        return saved

    def delete_annotation(self, annotation_id: int, version: int | None = None, author: str = "") -> None:
        ex, k = self._find(annotation_id, version)
        self._deleted_by[annotation_id] = author
        anns = list(ex.annotations)
        del anns[k]
        self._examples[ex.id] = replace(ex, annotations=tuple(anns))

    def set_status(self, example_id: int, status: str) -> None:
        if status not in STATUSES:
            raise ValidationError(f"unknown status {status!r}; valid: {', '.join(STATUSES)}", field="status")
        ex = self.example(example_id)
        self._examples[example_id] = replace(ex, status=status)

    def add_class(self, name: str, color: str | None = None) -> ClassDef:
        if type_info(self._type).fixed_classes:
            raise ValidationError(
                "anomaly datasets have the fixed classes good and anomalous", field="classes"
            )
        if any(c.name == name for c in self._classes):
            raise AlreadyExistsError(f"dataset '{self.name}' already has a class '{name}'")
        c = ClassDef(name, color or default_color(len(self._classes)))
        check_classes(self.name, len(self._classes) + 1)
        self._classes.append(c)
        return c
