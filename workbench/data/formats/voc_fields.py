"""What a Pascal VOC ``<object>`` says besides its name and box, mapped onto an annotation's attributes and
back (see ``voc``'s module doc), the XML field readers, and datumaro's ``labelmap.txt`` both ways. Private
to ``workbench.data.formats``."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...errors import ImportFormatError
from ..import_report import ImportReport
from ..records import Annotation, ClassDef, Example
from ._common import fmt_float, read_text

__all__ = ["LABELMAP_FILE", "object_attributes", "object_xml", "read_labelmap", "labelmap_text", "text",
           "number", "COORDS"]

LABELMAP_FILE = "labelmap.txt"
COORDS = ("xmin", "ymin", "xmax", "ymax")
_FLAGS = ("truncated", "difficult", "occluded")
_OBJECT_TAGS = frozenset({"name", "bndbox", "pose", *_FLAGS, "point", "actions", "part", "attributes"})
_TRUE = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def text(
    el: Any, tag: str, *, file: str, record: str, field: str | None = None, required: bool = True
) -> str | None:
    child = el.find(tag)
    text = child.text.strip() if child is not None and child.text is not None else ""
    if not text:
        if required:
            raise ImportFormatError(f"missing <{tag}>", file=file, record=record, field=field or tag)
        return None
    return text


def number(text: str, *, file: str, record: str, field: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ImportFormatError(
            f"expected a number, got {text!r}", file=file, record=record, field=field
        ) from None
    if not math.isfinite(v):
        raise ImportFormatError(f"number is not finite ({text})", file=file, record=record, field=field)
    return v


def _flag(text: str | None, *, file: str, record: str, field: str) -> bool | None:
    if text is None:
        return None
    v = _TRUE.get(text.strip().lower())
    if v is None:
        raise ImportFormatError(f"{field} must be 0 or 1, got {text!r}", file=file, record=record, field=field)
    return v


def object_attributes(obj: Any, *, file: str, record: str, report: ImportReport) -> dict[str, Any]:
    """What a VOC ``<object>`` says besides its name and box (see the module doc)."""
    attrs: dict[str, Any] = {}
    for tag in _FLAGS:  # kept when set: 0 is what an absent flag means (datumaro reads both as False)
        if _flag(text(obj, tag, file=file, record=record, required=False), file=file, record=record, field=tag):
            attrs[tag] = True
    pose = text(obj, "pose", file=file, record=record, required=False)
    if pose is not None and pose != "Unspecified":  # the devkit's "no pose", written back when absent
        attrs["pose"] = pose
    point = obj.find("point")
    if point is not None:
        attrs["point"] = [number(text(point, c, file=file, record=record, field=f"point.{c}") or "", file=file,
                                  record=record, field=f"point.{c}") for c in ("x", "y")]
    actions = obj.find("actions")
    if actions is not None:
        attrs["actions"] = {a.tag: bool(_flag((a.text or "0"), file=file, record=record, field=f"actions.{a.tag}"))
                            for a in actions}
    parts = []
    for k, part in enumerate(obj.findall("part"), 1):
        prec = f"{record} part {k}"
        pbox = part.find("bndbox")
        if pbox is None:
            raise ImportFormatError("missing <bndbox>", file=file, record=prec, field="part.bndbox")
        parts.append({"name": text(part, "name", file=file, record=prec, field="part.name"),
                      "bndbox": [number(text(pbox, c, file=file, record=prec, field=f"part.bndbox.{c}") or "",
                                         file=file, record=prec, field=f"part.bndbox.{c}") for c in COORDS]})
    if parts:
        attrs["parts"] = parts
    given = obj.find("attributes")
    if given is not None:
        for k, a in enumerate(given.findall("attribute"), 1):
            name = text(a, "name", file=file, record=f"{record} attribute {k}", field="attributes.name")
            assert name is not None
            if name in attrs or name in _OBJECT_TAGS or name.startswith("voc."):
                raise ImportFormatError(f"attribute {name!r} is given twice or shadows a VOC tag", file=file,
                                        record=record, field=f"attributes.{name}")
            child = a.find("value")
            attrs[name] = child.text if child is not None and child.text is not None else ""
    for child in obj:
        if child.tag in _OBJECT_TAGS or not isinstance(child.tag, str):
            continue
        if len(child):
            report.skip(f"VOC object element <{child.tag}> with sub-elements (not kept)")
            continue
        attrs[f"voc.{child.tag}"] = (child.text or "").strip()
        report.keep(f"VOC object element <{child.tag}> (written back on VOC export)")
    return attrs


def read_labelmap(path: Path) -> tuple[list[str], list[str | None]]:
    """datumaro's ``labelmap.txt``: ``name:r,g,b:parts:actions`` lines, ``#`` comments."""
    names: list[str] = []
    colors: list[str | None] = []
    for n, line in enumerate(read_text(path, what="label map").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) != 4:
            raise ImportFormatError(f"expected name:r,g,b:parts:actions, got {len(fields)} fields", file=str(path),
                                    record=f"line {n}")
        name, rgb = fields[0].strip(), fields[1].strip()
        color = None
        if rgb:
            try:
                r, g, b = (int(v) for v in rgb.split(","))
            except ValueError:
                raise ImportFormatError(f"colour must be r,g,b, got {rgb!r}", file=str(path), record=f"line {n}",
                                        field="color") from None
            if not all(0 <= v <= 255 for v in (r, g, b)):
                raise ImportFormatError(f"colour values must be 0-255, got {rgb!r}", file=str(path),
                                        record=f"line {n}", field="color")
            color = f"#{r:02x}{g:02x}{b:02x}"
        if name in names:
            raise ImportFormatError(f"class {name!r} is listed twice", file=str(path), record=f"line {n}")
        names.append(name)
        colors.append(color)
    return names, colors


def _flag_text(v: Any) -> str:
    return "1" if v is True or (isinstance(v, (int, float)) and not isinstance(v, bool) and v) or \
        (isinstance(v, str) and _TRUE.get(v.strip().lower()) is True) else "0"


def _value_text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


def object_xml(doc: Any, a: Annotation, coords: tuple[float, float, float, float]) -> None:
    attrs = dict(a.attributes)
    obj = ET.SubElement(doc, "object")
    ET.SubElement(obj, "name").text = a.label
    pose = attrs.pop("pose", "Unspecified")
    ET.SubElement(obj, "pose").text = pose if isinstance(pose, str) else _value_text(pose)
    for tag in _FLAGS:
        if tag in attrs or tag != "occluded":
            ET.SubElement(obj, tag).text = _flag_text(attrs.pop(tag, 0))
    bb = ET.SubElement(obj, "bndbox")
    for tag, v in zip(COORDS, coords, strict=True):
        ET.SubElement(bb, tag).text = fmt_float(v)
    parts = attrs.pop("parts", None)
    if isinstance(parts, list) and all(isinstance(p, dict) and isinstance(p.get("name"), str)
                                       and isinstance(p.get("bndbox"), list) and len(p["bndbox"]) == 4
                                       for p in parts):
        for p in parts:
            pe = ET.SubElement(obj, "part")
            ET.SubElement(pe, "name").text = p["name"]
            pb = ET.SubElement(pe, "bndbox")
            for tag, v in zip(COORDS, p["bndbox"], strict=True):
                ET.SubElement(pb, tag).text = fmt_float(v) if isinstance(v, (int, float)) else str(v)
    elif parts is not None:
        attrs["parts"] = parts
    actions = attrs.pop("actions", None)
    if isinstance(actions, dict) and all(k.isidentifier() for k in actions):
        ae = ET.SubElement(obj, "actions")
        for k, v in actions.items():
            ET.SubElement(ae, k).text = _flag_text(v)
    elif actions is not None:
        attrs["actions"] = actions
    point = attrs.pop("point", None)
    if isinstance(point, list) and len(point) == 2 and all(isinstance(v, (int, float)) for v in point):
        pe = ET.SubElement(obj, "point")
        ET.SubElement(pe, "x").text = fmt_float(point[0])
        ET.SubElement(pe, "y").text = fmt_float(point[1])
    elif point is not None:
        attrs["point"] = point
    for k in [k for k in attrs if k.startswith("voc.") and k[4:].isidentifier() and k[4:] not in _OBJECT_TAGS]:
        ET.SubElement(obj, k[4:]).text = _value_text(attrs.pop(k))
    if attrs:
        ae = ET.SubElement(obj, "attributes")
        for k, v in attrs.items():
            at = ET.SubElement(ae, "attribute")
            ET.SubElement(at, "name").text = k
            ET.SubElement(at, "value").text = _value_text(v)


def labelmap_text(classes: Sequence[ClassDef], examples: Sequence[Example]) -> str:
    parts: dict[str, dict[str, None]] = {c.name: {} for c in classes}
    actions: dict[str, dict[str, None]] = {c.name: {} for c in classes}
    for ex in examples:
        for a in ex.truth():
            for p in a.attributes.get("parts") or []:
                if isinstance(p, dict) and isinstance(p.get("name"), str):
                    parts[a.label][p["name"]] = None
            acts = a.attributes.get("actions")
            if isinstance(acts, dict):
                actions[a.label].update(dict.fromkeys(acts))
    lines = ["# label:color_rgb:parts:actions"]
    for c in classes:
        rgb = ",".join(str(int(c.color[i:i + 2], 16)) for i in (1, 3, 5))
        lines.append(f"{c.name}:{rgb}:{','.join(parts[c.name])}:{','.join(actions[c.name])}")
    return "\n".join(lines) + "\n"
