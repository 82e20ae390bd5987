"""MVTec AD layout, read by the ``anomaly-folder`` format.

A category folder holds ``train/good/``, ``test/good/``, ``test/<defect>/`` (one folder per defect type)
and ``ground_truth/<defect>/<stem>_mask.png``; ``validation/`` (MVTec LOCO) is read like ``test/``. A
folder whose sub-folders are all such categories (the MVTec AD root: ``bottle/``, ``cable/``...) is read
whole, each example keeping its category.

Every image gets one ``anomaly`` annotation: ``good`` under ``good/``, else ``anomalous`` with the defect
type in its attributes (none for a folder called ``anomalous``: a defect of unknown type) (``{"defect": "broken_large"}``, and ``"category"`` when several are read) and the
non-zero pixels of its ground-truth mask as its region. A mask must be a PNG of the image's size and
belong to an image; an anomalous image without a mask is imported without a region and counted. Splits
come from the folders (train, test, validation -> val).

Writing (format ``mvtec``): ``OUT/[<category>/]train/good``, ``test/good``, ``test/<defect>`` (``anomalous``
when the example has no defect type), ``validation/...`` for the val split, and
``ground_truth/<defect>/<stem>_mask.png`` (0 / 255) for anomalous examples that mark a region. Category
folders are written when every example has a ``category`` attribute. Anomalous examples in the train split
are refused (MVTec AD trains on good images only).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from ...errors import ImportFormatError
from ..records import ANOMALY_CLASSES, SPLITS, ClassDef, Example, ImportBatch, ImportItem
from ..task_types import TaskType
from ._common import (
    check_type,
    export_images,
    make_annotation,
    make_classes,
    prepare_out,
    probe_path,
    write_file,
)
from .paths import is_hidden, list_images, relative_name

__all__ = ["is_mvtec", "read", "write", "GROUND_TRUTH"]

GROUND_TRUTH = "ground_truth"
SPLIT_DIRS = {"train": "train", "test": "test", "validation": "val"}
_PLAIN = {"good", "anomalous", "masks"}  # the plain anomaly-folder layout's folder names


def _dirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not is_hidden(d.name)) if folder.is_dir() else []


def _is_category(folder: Path) -> bool:
    if (folder / GROUND_TRUTH).is_dir() and (folder / "test").is_dir():
        return True
    return (folder / "train" / "good").is_dir() and any(
        d.name not in _PLAIN for d in _dirs(folder / "test"))


def is_mvtec(root: Path) -> bool:
    """Whether ``root`` is an MVTec AD category folder, or a folder of them."""
    if _is_category(root):
        return True
    subs = _dirs(root)
    return bool(subs) and all(_is_category(d) for d in subs)


def _region(mask_path: Path, size: tuple[int, int], *, rec: str) -> dict | None:
    from .anomaly_masks import mask_region

    return mask_region(mask_path, size, rec=rec)


def _category(folder: Path, root: Path, name: str | None, missing: Counter[str]) -> list[ImportItem]:
    gt = folder / GROUND_TRUTH
    masks: dict[tuple[str, str], Path] = {}
    for d in _dirs(gt):
        for p in list_images(d, recursive=False, root=root):
            if p.suffix.lower() != ".png":
                raise ImportFormatError("masks must be PNG files", file=str(p), record=relative_name(p, root),
                                        field="mask")
            stem = p.stem[: -len("_mask")] if p.stem.endswith("_mask") else p.stem
            masks[(d.name, stem)] = p
    claimed: set[Path] = set()
    items = []
    tops = {d.name for d in _dirs(folder)}
    unknown = sorted(tops - set(SPLIT_DIRS) - {GROUND_TRUTH})
    if unknown:
        raise ImportFormatError(f"unexpected folder {unknown[0]!r}; expected train, test, validation, "
                                f"{GROUND_TRUTH}", file=str(folder / unknown[0]), field="folder")
    for split_dir, split in SPLIT_DIRS.items():
        for d in _dirs(folder / split_dir):
            for path in list_images(d, root=root):
                rel = relative_name(path, root)
                info = probe_path(path, record=rel)
                attrs: dict[str, str] = {}
                if name is not None:
                    attrs["category"] = name
                if d.name == "good":
                    ann = make_annotation(file=str(path), record=rel, kind="anomaly", label="good",
                                          attributes=attrs)
                else:
                    if split == "train":
                        raise ImportFormatError(f"train/ holds {d.name!r}; MVTec AD trains on good images only",
                                                file=str(d), record=relative_name(d, root), field="folder")
                    mask_path = masks.get((d.name, path.stem))
                    region = None
                    if mask_path is not None:
                        claimed.add(mask_path)
                        region = _region(mask_path, (info.width, info.height), rec=rel)
                    else:
                        missing[f"anomalous image without a {GROUND_TRUTH} mask (imported without a region)"] += 1
                    if d.name != "anomalous":
                        attrs["defect"] = d.name
                    ann = make_annotation(file=str(path), record=rel, kind="anomaly", label="anomalous",
                                          mask=region, attributes=attrs)
                items.append(ImportItem(file_name=path.name, path=path, annotations=[ann], split=split,
                                        source=f"anomaly-folder:{rel}", record=rel, status="annotated",
                                        origin={"file_name": rel}))
    for p in sorted(set(masks.values()) - claimed):
        raise ImportFormatError("mask has no test image of the same defect and name", file=str(p),
                                record=relative_name(p, root), field="mask")
    return items


def read(src: Path) -> ImportBatch:
    """Read an MVTec AD category (or a folder of categories); see the module doc."""
    root = Path(src).resolve()
    if not root.is_dir() or not is_mvtec(root):
        raise ImportFormatError("not an MVTec AD folder: expected train/good and test/<defect> (with "
                                f"{GROUND_TRUTH}/<defect>/*_mask.png), or a folder of such categories", file=str(src))
    missing: Counter[str] = Counter()
    if _is_category(root):
        items = _category(root, root, None, missing)
    else:
        items = [it for d in _dirs(root) for it in _category(d, root, d.name, missing)]
    if not items:
        raise ImportFormatError("no images found in the MVTec AD folders", file=str(root))
    batch = ImportBatch(items=items, classes=make_classes(list(ANOMALY_CLASSES)), type=TaskType.ANOMALY,
                        source=f"anomaly-folder:{root}")
    for reason, n in missing.items():
        batch.report.note(f"{n} {reason}")
    return batch


# ------------------------------------------------------------------------------------------------ write
_SPLIT_DIR = {"train": "train", "val": "validation", "test": "test"}


def write(
    out: Path,
    examples: Sequence[Example],
    classes: Sequence[ClassDef],
    dataset_type: str,
    load_bytes: Callable[[str], bytes],
    *,
    overwrite: bool = False,
) -> list[Path]:
    """Write an MVTec AD tree into ``out``; see the module doc. Returns the files written."""
    from ...errors import ValidationError
    from .anomaly_masks import mask_png
    from .imagefolder import single_label

    check_type("mvtec", dataset_type, (TaskType.ANOMALY,))
    where: dict[int, str] = {}
    anns = {}
    cats = [next((a.attributes.get("category") for a in ex.truth()), None) for ex in examples]
    by_category = bool(examples) and all(isinstance(c, str) and c and "/" not in c and not c.startswith(".")
                                         for c in cats)
    for ex, cat in zip(examples, cats, strict=True):
        label = single_label(ex, "anomaly")
        if label is None:
            raise ValidationError("is neither good nor anomalous", record=f"example {ex.id}", field="label")
        if ex.split not in SPLITS:
            raise ValidationError(f"unknown split {ex.split!r}", record=f"example {ex.id}", field="split")
        ann = next(a for a in ex.truth() if a.kind == "anomaly")
        defect = "good" if label == "good" else str(ann.attributes.get("defect") or "anomalous")
        if defect in ("", ".", "..", GROUND_TRUTH) or "/" in defect or "\\" in defect or (
                label == "anomalous" and defect == "good"):
            raise ValidationError(f"defect type {defect!r} cannot be a folder name", record=f"example {ex.id}",
                                  field="attributes.defect")
        if label == "anomalous" and ex.split == "train":
            raise ValidationError("anomalous example in the train split; MVTec AD trains on good images only "
                                  "(move it to val or test)", record=f"example {ex.id}", field="split")
        base = f"{cat}/" if by_category else ""
        where[ex.id] = f"{base}{_SPLIT_DIR[ex.split]}/{defect}"
        anns[ex.id] = (ann, f"{base}{GROUND_TRUTH}/{defect}")
    out = prepare_out(out, overwrite=overwrite)
    written: list[Path] = []
    for ex, name, path in export_images(out, examples, load_bytes, lambda ex: where[ex.id]):
        written.append(path)
        ann, gt = anns[ex.id]
        png = mask_png(ann, ex) if ann.label == "anomalous" else None
        if png is not None:
            written.append(write_file(out, f"{gt}/{Path(name).stem}_mask.png", png))
    return written
