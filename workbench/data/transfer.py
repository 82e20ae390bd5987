"""Import from a source into a dataset (creating it when missing) and export a dataset to a format.

The functions notebooks, dashboards and the CLI share, so each of them stays thin.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from ..progress import ProgressFn, Stage
from . import bulk_import
from .basics import gc_paused
from .dataset import Dataset, drop_unreferenced
from .image_pool import storing_into
from .import_summary import ImportResult
from .limits import check_classes
from .records import STATUSES, TASK_TYPES, ImportBatch
from .staged import import_new
from .workspace import Workspace

__all__ = ["import_source", "export_dataset", "export_with_report", "ExportResult", "add_sample",
           "DEFAULT_EXPORT_STATUSES", "parse_statuses"]

# Images nobody labelled (status ``new``) are not exported unless asked for: written out they would read as
# empty negatives ("nothing here") to whoever trains on the export.
DEFAULT_EXPORT_STATUSES = ("annotated", "reviewed")

# What each writer writes back of what the records keep beyond geometry and class; the rest is counted in
# ExportResult.not_written (an export never drops something without saying so).
WRITTEN_BACK: dict[str, tuple[str, ...]] = {"coco": ("iscrowd", "attributes"), "voc": ("attributes",),
                                             "cvat": ("attributes",), "labelme": ("iscrowd", "attributes"),
                                             "mvtec": ("attributes",)}


def _dataset_for(ws: Workspace, name: str, batch_type: str | None, type: str | None, what: str,
                 classes=None) -> tuple[Dataset, bool]:
    if ws.has_dataset(name):
        ds = ws.dataset(name)
        if type is not None and type != ds.type:
            raise ValidationError(f"dataset '{name}' is {ds.type}, not {type}", field="type")
        return ds, False
    dtype = type or batch_type
    if dtype is None:
        raise ValidationError(
            f"{what} does not say what kind of dataset it is; create '{name}' first or pass a type "
            f"({', '.join(TASK_TYPES)})", field="type")
    return ws.create_dataset(name, dtype, classes=classes), True


def import_source(ws: Workspace, name: str, src: str | Path, fmt: str, *, type: str | None = None,
                  directory: str | None = None, author: str = "import", split: str | None = None,
                  progress: ProgressFn | None = None, **options: Any) -> ImportResult:
    """Read ``src`` in format ``fmt`` and add it to dataset ``name`` (created when missing).

    The source's own splits are kept (split sub-folders, COCO ``instances_<split>.json``, YOLO's
    data.yaml lists: :mod:`.source_splits`); ``split`` puts every example in that split instead. The
    rest are split by hash, copies of one source image together (:mod:`.split_groups`).

    All or nothing: a bad record anywhere leaves the workspace as it was, including the dataset that
    would have been created; a large import holds the write lock only in short transactions and becomes
    visible at once (:mod:`.staged`). Returns ``(dataset, new example ids)``, with what the import did as
    ``.summary`` (:class:`~workbench.data.import_summary.ImportSummary`).
    """
    # each image stored as it is checked (one read of each file); no cyclic GC passes over the import's objects
    with storing_into(ws.blobs) as sink, gc_paused():
        try:
            return _import_source(ws, name, src, fmt, type=type, directory=directory, author=author, split=split,
                                  progress=progress, **options)
        except BaseException:
            # inside a caller's transaction every row of this import is rolled back: all its files go
            drop_unreferenced(ws, sink.written, rolled_back_later=ws.conn.in_transaction)
            raise


def _import_source(ws: Workspace, name: str, src: str | Path, fmt: str, *, type: str | None,
                   directory: str | None, author: str, split: str | None, progress: ProgressFn | None,
                   **options: Any) -> ImportResult:
    from .formats import defer_checks
    from .source_splits import read_source

    with defer_checks():  # a large import writes its rows while its images are checked (bulk_import)
        batch = read_source(fmt, Path(src), split=split, progress=progress, **options)
    try:
        return _import_read(ws, name, batch, fmt, src, type=type, directory=directory, author=author,
                            progress=progress)
    except Exception as e:
        checks, batch.checks = batch.checks, None
        if checks is not None:  # the checks' own error comes first, as when the reader waited for them
            try:
                checks.drain()
            except Exception as first:
                if first is not e:
                    raise first from None
        raise
    except BaseException:
        batch.stop_checks()  # before the caller removes the files the checks stored
        raise


def _import_read(ws: Workspace, name: str, batch: ImportBatch, fmt: str, src: str | Path, *, type: str | None,
                 directory: str | None, author: str, progress: ProgressFn | None) -> ImportResult:
    from .import_summary import summarize

    what = f"{fmt} source {src}"
    filled: list[Dataset] = []

    def fill(ds: Dataset) -> list[int]:
        filled.append(ds)
        return bulk_import.import_batch(ds, batch, author=author, directory=directory, source_file=str(src),
                                        progress=progress)

    if ws.has_dataset(name):
        ds, _ = _dataset_for(ws, name, batch.type, type, what)
        before = {c.name for c in ds.classes}
        ids = fill(ds)
    else:  # a new dataset stays hidden until it is filled (staged.import_new): a failure leaves nothing
        before = set()
        dtype = type or batch.type
        if dtype is None:
            _dataset_for(ws, name, batch.type, type, what)  # raises: says what type to pass
        check_classes(name, len(batch.classes), file=str(src))
        ds, ids = import_new(ws, name, str(dtype), batch.classes, fill, Dataset)
        ds.split_notes = filled[0].split_notes
    batch.finish_checks()  # (done: the import waited for every check before its rows became visible)
    summary = summarize(ds, batch, ids, fmt=fmt, source=str(src), classes_before=before)
    return ImportResult(ds, ids, summary)


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote, and what it left out: ``left_out`` counts the examples of the selection (split,
    directory or snapshot) whose status was not one of ``statuses``, per status."""

    files: list[Path]
    examples: int
    statuses: tuple[str, ...]
    left_out: dict[str, int] = field(default_factory=dict)
    not_written: dict[str, int] = field(default_factory=dict)  # what the format cannot hold -> how many

    @property
    def total_left_out(self) -> int:
        return sum(self.left_out.values())


def parse_statuses(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"annotated,reviewed"`` (or a list) -> a tuple of known statuses; None -> the default."""
    if spec is None:
        return DEFAULT_EXPORT_STATUSES
    parts = [p.strip() for p in (spec.split(",") if isinstance(spec, str) else spec)]
    parts = [p for p in parts if p]
    bad = [p for p in parts if p not in STATUSES]
    if bad or not parts:
        raise ValidationError(f"unknown status {', '.join(map(repr, bad)) or 'list (empty)'}; valid: "
                              f"{', '.join(STATUSES)} (comma-separated)", field="status")
    return tuple(dict.fromkeys(parts))


def export_with_report(ds: Dataset, out: str | Path, fmt: str, *, split: str | None = None,
                       directory: str | None = None, snapshot: str | None = None,
                       status: str | Sequence[str] | None = None, progress: ProgressFn | None = None,
                       **options: Any) -> ExportResult:
    """Write a dataset, one split, one directory or one snapshot in format ``fmt`` under ``out``: only the
    examples whose status is in ``status`` (default: annotated and reviewed, not ``new``). ``progress``
    hears of each image written (:mod:`workbench.progress`)."""
    from .formats import get_writer

    writer = get_writer(fmt)
    if writer.types and ds.type not in writer.types:
        raise ValidationError(
            f"the {fmt} format holds {'/'.join(writer.types)} data; dataset '{ds.name}' is {ds.type}",
            field="format")
    statuses = parse_statuses(status)
    if snapshot is not None:
        snap = ds.load_snapshot(snapshot)
        examples = [e for e in snap.examples if split is None or e.split == split]
        classes = list(snap.classes)
        source_info = snap.source_info
    else:
        examples = ds.examples(split=split, directory=directory)
        classes = ds.classes
        source_info = ds.source_info
    left_out = Counter(e.status for e in examples if e.status not in statuses)
    examples = [e for e in examples if e.status in statuses]
    if "source_info" in inspect.signature(writer.func).parameters and "source_info" not in options:
        options["source_info"] = source_info
    stage = Stage(progress, "export", "writing images", len(examples), "images")

    def load_bytes(digest: str) -> bytes:  # the writers read each image once: count as they go
        data = ds.load_bytes(digest)
        stage.advance()
        return data

    files = writer.write(Path(out), examples, classes, ds.type, load_bytes, **options)
    stage.close()
    return ExportResult(files, len(examples), statuses, dict(left_out), _not_written(fmt, examples))


def _not_written(fmt: str, examples: Sequence[Any]) -> dict[str, int]:
    holds = WRITTEN_BACK.get(fmt, ())
    out: Counter[str] = Counter()
    for e in examples:
        for a in e.truth():
            if a.iscrowd and "iscrowd" not in holds:
                out[f"crowd regions written as ordinary objects ({fmt} has no crowd flag)"] += 1
            if a.attributes and "attributes" not in holds:
                out[f"annotations whose attributes {fmt} cannot hold"] += 1
    return dict(out)


def export_dataset(ds: Dataset, out: str | Path, fmt: str, *, split: str | None = None,
                   directory: str | None = None, snapshot: str | None = None,
                   status: str | Sequence[str] | None = None, **options: Any) -> list[Path]:
    """:func:`export_with_report`, returning only the files written."""
    return export_with_report(ds, out, fmt, split=split, directory=directory, snapshot=snapshot, status=status,
                              **options).files


def add_sample(ws: Workspace, name: str, sample: str, *, count: int | None = None, seed: int = 0,
               directory: str | None = None, progress: ProgressFn | None = None) -> tuple[Dataset, list[int]]:
    """Add a built-in sample (``digits``, ``shapes-detection``...) to dataset ``name``, creating it;
    ``progress`` hears of the import's stages."""
    from .samples import make_sample

    batch = make_sample(sample, count=count, seed=seed)
    with ws.transaction():
        ds, _ = _dataset_for(ws, name, batch.type, None, f"sample {sample}", classes=batch.classes)
        ids = ds.import_batch(batch, author=f"sample:{sample}", directory=directory, progress=progress)
    return ds, ids
