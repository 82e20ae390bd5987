"""Size limits of the store, checked before anything is written, with errors that say which limit and where.

A dataset with tens of thousands of classes, or an image with hundreds of thousands of shapes, is almost
always a mistake in the source (a per-object id read as a class, a mask exported as one box per pixel) and
makes every class table, canvas and stats page unusable: refuse it at the door.
"""

from __future__ import annotations

from ..errors import LimitError

__all__ = ["MAX_CLASSES_PER_DATASET", "MAX_SHAPES_PER_EXAMPLE", "check_classes", "check_shapes"]

MAX_CLASSES_PER_DATASET = 10_000
MAX_SHAPES_PER_EXAMPLE = 10_000


def check_classes(dataset: str, count: int, *, file: str | None = None) -> None:
    """Refuse a dataset that would hold ``count`` classes, past :data:`MAX_CLASSES_PER_DATASET`."""
    if count > MAX_CLASSES_PER_DATASET:
        raise LimitError(f"dataset '{dataset}' would have {count:,} classes; at most {MAX_CLASSES_PER_DATASET:,} "
                         "are allowed (is a per-object id being read as a class?)", file=file, field="classes")


def check_shapes(count: int, *, file: str | None = None, record: object | None = None) -> None:
    """Refuse an example that would hold ``count`` annotations, past :data:`MAX_SHAPES_PER_EXAMPLE`."""
    if count > MAX_SHAPES_PER_EXAMPLE:
        raise LimitError(f"the image would have {count:,} annotations; at most {MAX_SHAPES_PER_EXAMPLE:,} per "
                         "image are allowed", file=file, record=record, field="annotations")
