"""Bad input, one case per row: every reader refuses it with a typed error naming file, record and field.

Each case starts from a small valid dataset of its format (checked valid below), breaks one thing and
asserts the error type and the parts of the one-line message that locate the problem.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.data.formats import get_reader
from workbench.errors import ImageError, ImportFormatError, UnsafePathError, ValidationError


def png(w: int = 32, h: int = 24, seed: int = 0) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def jpeg(w: int = 32, h: int = 24, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(png(w, h, seed))).save(buf, format="JPEG")
    return buf.getvalue()


def bomb_png(w: int = 9000, h: int = 9000) -> bytes:
    """A tiny PNG whose header declares a huge image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def corrupt_png() -> bytes:
    data = bytearray(png(32, 24, 5))
    mid = len(data) // 2
    data[mid : mid + 40] = b"\xff" * 40
    return bytes(data)


# ----------------------------------------------------------------------------------------------- builders
def coco_doc() -> dict:
    return {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 32, "height": 24},
            {"id": 2, "file_name": "b.png", "width": 32, "height": 24},
        ],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10]},
            {
                "id": 2,
                "image_id": 2,
                "category_id": 2,
                "bbox": [2, 2, 5, 5],
                "segmentation": [[2, 2, 7, 2, 7, 7]],
            },
        ],
    }


def coco(
    mutate: Callable[[dict], None] | None = None,
    *,
    raw: str | None = None,
    files: Callable[[Path], None] | None = None,
    **options,
) -> Callable[[Path], tuple]:
    def build(root: Path) -> tuple:
        (root / "a.png").write_bytes(png(seed=1))
        (root / "b.png").write_bytes(png(seed=2))
        doc = coco_doc()
        if mutate:
            mutate(doc)
        (root / "annotations.json").write_text(raw if raw is not None else json.dumps(doc))
        if files:
            files(root)
        return "coco", root / "annotations.json", options

    return build


def yolo(
    labels: str | None = None,
    *,
    yaml: str | None = None,
    files: Callable[[Path], None] | None = None,
    **options,
) -> Callable[[Path], tuple]:
    def build(root: Path) -> tuple:
        for split, name in (("train", "a"), ("val", "b")):
            (root / "images" / split).mkdir(parents=True)
            (root / "labels" / split).mkdir(parents=True)
            (root / "images" / split / f"{name}.png").write_bytes(png(40, 20, seed=3))
        (root / "labels" / "val" / "b.txt").write_text("1 0.5 0.5 0.2 0.2\n")
        (root / "labels" / "train" / "a.txt").write_text(
            labels if labels is not None else "0 0.5 0.5 0.2 0.2\n1 0.1 0.1 0.3 0.2 0.2 0.4\n"
        )
        (root / "data.yaml").write_text(
            yaml if yaml is not None else "train: images/train\nval: images/val\nnames: [cat, dog]\n"
        )
        if files:
            files(root)
        return "yolo", root, options

    return build


VOC_OBJECT = "<object><name>cat</name><bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox></object>"


def voc_xml(
    filename: str = "a.png",
    box: tuple = (2, 2, 10, 10),
    size: str = "<size><width>32</width><height>24</height></size>",
) -> str:
    return f"<annotation><filename>{filename}</filename>{size}{VOC_OBJECT.format(*box)}</annotation>"


def voc(
    xml: str | None = None, *, files: Callable[[Path], None] | None = None, **options
) -> Callable[[Path], tuple]:
    def build(root: Path) -> tuple:
        (root / "Annotations").mkdir()
        (root / "JPEGImages").mkdir()
        (root / "ImageSets" / "Main").mkdir(parents=True)
        (root / "JPEGImages" / "a.png").write_bytes(png(seed=4))
        (root / "Annotations" / "a.xml").write_text(xml if xml is not None else voc_xml())
        (root / "ImageSets" / "Main" / "train.txt").write_text("a\n")
        if files:
            files(root)
        return "voc", root, options

    return build


def folder(fmt: str, layout: dict[str, bytes | str], **options) -> Callable[[Path], tuple]:
    """A folder dataset from {relative path: bytes, or 'link:<target>' for a symlink}."""

    def build(root: Path) -> tuple:
        (root.parent / "outside.png").write_bytes(png(seed=9))
        for rel, content in layout.items():
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str) and content.startswith("link:"):
                os.symlink((root / content[5:]).resolve(), p)
            elif isinstance(content, str):
                p.write_text(content)
            else:
                p.write_bytes(content)
        return fmt, root, options

    return build


def single(fmt: str, name: str, content: bytes | str, **options) -> Callable[[Path], tuple]:
    """One file as the source (video, images)."""

    def build(root: Path) -> tuple:
        p = root / name
        p.write_bytes(content) if isinstance(content, bytes) else p.write_text(content)
        return fmt, p, options

    return build


def put(rel: str, data: bytes | str) -> Callable[[Path], None]:
    def f(root: Path) -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.exists() or p.is_symlink():
            p.unlink()
        p.write_bytes(data) if isinstance(data, bytes) else p.write_text(data)

    return f


def link(rel: str, target: str) -> Callable[[Path], None]:
    def f(root: Path) -> None:
        p = root / rel
        if p.exists():
            p.unlink()
        os.symlink((root / target).resolve(), p)

    return f


def set_(path: str, value) -> Callable[[dict], None]:
    """Mutation setting doc[a][i][key] = value for path 'a.i.key' (value DELETE removes it)."""

    def f(doc: dict) -> None:
        *head, last = path.split(".")
        obj = doc
        for k in head:
            obj = obj[int(k)] if k.isdigit() else obj[k]
        key = int(last) if last.isdigit() else last
        if value is DELETE:
            del obj[key]
        else:
            obj[key] = value

    return f


DELETE = object()
NAN = float("nan")
BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    "<annotation><filename>&lol3;</filename></annotation>"
)
XXE = '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><annotation><filename>&xxe;</filename></annotation>'


@dataclass
class Case:
    id: str
    build: Callable[[Path], tuple]
    error: type[Exception]
    parts: tuple[str, ...]  # substrings the message must contain (file, record, field, what)
    skip_reason: str | None = field(default=None)


# One row per case; kept one line each for reading as a table.
# fmt: off
CASES = [
    # --- COCO
    Case("coco-malformed-json", coco(raw='{"images": [}'), ImportFormatError, ("annotations.json", "malformed JSON", "line 1")),
    Case("coco-top-level-list", coco(raw="[]"), ImportFormatError, ("annotations.json", "top level must be an object")),
    Case("coco-deeply-nested", coco(raw="[" * 200_000 + "]" * 200_000), ImportFormatError, ("annotations.json", "nested too deeply")),
    Case("coco-too-big", coco(max_json_bytes=100), ImportFormatError, ("annotations.json", "over the 100 byte limit")),
    Case("coco-missing-images", coco(set_("images", DELETE)), ImportFormatError, ("annotations.json", "field 'images'")),
    Case("coco-missing-width", coco(set_("images.0.width", DELETE)), ImportFormatError, ("annotations.json", "record image 1", "field 'width'", "missing")),
    Case("coco-wrong-type-width", coco(set_("images.0.width", "32")), ImportFormatError, ("record image 1", "field 'width'", "integer")),
    Case("coco-wrong-type-bbox", coco(set_("annotations.0.bbox", "1,1,10,10")), ImportFormatError, ("record annotation 1", "field 'bbox'")),
    Case("coco-wrong-type-image-id", coco(set_("images.0.id", 1.5)), ImportFormatError, ("record image 1.5", "field 'id'")),
    Case("coco-nan-box", coco(set_("annotations.0.bbox", [NAN, 1, 10, 10])), ImportFormatError, ("annotations.json", "record annotation 1", "field 'bbox'", "not finite")),
    Case("coco-inf-box", coco(set_("annotations.0.bbox", [1, 1, float("inf"), 10])), ImportFormatError, ("record annotation 1", "field 'bbox'", "not finite")),
    Case("coco-negative-box", coco(set_("annotations.0.bbox", [5, 5, -3, 4])), ImportFormatError, ("record annotation 1", "field 'bbox'", "non-positive")),
    Case("coco-box-left-of-image", coco(set_("annotations.0.bbox", [-4, 5, 3, 4])), ImportFormatError, ("record annotation 1", "field 'bbox'", "outside")),
    Case("coco-box-out-of-image", coco(set_("annotations.0.bbox", [25, 5, 10, 4])), ImportFormatError, ("record annotation 1", "field 'bbox'", "outside the 32x24 image", "clip_boxes")),
    Case("coco-polygon-out-of-image", coco(set_("annotations.1.segmentation", [[2, 2, 70, 2, 7, 7]])), ImportFormatError, ("record annotation 2", "field 'polygons'", "outside")),
    Case("coco-polygon-too-short", coco(set_("annotations.1.segmentation", [[2, 2, 7, 2]])), ImportFormatError, ("record annotation 2", "field 'polygons'", "at least 3 points")),
    Case("coco-polygon-zero-area", coco(set_("annotations.1.segmentation", [[2, 2, 4, 4, 7, 7]])), ImportFormatError, ("record annotation 2", "field 'polygons'", "no area")),
    Case("coco-polygon-not-numbers", coco(set_("annotations.1.segmentation", [[2, "x", 7, 2, 7, 7]])), ImportFormatError, ("record annotation 2", "field 'segmentation'")),
    Case("coco-rle-bad-string", coco(set_("annotations.1.segmentation", {"size": [24, 32], "counts": "0`0"})), ImportFormatError, ("record annotation 2", "field 'segmentation.counts'", "sum")),
    Case("coco-rle-bad-list", coco(set_("annotations.1.segmentation", {"size": [24, 32], "counts": [5, -1]})), ImportFormatError, ("record annotation 2", "field 'segmentation.counts'")),
    Case("coco-rle-size-mismatch", coco(set_("annotations.1.segmentation", {"size": [10, 10], "counts": [0, 100]})), ImportFormatError, ("record annotation 2", "field 'segmentation.size'", "does not match")),
    Case("coco-no-geometry", coco(set_("annotations.0.bbox", DELETE)), ImportFormatError, ("record annotation 1", "neither bbox nor segmentation")),
    Case("coco-iscrowd-2", coco(set_("annotations.0.iscrowd", 2)), ImportFormatError, ("record annotation 1", "field 'iscrowd'")),
    Case("coco-unknown-category", coco(set_("annotations.0.category_id", 99)), ImportFormatError, ("annotations.json", "record annotation 1", "field 'category_id'", "unknown category id 99")),
    Case("coco-unknown-image", coco(set_("annotations.0.image_id", 42)), ImportFormatError, ("annotations.json", "record annotation 1", "field 'image_id'", "unknown image id 42")),
    Case("coco-duplicate-image-id", coco(set_("images.1.id", 1)), ImportFormatError, ("annotations.json", "record image 1", "field 'id'", "duplicate image id")),
    Case("coco-duplicate-annotation-id", coco(set_("annotations.1.id", 1)), ImportFormatError, ("record annotation 1", "field 'id'", "duplicate annotation id")),
    Case("coco-duplicate-category-id", coco(set_("categories.1.id", 1)), ImportFormatError, ("record category 1", "field 'id'", "duplicate category id")),
    Case("coco-duplicate-category-name", coco(set_("categories.1.name", "cat")), ImportFormatError, ("record category 2", "field 'name'")),
    Case("coco-bad-colour", coco(set_("categories.0.color", "red")), ImportFormatError, ("record category 1", "field 'color'", "#rrggbb")),
    Case("coco-unknown-split", coco(set_("images.0.split", "holdout")), ImportFormatError, ("record image 1", "field 'split'")),
    Case("coco-size-mismatch", coco(set_("images.0.width", 33)), ImportFormatError, ("record image 1", "field 'width'", "33x24", "32x24")),
    Case("coco-dotdot-path", coco(set_("images.0.file_name", "../a.png")), UnsafePathError, ("annotations.json", "record image 1", "field 'file_name'", "'..'")),
    Case("coco-absolute-path", coco(set_("images.0.file_name", "/etc/hostname")), UnsafePathError, ("annotations.json", "record image 1", "field 'file_name'", "absolute")),
    Case("coco-symlink-out", coco(files=lambda r: (put("../outside.png", png(seed=8))(r), link("a.png", "../outside.png")(r))), UnsafePathError, ("annotations.json", "record image 1", "field 'file_name'", "outside")),
    Case("coco-missing-image", coco(set_("images.1.file_name", "nope.png")), ImportFormatError, ("annotations.json", "record image 2", "field 'file_name'", "not found", "--skip-missing")),
    Case("coco-corrupt-image", coco(files=put("a.png", corrupt_png())), ImageError, ("a.png", "record image 1", "corrupt")),
    Case("coco-truncated-png", coco(files=put("a.png", png(seed=1)[:300])), ImageError, ("a.png", "record image 1")),
    Case("coco-truncated-jpeg", coco(set_("images.0.file_name", "t.jpg"), files=put("t.jpg", jpeg()[:-200])), ImageError, ("t.jpg", "record image 1", "truncated")),
    Case("coco-text-as-jpg", coco(set_("images.0.file_name", "x.jpg"), files=put("x.jpg", "hello, not a JPEG")), ImageError, ("x.jpg", "record image 1", "not a readable image")),
    Case("coco-empty-image", coco(files=put("a.png", b"")), ImageError, ("a.png", "record image 1", "empty")),
    Case("coco-decompression-bomb", coco(files=put("a.png", bomb_png())), ImageError, ("a.png", "record image 1", "decompression bomb")),
    Case("coco-huge-bomb", coco(files=put("a.png", bomb_png(50000, 50000))), ImageError, ("a.png", "record image 1")),
    # --- YOLO
    Case("yolo-malformed-line", yolo("0 0.5 0.5\n"), ImportFormatError, ("a.txt", "record line 1", "field 'values'")),
    Case("yolo-even-polygon", yolo("0 0.5 0.5 0.2 0.2\n0 0.1 0.1 0.3 0.2 0.2 0.4 0.5\n"), ImportFormatError, ("a.txt", "record line 2", "field 'values'")),
    Case("yolo-class-out-of-range", yolo("2 0.5 0.5 0.2 0.2\n"), ImportFormatError, ("a.txt", "record line 1", "field 'class'", "out of range (0..1)")),
    Case("yolo-negative-class", yolo("-1 0.5 0.5 0.2 0.2\n"), ImportFormatError, ("a.txt", "record line 1", "field 'class'")),
    Case("yolo-class-not-int", yolo("cat 0.5 0.5 0.2 0.2\n"), ImportFormatError, ("a.txt", "record line 1", "field 'class'")),
    Case("yolo-not-a-number", yolo("0 0.5 abc 0.2 0.2\n"), ImportFormatError, ("a.txt", "record line 1", "field 'values'")),
    Case("yolo-nan", yolo("0 0.5 nan 0.2 0.2\n"), ImportFormatError, ("a.txt", "record line 1", "field 'values'", "not finite")),
    Case("yolo-negative-box", yolo("0 0.5 0.5 -0.2 0.2\n"), ImportFormatError, ("a.txt", "record line 1", "field 'bbox'")),
    Case("yolo-out-of-image", yolo("0 0.95 0.5 0.5 0.2\n"), ImportFormatError, ("a.txt", "record line 1", "field 'bbox'", "outside")),
    Case("yolo-polygon-out-of-image", yolo("0 0.1 0.1 1.3 0.2 0.2 0.4\n"), ImportFormatError, ("a.txt", "record line 1", "outside the 40x20 image")),
    Case("yolo-polygon-zero-area", yolo("0 0.5 0.5 0.2 0.2\n0 0.1 0.1 0.2 0.2 0.3 0.3\n"), ImportFormatError, ("a.txt", "record line 2", "no area")),
    Case("yolo-malformed-yaml", yolo(yaml="names: [cat, dog\n"), ImportFormatError, ("data.yaml", "malformed YAML")),
    Case("yolo-yaml-not-mapping", yolo(yaml="- a\n- b\n"), ImportFormatError, ("data.yaml", "mapping")),
    Case("yolo-missing-names", yolo(yaml="train: images/train\n"), ImportFormatError, ("data.yaml", "field 'names'")),
    Case("yolo-names-gap", yolo(yaml="train: images/train\nnames: {0: cat, 2: dog}\n"), ImportFormatError, ("data.yaml", "field 'names'")),
    Case("yolo-nc-mismatch", yolo(yaml="train: images/train\nnc: 3\nnames: [cat, dog]\n"), ImportFormatError, ("data.yaml", "field 'nc'")),
    Case("yolo-no-splits", yolo(yaml="names: [cat, dog]\n"), ImportFormatError, ("data.yaml", "train")),
    Case("yolo-split-dotdot", yolo(yaml="train: ../elsewhere\nnames: [cat, dog]\n", files=put("../elsewhere/x.png", png(seed=8))), UnsafePathError, ("data.yaml", "record train", "'..'")),
    Case("yolo-split-dotdot-missing", yolo(yaml="train: ../nowhere-at-all\nnames: [cat, dog]\n"), ImportFormatError, ("data.yaml", "record train", "'../nowhere-at-all' not found")),
    Case("yolo-split-absolute", yolo(yaml="train: /tmp\nnames: [cat, dog]\n"), UnsafePathError, ("data.yaml", "record train", "absolute")),
    Case("yolo-path-absolute-outside", yolo(yaml="path: /usr\ntrain: images/train\nnames: [cat, dog]\n"), UnsafePathError, ("data.yaml", "field 'path'")),
    Case("yolo-split-missing-folder", yolo(yaml="train: images/nope\nnames: [cat, dog]\n"), ImportFormatError, ("data.yaml", "record train", "'images/nope' not found")),
    Case("yolo-list-dotdot", yolo(yaml="train: list.txt\nnames: [cat, dog]\n", files=put("list.txt", "images/train/a.png\n../x.png\n")), UnsafePathError, ("list.txt", "record line 2", "field 'path'")),
    Case("yolo-list-missing-image", yolo(yaml="train: list.txt\nnames: [cat, dog]\n", files=put("list.txt", "images/train/zz.png\n")), ImportFormatError, ("list.txt", "record line 1", "not found")),
    Case("yolo-corrupt-image", yolo(files=put("images/train/a.png", corrupt_png())), ImageError, ("a.png", "images/train/a.png")),
    Case("yolo-symlink-out", yolo(files=lambda r: (put("../outside.png", png(seed=8))(r), link("images/train/c.png", "../outside.png")(r))), UnsafePathError, ("c.png", "outside")),
    Case("yolo-label-not-utf8", yolo(files=put("labels/train/a.txt", b"\xff\xfe0 0.5")), ImportFormatError, ("a.txt", "UTF-8")),
    Case("yolo-no-layout", lambda root: ("yolo", root, {}), ImportFormatError, ("not a YOLO dataset",)),
    # --- VOC
    Case("voc-malformed-xml", voc("<annotation><filename>a.png</filename>"), ImportFormatError, ("a.xml", "malformed XML")),
    Case("voc-entity-bomb", voc(BILLION_LAUGHS), ImportFormatError, ("a.xml", "DTD")),
    Case("voc-xxe", voc(XXE), ImportFormatError, ("a.xml", "DTD")),
    Case("voc-wrong-root", voc("<root/>"), ImportFormatError, ("a.xml", "record a", "<annotation>")),
    Case("voc-missing-filename", voc("<annotation><object/></annotation>"), ImportFormatError, ("a.xml", "record a", "field 'filename'")),
    Case("voc-missing-bndbox", voc("<annotation><filename>a.png</filename><object><name>cat</name></object></annotation>"), ImportFormatError, ("a.xml", "record a object 1", "field 'bndbox'")),
    Case("voc-missing-name", voc(voc_xml().replace("<name>cat</name>", "")), ImportFormatError, ("a.xml", "record a object 1", "field 'name'")),
    Case("voc-not-a-number", voc(voc_xml(box=("x", 2, 10, 10))), ImportFormatError, ("a.xml", "record a object 1", "field 'bndbox.xmin'")),
    Case("voc-nan", voc(voc_xml(box=(2, "nan", 10, 10))), ImportFormatError, ("a.xml", "record a object 1", "field 'bndbox.ymin'", "not finite")),
    Case("voc-negative-box", voc(voc_xml(box=(10, 2, 5, 10))), ImportFormatError, ("a.xml", "record a object 1", "field 'bndbox'", "negative")),
    Case("voc-out-of-image", voc(voc_xml(box=(2, 2, 40, 10))), ImportFormatError, ("a.xml", "record a object 1", "field 'bbox'", "outside")),
    Case("voc-zero-read-one-based", voc(voc_xml(box=(0, 2, 10, 10)), one_based=True), ImportFormatError, ("a.xml", "record a object 1", "field 'bbox'", "outside")),
    Case("voc-empty-box", voc(voc_xml(box=(4, 2, 4, 10))), ImportFormatError, ("a.xml", "record a object 1", "field 'bndbox'", "no area", "--voc-one-based")),
    Case("voc-bad-difficult", voc(voc_xml().replace("<name>cat</name>", "<name>cat</name><difficult>2</difficult>")), ImportFormatError, ("a.xml", "record a object 1", "field 'difficult'")),
    Case("voc-size-mismatch", voc(voc_xml(size="<size><width>30</width><height>24</height></size>")), ImportFormatError, ("a.xml", "record a", "field 'size.width'")),
    Case("voc-dotdot", voc(voc_xml(filename="../a.png")), UnsafePathError, ("a.xml", "record a", "field 'filename'", "'..'")),
    Case("voc-absolute", voc(voc_xml(filename="/etc/hostname")), UnsafePathError, ("a.xml", "record a", "field 'filename'", "absolute")),
    Case("voc-symlink-out", voc(files=lambda r: (put("../outside.png", png(seed=8))(r), link("JPEGImages/a.png", "../outside.png")(r))), UnsafePathError, ("a.xml", "record a", "field 'filename'", "outside")),
    Case("voc-xml-symlink-out", voc(files=lambda r: (put("../evil.xml", voc_xml())(r), link("Annotations/b.xml", "../evil.xml")(r))), UnsafePathError, ("b.xml", "record b", "outside")),
    Case("voc-missing-image", voc(voc_xml(filename="zz.png")), ImportFormatError, ("a.xml", "record a", "field 'filename'", "not found")),
    Case("voc-corrupt-image", voc(files=put("JPEGImages/a.png", b"GIF89a garbage")), ImageError, ("a.png", "record a")),
    Case("voc-unknown-split-id", voc(files=put("ImageSets/Main/val.txt", "b\n")), ImportFormatError, ("val.txt", "record line 1", "field 'id'", "unknown image id")),
    Case("voc-two-splits", voc(files=put("ImageSets/Main/val.txt", "a\n")), ImportFormatError, ("val.txt", "record line 1", "both train and val")),
    Case("voc-class-not-listed", voc(files=put("labels.txt", "dog\n")), ImportFormatError, ("a.xml", "record a object 1", "field 'name'")),
    Case("voc-same-image-twice", voc(files=put("Annotations/b.xml", voc_xml())), ImportFormatError, ("b.xml", "record b", "field 'filename'", "also annotated by a.xml")),
    Case("voc-no-annotations-folder", lambda root: ("voc", root, {}), ImportFormatError, ("not a Pascal VOC dataset",)),
    # --- ImageFolder
    Case("imagefolder-image-at-top", folder("imagefolder", {"cat/a.png": png(), "stray.png": png(seed=1)}), ImportFormatError, ("stray.png", "outside any class folder")),
    Case("imagefolder-corrupt", folder("imagefolder", {"cat/a.png": png(), "dog/b.png": corrupt_png()}), ImageError, ("b.png", "record dog/b.png")),
    Case("imagefolder-text-as-jpg", folder("imagefolder", {"cat/a.jpg": "just text"}), ImageError, ("a.jpg", "record cat/a.jpg", "not a readable image")),
    Case("imagefolder-bomb", folder("imagefolder", {"cat/a.png": bomb_png()}), ImageError, ("a.png", "record cat/a.png", "bomb")),
    Case("imagefolder-symlink-out", folder("imagefolder", {"cat/a.png": png(), "cat/b.png": "link:../outside.png"}), UnsafePathError, ("b.png", "outside")),
    Case("imagefolder-symlink-folder", folder("imagefolder", {"cat/a.png": png(), "dog": "link:cat"}), ImportFormatError, ("dog", "symlink")),
    Case("imagefolder-bad-class-name", folder("imagefolder", {"a,b/x.png": png()}), ImportFormatError, ("record a,b", "field 'name'")),
    # --- anomaly folder
    Case("anomaly-unexpected-folder", folder("anomaly-folder", {"good/a.png": png(), "broken/b.png": png()}), ImportFormatError, ("broken", "field 'folder'", "expected good, anomalous, masks")),
    Case("anomaly-mask-on-good", folder("anomaly-folder", {"good/a.png": png(), "masks/a.png": png()}), ImportFormatError, ("masks/a.png", "record good/a.png", "field 'mask'")),
    Case("anomaly-mask-wrong-size", folder("anomaly-folder", {"anomalous/a.png": png(), "masks/a.png": png(10, 10)}), ImportFormatError, ("masks/a.png", "record anomalous/a.png", "field 'mask'", "10x10")),
    Case("anomaly-orphan-mask", folder("anomaly-folder", {"anomalous/a.png": png(), "masks/zz.png": png()}), ImportFormatError, ("masks/zz.png", "field 'mask'", "no anomalous image")),
    Case("anomaly-mask-not-png", folder("anomaly-folder", {"anomalous/a.png": png(), "masks/a.jpg": jpeg()}), ImportFormatError, ("masks/a.jpg", "field 'mask'", "PNG")),
    Case("anomaly-corrupt-mask", folder("anomaly-folder", {"anomalous/a.png": png(), "masks/a.png": corrupt_png()}), ImageError, ("masks/a.png", "record anomalous/a.png")),
    Case("anomaly-mask-ambiguous", folder("anomaly-folder", {"anomalous/a.png": png(), "anomalous/a.jpg": jpeg(), "masks/a.png": png()}), ImportFormatError, ("masks/a.png", "field 'mask'", "rename")),
    # --- images and video
    Case("images-corrupt", folder("images", {"x/a.png": corrupt_png()}), ImageError, ("a.png", "record x/a.png")),
    Case("images-empty-folder", folder("images", {"notes.txt": "hi"}), ImportFormatError, ("no image files",)),
    Case("images-missing", lambda root: ("images", root / "nope", {}), ImportFormatError, ("nope", "no such file")),
    Case("video-not-a-video", single("video", "v.mp4", "this is not a video"), ImportFormatError, ("v.mp4", "cannot open as a video")),
    Case("video-given-an-image", single("video", "still.jpg", jpeg()), ImportFormatError, ("still.jpg", "'images' format")),
    Case("video-truncated", single("video", "v.avi", b"RIFF\x00\x10\x00\x00AVI LIST" + b"\x00" * 64), ImportFormatError, ("v.avi", "video")),
    Case("images-single-corrupt", single("images", "one.jpg", jpeg()[:100]), ImageError, ("one.jpg", "record one.jpg")),
    Case("video-missing", lambda root: ("video", root / "gone.mp4", {}), ImportFormatError, ("gone.mp4", "not found")),
    Case("video-bad-every", single("video", "v.mp4", "x", every=0), ValidationError, ("field 'every'", "positive")),
]
# fmt: on


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused(tmp_path: Path, case: Case) -> None:
    root = tmp_path / "src"
    root.mkdir()
    fmt, src, options = case.build(root)
    with pytest.raises(case.error) as e:
        get_reader(fmt).read(src, **options)
    msg = str(e.value)
    assert "\n" not in msg, "error messages are one line"
    for part in case.parts:
        assert part in msg, f"{part!r} not in {msg!r}"


@pytest.mark.parametrize("fmt", ["coco", "yolo", "voc"])
def test_the_base_datasets_are_valid(tmp_path: Path, fmt: str) -> None:
    """Every bad case differs from one of these by the one thing it breaks."""
    build = {"coco": coco(), "yolo": yolo(), "voc": voc()}[fmt]
    fmt_, src, options = build(tmp_path)
    batch = get_reader(fmt_).read(src, **options)
    assert batch.items and all(isinstance(a.content(), dict) for it in batch.items for a in it.annotations)
    assert sum(len(it.annotations) for it in batch.items) == {"coco": 2, "yolo": 3, "voc": 1}[fmt]
