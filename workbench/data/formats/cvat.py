"""CVAT for images 1.1 (XML), as CVAT exports a task or a project.

Reading: ``src`` is the XML file or a folder holding ``annotations.xml`` (or exactly one ``.xml``). XML is
parsed with defusedxml (no DTDs, entities or external references). Classes come from ``meta`` (``task``,
``project`` or ``job`` labels, in order, with their ``color``); a shape naming a label not listed there
is refused. Images are found under ``images_dir`` (default: ``images/`` beside the XML, else the XML's
folder) as ``<subset>/<name>`` (project exports) or ``<name>``, never outside it; the size the XML gives
must match the image. ``subset`` gives the split (Train / Validation / Test and their short forms; other
subset names leave the split to the dataset and are counted). Shapes: ``box`` (a ``rotation`` makes it its
polygon, turned about its centre), ``polygon``, ``mask`` (``rle`` run lengths, zeros first, row by row over
the ``left`` / ``top`` / ``width`` / ``height`` patch); ``occluded``, ``z_order``, ``group_id``, ``source`` and
the ``attribute`` children (typed from the label's ``input_type``: checkbox -> bool, number -> number,
others text) are kept as annotation attributes when the store has them. Other shapes (polyline, points,
ellipse, cuboid, skeleton) and image ``tag`` elements are refused, or left out and counted with
``skip_unsupported``. Dataset type: segmentation when any polygon, else detection.

Writing: ``OUT/annotations.xml`` + ``OUT/images/<split>/<name>``, one ``<image>`` per example with its
``subset`` (Train / Validation / Test) and the source's image id while the exported ones are unique,
labels with their colours (and attribute specs) in ``meta/project``, masks as CVAT
``<mask>`` elements (run lengths over the mask's bounding patch, as CVAT writes them).
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ...errors import ImportFormatError
from ..records import KINDS_FOR_TYPE, Annotation, ClassDef, Example, ImportBatch, ImportItem
from ..task_types import REGION_TYPES, region_type
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
from .paths import is_hidden, safe_join
from .rle import rle_from_array, rle_to_array
from .voc import parse_xml

__all__ = ["read", "write", "SUBSETS"]

SUBSETS = {"train": "train", "training": "train", "validation": "val", "val": "val", "valid": "val",
           "test": "test", "testing": "test"}
SUBSET_OF = {"train": "Train", "val": "Validation", "test": "Test"}
UNSUPPORTED = ("polyline", "points", "ellipse", "cuboid", "skeleton", "tag")
SHAPES = ("box", "polygon", "mask")


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


def _labels(root: Any, file: str) -> tuple[list[str], list[str | None], dict[str, dict[str, dict[str, Any]]]]:
    """(names, colours, {label: {attribute: {input_type, default_value, values}}})."""
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
    types: dict[str, dict[str, dict[str, Any]]] = {}
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
            (a.findtext("name") or "").strip(): {
                "input_type": (a.findtext("input_type") or "text").strip(),
                "default_value": a.findtext("default_value") or "",
                "values": [v for v in (a.findtext("values") or "").replace("\n", " ").split(" ") if v]
                if (a.findtext("input_type") or "").strip() != "text" else
                [v for v in (a.findtext("values") or "").split("\n") if v],
            }
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


def _attributes(el: Any, types: dict[str, dict[str, Any]], *, file: str, rec: str) -> dict[str, Any]:
    # occluded="0", z_order="0", source="manual" are CVAT's defaults and the writer's: not stored
    attrs: dict[str, Any] = {"occluded": True} if el.get("occluded", "0") == "1" else {}
    for key in ("z_order", "group_id"):
        if el.get(key) is not None:
            try:
                v = int(el.get(key))
            except ValueError:
                raise ImportFormatError(f"expected an integer, got {el.get(key)!r}", file=file, record=rec,
                                        field=key) from None
            if v or key == "group_id":
                attrs[key] = v
    if el.get("source") and el.get("source") != "manual":
        attrs["source"] = el.get("source")
    for a in el.findall("attribute"):
        name = a.get("name")
        if not name:
            raise ImportFormatError("attribute has no name", file=file, record=rec, field="attribute")
        attrs[name] = _typed(a.text or "", types.get(name, {}).get("input_type", "text"))
    return attrs


def _fields(ann: Annotation) -> dict[str, Any]:
    return {"kind": ann.kind, "label": ann.label, "bbox": ann.bbox if ann.kind == "box" else None,
            "polygons": ann.polygons, "mask": ann.mask}


def _int_attr(el: Any, key: str, *, file: str, rec: str) -> int:
    try:
        v = int(el.get(key))
    except (TypeError, ValueError):
        raise ImportFormatError(f"expected an integer, got {el.get(key)!r}", file=file, record=rec,
                                field=key) from None
    if v < 0:
        raise ImportFormatError(f"must be at least 0, got {v}", file=file, record=rec, field=key)
    return v


def _mask(el: Any, size: tuple[int, int], *, file: str, rec: str) -> dict[str, Any]:
    """A ``<mask rle left top width height>``: run lengths (zeros first) over the patch, row by row."""
    import numpy as np

    left, top, w, h = (_int_attr(el, k, file=file, rec=rec) for k in ("left", "top", "width", "height"))
    try:
        counts = [int(v) for v in (el.get("rle") or "").split(",")]
    except ValueError:
        raise ImportFormatError("expected comma-separated run lengths", file=file, record=rec, field="rle") from None
    if any(c < 0 for c in counts) or sum(counts) != w * h or w * h == 0:
        raise ImportFormatError(f"run lengths sum to {sum(counts)}, expected width x height = {w * h}", file=file,
                                record=rec, field="rle")
    W, H = size
    if left + w > W or top + h > H:
        raise ImportFormatError(f"mask {w}x{h} at ({left}, {top}) does not fit the {W}x{H} image", file=file,
                                record=rec, field="width" if left + w > W else "height")
    patch = np.repeat(np.arange(len(counts)) % 2, counts).astype(bool).reshape(h, w)
    full = np.zeros((H, W), dtype=bool)
    full[top : top + h, left : left + w] = patch
    if not full.any():
        raise ImportFormatError("mask is empty", file=file, record=rec, field="rle")
    return rle_from_array(full)


def _mask_attrs(mask: dict[str, Any]) -> dict[str, str]:
    """``rle``, ``left``, ``top``, ``width``, ``height`` of a mask cropped to its pixels."""
    import numpy as np

    arr = rle_to_array(mask) != 0
    ys, xs = np.nonzero(arr)
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    flat = arr[y0:y1, x0:x1].reshape(-1)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs = [0, *runs]
    return {"rle": ", ".join(map(str, runs)), "left": str(x0), "top": str(y0), "width": str(x1 - x0),
            "height": str(y1 - y0)}


def _int_or_text(v: str) -> int | str:
    return int(v) if v.isdigit() else v


def _shape(el: Any, label: str, size: tuple[int, int], *, file: str, rec: str) -> Annotation:
    if el.tag == "mask":
        return make_annotation(file=file, record=rec, kind="mask", label=label,
                               mask=_mask(el, size, file=file, rec=rec))
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
    root = parse_xml(path)
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
    kept = 0
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
                raise ImportFormatError(f"<{el.tag}> is not supported (only box, polygon, mask; --skip-unsupported "
                                        "leaves such shapes out and counts them)", file=file, record=srec,
                                        field=el.tag)
            if el.tag not in SHAPES:
                raise ImportFormatError(f"unknown element <{el.tag}>", file=file, record=srec, field=el.tag)
            label = el.get("label") or ""
            if label not in types:
                raise ImportFormatError(f"label {label!r} is not one of the labels in meta ({', '.join(names)})",
                                        file=file, record=srec, field="label")
            ann = _shape(el, label, (info.width, info.height), file=file, rec=srec)
            ann = make_annotation(file=file, record=srec, **{
                **_fields(ann), "attributes": _attributes(el, types[label], file=file, rec=srec)})
            placed, was_clipped = fit(ann, info, clip=clip_boxes, file=file, record=srec)
            if was_clipped:
                clipped[f"{ann.kind} outside the image"] += 1
            if placed is None:
                skipped[f"{ann.kind} wholly outside the image (clipped to nothing)"] += 1
                continue
            has_polygon = has_polygon or placed.kind != "box"
            kept += bool(placed.attributes)
            anns.append(placed)
        origin: dict[str, Any] = {"id": _int_or_text(img.get("id", str(n))), "file_name": name}
        if subset:
            origin["subset"] = subset
        items.append(ImportItem(file_name=Path(name).name, path=image_path, annotations=anns, split=split,
                                source=f"cvat:{name}", record=rec, status="annotated", origin=origin))
    classes = [replace(c, origin={"attributes": types[c.name]}) if types[c.name] else c
               for c in make_classes(names, colors, file=file, record_of=lambda i: f"label {i}")]
    batch = ImportBatch(items=items, classes=classes,
                        type=region_type(masks=has_polygon), source=f"cvat:{path}")
    report(batch, skipped, clipped)
    batch.report.keep("CVAT occluded / z_order / attributes", kept)
    return batch


# ------------------------------------------------------------------------------------------------ write
def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


_SHAPE_KEYS = ("occluded", "z_order", "group_id", "source")


def _text_of(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return fmt_float(v)
    if isinstance(v, (int, str)):
        return str(v)
    return json.dumps(v, ensure_ascii=False)


def _shape_attrs(a: Annotation) -> dict[str, str]:
    at = a.attributes
    out = {"occluded": "1" if at.get("occluded") else "0", "source": str(at.get("source", "manual")),
           "z_order": str(at.get("z_order", 0))}
    if "group_id" in at:
        out["group_id"] = str(at["group_id"])
    return out


def _attribute_specs(examples: Sequence[Example]) -> dict[str, dict[str, tuple[str, list[str]]]]:
    """{label: {attribute: (input_type, values)}} from the attributes the annotations carry."""
    seen: dict[str, dict[str, list[Any]]] = {}
    for ex in examples:
        for a in ex.truth():
            for k, v in a.attributes.items():
                if k not in _SHAPE_KEYS:
                    seen.setdefault(a.label, {}).setdefault(k, []).append(v)
    specs: dict[str, dict[str, tuple[str, list[str]]]] = {}
    for label, attrs in seen.items():
        for k, vs in attrs.items():
            if all(isinstance(v, bool) for v in vs):
                kind = "checkbox"
            elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vs):
                kind = "number"
            else:
                kind = "text"
            values = sorted({_text_of(v) for v in vs})
            specs.setdefault(label, {})[k] = (kind, ["false", "true"] if kind == "checkbox" else values)
    return specs


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
    check_type("cvat", dataset_type, REGION_TYPES)
    class_index(classes, examples)
    check_exportable(examples, KINDS_FOR_TYPE[dataset_type], f"a {dataset_type} dataset")
    out = prepare_out(out, overwrite=overwrite)
    root = ET.Element("annotations")
    _sub(root, "version", "1.1")
    project = _sub(_sub(root, "meta"), "project")
    labels = _sub(project, "labels")
    specs = _attribute_specs(examples)
    for c in classes:
        given = c.origin.get("attributes")
        for name, spec in (given.items() if isinstance(given, dict) else ()):
            if isinstance(spec, dict) and isinstance(spec.get("values"), list):
                specs.setdefault(c.name, {})[name] = (str(spec.get("input_type", "text")),
                                                      [str(v) for v in spec["values"]])
        lab = _sub(labels, "label")
        _sub(lab, "name", c.name)
        _sub(lab, "color", c.color)
        attrs = _sub(lab, "attributes")
        for name, (input_type, values) in sorted(specs.get(c.name, {}).items()):
            spec = _sub(attrs, "attribute")
            _sub(spec, "name", name)
            _sub(spec, "mutable", "False")
            _sub(spec, "input_type", input_type)
            _sub(spec, "default_value", values[0] if values else "")
            _sub(spec, "values", ("\n" if input_type == "text" else " ").join(values))
    written: list[Path] = []
    given = [ex.origin.get("id") for ex in sorted(examples, key=lambda e: e.id)]
    keep_ids = all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in given) and len(
        set(given)) == len(given)  # the source's image ids, while they are still unique
    for i, (ex, name, path) in enumerate(export_images(out, examples, load_bytes,
                                                       lambda ex: f"images/{SUBSET_OF[ex.split]}")):
        written.append(path)
        img = _sub(root, "image", id=str(given[i] if keep_ids else i), name=name, subset=SUBSET_OF[ex.split], width=str(ex.width),
                   height=str(ex.height))
        for a in ex.truth():
            common = _shape_attrs(a)
            if a.kind == "box":
                assert a.bbox is not None
                x, y, w, h = a.bbox
                shapes = [_sub(img, "box", label=a.label, xtl=fmt_float(x), ytl=fmt_float(y),
                               xbr=fmt_float(x + w), ybr=fmt_float(y + h), **common)]
            elif a.kind == "mask":
                shapes = [_sub(img, "mask", label=a.label, **_mask_attrs(a.mask or {}), **common)]
            else:
                polys = a.polygons or ()
                shapes = [_sub(img, "polygon", label=a.label, points=";".join(
                    f"{fmt_float(p[j])},{fmt_float(p[j + 1])}" for j in range(0, len(p), 2)), **common)
                    for p in polys]
            for el in shapes:
                for key, value in a.attributes.items():
                    if key not in _SHAPE_KEYS:
                        _sub(el, "attribute", _text_of(value), name=key)
    ET.indent(root)
    text = '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
    return [write_file(out, "annotations.xml", text), *written]
