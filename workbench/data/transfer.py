"""Import from a source into a dataset (creating it when missing) and export a dataset to a format.

The functions notebooks, dashboards and the CLI share, so each of them stays thin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ValidationError
from .dataset import Dataset
from .import_summary import ImportResult
from .records import TASK_TYPES
from .workspace import Workspace

__all__ = ["import_source", "export_dataset", "add_sample"]


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
                  **options: Any) -> ImportResult:
    """Read ``src`` in format ``fmt`` and add it to dataset ``name`` (created when missing).

    The source's own splits are kept (split sub-folders, COCO ``instances_<split>.json``, YOLO's
    data.yaml lists: :mod:`.source_splits`); ``split`` puts every example in that split instead. The
    rest are split by hash, copies of one source image together (:mod:`.split_groups`).

    All or nothing: a bad record anywhere leaves the workspace as it was, including the dataset that
    would have been created. Returns ``(dataset, new example ids)``, with what the import did as
    ``.summary`` (:class:`~workbench.data.import_summary.ImportSummary`).
    """
    from .import_summary import summarize
    from .source_splits import read_source

    batch = read_source(fmt, Path(src), split=split, **options)
    with ws.transaction():  # creating the dataset and filling it: one transaction
        before = {c.name for c in ws.dataset(name).classes} if ws.has_dataset(name) else set()
        ds, _ = _dataset_for(ws, name, batch.type, type, f"{fmt} source {src}", classes=batch.classes)
        ids = ds.import_batch(batch, author=author, directory=directory, source_file=str(src))
        summary = summarize(ds, batch, ids, fmt=fmt, source=str(src), classes_before=before)
    return ImportResult(ds, ids, summary)


def export_dataset(ds: Dataset, out: str | Path, fmt: str, *, split: str | None = None,
                   directory: str | None = None, snapshot: str | None = None, **options: Any) -> list[Path]:
    """Write a dataset, one split, one directory or one snapshot in format ``fmt`` under ``out``."""
    from .formats import get_writer

    writer = get_writer(fmt)
    if writer.types and ds.type not in writer.types:
        raise ValidationError(
            f"the {fmt} format holds {'/'.join(writer.types)} data; dataset '{ds.name}' is {ds.type}",
            field="format")
    if snapshot is not None:
        snap = ds.load_snapshot(snapshot)
        examples = [e for e in snap.examples if split is None or e.split == split]
        classes = list(snap.classes)
    else:
        examples = ds.examples(split=split, directory=directory)
        classes = ds.classes
    return writer.write(Path(out), examples, classes, ds.type, ds.load_bytes, **options)


def add_sample(ws: Workspace, name: str, sample: str, *, count: int | None = None, seed: int = 0,
               directory: str | None = None) -> tuple[Dataset, list[int]]:
    """Add a built-in sample (``digits``, ``shapes-detection``...) to dataset ``name``, creating it."""
    from .samples import make_sample

    batch = make_sample(sample, count=count, seed=seed)
    with ws.transaction():
        ds, _ = _dataset_for(ws, name, batch.type, None, f"sample {sample}", classes=batch.classes)
        ids = ds.import_batch(batch, author=f"sample:{sample}", directory=directory)
    return ds, ids
