"""YOLO (Ultralytics and Darknet layouts): normalized label text files beside an image tree.

Reading: ``src`` is a ``data.yaml`` (or a folder holding ``data.yaml`` / a single ``*.yaml``), a Darknet /
CVAT "YOLO 1.1" ``obj.data`` (or its folder), or a folder with ``images/`` and ``labels/``, or one of images
with their ``.txt`` label files beside them. Class names: the yaml's ``names`` (a list or an ``{id: name}``
dict), ``obj.data``'s ``names`` file, else ``classes.txt`` / ``obj.names`` (one name a line) at the top or in
``labels/``; without any, classes are named ``"0"``, ``"1"``... In the yaml, ``path`` is an optional root
(relative, or absolute only when it is the yaml's own folder), and ``train`` / ``val`` / ``test`` each a
folder, a list of folders, or a ``.txt`` list of images; they give the splits (like Ultralytics, ``../x`` is
read as ``x`` when ``x`` exists in the root; a folder that exists nowhere is "not found"). ``obj.data``'s
``train`` / ``valid`` / ``test`` lists give them too (paths relative to its folder, Darknet's ``data/``
prefix standing for that folder). Without either, ``images/train|val|test/`` give them when those are
exactly the sub-folders. An image's label file is its path with the last ``images`` folder replaced by
``labels`` and the suffix by ``.txt``; an empty label file means no objects. Images whose label file is not
found are refused (count and first names in the error) unless ``allow_unlabeled``: they then import with
status ``new``, never as reviewed negatives. Lines are ``cls cx cy w h`` (detect) or ``cls x1 y1 x2 y2
...`` (segment), all normalized by the image size read from the image itself. Boxes and polygons out of
the image by at most 1e-3 of its side are clipped to it and counted; further out they are refused unless
``clip_boxes`` (boxes and polygons alike). The dataset type is segmentation when any line is a polygon.

Writing: ``OUT/data.yaml`` + ``images/<split>/`` + ``labels/<split>/`` (one label file per image, empty when
it has no objects). Floats are written with ``repr`` precision, so coordinates round-trip exactly enough
for :meth:`Annotation.content` (4 decimals). YOLO has one polygon per line: a multi-polygon annotation is
written as several instances, and a mask is traced to polygons (lossy).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ...errors import ImportFormatError, UnsafePathError
from ..records import KINDS_FOR_TYPE, SPLITS, Annotation, ClassDef, Example, ImportBatch, ImportItem
from ..task_types import REGION_TYPES, region_type
from ._common import (
    as_str,
    check_exportable,
    check_type,
    class_index,
    export_images,
    load_yaml,
    make_annotation,
    make_classes,
    prepare_out,
    probe_path,
    read_text,
    write_file,
)
from ._fit import fit, report
from .paths import is_hidden, list_images, relative_name, safe_join
from .rle import mask_to_polygons

__all__ = ["read", "write", "DATA_YAML"]

DATA_YAML = "data.yaml"
OBJ_DATA = "obj.data"
NAME_FILES = ("classes.txt", "obj.names")


# ------------------------------------------------------------------------------------------------ read
def _find_yaml(src: Path) -> Path | None:
    if src.is_file():
        return src if src.suffix.lower() in (".yaml", ".yml") else None
    if (src / DATA_YAML).is_file():
        return src / DATA_YAML
    yamls = sorted(p for p in src.glob("*.y*ml") if p.suffix in (".yaml", ".yml") and not is_hidden(p.name))
    return yamls[0] if len(yamls) == 1 else None


def _names(raw: Any, file: str) -> list[str]:
    if isinstance(raw, list):
        names = raw
    elif isinstance(raw, dict):
        keys = list(raw)
        if any(isinstance(k, bool) or not isinstance(k, int) for k in keys) or sorted(keys) != list(
            range(len(keys))
        ):
            raise ImportFormatError(
                f"names keys must be the class ids 0..{len(keys) - 1}, got {keys!r:.80}",
                file=file,
                record="names",
                field="names",
            )
        names = [raw[k] for k in range(len(keys))]
    else:
        raise ImportFormatError(
            f"names must be a list or a dict, got {type(raw).__name__}",
            file=file,
            record="names",
            field="names",
        )
    return [
        as_str(
            n if not isinstance(n, (int, float)) else str(n), file=file, record=f"class {i}", field="names"
        )
        for i, n in enumerate(names)
    ]


def _yaml_root(data: dict[str, Any], yaml_path: Path) -> Path:
    base = yaml_path.parent
    raw = data.get("path")
    if raw is None or raw == "":
        return base.resolve()
    if not isinstance(raw, str):
        raise ImportFormatError(
            f"path must be a string, got {raw!r}", file=str(yaml_path), record="path", field="path"
        )
    if Path(raw).is_absolute():
        target = Path(raw).resolve()
        if target.is_relative_to(base.resolve()):
            return target
        raise UnsafePathError(
            f"absolute dataset path {raw!r} lies outside the yaml's folder; make it relative",
            file=str(yaml_path),
            record="path",
            field="path",
        )
    return safe_join(base, raw, file=str(yaml_path), record="path", field="path")


def _split_images(entry: Any, root: Path, *, yaml_file: str, split: str, skip_missing: bool) -> list[Path]:
    entries = entry if isinstance(entry, list) else [entry]
    found: list[Path] = []
    for e in entries:
        if not isinstance(e, str) or not e:
            raise ImportFormatError(
                f"expected a folder or .txt path, got {e!r}", file=yaml_file, record=split, field=split
            )
        if e.startswith("../") and (root / e[3:]).exists():
            e = e[3:]  # Ultralytics' rule for Roboflow exports ("train: ../train/images")
        if not os.path.lexists(os.path.normpath(os.path.join(root, e))):  # the real problem: it is missing
            tried = os.path.normpath(os.path.join(root, e))
            if e.startswith("../"):
                tried = f"{tried} and {root / e[3:]}"
            raise ImportFormatError(f"{e!r} not found (looked at {tried})", file=yaml_file, record=split,
                                    field=split)
        p = safe_join(root, e, file=yaml_file, record=split, field=split)
        if p.is_dir():
            found.extend(list_images(p, root=root))
        elif p.is_file() and p.suffix.lower() == ".txt":
            for n, line in enumerate(read_text(p, what="image list").splitlines(), 1):
                line = line.strip()
                if not line:
                    continue
                img = safe_join(p.parent, line, file=str(p), record=f"line {n}", field="path")
                if not img.is_relative_to(root.resolve()):
                    raise UnsafePathError(
                        f"{line!r} lies outside the dataset root",
                        file=str(p),
                        record=f"line {n}",
                        field="path",
                    )
                if not img.is_file():
                    if skip_missing:
                        continue
                    raise ImportFormatError(
                        f"image {line!r} not found (--skip-missing skips it)",
                        file=str(p),
                        record=f"line {n}",
                        field="path",
                    )
                found.append(img)
        elif not p.exists():
            raise ImportFormatError(f"{e!r} not found (looked at {p})", file=yaml_file, record=split, field=split)
        else:
            raise ImportFormatError(
                f"{e!r} is neither a folder nor a .txt image list", file=yaml_file, record=split, field=split
            )
    return found


def _layout(src: Path, skip_missing: bool) -> tuple[Path, list[tuple[Path, str | None]], list[str] | None]:
    """(root, [(image, split)], class names or None)."""
    yaml_path = _find_yaml(src)
    if yaml_path is not None:
        file = str(yaml_path)
        data = load_yaml(yaml_path)
        if not isinstance(data, dict):
            raise ImportFormatError("data.yaml must be a mapping", file=file)
        if "names" not in data:
            raise ImportFormatError("missing required field", file=file, record="names", field="names")
        names = _names(data["names"], file)
        nc = data.get("nc")
        if nc is not None and nc != len(names):
            raise ImportFormatError(
                f"nc is {nc!r} but {len(names)} names are listed", file=file, record="nc", field="nc"
            )
        root = _yaml_root(data, yaml_path)
        pairs: list[tuple[Path, str | None]] = []
        for split in SPLITS:
            if data.get(split) is not None:
                imgs = _split_images(
                    data[split], root, yaml_file=file, split=split, skip_missing=skip_missing
                )
                pairs.extend((p, split) for p in imgs)
        if not any(data.get(s) is not None for s in SPLITS):
            raise ImportFormatError(
                "lists none of train / val / test", file=file, record="train", field="train"
            )
        return root, pairs, names
    obj_data = _find_obj_data(src)
    if obj_data is not None:
        return _darknet_layout(obj_data, skip_missing)
    root = src.resolve()
    images = root / "images"
    if images.is_dir():
        subs = sorted(d.name for d in images.iterdir() if d.is_dir() and not is_hidden(d.name))
        loose = list_images(images, recursive=False, root=root)
        if subs and set(subs) <= set(SPLITS) and not loose:
            pairs = [(p, s) for s in subs for p in list_images(images / s, root=root)]
        else:
            pairs = [(p, None) for p in list_images(images, root=root)]
    else:  # images with their .txt label files beside them (Darknet without obj.data)
        pairs = [(p, None) for p in list_images(root, root=root)]
        if not pairs or not any(p.with_suffix(".txt").is_file() for p, _ in pairs):
            raise ImportFormatError(
                "no data.yaml, obj.data or images/ folder, and no images with .txt label files beside them: "
                "not a YOLO dataset", file=str(src))
    for cand in (root / name for name in NAME_FILES):
        if cand.is_file():
            return root, pairs, _names_file(cand)
    for cand in (root / "labels" / name for name in NAME_FILES):
        if cand.is_file():
            return root, pairs, _names_file(cand)
    return root, pairs, None


def _names_file(path: Path) -> list[str]:
    """Class names, one a line (``classes.txt``, ``obj.names``); blank lines ignored."""
    names = [ln.strip() for ln in read_text(path, what="class list").splitlines() if ln.strip()]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ImportFormatError(f"class {dup!r} is listed twice", file=str(path), record=dup, field="names")
    return names


def _find_obj_data(src: Path) -> Path | None:
    if src.is_file():
        return src if src.suffix.lower() == ".data" else None
    return src / OBJ_DATA if (src / OBJ_DATA).is_file() else None


def _darknet_path(base: Path, raw: str, *, file: str, record: str, field: str) -> Path:
    """A path in ``obj.data`` or a Darknet list: relative to the dataset folder, where Darknet's own
    ``data/`` prefix (CVAT's "YOLO 1.1" writes ``data/obj.names``) stands for the folder itself."""
    raw = raw.strip()
    if Path(raw).is_absolute():
        raise UnsafePathError(f"absolute path {raw!r} is not allowed; paths must be relative", file=file,
                              record=record, field=field)
    for rel in ([raw, raw[5:]] if raw.startswith("data/") else [raw]):
        if rel and os.path.lexists(base / rel):
            return safe_join(base, rel, file=file, record=record, field=field)
    raise ImportFormatError(f"{raw!r} not found (looked in {base})", file=file, record=record, field=field)


def _darknet_layout(
    obj_data: Path, skip_missing: bool
) -> tuple[Path, list[tuple[Path, str | None]], list[str] | None]:
    """Darknet / CVAT "YOLO 1.1": ``obj.data`` (``key = value`` lines) names ``obj.names`` and the
    ``train`` / ``valid`` / ``test`` image lists."""
    file = str(obj_data)
    root = obj_data.parent.resolve()
    conf: dict[str, str] = {}
    for n, line in enumerate(read_text(obj_data, what="obj.data").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "=" not in line:
            raise ImportFormatError(f"expected 'key = value', got {line!r:.80}", file=file, record=f"line {n}")
        key, value = (t.strip() for t in line.split("=", 1))
        conf[key] = value
    names = (_names_file(_darknet_path(root, conf["names"], file=file, record="names", field="names"))
             if conf.get("names") else None)
    if names is not None and conf.get("classes") and conf["classes"] != str(len(names)):
        raise ImportFormatError(f"classes is {conf['classes']} but {len(names)} names are listed", file=file,
                                record="classes", field="classes")
    pairs: list[tuple[Path, str | None]] = []
    for key, split in (("train", "train"), ("valid", "val"), ("val", "val"), ("test", "test")):
        if not conf.get(key):
            continue
        lst = _darknet_path(root, conf[key], file=file, record=key, field=key)
        for n, line in enumerate(read_text(lst, what="image list").splitlines(), 1):
            if not line.strip():
                continue
            try:
                img = _darknet_path(root, line, file=str(lst), record=f"line {n}", field="path")
            except ImportFormatError:
                if skip_missing:
                    continue
                raise ImportFormatError(f"image {line.strip()!r} not found (--skip-missing skips it)",
                                        file=str(lst), record=f"line {n}", field="path") from None
            pairs.append((img, split))
    if not pairs and not any(conf.get(k) for k in ("train", "valid", "val", "test")):
        raise ImportFormatError("lists none of train / valid / test", file=file, record="train", field="train")
    return root, pairs, names


def _label_path(image: Path, root: Path) -> Path:
    rel = Path(relative_name(image, root))
    parts = list(rel.parts)
    idx = max((i for i, part in enumerate(parts[:-1]) if part == "images"), default=None)
    if idx is not None:
        parts[idx] = "labels"
    rel_label = Path(*parts).with_suffix(".txt")
    return safe_join(root, rel_label.as_posix(), file=str(image), record=rel.as_posix(), field="label file")


def _parse_labels(path: Path, n_classes: int | None) -> list[tuple[int, list[float], int]]:
    """[(class id, normalized values, line number)] of one label file."""
    file = str(path)
    rows = []
    for n, line in enumerate(read_text(path, what="label file").splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        rec = f"line {n}"
        try:
            cls = int(tokens[0])
        except ValueError:
            raise ImportFormatError(
                f"class id must be an integer, got {tokens[0]!r}", file=file, record=rec, field="class"
            ) from None
        if cls < 0 or (n_classes is not None and cls >= n_classes):
            valid = f"0..{n_classes - 1}" if n_classes else "none"
            raise ImportFormatError(
                f"class id {cls} out of range ({valid})", file=file, record=rec, field="class"
            )
        k = len(tokens) - 1
        if k != 4 and (k < 6 or k % 2):
            raise ImportFormatError(
                f"expected 'class cx cy w h' or 'class x1 y1 x2 y2 x3 y3 ...', got {len(tokens)} values",
                file=file,
                record=rec,
                field="values",
            )
        values = []
        for t in tokens[1:]:
            try:
                v = float(t)
            except ValueError:
                raise ImportFormatError(
                    f"expected a number, got {t!r}", file=file, record=rec, field="values"
                ) from None
            if not math.isfinite(v):
                raise ImportFormatError(f"number is not finite ({t})", file=file, record=rec, field="values")
            values.append(v)
        rows.append((cls, values, n))
    return rows


def read(src: Path, *, clip_boxes: bool = False, skip_missing: bool = False,
         allow_unlabeled: bool = False) -> ImportBatch:
    """Read a YOLO dataset; see the module doc. Raises on the first problem found."""
    src = Path(src)
    if not src.exists():
        raise ImportFormatError("not found", file=str(src))
    root, pairs, names = _layout(src, skip_missing)
    seen: dict[Path, str | None] = {}
    parsed = []
    unlabeled: list[str] = []
    for image, split in pairs:
        key = image.resolve()
        if key in seen:
            raise ImportFormatError(
                f"image is listed in both {seen[key]} and {split}",
                file=str(image),
                record=relative_name(image, root),
                field="split",
            )
        seen[key] = split
        label = _label_path(image, root)
        if not label.is_file():
            unlabeled.append(relative_name(image, root))
        rows = _parse_labels(label, len(names) if names is not None else None) if label.is_file() else []
        parsed.append((image, split, label, rows))
    if unlabeled and not allow_unlabeled:
        first = ", ".join(unlabeled[:3])
        raise ImportFormatError(
            f"{len(unlabeled)} of {len(parsed)} images have no label file (first: {first}; looked for "
            f"{relative_name(_label_path(root / unlabeled[0], root), root)}); an image with no objects needs an "
            "empty label file. --allow-unlabeled imports them as status 'new' (not labelled yet)",
            file=str(src), record=unlabeled[0], field="label file")
    if names is None:
        top = max((cls for *_, rows in parsed for cls, _v, _n in rows), default=-1)
        names = [str(i) for i in range(top + 1)]
    classes = make_classes(names, file=str(src), record_of=lambda i: f"class {i}")

    items = []
    clipped: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    has_polygon = any(len(v) > 4 for *_, rows in parsed for _c, v, _n in rows)
    for image, split, label, rows in parsed:
        rel = relative_name(image, root)
        info = probe_path(image, record=rel)
        W, H = info.width, info.height
        anns: list[Annotation] = []
        for cls, v, n in rows:
            rec = f"line {n}"
            if len(v) == 4:
                cx, cy, w, h = v
                bbox = ((cx - w / 2) * W, (cy - h / 2) * H, w * W, h * H)
                ann = make_annotation(file=str(label), record=rec, kind="box", label=names[cls], bbox=bbox)
            else:
                poly = tuple(c * (W if i % 2 == 0 else H) for i, c in enumerate(v))
                ann = make_annotation(
                    file=str(label), record=rec, kind="polygon", label=names[cls], polygons=(poly,)
                )
            placed, was_clipped = fit(ann, info, clip=clip_boxes, file=str(label), record=rec)
            if was_clipped:
                clipped[f"{ann.kind} outside the image"] += 1
            if placed is None:
                skipped[f"{ann.kind} wholly outside the image (clipped to nothing)"] += 1
                continue
            anns.append(placed)
        has_label = label.is_file()
        items.append(
            ImportItem(
                file_name=image.name,
                path=image,
                annotations=anns,
                split=split,
                source=f"yolo:{rel}",
                record=rel,
                status="annotated" if has_label else "new",
                origin={"file_name": rel},
            )
        )
    dataset_type = region_type(masks=has_polygon)
    batch = ImportBatch(items=items, classes=classes, type=dataset_type, source=f"yolo:{src}")
    notes = [f"{len(unlabeled)} images without a label file imported as status 'new' (--allow-unlabeled)"] \
        if unlabeled else []
    report(batch, skipped, clipped, notes)
    return batch


# ------------------------------------------------------------------------------------------------ write
def _f(v: float) -> str:
    return repr(float(v))


def _lines(a: Annotation, cls: int, W: int, H: int) -> list[str]:
    if a.kind == "box":
        assert a.bbox is not None
        x, y, w, h = a.bbox
        return [" ".join([str(cls), _f((x + w / 2) / W), _f((y + h / 2) / H), _f(w / W), _f(h / H)])]
    polys = a.polygons if a.polygons is not None else mask_to_polygons(a.mask or {})
    return [" ".join([str(cls), *(_f(c / (W if i % 2 == 0 else H)) for i, c in enumerate(p))]) for p in polys]


def write(
    out: Path,
    examples: Sequence[Example],
    classes: Sequence[ClassDef],
    dataset_type: str,
    load_bytes: Callable[[str], bytes],
    *,
    overwrite: bool = False,
) -> list[Path]:
    """Write a YOLO dataset into ``out``; returns the files written (data.yaml first)."""
    import yaml

    check_type("yolo", dataset_type, REGION_TYPES)
    index = class_index(classes, examples)
    check_exportable(examples, KINDS_FOR_TYPE[dataset_type], f"a {dataset_type} dataset")
    out = prepare_out(out, overwrite=overwrite)
    written: list[Path] = []
    for ex, name, path in export_images(out, examples, load_bytes, lambda ex: f"images/{ex.split}"):
        written.append(path)
        lines = [ln for a in ex.truth() for ln in _lines(a, index[a.label], ex.width, ex.height)]
        text = "".join(ln + "\n" for ln in lines)
        written.append(write_file(out, f"labels/{ex.split}/{Path(name).stem}.txt", text))
    used = [s for s in SPLITS if any(ex.split == s for ex in examples)]
    doc: dict[str, Any] = {s: f"images/{s}" for s in used}
    doc["nc"] = len(classes)
    doc["names"] = {i: c.name for i, c in enumerate(classes)}
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    return [write_file(out, DATA_YAML, text), *written]
