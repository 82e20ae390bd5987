"""ImageFolder (torchvision's layout): ``root/<class>/<image>``, or ``root/<split>/<class>/<image>`` when the
top-level folders are exactly split names (some of train / val / test).

Reading: classes are the class folder names, sorted (torchvision's order); images anywhere below a class
folder belong to it. Hidden files and folders (``.ipynb_checkpoints``) are skipped, as are non-image files;
an image lying directly in the root (or a split folder) has no class and is refused, as are symlinked class
folders. Every image is fully probed. Dataset type: classification.

Writing: ``OUT/<split>/<class>/<file_name>`` (or ``OUT/<class>/<file_name>`` with ``splits=False``); every
exported example needs exactly one class label (``skip_unlabeled=True`` leaves out those without).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ...errors import ImportFormatError, UnsafePathError, ValidationError
from ..records import SPLITS, ClassDef, Example, ImportBatch, ImportItem
from ..task_types import TaskType
from ._common import check_type, export_images, make_annotation, make_classes, prepare_out, probe_path
from .paths import is_hidden, list_images, relative_name

__all__ = ["read", "write", "walk_class_tree", "single_label", "check_folder_names"]


def _subdirs(folder: Path, root: Path, *, what: str) -> list[Path]:
    """Non-hidden sub-folders, sorted; images directly in ``folder`` and symlinked folders are refused."""
    dirs = []
    for p in sorted(folder.iterdir()):
        if is_hidden(p.name):
            continue
        if p.is_symlink() and p.is_dir():
            problem = "outside the import folder" if not p.resolve().is_relative_to(root) else "a symlink"
            err = UnsafePathError if "outside" in problem else ImportFormatError
            raise err(f"{what} folder {p.name!r} is {problem}; copy or move it in", file=str(p))
        if p.is_dir():
            dirs.append(p)
    loose = list_images(folder, recursive=False, root=root)
    if loose:
        raise ImportFormatError(
            f"image lies outside any {what} folder; expected {what}/<image>",
            file=str(loose[0]),
            record=relative_name(loose[0], root),
        )
    return dirs


def walk_class_tree(
    root: Path, *, allowed: Sequence[str] | None = None, extra: Sequence[str] = ()
) -> tuple[list[tuple[str | None, str, Path]], list[str], dict[str | None, Path]]:
    """Walk ``root/[<split>/]<class>/...`` -> ([(split, class, image path)], class names, {split: folder}).

    ``allowed``: the only class folder names accepted (others raise); ``extra``: folder names beside the
    class folders that are not classes (returned through the split folder map, not walked).
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise ImportFormatError("not a folder", file=str(root))
    tops = _subdirs(root, root, what="class")
    top_names = {d.name for d in tops} - set(extra)
    split_layout = bool(top_names) and top_names <= set(SPLITS)
    groups = [(d.name, d) for d in tops if d.name not in extra] if split_layout else [(None, root)]
    entries: list[tuple[str | None, str, Path]] = []
    names: set[str] = set()
    folders: dict[str | None, Path] = {}
    for split, folder in groups:
        folders[split] = folder
        class_dirs = _subdirs(folder, root, what="class") if split is not None else tops
        for d in class_dirs:
            if d.name in extra:
                continue
            if allowed is not None and d.name not in allowed:
                raise ImportFormatError(
                    f"unexpected folder {d.name!r}; expected {', '.join([*allowed, *extra])}",
                    file=str(d),
                    record=relative_name(d, root),
                    field="folder",
                )
            names.add(d.name)
            entries.extend((split, d.name, p) for p in list_images(d, root=root))
    return entries, sorted(names), folders


def read(src: Path) -> ImportBatch:
    """Read an ImageFolder tree; see the module doc. Raises on the first problem found."""
    root = Path(src).resolve()
    entries, names, _ = walk_class_tree(root)
    classes = make_classes(names, file=str(root))
    items = []
    for split, label, path in entries:
        rel = relative_name(path, root)
        probe_path(path, record=rel)
        ann = make_annotation(file=str(path), record=rel, kind="label", label=label)
        items.append(
            ImportItem(
                file_name=path.name,
                path=path,
                annotations=[ann],
                split=split,
                source=f"imagefolder:{rel}",
                record=rel,
            )
        )
    return ImportBatch(items=items, classes=classes, type=TaskType.CLASSIFICATION, source=f"imagefolder:{root}")


def single_label(ex: Example, kind: str) -> str | None:
    """The one ``kind`` annotation's label of ``ex`` (None when it has none; two raise)."""
    labels = [a.label for a in ex.truth() if a.kind == kind]
    others = [a.kind for a in ex.truth() if a.kind != kind]
    if others:
        raise ValidationError(
            f"expected only {kind!r} annotations, found {others[0]!r}",
            record=f"example {ex.id}",
            field="kind",
        )
    if len(labels) > 1:
        raise ValidationError(
            f"has {len(labels)} {kind} annotations, expected one", record=f"example {ex.id}", field="label"
        )
    return labels[0] if labels else None


def check_folder_names(classes: Sequence[ClassDef]) -> None:
    """Class names become folder names: no separators, no dot names (hidden folders are not read back)."""
    for c in classes:
        if "/" in c.name or "\\" in c.name or c.name.startswith("."):
            raise ValidationError(
                f"class {c.name!r} cannot be a folder name (no '/', '\\', or leading '.')",
                record=c.name,
                field="name",
            )


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
    """Write an ImageFolder tree into ``out``; returns the files written."""
    check_type("imagefolder", dataset_type, (TaskType.CLASSIFICATION,))
    check_folder_names(classes)
    names = {c.name for c in classes}
    keep = []
    for ex in examples:
        label = single_label(ex, "label")
        if label is None:
            if skip_unlabeled:
                continue
            raise ValidationError(
                "has no class label (skip_unlabeled=True leaves it out)",
                record=f"example {ex.id}",
                field="label",
            )
        if label not in names:
            raise ValidationError(
                f"label {label!r} is not one of the classes", record=f"example {ex.id}", field="label"
            )
        if splits and ex.split not in SPLITS:
            raise ValidationError(f"unknown split {ex.split!r}", record=f"example {ex.id}", field="split")
        keep.append((ex, label))
    label_of = {ex.id: label for ex, label in keep}
    out = prepare_out(out, overwrite=overwrite)
    written = []
    for _ex, _name, path in export_images(
        out,
        [ex for ex, _ in keep],
        load_bytes,
        lambda ex: f"{ex.split}/{label_of[ex.id]}" if splits else label_of[ex.id],
    ):
        written.append(path)
    for c in classes:  # empty classes still get their folder, so the class list round-trips
        for s in SPLITS if splits else ("",):
            if not splits or any(ex.split == s for ex, _ in keep):
                (out / s / c.name).mkdir(parents=True, exist_ok=True)
    return written
