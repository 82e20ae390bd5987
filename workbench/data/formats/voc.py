"""Pascal VOC: ``Annotations/*.xml`` + ``JPEGImages/`` (+ ``ImageSets/Main/{train,val,test}.txt``), or
Roboflow's layout: each XML beside its image in one folder (``train/ valid/ test/`` sub-folders give the splits).

Coordinates are read as written: ``x = xmin``, ``w = xmax - xmin`` (likewise for y), the way datumaro,
globox and torchvision read VOC and labelme2voc, Roboflow and CVAT write it; a box on the image's edge has
``xmin = 0``. ``one_based=True`` (CLI ``--voc-one-based``) reads and writes the old devkit's convention
instead: 1-based inclusive pixel indices, ``x = xmin - 1``, ``w = xmax - xmin + 1``.

Reading: XML is parsed with defusedxml with DTDs forbidden (no XXE, no entity expansion). ``<filename>``
resolves inside ``JPEGImages/`` (``images_dir=`` to change). ``<size>`` is optional but must match the
image. ``<difficult>1</difficult>`` objects are kept unless ``skip_difficult=True`` (counted in the report).
What an object says besides its box is kept in the annotation's attributes and written back: ``difficult``,
``truncated``, ``occluded`` (``True`` when set; 0 and absent both mean not set), ``pose`` (unless
``Unspecified``), ``point`` ([x, y]), ``actions`` ({name: bool}), ``parts``
([{"name", "bndbox": [xmin, ymin, xmax, ymax]}] as written), datumaro's / CVAT's ``<attributes>`` (name ->
value text), and any other plain ``<tag>text</tag>`` as ``voc.<tag>``. Classes come from ``labels.txt`` (one
name a line) or datumaro's ``labelmap.txt`` (``name:r,g,b:parts:actions``; its colours are kept, an unused
``background`` left out) at the top when present, else the object names sorted. Split files list image ids
(the XML file stems); an image in none of them has no split. The XML stem and ``<filename>`` are kept as
the example's origin.

Writing: one XML per image, ``JPEGImages/<file_name>``, ``ImageSets/Main/<split>.txt``, ``labels.txt`` and
``labelmap.txt`` (datumaro's class list with colours, parts and actions).
"""

from __future__ import annotations

import stat
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ...errors import ImportFormatError, ValidationError
from ..images import IMAGE_SUFFIXES
from ..import_report import ImportReport
from ..records import SPLITS, ClassDef, Example, ImportBatch, ImportItem
from ..task_types import TaskType
from ._common import (
    MAX_TEXT_BYTES,
    check_exportable,
    check_type,
    class_index,
    export_images,
    make_annotation,
    make_classes,
    place,
    prepare_out,
    probe_path,
    read_text,
    write_file,
)
from .paths import is_hidden, safe_join
from .voc_fields import (
    COORDS,
    LABELMAP_FILE,
    labelmap_text,
    number,
    object_attributes,
    object_xml,
    read_labelmap,
    text,
)

__all__ = ["read", "write", "LABELS_FILE", "LABELMAP_FILE", "parse_xml"]

LABELS_FILE = "labels.txt"


def parse_xml(path: Path) -> Any:
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


def _int(text: str | None, *, file: str, record: str, field: str) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise ImportFormatError(
            f"expected an integer, got {text!r}", file=file, record=record, field=field
        ) from None


def _bare_image(img_root: Path, stem: str) -> Path | None:
    """``JPEGImages/<stem>.<image suffix>`` when there is exactly one such file."""
    found = [p for p in (img_root / f"{stem}{s}" for s in IMAGE_SUFFIXES) if p.is_file()]
    return found[0] if len(found) == 1 else None


def _splits(root: Path, stems: set[str], img_root: Path) -> tuple[dict[str, str], dict[str, Path]]:
    """Split per image id, and the images a split list names that have no annotation file (datumaro and
    the devkit read those as images without objects)."""
    found: dict[str, str] = {}
    bare: dict[str, Path] = {}
    for split in SPLITS:
        path = root / "ImageSets" / "Main" / f"{split}.txt"
        if not path.is_file():
            continue
        for n, line in enumerate(read_text(path, what="split list").splitlines(), 1):
            tokens = line.split()
            if not tokens or tokens[0].startswith("#"):  # datumaro writes and reads comment lines
                continue
            stem = tokens[0]
            image = None if stem in stems or stem in bare else _bare_image(img_root, stem)
            if image is not None:
                bare[stem] = safe_join(img_root, image.name, file=str(path), record=f"line {n}", field="id")
            if stem not in stems and stem not in bare:
                raise ImportFormatError(
                    f"unknown image id {stem!r} (no Annotations/{stem}.xml and no one image "
                    f"{img_root.name}/{stem}.*)",
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
    return found, bare


def is_flat(root: Path) -> bool:
    """Roboflow's VOC layout: the folder itself holds the XML files, each beside its image."""
    try:
        return any(p.suffix.lower() == ".xml" and p.is_file() and not is_hidden(p.name) for p in root.iterdir())
    except OSError:
        return False


def read(
    src: Path,
    *,
    images_dir: Path | str = "JPEGImages",
    clip_boxes: bool = False,
    skip_missing: bool = False,
    skip_difficult: bool = False,
    one_based: bool = False,
) -> ImportBatch:
    """Read a Pascal VOC folder; see the module doc. Raises on the first problem found."""
    report = ImportReport()
    root = Path(src)
    ann_dir = root / "Annotations"
    flat = not ann_dir.is_dir() and is_flat(root)  # Roboflow: each XML beside its image
    if flat:
        ann_dir = root
    elif not ann_dir.is_dir():
        raise ImportFormatError("no Annotations/ folder (nor XML files beside images, as Roboflow writes them): "
                                "not a Pascal VOC dataset", file=str(root))
    if flat and images_dir == "JPEGImages" and not (root / images_dir).is_dir():
        images_dir = "."
    img_root = (
        Path(images_dir) if Path(images_dir).is_absolute() else root / images_dir
    )  # the caller's choice
    if not img_root.is_dir():
        raise ImportFormatError(f"image folder {img_root} not found", file=str(root), field="images_dir")
    xmls = sorted(p for p in ann_dir.iterdir() if p.suffix.lower() == ".xml" and not is_hidden(p.name))
    labels_path = root / LABELS_FILE
    listed = None
    listed_colors: list[str | None] | None = None
    if labels_path.is_file():
        listed = [ln.strip() for ln in read_text(labels_path, what="class list").splitlines() if ln.strip()]
    elif (root / LABELMAP_FILE).is_file():
        labels_path = root / LABELMAP_FILE
        listed, listed_colors = read_labelmap(labels_path)
    split_of, bare = _splits(root, {p.stem for p in xmls}, img_root)

    items: list[ImportItem] = []
    seen: dict[Path, str] = {}
    names_seen: set[str] = set()
    for xml_path in xmls:
        file, rec = str(xml_path), xml_path.stem
        safe_join(root, xml_path.name if flat else f"Annotations/{xml_path.name}", file=file, record=rec)  # no symlink out
        doc = parse_xml(xml_path)
        if doc.tag != "annotation":
            raise ImportFormatError(
                f"root element is <{doc.tag}>, expected <annotation>", file=file, record=rec
            )
        fname = text(doc, "filename", file=file, record=rec)
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
                f"image file {fname!r} not found in {img_root} (--skip-missing skips it)",
                file=file,
                record=rec,
                field="filename",
            )
        info = probe_path(path, record=rec)
        size = doc.find("size")
        if size is not None:
            for tag, actual in (("width", info.width), ("height", info.height)):
                declared = _int(
                    text(size, tag, file=file, record=rec, field=f"size.{tag}", required=False),
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
            name = text(obj, "name", file=file, record=orec)
            assert name is not None
            if listed is not None and name not in listed:
                raise ImportFormatError(
                    f"class {name!r} is not in {LABELS_FILE}", file=file, record=orec, field="name"
                )
            attributes = object_attributes(obj, file=file, record=orec, report=report)
            box = obj.find("bndbox")
            if box is None:
                raise ImportFormatError("missing <bndbox>", file=file, record=orec, field="bndbox")
            x0, y0, x1, y1 = (
                number(
                    text(box, c, file=file, record=orec, field=f"bndbox.{c}") or "",
                    file=file,
                    record=orec,
                    field=f"bndbox.{c}",
                )
                for c in COORDS
            )
            bbox = (x0 - 1, y0 - 1, x1 - x0 + 1, y1 - y0 + 1) if one_based else (x0, y0, x1 - x0, y1 - y0)
            if bbox[2] <= 0 or bbox[3] <= 0:
                hint = "" if one_based else " (--voc-one-based reads xmax = xmin as one pixel wide)"
                raise ImportFormatError(
                    f"negative or empty box, it has no area: xmin {x0:g} ymin {y0:g} xmax {x1:g} ymax {y1:g}{hint}",
                    file=file,
                    record=orec,
                    field="bndbox",
                )
            names_seen.add(name)
            ann = make_annotation(file=file, record=orec, kind="box", label=name, bbox=bbox,
                                  attributes=attributes)
            placed = place(ann, info, clip=clip_boxes, file=file, record=orec)
            if placed is None:
                report.skip("box entirely outside its image (--clip-boxes)")
            elif skip_difficult and attributes.get("difficult"):
                report.skip("difficult object (skip_difficult)")
            else:
                if placed.bbox != ann.bbox:
                    report.clip("box outside its image (--clip-boxes)")
                anns.append(placed)
        items.append(
            ImportItem(
                file_name=path.name,
                path=path,
                annotations=anns,
                split=split_of.get(rec),
                source=f"voc:{xml_path.name}",
                record=rec,
                origin={"id": rec, "file_name": fname},
            )
        )
    for stem, path in sorted(bare.items()):
        if path in seen:
            continue
        probe_path(path, record=stem)
        items.append(ImportItem(file_name=path.name, path=path, split=split_of.get(stem), source=f"voc:{stem}",
                                record=stem, origin={"id": stem, "file_name": path.name}))
    if bare:
        report.note(f"{len(bare)} images listed in ImageSets/Main without an annotation file imported without "
                    "objects (status new)")
    colors = listed_colors
    if listed is not None and listed_colors is not None and "background" in listed \
            and "background" not in names_seen:  # datumaro's segmentation background: no detection class
        k = listed.index("background")
        listed = listed[:k] + listed[k + 1:]
        colors = listed_colors[:k] + listed_colors[k + 1:]
        report.note(f"class 'background' of {LABELMAP_FILE} left out (no object uses it)")
    names = listed if listed is not None else sorted(names_seen)
    classes = make_classes(names, colors, file=str(labels_path) if listed is not None else str(ann_dir))
    if one_based:
        report.note("boxes read as 1-based inclusive pixel indices (--voc-one-based)")
    return ImportBatch(items=items, classes=classes, type=TaskType.DETECTION, source=f"voc:{root}", report=report)


def _xml(ex: Example, name: str, one_based: bool) -> str:
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
        coords = (x + 1, y + 1, x + w, y + h) if one_based else (x, y, x + w, y + h)
        object_xml(doc, a, coords)
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
    one_based: bool = False,
) -> list[Path]:
    """Write a Pascal VOC dataset into ``out``; returns the files written. ``one_based``: the old devkit's
    1-based inclusive box coordinates."""
    check_type("voc", dataset_type, (TaskType.DETECTION,))
    class_index(classes, examples)
    check_exportable(examples, ("box",), "VOC (boxes only)")
    for c in classes:
        if ":" in c.name:
            raise ValidationError(f"class name {c.name!r} has a ':' that {LABELMAP_FILE} cannot hold",
                                  field="classes")
    out = prepare_out(out, overwrite=overwrite)
    written: list[Path] = []
    ids: dict[str, list[str]] = {s: [] for s in SPLITS}
    for ex, name, path in export_images(out, examples, load_bytes, lambda ex: "JPEGImages"):
        written.append(path)
        stem = Path(name).stem
        written.append(write_file(out, f"Annotations/{stem}.xml", _xml(ex, name, one_based)))
        ids[ex.split].append(stem)
    for split, stems in ids.items():
        if stems:
            written.append(write_file(out, f"ImageSets/Main/{split}.txt", "".join(s + "\n" for s in stems)))
    written.append(write_file(out, LABELS_FILE, "".join(c.name + "\n" for c in classes)))
    written.append(write_file(out, LABELMAP_FILE, labelmap_text(classes, examples)))
    return written
