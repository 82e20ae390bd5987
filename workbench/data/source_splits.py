"""Reading a source the way its author split it: ``--split``, split sub-folders, COCO ``instances_<split>.json``.

* ``split="val"`` (``workbench import ... --split val``) puts every item of the source in that split.
* A folder whose sub-folders are ``train/``, ``valid/`` or ``val/``, ``test/`` (how Roboflow exports COCO,
  YOLO and VOC: each sub-folder one source of the format) is read part by part, each part's items in
  its split, when the folder itself is not a source of the format.
* A COCO folder with ``annotations/instances_<split>.json`` (detectron2 / mmdetection / datumaro layout;
  ``train2017`` counts as ``train``) is read file by file, images from ``images/<name>/``, ``<name>/``,
  ``images/`` or the folder itself (the first that exists).

The parts come back as one :class:`~workbench.data.records.ImportBatch`, so the import stays one
all-or-nothing transaction. Which formats are read part by part, and how to tell that a folder is
already a whole source, is the registry ``SPLIT_LAYOUTS``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ImportFormatError, ValidationError
from ..progress import ProgressFn
from .formats import ChainedChecks
from .formats.voc import is_flat as is_flat_voc
from .records import SPLITS, TASK_TYPES, ClassDef, ImportBatch
from .task_types import type_info

__all__ = ["read_source", "split_parts", "SPLIT_FOLDERS", "SPLIT_LAYOUTS"]

# sub-folder name (lower case) -> split
SPLIT_FOLDERS = {"train": "train", "training": "train", "valid": "val", "val": "val", "validation": "val",
                 "test": "test", "testing": "test"}


def _coco_part(folder: Path) -> Path:
    """The annotation file of a COCO part folder: ``annotations.json``, else its only ``*.json``
    (Roboflow writes ``_annotations.coco.json``)."""
    if (folder / "annotations.json").is_file():
        return folder
    found = sorted(p for p in folder.glob("*.json") if p.is_file())
    return found[0] if len(found) == 1 else folder


# format -> (is the folder already a whole source?, the path to read a split sub-folder from)
SPLIT_LAYOUTS: dict[str, tuple[Callable[[Path], bool], Callable[[Path], Path]]] = {
    "coco": (lambda root: (root / "annotations.json").is_file() or (root / "annotations").is_dir(), _coco_part),
    "yolo": (lambda root: (root / "data.yaml").is_file() or (root / "images").is_dir()
             or len([p for p in root.glob("*.y*ml") if p.suffix in (".yaml", ".yml")]) == 1, lambda p: p),
    "voc": (lambda root: (root / "Annotations").is_dir() or is_flat_voc(root), lambda p: p),
}

_COCO_INSTANCES = re.compile(r"^instances_(?P<name>[A-Za-z]+)(?P<year>\d*)\.json$")


def _coco_instances(root: Path) -> list[tuple[str | None, Path, dict[str, Any]]]:
    ann = root / "annotations"
    if not ann.is_dir():
        return []
    parts = []
    for p in sorted(ann.glob("instances_*.json")):
        m = _COCO_INSTANCES.match(p.name)
        split = SPLIT_FOLDERS.get(m.group("name").lower()) if m else None  # CVAT: instances_default.json
        name = p.name[len("instances_"):-len(".json")]
        folder = next((f for f in (root / "images" / name, root / name, root / "images" / (split or name),
                                   root / (split or name), root / "images") if f.is_dir()), root)
        parts.append((split, p, {"images_dir": folder}))
    return parts


def split_parts(fmt: str, src: Path) -> list[tuple[str | None, Path, dict[str, Any]]]:
    """The (split, path to read, extra reader options) of each part of ``src``; empty when it has none. A
    COCO ``instances_<name>.json`` whose name is no split (CVAT's ``default``) gives split None: drawn."""
    src = Path(src)
    if fmt not in SPLIT_LAYOUTS or not src.is_dir():
        return []
    if fmt == "coco":
        found = _coco_instances(src)
        if found:
            return found
    is_whole, part_path = SPLIT_LAYOUTS[fmt]
    if is_whole(src):
        return []
    subs = [d for d in sorted(src.iterdir()) if d.is_dir() and d.name.lower() in SPLIT_FOLDERS]
    seen: dict[str, Path] = {}
    for d in subs:
        split = SPLIT_FOLDERS[d.name.lower()]
        if split in seen:
            raise ImportFormatError(f"both {seen[split].name}/ and {d.name}/ hold the {split} split; keep one",
                                    file=str(src))
        seen[split] = d
    return [(SPLIT_FOLDERS[d.name.lower()], part_path(d), {}) for d in subs] if subs else []


def _merge_type(a: str | None, b: str | None, file: str) -> str | None:
    if a is None or b is None or a == b:
        return a or b
    for wide, narrow in ((a, b), (b, a)):  # a segmentation dataset takes boxes too
        if wide in TASK_TYPES and narrow in type_info(wide).also_takes:
            return wide
    raise ImportFormatError(f"the parts hold different kinds of data ({a} and {b})", file=file)


def read_source(fmt: str, src: Path | str, *, split: str | None = None, progress: ProgressFn | None = None,
                **options: Any) -> ImportBatch:
    """Read ``src`` in format ``fmt``, keeping the splits its author made (see the module doc); with
    ``split``, every item goes to that split instead. ``progress`` hears of the image checks."""
    from .formats import get_reader

    if split is not None and split not in SPLITS:
        raise ValidationError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}", field="--split")
    src = Path(src)
    reader = get_reader(fmt)
    parts = split_parts(fmt, src)
    if not parts:
        batch = reader.read(src, progress=progress, **options)
    else:
        batch = ImportBatch(items=[], source=f"{fmt}:{src}")
        classes: dict[str, ClassDef] = {}
        chain = ChainedChecks()  # the parts' checks still running (within formats.defer_checks)
        try:
            for part_split, path, extra in parts:
                with chain.next_part():  # its checks start once the earlier parts' have ended
                    part = reader.read(path, progress=progress, **{**extra, **options})
                if part.checks is not None:
                    chain.add(len(batch.items), len(part.items), part.checks)
                    part.checks = None
                for item in part.items:
                    item.split = part_split
                batch.items.extend(part.items)
                batch.report.merge(part.report)
                for key, value in part.info.items():
                    batch.info.setdefault(key, value)
                for c in part.classes:
                    classes.setdefault(c.name, c)
                batch.type = _merge_type(batch.type, part.type, str(path))
        except Exception:
            chain.drain()  # an earlier part's error comes first, as when each part was waited for
            raise
        except BaseException:
            chain.stop()
            raise
        batch.checks = chain if chain.parts else None
        batch.classes = list(classes.values())
        said = [f"{p.relative_to(src).as_posix()} as {s or 'no split (drawn by hash)'}" for s, p, _ in parts]
        batch.report.note(f"splits kept from the source: {', '.join(said)}")
    if split is not None:
        for item in batch.items:
            item.split = split
    return batch
