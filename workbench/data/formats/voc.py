"""Pascal VOC: ``Annotations/*.xml`` + ``JPEGImages/`` (+ ``ImageSets/Main/{train,val,test}.txt``).

Coordinates: VOC boxes are 1-based *inclusive* pixel indices (``xmin = 1`` is the first pixel column, a
box covering the whole image has ``xmax = width``). Our records use continuous pixel coordinates with the
image's left edge at ``x = 0``. So reading gives ``x = xmin - 1``, ``w = xmax - xmin + 1`` (likewise for y),
and writing gives ``xmin = x + 1``, ``xmax = x + w``: export -> import round-trips exactly, and a box
with ``xmin = 0`` (a 0-based tool) is out of the image unless ``clip_boxes=True``.

Reading: XML is parsed with defusedxml with DTDs forbidden (no XXE, no entity expansion). ``<filename>``
resolves inside ``JPEGImages/`` (``images_dir=`` to change). ``<size>`` is optional but must match the
image. ``<difficult>1</difficult>`` objects are kept unless ``skip_difficult=True``. Classes come from a
``labels.txt`` (one name a line) at the top when present, else the object names sorted. Split files list
image ids (the XML file stems); an image in none of them has no split.

Writing: one XML per image, ``JPEGImages/<file_name>``, ``ImageSets/Main/<split>.txt`` and ``labels.txt``.
"""

from __future__ import annotations

import math
import stat
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ...errors import ImportFormatError, ValidationError
from ..records import SPLITS, ClassDef, Example, ImportBatch, ImportItem
from ._common import (
    MAX_TEXT_BYTES,
    check_exportable,
    check_type,
    class_index,
    export_images,
    fmt_float,
    make_annotation,
    make_classes,
    place,
    prepare_out,
    probe_path,
    read_text,
    write_file,
)
from .paths import is_hidden, safe_join

__all__ = ["read", "write", "LABELS_FILE"]

LABELS_FILE = "labels.txt"
_COORDS = ("xmin", "ymin", "xmax", "ymax")


def _parse_xml(path: Path) -> Any:
    import defusedxml
    import defusedxml.ElementTree as DET

    file = str(path)
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):  # reading a FIFO would block forever
        raise ImportFormatError("is not a regular file (a pipe, device or socket?)", file=file)
    size = st.st_size
    if size > MAX_TEXT_BYTES:
        raise ImportFormatError(f"XML file is {size} bytes, over the {MAX_TEXT_BYTES} byte limit", file=file)
    try:
        return DET.fromstring(path.read_bytes(), forbid_dtd=True)
    except defusedxml.DefusedXmlException as e:
        raise ImportFormatError(
            f"XML with a DTD, entities or external references is refused ({type(e).__name__})", file=file
        ) from None
    except ET.ParseError as e:
        line, col = e.position
        raise ImportFormatError(f"malformed XML at line {line} column {col + 1}", file=file) from None
    except RecursionError:
        raise ImportFormatError("XML is nested too deeply to read", file=file) from None
    except (ValueError, LookupError) as e:  # expat: multi-byte (UTF-7...) or unknown declared encodings
        raise ImportFormatError(f"XML in an unsupported encoding ({e}); save it as UTF-8", file=file) from None


def _text(
    el: Any, tag: str, *, file: str, record: str, field: str | None = None, required: bool = True
) -> str | None:
    child = el.find(tag)
    text = child.text.strip() if child is not None and child.text is not None else ""
    if not text:
        if required:
            raise ImportFormatError(f"missing <{tag}>", file=file, record=record, field=field or tag)
        return None
    return text


def _number(text: str, *, file: str, record: str, field: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ImportFormatError(
            f"expected a number, got {text!r}", file=file, record=record, field=field
        ) from None
    if not math.isfinite(v):
        raise ImportFormatError(f"number is not finite ({text})", file=file, record=record, field=field)
    return v


def _int(text: str | None, *, file: str, record: str, field: str) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise ImportFormatError(
            f"expected an integer, got {text!r}", file=file, record=record, field=field
        ) from None


def _splits(root: Path, stems: set[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for split in SPLITS:
        path = root / "ImageSets" / "Main" / f"{split}.txt"
        if not path.is_file():
            continue
        for n, line in enumerate(read_text(path, what="split list").splitlines(), 1):
            tokens = line.split()
            if not tokens:
                continue
            stem = tokens[0]
            if stem not in stems:
                raise ImportFormatError(
                    f"unknown image id {stem!r} (no Annotations/{stem}.xml)",
                    file=str(path),
                    record=f"line {n}",
                    field="id",
                )
            if found.get(stem, split) != split:
                raise ImportFormatError(
                    f"image {stem!r} is in both {found[stem]} and {split}",
                    file=str(path),
                    record=f"line {n}",
                    field="id",
                )
            found[stem] = split
    return found


def read(
    src: Path,
    *,
    images_dir: Path | str = "JPEGImages",
    clip_boxes: bool = False,
    skip_missing: bool = False,
    skip_difficult: bool = False,
) -> ImportBatch:
    """Read a Pascal VOC folder; see the module doc. Raises on the first problem found."""
    root = Path(src)
    ann_dir = root / "Annotations"
    if not ann_dir.is_dir():
        raise ImportFormatError("no Annotations/ folder: not a Pascal VOC dataset", file=str(root))
    img_root = (
        Path(images_dir) if Path(images_dir).is_absolute() else root / images_dir
    )  # the caller's choice
    if not img_root.is_dir():
        raise ImportFormatError(f"image folder {img_root} not found", file=str(root), field="images_dir")
    xmls = sorted(p for p in ann_dir.iterdir() if p.suffix.lower() == ".xml" and not is_hidden(p.name))
    labels_path = root / LABELS_FILE
    listed = None
    if labels_path.is_file():
        listed = [ln.strip() for ln in read_text(labels_path, what="class list").splitlines() if ln.strip()]
    split_of = _splits(root, {p.stem for p in xmls})

    items: list[ImportItem] = []
    seen: dict[Path, str] = {}
    names_seen: set[str] = set()
    for xml_path in xmls:
        file, rec = str(xml_path), xml_path.stem
        safe_join(root, f"Annotations/{xml_path.name}", file=file, record=rec)  # no symlink out
        doc = _parse_xml(xml_path)
        if doc.tag != "annotation":
            raise ImportFormatError(
                f"root element is <{doc.tag}>, expected <annotation>", file=file, record=rec
            )
        fname = _text(doc, "filename", file=file, record=rec)
        assert fname is not None
        path = safe_join(img_root, fname, file=file, record=rec, field="filename")
        if path in seen:
            raise ImportFormatError(
                f"image {fname!r} is also annotated by {seen[path]}", file=file, record=rec, field="filename"
            )
        seen[path] = xml_path.name
        if not path.is_file():
            if skip_missing:
                continue
            raise ImportFormatError(
                f"image file {fname!r} not found in {img_root} (skip_missing=True skips it)",
                file=file,
                record=rec,
                field="filename",
            )
        info = probe_path(path, record=rec)
        size = doc.find("size")
        if size is not None:
            for tag, actual in (("width", info.width), ("height", info.height)):
                declared = _int(
                    _text(size, tag, file=file, record=rec, field=f"size.{tag}", required=False),
                    file=file,
                    record=rec,
                    field=f"size.{tag}",
                )
                if declared is not None and declared != actual:
                    raise ImportFormatError(
                        f"declares {tag} {declared} but the image is {actual}",
                        file=file,
                        record=rec,
                        field=f"size.{tag}",
                    )
        anns = []
        for k, obj in enumerate(doc.findall("object"), 1):
            orec = f"{rec} object {k}"
            name = _text(obj, "name", file=file, record=orec)
            assert name is not None
            if listed is not None and name not in listed:
                raise ImportFormatError(
                    f"class {name!r} is not in {LABELS_FILE}", file=file, record=orec, field="name"
                )
            difficult = _int(
                _text(obj, "difficult", file=file, record=orec, required=False),
                file=file,
                record=orec,
                field="difficult",
            )
            if difficult not in (None, 0, 1):
                raise ImportFormatError(
                    f"difficult must be 0 or 1, got {difficult}", file=file, record=orec, field="difficult"
                )
            box = obj.find("bndbox")
            if box is None:
                raise ImportFormatError("missing <bndbox>", file=file, record=orec, field="bndbox")
            x0, y0, x1, y1 = (
                _number(
                    _text(box, c, file=file, record=orec, field=f"bndbox.{c}") or "",
                    file=file,
                    record=orec,
                    field=f"bndbox.{c}",
                )
                for c in _COORDS
            )
            if x1 - x0 + 1 <= 0 or y1 - y0 + 1 <= 0:  # inclusive ends: a sub-pixel box written by us has xmax < xmin
                raise ImportFormatError(
                    f"negative box: xmin {x0} ymin {y0} xmax {x1} ymax {y1}",
                    file=file,
                    record=orec,
                    field="bndbox",
                )
            names_seen.add(name)
            ann = make_annotation(
                file=file,
                record=orec,
                kind="box",
                label=name,
                bbox=(x0 - 1, y0 - 1, x1 - x0 + 1, y1 - y0 + 1),
            )
            placed = place(ann, info, clip=clip_boxes, file=file, record=orec)
            if placed is not None and not (skip_difficult and difficult == 1):
                anns.append(placed)
        items.append(
            ImportItem(
                file_name=path.name,
                path=path,
                annotations=anns,
                split=split_of.get(rec),
                source=f"voc:{xml_path.name}",
                record=rec,
            )
        )
    names = listed if listed is not None else sorted(names_seen)
    classes = make_classes(names, file=str(labels_path) if listed is not None else str(ann_dir))
    return ImportBatch(items=items, classes=classes, type="detection", source=f"voc:{root}")


def _xml(ex: Example, name: str, index: dict[str, int]) -> str:
    doc = ET.Element("annotation")
    ET.SubElement(doc, "folder").text = "JPEGImages"
    ET.SubElement(doc, "filename").text = name
    size = ET.SubElement(doc, "size")
    ET.SubElement(size, "width").text = str(ex.width)
    ET.SubElement(size, "height").text = str(ex.height)
    ET.SubElement(size, "depth").text = "3"
    ET.SubElement(doc, "segmented").text = "0"
    for a in ex.truth():
        if a.kind != "box" or a.bbox is None:
            raise ValidationError(
                f"VOC holds boxes only, not {a.kind!r}", record=f"example {ex.id}", field="kind"
            )
        x, y, w, h = a.bbox
        obj = ET.SubElement(doc, "object")
        ET.SubElement(obj, "name").text = a.label
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        bb = ET.SubElement(obj, "bndbox")
        for tag, v in zip(_COORDS, (x + 1, y + 1, x + w, y + h), strict=True):
            ET.SubElement(bb, tag).text = fmt_float(v)
    ET.indent(doc)
    return ET.tostring(doc, encoding="unicode") + "\n"


def write(
    out: Path,
    examples: Sequence[Example],
    classes: Sequence[ClassDef],
    dataset_type: str,
    load_bytes: Callable[[str], bytes],
    *,
    overwrite: bool = False,
) -> list[Path]:
    """Write a Pascal VOC dataset into ``out``; returns the files written."""
    check_type("voc", dataset_type, ("detection",))
    index = class_index(classes, examples)
    check_exportable(examples, ("box",), "VOC (boxes only)")
    out = prepare_out(out, overwrite=overwrite)
    written: list[Path] = []
    ids: dict[str, list[str]] = {s: [] for s in SPLITS}
    for ex, name, path in export_images(out, examples, load_bytes, lambda ex: "JPEGImages"):
        written.append(path)
        stem = Path(name).stem
        written.append(write_file(out, f"Annotations/{stem}.xml", _xml(ex, name, index)))
        ids[ex.split].append(stem)
    for split, stems in ids.items():
        if stems:
            written.append(write_file(out, f"ImageSets/Main/{split}.txt", "".join(s + "\n" for s in stems)))
    written.append(write_file(out, LABELS_FILE, "".join(c.name + "\n" for c in classes)))
    return written
