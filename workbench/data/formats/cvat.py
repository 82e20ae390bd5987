"""CVAT for images 1.1 (XML), as CVAT exports a task or a project.

Reading: ``src`` is the XML file or a folder holding ``annotations.xml`` (or exactly one ``.xml``). XML is
parsed with defusedxml (no DTDs, entities or external references). Classes come from ``meta`` (``task``,
``project`` or ``job`` labels, in order, with their ``color``); a shape naming a label not listed there
is refused. Images are found under ``images_dir`` (default: ``images/`` beside the XML, else the XML's
folder) as ``<subset>/<name>`` (project exports) or ``<name>``, never outside it; the size the XML gives
must match the image. ``subset`` gives the split (Train / Validation / Test and their short forms; other
subset names leave the split to the dataset and are counted). Shapes: ``box`` (a ``rotation`` makes it its
polygon, turned about its centre), ``polygon``; ``occluded``, ``z_order``, ``group_id``, ``source`` and
the ``attribute`` children (typed from the label's ``input_type``: checkbox -> bool, number -> number,
others text) are kept as annotation attributes when the store has them. Other shapes (polyline, points,
mask, ellipse, cuboid, skeleton) and image ``tag`` elements are refused, or left out and counted with
``skip_unsupported``. Dataset type: segmentation when any polygon, else detection.

Writing: ``OUT/annotations.xml`` + ``OUT/images/<split>/<name>``, one ``<image>`` per example with its
``subset`` (Train / Validation / Test), labels with their colours in ``meta/project``; masks are traced to
polygons (lossy).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ...errors import ImportFormatError
from ..records import KINDS_FOR_TYPE, Annotation, ClassDef, Example, ImportBatch, ImportItem
from ._common import (
    check_exportable,
    check_type,
    class_index,
    export_images,
    fmt_float,
    make_annotation,
    make_classes,
    prepare_out,
    probe_path,
    write_file,
)
from ._fit import fit, report
from ._rle import mask_to_polygons
from .paths import is_hidden, safe_join
from .voc import _parse_xml

__all__ = ["read", "write", "SUBSETS"]

SUBSETS = {"train": "train", "training": "train", "validation": "val", "val": "val", "valid": "val",
           "test": "test", "testing": "test"}
SUBSET_OF = {"train": "Train", "val": "Validation", "test": "Test"}
UNSUPPORTED = ("polyline", "points", "mask", "ellipse", "cuboid", "skeleton", "tag")


def _xml_file(src: Path) -> Path:
    if src.is_file():
        return src
    if not src.is_dir():
        raise ImportFormatError("not found", file=str(src))
    if (src / "annotations.xml").is_file():
        return src / "annotations.xml"
    found = sorted(p for p in src.glob("*.xml") if not is_hidden(p.name))
    if len(found) != 1:
        raise ImportFormatError(f"expected annotations.xml or one .xml file in the folder, found {len(found)}",
                                file=str(src))
    return found[0]


def _labels(root: Any, file: str) -> tuple[list[str], list[str | None], dict[str, dict[str, str]]]:
    """(names, colours, {label: {attribute: input_type}})."""
    meta = root.find("meta")
    holder = None
    if meta is not None:
        for tag in ("project", "task", "job"):
            holder = meta.find(tag)
            if holder is not None and holder.find("labels") is not None:
                break
    labels = holder.find("labels") if holder is not None else None
    if labels is None:
        raise ImportFormatError("no meta/task/labels (or meta/project/labels) list", file=file, field="labels")
    names: list[str] = []
    colors: list[str | None] = []
    types: dict[str, dict[str, str]] = {}
    for i, el in enumerate(labels.findall("label")):
        name = (el.findtext("name") or "").strip()
        if not name:
            raise ImportFormatError("label has no name", file=file, record=f"label {i}", field="name")
        if name in types:
            raise ImportFormatError(f"label {name!r} is listed twice", file=file, record=f"label {i}", field="name")
        color = (el.findtext("color") or "").strip() or None
        names.append(name)
        colors.append(color)
        types[name] = {
            (a.findtext("name") or "").strip(): (a.findtext("input_type") or "text").strip()
            for a in el.iter("attribute")
        }
    return names, colors, types


def _float(el: Any, key: str, *, file: str, rec: str) -> float:
    raw = el.get(key)
    try:
        v = float(raw)
    except (TypeError, ValueError):
        raise ImportFormatError(f"expected a number, got {raw!r}", file=file, record=rec, field=key) from None
    if not math.isfinite(v):
        raise ImportFormatError(f"number is not finite ({raw})", file=file, record=rec, field=key)
    return v


def _points(el: Any, *, file: str, rec: str) -> tuple[float, ...]:
    raw = el.get("points") or ""
    out: list[float] = []
    for pair in raw.split(";"):
        xy = pair.split(",")
        try:
            x, y = float(xy[0]), float(xy[1])
        except (ValueError, IndexError):
            raise ImportFormatError(f"expected 'x,y;x,y;...', got {raw!r:.80}", file=file, record=rec,
                                    field="points") from None
        if len(xy) != 2 or not (math.isfinite(x) and math.isfinite(y)):
            raise ImportFormatError(f"bad point {pair!r}", file=file, record=rec, field="points")
        out += [x, y]
    return tuple(out)


def _typed(value: str, input_type: str) -> Any:
    if input_type == "checkbox" and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if input_type == "number":
        try:
            f = float(value)
        except ValueError:
            return value
        if math.isfinite(f):
            return int(f) if f.is_integer() and "." not in value else f
    return value


def _attributes(el: Any, types: dict[str, str], *, file: str, rec: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {"occluded": el.get("occluded", "0") == "1"}
    for key in ("z_order", "group_id"):
        if el.get(key) is not None:
            try:
                attrs[key] = int(el.get(key))
            except ValueError:
                raise ImportFormatError(f"expected an integer, got {el.get(key)!r}", file=file, record=rec,
                                        field=key) from None
    if el.get("source"):
        attrs["source"] = el.get("source")
    for a in el.findall("attribute"):
        name = a.get("name")
        if not name:
            raise ImportFormatError("attribute has no name", file=file, record=rec, field="attribute")
        attrs[name] = _typed(a.text or "", types.get(name, "text"))
    return attrs


def _shape(el: Any, label: str, *, file: str, rec: str) -> Annotation:
    if el.tag == "polygon":
        return make_annotation(file=file, record=rec, kind="polygon", label=label,
                               polygons=(_points(el, file=file, rec=rec),))
    x0, y0, x1, y1 = (_float(el, k, file=file, rec=rec) for k in ("xtl", "ytl", "xbr", "ybr"))
    rot = _float(el, "rotation", file=file, rec=rec) if el.get("rotation") is not None else 0.0
    if rot % 360 == 0:
        return make_annotation(file=file, record=rec, kind="box", label=label, bbox=(x0, y0, x1 - x0, y1 - y0))
    cx, cy, t = (x0 + x1) / 2, (y0 + y1) / 2, math.radians(rot)
    c, s = math.cos(t), math.sin(t)
    pts = [(cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c)
           for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
    return make_annotation(file=file, record=rec, kind="polygon", label=label,
                           polygons=(tuple(v for p in pts for v in p),))


def _image_path(root: Path, name: str, subset: str | None, *, file: str, rec: str) -> Path:
    tries = ([f"{subset}/{name}"] if subset else []) + [name]
    for rel in tries:
        p = safe_join(root, rel, file=file, record=rec, field="name")
        if p.is_file():
            return p
    raise ImportFormatError(f"image {name!r} not found under {root} (--images names the image folder; "
                            "--skip-missing leaves such images out)", file=file, record=rec, field="name")


def read(src: Path, *, images_dir: Path | None = None, clip_boxes: bool = False, skip_missing: bool = False,
         skip_unsupported: bool = False) -> ImportBatch:
    """Read a CVAT for images 1.1 XML file; see the module doc. Raises on the first problem found."""
    path = _xml_file(Path(src))
    file = str(path)
    if images_dir is not None:
        img_root = Path(images_dir).resolve()
        if not img_root.is_dir():
            raise ImportFormatError("image folder not found", file=str(images_dir))
    else:
        img_root = (path.parent / "images") if (path.parent / "images").is_dir() else path.parent
        img_root = img_root.resolve()
    root = _parse_xml(path)
    if root.tag != "annotations":
        raise ImportFormatError(f"root element is <{root.tag}>, expected <annotations>", file=file)
    if root.find("track") is not None:
        raise ImportFormatError("this is a 'CVAT for video' file (it has <track> elements); export the task "
                                "as 'CVAT for images 1.1'", file=file, field="track")
    names, colors, types = _labels(root, file)
    skipped: Counter[str] = Counter()
    clipped: Counter[str] = Counter()
    items: list[ImportItem] = []
    has_polygon = False
    for n, img in enumerate(root.findall("image")):
        name = img.get("name")
        rec = f"image {img.get('id', n)} ({name})"
        if not name:
            raise ImportFormatError("image has no name", file=file, record=f"image {img.get('id', n)}", field="name")
        subset = img.get("subset")
        split = SUBSETS.get(subset.strip().lower()) if subset else None
        if subset and split is None:
            skipped["image whose subset is not train/val/test (split chosen by the dataset)"] += 1
        try:
            image_path = _image_path(img_root, name, subset, file=file, rec=rec)
        except ImportFormatError:
            if skip_missing:
                skipped["image not found (--skip-missing)"] += 1
                continue
            raise
        info = probe_path(image_path, record=rec)
        for key, actual in (("width", info.width), ("height", info.height)):
            if img.get(key) is not None and img.get(key) != str(actual):
                raise ImportFormatError(f"says {img.get(key)!r} but the image is {info.width}x{info.height}",
                                        file=file, record=rec, field=key)
        anns: list[Annotation] = []
        for k, el in enumerate(img):
            srec = f"{rec} {el.tag} {k}"
            if el.tag in UNSUPPORTED:
                if skip_unsupported:
                    skipped[f"{el.tag} (not supported; --skip-unsupported)"] += 1
                    continue
                raise ImportFormatError(f"<{el.tag}> is not supported (only box, polygon; --skip-unsupported "
                                        "leaves such shapes out and counts them)", file=file, record=srec,
                                        field=el.tag)
            if el.tag not in ("box", "polygon"):
                raise ImportFormatError(f"unknown element <{el.tag}>", file=file, record=srec, field=el.tag)
            label = el.get("label") or ""
            if label not in types:
                raise ImportFormatError(f"label {label!r} is not one of the labels in meta ({', '.join(names)})",
                                        file=file, record=srec, field="label")
            ann = _shape(el, label, file=file, rec=srec)
            _attributes(el, types[label], file=file, rec=srec)
            placed, was_clipped = fit(ann, info, clip=clip_boxes, file=file, record=srec)
            if was_clipped:
                clipped[f"{ann.kind} outside the image"] += 1
            if placed is None:
                continue
            has_polygon = has_polygon or placed.kind == "polygon"
            anns.append(placed)
        items.append(ImportItem(file_name=Path(name).name, path=image_path, annotations=anns, split=split,
                                source=f"cvat:{name}", record=rec, status="annotated"))
    batch = ImportBatch(items=items, classes=make_classes(names, colors, file=file,
                                                          record_of=lambda i: f"label {i}"),
                        type="segmentation" if has_polygon else "detection", source=f"cvat:{path}")
    report(batch, skipped, clipped)
    return batch


# ------------------------------------------------------------------------------------------------ write
def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def write(
    out: Path,
    examples: Sequence[Example],
    classes: Sequence[ClassDef],
    dataset_type: str,
    load_bytes: Callable[[str], bytes],
    *,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``out/annotations.xml`` (CVAT for images 1.1) and the images; returns the files written."""
    check_type("cvat", dataset_type, ("detection", "segmentation"))
    class_index(classes, examples)
    check_exportable(examples, KINDS_FOR_TYPE[dataset_type], f"a {dataset_type} dataset")
    out = prepare_out(out, overwrite=overwrite)
    root = ET.Element("annotations")
    _sub(root, "version", "1.1")
    project = _sub(_sub(root, "meta"), "project")
    labels = _sub(project, "labels")
    for c in classes:
        lab = _sub(labels, "label")
        _sub(lab, "name", c.name)
        _sub(lab, "color", c.color)
        _sub(lab, "attributes")
    written: list[Path] = []
    for i, (ex, name, path) in enumerate(export_images(out, examples, load_bytes,
                                                       lambda ex: f"images/{SUBSET_OF[ex.split]}")):
        written.append(path)
        img = _sub(root, "image", id=str(i), name=name, subset=SUBSET_OF[ex.split], width=str(ex.width),
                   height=str(ex.height))
        for a in ex.truth():
            if a.kind == "box":
                assert a.bbox is not None
                x, y, w, h = a.bbox
                _sub(img, "box", label=a.label, occluded="0", source="manual", xtl=fmt_float(x),
                     ytl=fmt_float(y), xbr=fmt_float(x + w), ybr=fmt_float(y + h), z_order="0")
                continue
            polys = a.polygons if a.polygons is not None else mask_to_polygons(a.mask or {})
            for p in polys:
                pts = ";".join(f"{fmt_float(p[j])},{fmt_float(p[j + 1])}" for j in range(0, len(p), 2))
                _sub(img, "polygon", label=a.label, occluded="0", source="manual", points=pts, z_order="0")
    ET.indent(root)
    text = '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
    return [write_file(out, "annotations.xml", text), *written]
