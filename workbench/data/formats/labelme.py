"""LabelMe (wkentaro/labelme): one JSON file per image.

Reading: ``src`` is one ``.json`` file or a folder searched recursively for them (hidden files skipped;
JSON files that are not LabelMe files -- no ``shapes`` list -- are refused). The image is ``imageData``
(base64, embedded) when it is set, else ``imagePath`` relative to the JSON file (backslashes and ``..``
allowed while it stays inside the import folder), as labelme itself loads it; an absolute ``imagePath``
(written on another machine) is read as the file of that name beside the JSON, else refused; a missing
image is refused (``skip_missing``: the JSON file is left out and counted); ``imageWidth`` /
``imageHeight``, when given, must match the image. Shapes: ``rectangle`` (two corners, any order) -> box,
``polygon`` -> polygon, ``mask`` (a base64 PNG patch placed at the first point) -> mask. Other shape types
(circle, line, linestrip, point, ...) are refused, or with ``skip_unsupported`` left out and counted.
``group_id``, ``description``, shape ``flags`` and any other shape keys (labelme keeps unknown keys; the
writer puts other sources' attributes under ``attributes``) are kept as annotation attributes; a shape
labelled ``__ignore__`` or flagged ``iscrowd`` is a crowd region (``iscrowd``: not trained on, evaluated as
crowd); the image's ``flags`` go to the example's origin. A JSON under a top folder ``train`` / ``val`` /
``valid`` / ``test`` gets that split. Classes in order of first appearance. Dataset type: segmentation when any polygon or mask, else detection. Geometry
out of the image by a hair is clipped (see :mod:`._fit`).

Writing: ``OUT/<split>/<image>`` and ``OUT/<split>/<stem>.json`` (labelme 5.x fields, ``imageData``
null, ``imagePath`` the image's file name, the image ``flags`` from the example's origin); masks are written
as ``mask`` shapes, crowd regions with ``flags.iscrowd``.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from ...errors import ImportFormatError
from ..images import probe_image
from ..records import KINDS_FOR_TYPE, Annotation, ClassDef, Example, ImportBatch, ImportItem
from ..task_types import REGION_TYPES, region_type
from ._common import (
    as_number,
    as_str,
    check_exportable,
    check_type,
    class_index,
    export_images,
    load_json,
    make_annotation,
    make_classes,
    prepare_out,
    probe_path,
    write_file,
)
from ._fit import fit, report, resolve_inside
from .paths import is_hidden, relative_name
from .rle import rle_from_array, rle_to_array

__all__ = ["read", "write", "SPLIT_FOLDERS"]

SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
SUPPORTED = ("rectangle", "polygon", "mask")
SHAPE_KEYS = ("label", "points", "group_id", "description", "shape_type", "flags", "mask", "attributes")
IGNORE = "__ignore__"  # labelme's ignore-region label (labelme2voc writes it as -1): a crowd region
VERSION = "5.5.0"


def _json_files(src: Path) -> list[Path]:
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise ImportFormatError("not found", file=str(src))
    found = []
    for p in sorted(src.rglob("*.json"), key=lambda p: p.relative_to(src).as_posix()):
        rel = p.relative_to(src)
        if any(is_hidden(part) for part in rel.parts) or not p.is_file():
            continue
        found.append(p)
    if not found:
        raise ImportFormatError("no LabelMe .json files found", file=str(src))
    return found


def _points(raw: Any, *, file: str, record: str) -> list[tuple[float, float]]:
    if not isinstance(raw, list):
        raise ImportFormatError(f"expected a list of [x, y] points, got {raw!r:.60}", file=file, record=record,
                                field="points")
    pts = []
    for i, p in enumerate(raw):
        if not isinstance(p, list) or len(p) != 2:
            raise ImportFormatError(f"point {i} is not [x, y]: {p!r:.60}", file=file, record=record,
                                    field="points")
        pts.append((as_number(p[0], file=file, record=record, field="points"),
                    as_number(p[1], file=file, record=record, field="points")))
    return pts


def _b64(raw: Any, *, file: str, record: str, field: str) -> bytes:
    if not isinstance(raw, str):
        raise ImportFormatError(f"expected base64 text, got {type(raw).__name__}", file=file, record=record,
                                field=field)
    try:
        return base64.b64decode(raw, validate=False)
    except (binascii.Error, ValueError) as e:
        raise ImportFormatError(f"not valid base64 ({e})", file=file, record=record, field=field) from None


def _mask(shape: dict, pts: list[tuple[float, float]], W: int, H: int, *, file: str, record: str) -> dict | None:
    import numpy as np
    from PIL import Image

    if len(pts) != 2:
        raise ImportFormatError(f"a mask shape needs 2 points, got {len(pts)}", file=file, record=record,
                                field="points")
    data = _b64(shape.get("mask"), file=file, record=record, field="mask")
    probe_image(data, file=file, record=record)
    with Image.open(io.BytesIO(data)) as im:
        patch = np.asarray(im.convert("L")) != 0
    x1, y1 = (int(round(v)) for v in pts[0])
    full = np.zeros((H, W), dtype=bool)
    ph, pw = patch.shape
    ys, ye, xs, xe = max(y1, 0), min(y1 + ph, H), max(x1, 0), min(x1 + pw, W)
    if ys < ye and xs < xe:
        full[ys:ye, xs:xe] = patch[ys - y1 : ye - y1, xs - x1 : xe - x1]
    if not full.any():
        return None
    return rle_from_array(full)


class _Missing(ImportFormatError):
    """The image a LabelMe file names is not there (``skip_missing`` skips the file)."""


def _image(doc: dict, path: Path, root: Path, *, file: str, rec: str) -> tuple[Path | None, bytes | None]:
    if doc.get("imageData"):
        return None, _b64(doc["imageData"], file=file, record=rec, field="imageData")
    raw = doc.get("imagePath")
    if raw is None or raw == "":
        raise ImportFormatError("neither imageData nor imagePath is set", file=file, record=rec,
                                field="imagePath")
    raw = as_str(raw, file=file, record=rec, field="imagePath")
    base = PureWindowsPath(raw).name if "\\" in raw else PurePosixPath(raw).name
    if (PurePosixPath(raw).is_absolute() or PureWindowsPath(raw).drive) and base and (path.parent / base).is_file():
        raw = base  # labelme run on another machine wrote where the image was there; it lies beside the JSON
    img = resolve_inside(root, path.parent, raw, file=file, record=rec, field="imagePath")
    if not img.is_file():
        raise _Missing(f"image {raw!r} not found (looked at {img}; --skip-missing leaves such files out)",
                       file=file, record=rec, field="imagePath")
    return img, None


def _split_of(rel: str) -> str | None:
    parts = rel.split("/")
    return SPLIT_FOLDERS.get(parts[0].lower()) if len(parts) > 1 else None


def read(src: Path, *, clip_boxes: bool = False, skip_unsupported: bool = False,
         skip_missing: bool = False) -> ImportBatch:
    """Read LabelMe JSON files; see the module doc. Raises on the first problem found."""
    src = Path(src)
    if not src.exists():
        raise ImportFormatError("not found", file=str(src))
    root = (src.parent if src.is_file() else src).resolve()
    names: list[str] = []
    skipped: Counter[str] = Counter()
    clipped: Counter[str] = Counter()
    kept = crowds = 0
    items = []
    has_region = False
    for path in _json_files(src):
        file = str(path)
        rel = relative_name(path.resolve(), root)
        doc = load_json(path)
        if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list):
            raise ImportFormatError("not a LabelMe file: expected an object with a 'shapes' list", file=file,
                                    record=rel, field="shapes")
        try:
            img_path, data = _image(doc, path, root, file=file, rec=rel)
        except _Missing:
            if skip_missing:
                skipped["JSON whose image is not found (--skip-missing)"] += 1
                continue
            raise
        info = probe_path(img_path, record=rel) if img_path is not None else probe_image(
            data or b"", file=file, record=rel)
        for key, actual in (("imageWidth", info.width), ("imageHeight", info.height)):
            given = doc.get(key)
            if given is not None and given != actual:
                raise ImportFormatError(f"says {given!r} but the image is {info.width}x{info.height}",
                                        file=file, record=rel, field=key)
        anns: list[Annotation] = []
        for i, shape in enumerate(doc["shapes"]):
            rec = f"shapes[{i}]"
            if not isinstance(shape, dict):
                raise ImportFormatError(f"expected an object, got {type(shape).__name__}", file=file, record=rec)
            label = as_str(shape.get("label"), file=file, record=rec, field="label")
            kind = shape.get("shape_type") or "polygon"  # labelme < 3 wrote no shape_type: a polygon
            if kind not in SUPPORTED:
                if not isinstance(kind, str):
                    raise ImportFormatError(f"expected a string, got {kind!r:.40}", file=file, record=rec,
                                            field="shape_type")
                if skip_unsupported:
                    skipped[f"{kind} shape (not supported; --skip-unsupported)"] += 1
                    continue
                raise ImportFormatError(
                    f"shape type {kind!r} is not supported (only {', '.join(SUPPORTED)}; "
                    "--skip-unsupported leaves such shapes out and counts them)",
                    file=file, record=rec, field="shape_type")
            pts = _points(shape.get("points"), file=file, record=rec)
            if kind == "rectangle":
                if len(pts) != 2:
                    raise ImportFormatError(f"a rectangle needs 2 points, got {len(pts)}", file=file, record=rec,
                                            field="points")
                (ax, ay), (bx, by) = pts
                x0, y0 = min(ax, bx), min(ay, by)
                ann = make_annotation(file=file, record=rec, kind="box", label=label,
                                      bbox=(x0, y0, abs(bx - ax), abs(by - ay)))
            elif kind == "polygon":
                ann = make_annotation(file=file, record=rec, kind="polygon", label=label,
                                      polygons=(tuple(v for p in pts for v in p),))
            else:
                region = _mask(shape, pts, info.width, info.height, file=file, record=rec)
                if region is None:
                    raise ImportFormatError("mask is empty", file=file, record=rec, field="mask")
                ann = make_annotation(file=file, record=rec, kind="mask", label=label, mask=region)
            attrs = {k: shape[k] for k in ("group_id", "description", "flags") if shape.get(k) not in (None, "", {})}
            extra = shape.get("attributes")  # what the writer puts there: attributes from other sources
            if isinstance(extra, dict):
                attrs.update({k: v for k, v in extra.items() if k not in attrs})
            attrs.update({k: v for k, v in shape.items() if k not in SHAPE_KEYS and k not in attrs})
            flags = attrs.get("flags")
            if flags is not None and not isinstance(flags, dict):
                raise ImportFormatError(f"expected an object, got {flags!r:.40}", file=file, record=rec,
                                        field="flags")
            crowd = label == IGNORE or bool((flags or {}).get("iscrowd"))
            if flags and "iscrowd" in flags:
                attrs["flags"] = {k: v for k, v in flags.items() if k != "iscrowd"} or None
                if attrs["flags"] is None:
                    del attrs["flags"]
            if attrs or crowd:
                ann = replace(ann, attributes=attrs, iscrowd=crowd)
                kept += bool(attrs)
                crowds += crowd
            placed, was_clipped = fit(ann, info, clip=clip_boxes, file=file, record=rec)
            if was_clipped:
                clipped[f"{ann.kind} outside the image"] += 1
            if placed is None:
                skipped[f"{ann.kind} wholly outside the image (clipped to nothing)"] += 1
                continue
            has_region = has_region or placed.kind != "box"
            if label not in names:
                names.append(label)
            anns.append(placed)
        stem = Path(rel).stem
        file_name = Path(img_path).name if img_path is not None else (
            Path(str(doc.get("imagePath") or "")).name or f"{stem}.{info.format.lower()}")
        origin: dict[str, Any] = {"file_name": rel}
        if doc.get("flags"):
            origin["flags"] = doc["flags"]
        items.append(ImportItem(
            file_name=file_name, path=img_path, data=data, annotations=anns, split=_split_of(rel),
            source=f"labelme:{rel}", record=rel, status="annotated", origin=origin))
    classes = make_classes(names, file=str(src))
    batch = ImportBatch(items=items, classes=classes, type=region_type(masks=has_region),
                        source=f"labelme:{src}")
    report(batch, skipped, clipped)
    batch.report.keep("labelme group_id / description / shape flags", kept)
    if crowds:
        batch.report.note(f"{crowds} {IGNORE} or iscrowd-flagged shapes imported as crowd regions (not trained on)")
    return batch


# ------------------------------------------------------------------------------------------------ write
def _base(a: Annotation) -> dict[str, Any]:
    at = a.attributes
    flags = dict(at.get("flags", {}))
    if a.iscrowd and a.label != IGNORE:
        flags["iscrowd"] = True
    out = {"label": a.label, "group_id": at.get("group_id"), "description": at.get("description", ""),
           "flags": flags, "mask": None}
    extra = {k: v for k, v in at.items() if k not in ("group_id", "description", "flags")}
    if extra:  # other sources' attributes (CVAT's occluded...): labelme keeps unknown shape keys
        out["attributes"] = extra
    return out


def _shape(a: Annotation) -> dict[str, Any]:
    import numpy as np
    from PIL import Image

    base = _base(a)
    if a.kind == "box":
        assert a.bbox is not None
        x, y, w, h = a.bbox
        return {**base, "points": [[x, y], [x + w, y + h]], "shape_type": "rectangle"}
    if a.kind == "mask":
        arr = rle_to_array(a.mask or {}) != 0
        ys, xs = np.nonzero(arr)
        y0, y1, x0, x1 = int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())
        buf = io.BytesIO()
        Image.fromarray(arr[y0 : y1 + 1, x0 : x1 + 1].astype(np.uint8) * 255, mode="L").save(buf, format="PNG")
        return {**base, "points": [[float(x0), float(y0)], [float(x1), float(y1)]], "shape_type": "mask",
                "mask": base64.b64encode(buf.getvalue()).decode("ascii")}
    raise AssertionError(a.kind)


def _shapes(a: Annotation) -> list[dict[str, Any]]:
    if a.kind == "polygon":
        assert a.polygons is not None
        return [{**_base(a), "points": [[p[i], p[i + 1]] for i in range(0, len(p), 2)], "shape_type": "polygon"}
                for p in a.polygons]
    return [_shape(a)]


def write(
    out: Path,
    examples: Sequence[Example],
    classes: Sequence[ClassDef],
    dataset_type: str,
    load_bytes: Callable[[str], bytes],
    *,
    overwrite: bool = False,
) -> list[Path]:
    """Write LabelMe JSON files beside the images into ``out/<split>/``; returns the files written."""
    check_type("labelme", dataset_type, REGION_TYPES)
    class_index(classes, examples)
    check_exportable(examples, KINDS_FOR_TYPE[dataset_type], f"a {dataset_type} dataset")
    out = prepare_out(out, overwrite=overwrite)
    written: list[Path] = []
    for ex, name, path in export_images(out, examples, load_bytes, lambda ex: ex.split):
        written.append(path)
        flags = ex.origin.get("flags") if isinstance(ex.origin.get("flags"), dict) else {}
        doc: dict[str, Any] = {"version": VERSION, "flags": flags, "shapes": [s for a in ex.truth() for s in _shapes(a)],
               "imagePath": name, "imageData": None, "imageHeight": ex.height, "imageWidth": ex.width}
        text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False)
        written.append(write_file(out, f"{ex.split}/{Path(name).stem}.json", text + "\n"))
    return written
