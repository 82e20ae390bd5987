"""Anomaly folder: ``root/good/<image>`` and ``root/anomalous/<image>`` (or the same under
``root/<split>/``), with optional region masks ``masks/<image stem>.png`` beside the class folders (in the
split folder, or at the root).

Reading: every image gets one ``anomaly`` annotation labelled ``good`` or ``anomalous``; an anomalous
image with a mask gets the mask's non-zero pixels as its region (an all-zero mask means no region). A mask
must be a PNG of the image's size, belong to an anomalous image, and match exactly one image; other
folders beside good / anomalous / masks are refused. Classes: good, anomalous. Dataset type: anomaly.

Writing: ``OUT/<split>/good|anomalous/<file_name>`` and ``OUT/<split>/masks/<stem>.png`` (0 / 255) for
anomalous examples that mark a region (a polygon or box region is filled into the mask).

MVTec AD folders (``train/good``, ``test/<defect>``, ``ground_truth/<defect>/*_mask.png``) are read too,
see :mod:`.mvtec`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ...errors import ImportFormatError, ValidationError
from ..records import ANOMALY_CLASSES, SPLITS, Annotation, ClassDef, Example, ImportBatch, ImportItem
from ..task_types import TaskType
from . import mvtec
from ._common import (
    check_type,
    export_images,
    make_annotation,
    make_classes,
    prepare_out,
    probe_path,
    write_file,
)
from .anomaly_masks import mask_png, mask_region
from .imagefolder import single_label, walk_class_tree
from .paths import list_images, relative_name

__all__ = ["read", "write", "MASKS"]

MASKS = "masks"


def _masks(folders: list[Path], root: Path) -> dict[Path, dict[str, Path]]:
    found: dict[Path, dict[str, Path]] = {}
    for folder in folders:
        d = folder / MASKS
        if not d.is_dir() or d in found:
            continue
        by_stem: dict[str, Path] = {}
        for p in list_images(d, recursive=False, root=root):
            if p.suffix.lower() != ".png":
                raise ImportFormatError(
                    "masks must be PNG files", file=str(p), record=relative_name(p, root), field="mask"
                )
            by_stem[p.stem] = p
        found[d] = by_stem
    return found


def read(src: Path) -> ImportBatch:
    """Read an anomaly folder (or an MVTec AD one: :mod:`.mvtec`); see the module doc. Raises on the first
    problem found."""
    root = Path(src).resolve()
    if root.is_dir() and mvtec.is_mvtec(root):
        return mvtec.read(root)
    entries, _names, split_folders = walk_class_tree(root, allowed=ANOMALY_CLASSES, extra=(MASKS,))
    masks = _masks([*split_folders.values(), root], root)
    claimed: dict[Path, str] = {}
    items = []
    for split, label, path in entries:
        rel = relative_name(path, root)
        info = probe_path(path, record=rel)
        mask_path = None
        for folder in (split_folders.get(split, root), root):
            mask_path = masks.get(folder / MASKS, {}).get(path.stem)
            if mask_path is not None:
                break
        region = None
        if mask_path is not None:
            if label != "anomalous":
                raise ImportFormatError(
                    f"{label} image has a mask; only anomalous images mark a region",
                    file=str(mask_path),
                    record=rel,
                    field="mask",
                )
            if mask_path in claimed:
                raise ImportFormatError(
                    f"mask matches both {claimed[mask_path]} and {rel}; rename one image",
                    file=str(mask_path),
                    record=rel,
                    field="mask",
                )
            claimed[mask_path] = rel
            region = mask_region(mask_path, (info.width, info.height), rec=rel)
        ann = make_annotation(file=str(path), record=rel, kind="anomaly", label=label, mask=region)
        items.append(
            ImportItem(
                file_name=path.name,
                path=path,
                annotations=[ann],
                split=split,
                source=f"anomaly-folder:{rel}",
                record=rel,
            )
        )
    for by_stem in masks.values():
        for p in by_stem.values():
            if p not in claimed:
                raise ImportFormatError(
                    "mask has no anomalous image with the same name",
                    file=str(p),
                    record=relative_name(p, root),
                    field="mask",
                )
    classes = make_classes(list(ANOMALY_CLASSES))
    return ImportBatch(items=items, classes=classes, type=TaskType.ANOMALY, source=f"anomaly-folder:{root}")


def write(
    out: Path,
    examples: Sequence[Example],
    classes: Sequence[ClassDef],
    dataset_type: str,
    load_bytes: Callable[[str], bytes],
    *,
    overwrite: bool = False,
    splits: bool = True,
    skip_unlabeled: bool = False,
) -> list[Path]:
    """Write an anomaly folder into ``out``; returns the files written."""
    check_type("anomaly-folder", dataset_type, (TaskType.ANOMALY,))
    keep: list[tuple[Example, Annotation]] = []
    for ex in examples:
        label = single_label(ex, "anomaly")
        if label is None:
            if skip_unlabeled:
                continue
            raise ValidationError(
                "is neither good nor anomalous (skip_unlabeled=True leaves it out)",
                record=f"example {ex.id}",
                field="label",
            )
        ann = next(a for a in ex.truth() if a.kind == "anomaly")
        if label == "good" and (ann.mask is not None or ann.polygons is not None or ann.bbox is not None):
            raise ValidationError(
                "a good example cannot mark an anomalous region", record=f"example {ex.id}", field="mask"
            )
        if splits and ex.split not in SPLITS:
            raise ValidationError(f"unknown split {ex.split!r}", record=f"example {ex.id}", field="split")
        keep.append((ex, ann))
    ann_of = {ex.id: ann for ex, ann in keep}
    out = prepare_out(out, overwrite=overwrite)
    written = []
    for ex, name, path in export_images(
        out,
        [ex for ex, _ in keep],
        load_bytes,
        lambda ex: f"{ex.split}/{ann_of[ex.id].label}" if splits else ann_of[ex.id].label,
    ):
        written.append(path)
        png = mask_png(ann_of[ex.id], ex)
        if png is not None:
            folder = f"{ex.split}/{MASKS}" if splits else MASKS
            written.append(write_file(out, f"{folder}/{Path(name).stem}.png", png))
    for label in ANOMALY_CLASSES:  # both class folders exist, even when one is empty
        for s in SPLITS if splits else ("",):
            if not splits or any(ex.split == s for ex, _ in keep):
                (out / s / label).mkdir(parents=True, exist_ok=True)
    return written
