"""Import from a source into a dataset (creating it when missing) and export a dataset to a format.

The functions notebooks, dashboards and the CLI share, so each of them stays thin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ValidationError
from .dataset import Dataset
from .limits import check_classes
from .records import TASK_TYPES
from .staged import import_new
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
                  directory: str | None = None, author: str = "import", **options: Any) -> tuple[Dataset, list[int]]:
    """Read ``src`` in format ``fmt`` and add it to dataset ``name`` (created when missing).

    All or nothing: a bad record anywhere leaves the workspace as it was, including the dataset that
    would have been created.
    """
    from .formats import get_reader

    batch = get_reader(fmt).read(Path(src), **options)
    what = f"{fmt} source {src}"

    def fill(ds: Dataset) -> list[int]:
        return ds.import_batch(batch, author=author, directory=directory, source_file=str(src))

    if ws.has_dataset(name):  # a large import runs in short transactions, visible at once when done
        ds, _ = _dataset_for(ws, name, batch.type, type, what)
        return ds, fill(ds)
    dtype = type or batch.type
    if dtype is None:
        _dataset_for(ws, name, batch.type, type, what)  # raises: says what type to pass
    # a new dataset stays hidden until it is filled (staged.import_new): a failure leaves nothing
    check_classes(name, len(batch.classes), file=str(src))
    return import_new(ws, name, str(dtype), batch.classes, fill)


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
