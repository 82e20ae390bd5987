"""A corpus of malformed and malicious import sources, for every format and the image and video readers.

``NEW_CASES`` are the classes the reader table of ``tests/data/test_formats_bad_input.py`` (``CASES``, 115
rows) lacked: names the file system cannot hold, special files (FIFOs block a read forever), symlink loops,
integers JSON cannot convert, XML encodings expat refuses, XInclude / parameter entities, YAML tags and
alias bombs, PostScript and other non-images behind image suffixes, text-chunk and pixel bombs, sparse huge
files, video bombs. ``all_cases()`` is both tables with a category each. ``run_case`` imports one case
through ``import_source`` into a workspace, the way the CLI and the dashboards do.

``python -m tests.reliability.hostile build WORK`` builds every case; ``... import OUT.json WORK LIMIT SECONDS``
imports them all in one process under an address-space limit and a per-case alarm, recording the time and
peak memory of each (test_hostile_inputs.py).
"""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import struct
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tests.data.test_formats_bad_input import (
    BILLION_LAUGHS,
    CASES,
    XXE,
    Case,
    coco,
    folder,
    jpeg,
    png,
    put,
    set_,
    single,
    voc,
    voc_xml,
    yolo,
)
from workbench.errors import ImageError, ImportFormatError, UnsafePathError, ValidationError

__all__ = ["NEW_CASES", "all_cases", "category", "run_case", "store_fingerprint", "tree_fingerprint"]

MARKER = "/tmp/workbench-hostile-pwned"  # a case that manages to run code creates this file


# ------------------------------------------------------------------------------------------ hostile bytes
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_chunk(kind: bytes, payload: bytes, w: int = 8, h: int = 8) -> bytes:
    raw = b"".join(b"\0" + b"\0" * (w * 3) for _ in range(h))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + _chunk(kind, payload)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def text_bomb(kind: bytes) -> bytes:
    """zTXt / iCCP whose compressed 200 KB inflate to 200 MB."""
    return png_with_chunk(kind, b"k\0\0" + zlib.compress(b"a" * (200 << 20), 9))


def pil(fmt: str, w: int = 32, h: int = 24) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


def jpeg_declaring(w: int, h: int) -> bytes:
    data = jpeg()
    i = data.find(b"\xff\xc0")
    return data[: i + 5] + struct.pack(">HH", h, w) + data[i + 9 :]


def gif_declaring(w: int, h: int) -> bytes:
    data = pil("GIF")
    return data[:6] + struct.pack("<HH", w, h) + data[10:]


def bmp_declaring(w: int, h: int) -> bytes:
    data = pil("BMP")
    return data[:18] + struct.pack("<ii", w, h) + data[26:]


EPS = (
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"
    b"(" + MARKER.encode() + b") (w) file closefile\nshowpage\n"
)
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><image href="file:///etc/passwd"/></svg>'
)
ZIP_SLIP = (
    b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00\x05\x00\x00\x00"
    b"\x0c\x00\x00\x00../../evil.shhello"
)


def mjpeg_video(path: Path, w: int, h: int, frames: int) -> None:
    import cv2

    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    frame = np.zeros((h, w, 3), np.uint8)
    for k in range(frames):
        frame[:] = k * 20 % 255
        vw.write(frame)
    vw.release()


# ------------------------------------------------------------------------------------------ builders
def fifo(rel: str) -> Callable[[Path], None]:
    def f(root: Path) -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.exists() or p.is_symlink():
            p.unlink()
        os.mkfifo(p)

    return f


def symlink(rel: str, target: str) -> Callable[[Path], None]:
    def f(root: Path) -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.exists() or p.is_symlink():
            p.unlink()
        os.symlink(target, p)

    return f


def sparse(rel: str, size: int) -> Callable[[Path], None]:
    def f(root: Path) -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "wb") as fh:
            fh.write(png()[:64])
            fh.truncate(size)

    return f


def coco_raw(text: str) -> Callable[[Path], tuple]:
    return coco(raw=text)


def many(fn: Callable[[Path], Any], *more: Callable[[Path], Any]) -> Callable[[Path], None]:
    def f(root: Path) -> None:
        for g in (fn, *more):
            g(root)

    return f


def with_files(build: Callable[[Path], tuple], *files: Callable[[Path], None]) -> Callable[[Path], tuple]:
    def f(root: Path) -> tuple:
        out = build(root)
        for g in files:
            g(root)
        return out

    return f


def video_file(name: str, make: Callable[[Path], None], **options: Any) -> Callable[[Path], tuple]:
    def f(root: Path) -> tuple:
        p = root / name
        make(p)
        return "video", p, options

    return f


def _good_avi(p: Path) -> None:
    mjpeg_video(p, 32, 24, 10)


def _cut_avi(n: int) -> Callable[[Path], None]:
    def f(p: Path) -> None:
        _good_avi(p)
        p.write_bytes(p.read_bytes()[:n])

    return f


def _frames_declaring(dim: int) -> Callable[[Path], None]:
    def f(p: Path) -> None:
        _good_avi(p)
        b, i = bytearray(p.read_bytes()), 0
        while (i := b.find(b"\xff\xc0", i)) >= 0:
            b[i + 5 : i + 9] = struct.pack(">HH", dim, dim)
            i += 2
        p.write_bytes(bytes(b))

    return f


def _coco_many_annotations(root: Path) -> tuple:
    (root / "a.png").write_bytes(png(seed=1))
    anns = [{"id": i, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]} for i in range(1, 100_000)]
    anns.append({"id": 100_000, "image_id": 77, "category_id": 1, "bbox": [1, 1, 5, 5]})
    doc = {
        "images": [{"id": 1, "file_name": "a.png", "width": 32, "height": 24}],
        "categories": [{"id": 1, "name": "cat"}],
        "annotations": anns,
    }
    (root / "annotations.json").write_text(json.dumps(doc))
    return "coco", root / "annotations.json", {}


def _coco_many_missing(root: Path) -> tuple:
    images = [{"id": i, "file_name": f"img{i}.png", "width": 32, "height": 24} for i in range(50_000)]
    (root / "annotations.json").write_text(
        json.dumps({"images": images, "categories": [], "annotations": []})
    )
    return "coco", root / "annotations.json", {}


LAUGH_YAML = (
    "train: images/train\n"
    + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}' if p else 'x'] * 9)}]\n"
        for n, p in zip("abcdefg", [None, *"abcdef"], strict=True)
    )
    + "names: *g\n"
)
NESTED_BOX = "<annotation>" + "<object>" * 50_000 + "</object>" * 50_000 + "</annotation>"


# ------------------------------------------------------------------------------------------ cvat / labelme / label-studio
_CVAT_META = "<meta><task><labels><label><name>cat</name></label></labels></task></meta>"


def cvat_case(body: str, *, raw: str | None = None, files: Callable[[Path], None] | None = None,
              **options: Any) -> Callable[[Path], tuple]:
    def build(root: Path) -> tuple:
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "images" / "a.png").write_bytes(png(seed=1))
        text = raw if raw is not None else (f'<?xml version="1.0"?><annotations><version>1.1</version>{_CVAT_META}'
                                            f"{body}</annotations>")
        (root / "annotations.xml").write_text(text)
        if files:
            files(root)
        return "cvat", root, options

    return build


def _lm_doc(**over: Any) -> dict:
    return {"version": "5.5.0", "flags": {}, "imagePath": "a.png", "imageData": None, "imageHeight": 24,
            "imageWidth": 32, "shapes": [{"label": "cat", "points": [[1, 1], [9, 9]], "shape_type": "rectangle"}],
            **over}


def labelme_case(doc: dict | None = None, *, raw: str | None = None,
                 files: Callable[[Path], None] | None = None, **options: Any) -> Callable[[Path], tuple]:
    def build(root: Path) -> tuple:
        (root / "a.png").write_bytes(png(seed=1))
        (root / "a.json").write_text(raw if raw is not None else json.dumps(doc if doc is not None else _lm_doc()))
        if files:
            files(root)
        return "labelme", root, options

    return build


def label_studio_case(tasks: Any = None, *, raw: str | None = None, files: Callable[[Path], None] | None = None,
                      **options: Any) -> Callable[[Path], tuple]:
    def build(root: Path) -> tuple:
        (root / "a.png").write_bytes(png(seed=1))
        (root / "export.json").write_text(raw if raw is not None else json.dumps(tasks))
        if files:
            files(root)
        return "label-studio", root / "export.json", options

    return build


def _ls_task(image: str = "a.png") -> list:
    return [{"id": 1, "data": {"image": image}, "annotations": [{"id": 1, "result": [
        {"id": "r", "type": "rectanglelabels", "value": {"x": 10, "y": 10, "width": 5, "height": 5,
                                                         "rectanglelabels": ["cat"]}}]}]}]


def mvtec_case(files: Callable[[Path], None]) -> Callable[[Path], tuple]:
    def build(root: Path) -> tuple:
        for rel in ("train/good/000.png", "test/good/000.png", "test/crack/000.png"):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(png(seed=len(rel)))
        (root / "ground_truth" / "crack").mkdir(parents=True)
        files(root)
        return "mvtec", root, {}

    return build


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


# fmt: off
NEW_CASES = [
    # --- paths and names
    Case("coco-name-too-long", coco(set_("images.0.file_name", "x" * 5000 + ".png")), ValidationError, ("record image 1", "field 'file_name'", "too long")),
    Case("coco-name-lone-surrogate", coco_raw('{"images": [{"id": 1, "file_name": "\\ud800.png", "width": 32, "height": 24}], "categories": []}'), UnsafePathError, ("record image 1", "not valid Unicode")),
    Case("coco-name-nul", coco(set_("images.0.file_name", "a.png\x00.jpg")), UnsafePathError, ("record image 1", "NUL")),
    Case("coco-windows-drive", coco(set_("images.0.file_name", "C:\\Windows\\win.ini")), UnsafePathError, ("record image 1", "absolute")),
    Case("coco-backslash-dotdot", coco(set_("images.0.file_name", "..\\..\\etc\\passwd")), UnsafePathError, ("record image 1", "'..'")),
    Case("coco-newline-in-name", coco(set_("images.0.file_name", "a\nb.png")), ImportFormatError, ("record image 1", "not found")),
    Case("coco-rtl-override-name", coco(set_("images.0.file_name", "a\u202egnp.exe")), ImportFormatError, ("record image 1", "not found")),
    Case("coco-symlink-loop", coco(files=symlink("a.png", "a.png")), UnsafePathError, ("record image 1", "cannot be resolved")),
    Case("coco-image-is-a-fifo", coco(files=fifo("a.png")), ImportFormatError, ("record image 1", "not found")),
    Case("voc-filename-too-long", voc(voc_xml(filename="y" * 300 + ".png")), ValidationError, ("record a", "field 'filename'", "too long")),
    Case("voc-xml-is-a-fifo", voc(files=fifo("Annotations/b.xml")), ImportFormatError, ("b.xml", "not a regular file")),
    Case("yolo-list-absolute", yolo(yaml="train: list.txt\nnames: [cat, dog]\n", files=put("list.txt", "/etc/passwd\n")), UnsafePathError, ("list.txt", "record line 1", "absolute path")),
    Case("yolo-image-is-a-fifo", yolo(files=many(fifo("images/train/c.png"), put("labels/train/c.txt", ""))), ImportFormatError, ("c.png", "not a regular file")),
    Case("imagefolder-fifo", folder("imagefolder", {"cat/a.png": png()}, ), ImportFormatError, ("f.png", "not a regular file")),
    Case("imagefolder-symlink-loop", folder("imagefolder", {"cat/a.png": png()}), UnsafePathError, ("loop.png", "cannot be resolved")),
    Case("imagefolder-link-to-dev-zero", folder("imagefolder", {"cat/a.png": png()}), UnsafePathError, ("z.png", "outside")),
    Case("imagefolder-class-with-newline", folder("imagefolder", {"a\nb/x.png": png()}), ImportFormatError, ("field 'name'",)),
    Case("anomaly-sparse-16gb-image", folder("anomaly-folder", {"good/a.png": png()}), ImageError, ("b.png", "byte limit")),
    Case("images-source-is-a-fifo", lambda root: (fifo("in.png")(root), ("images", root / "in.png", {}))[1], ImportFormatError, ("in.png", "no such file")),
    # --- JSON
    Case("coco-5000-digit-integer", coco_raw('{"images": [{"id": ' + "9" * 5000 + ', "file_name": "a.png", "width": 32, "height": 24}], "categories": []}'), ImportFormatError, ("annotations.json", "unreadable JSON value", "4300 digits")),
    Case("coco-width-1e999", coco_raw('{"images": [{"id": 1, "file_name": "a.png", "width": 1e999, "height": 24}], "categories": []}'), ImportFormatError, ("record image 1", "field 'width'", "expected an integer")),
    Case("coco-utf16-file", lambda root: (coco()(root), (root / "annotations.json").write_bytes(json.dumps({"images": []}).encode("utf-16")), ("coco", root / "annotations.json", {}))[2], ImportFormatError, ("annotations.json", "not UTF-8")),
    Case("coco-100k-annotations-last-bad", _coco_many_annotations, ImportFormatError, ("record annotation 100000", "unknown image id 77")),
    Case("coco-50k-images-missing", _coco_many_missing, ImportFormatError, ("record image 0", "not found")),
    Case("coco-polygon-nan", coco(set_("annotations.1.segmentation", [[2, 2, float("nan"), 2, 7, 7]])), ImportFormatError, ("record annotation 2", "segmentation")),
    # --- XML
    Case("voc-external-dtd", voc('<?xml version="1.0"?><!DOCTYPE annotation SYSTEM "http://127.0.0.1:9/x.dtd"><annotation/>'), ImportFormatError, ("a.xml", "DTD")),
    Case("voc-parameter-entity", voc('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><annotation/>'), ImportFormatError, ("a.xml", "DTD")),
    Case("voc-xinclude", voc('<annotation xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="/etc/passwd" parse="text"/></annotation>'), ImportFormatError, ("a.xml", "field 'filename'")),
    Case("voc-utf7-encoding", voc('<?xml version="1.0" encoding="UTF-7"?><annotation/>'), ImportFormatError, ("a.xml", "unsupported encoding")),
    Case("voc-unknown-encoding", voc('<?xml version="1.0" encoding="x-no-such"?><annotation/>'), ImportFormatError, ("a.xml", "unsupported encoding")),
    Case("voc-billion-laughs-in-name", voc(BILLION_LAUGHS.replace("<filename>&lol3;</filename>", "<object><name>&lol3;</name></object>")), ImportFormatError, ("a.xml", "DTD")),
    Case("voc-50k-nested-objects", voc(NESTED_BOX), ImportFormatError, ("a.xml",)),
    Case("voc-inf-coordinate", voc(voc_xml(box=(2, 2, "inf", 10))), ImportFormatError, ("record a object 1", "field 'bndbox.xmax'", "not finite")),
    # --- YAML and text
    Case("yolo-yaml-python-tag", yolo(yaml=f"train: images/train\nnames: !!python/object/apply:os.system ['touch {MARKER}']\n"), ImportFormatError, ("data.yaml", "malformed YAML")),
    Case("yolo-yaml-alias-bomb", yolo(yaml=LAUGH_YAML), ImportFormatError, ("data.yaml", "field 'names'", "characters in all")),
    Case("yolo-yaml-nested-100k", yolo(yaml="train: images/train\nnames: " + "[" * 100_000 + "]" * 100_000 + "\n"), ImportFormatError, ("data.yaml", "nested too deeply")),
    Case("yolo-label-nul-byte", yolo("0 0.5\x00 0.5 0.2 0.2\n"), ImportFormatError, ("a.txt", "record line 1", "field 'values'")),
    Case("yolo-label-inf", yolo("0 inf 0.5 0.2 0.2\n"), ImportFormatError, ("a.txt", "record line 1", "not finite")),
    Case("yolo-label-2m-values-odd", yolo("0 " + " ".join(["0.5"] * 2_000_001) + "\n"), ImportFormatError, ("a.txt", "record line 1", "2000002 values")),
    # --- images
    Case("coco-png-ztxt-bomb", coco(files=put("a.png", text_bomb(b"zTXt"))), ImageError, ("a.png", "record image 1", "too large")),
    Case("coco-png-iccp-bomb", coco(files=put("a.png", text_bomb(b"iCCP"))), ImageError, ("a.png", "record image 1", "too large")),
    Case("coco-jpeg-declares-65000px", coco(files=put("a.png", jpeg_declaring(65000, 65000))), ImageError, ("a.png", "record image 1", "bomb")),
    Case("coco-gif-declares-65535px", coco(files=put("a.png", gif_declaring(65535, 65535))), ImageError, ("a.png", "record image 1", "bomb")),
    Case("coco-bmp-declares-30000px", coco(files=put("a.png", bmp_declaring(30000, 30000))), ImageError, ("a.png", "record image 1", "bomb")),
    Case("coco-tiff-truncated", coco(files=put("a.png", pil("TIFF")[:100])), ImageError, ("a.png", "record image 1")),
    Case("coco-webp-truncated", coco(files=put("a.png", pil("WEBP")[:-10])), ImageError, ("a.png", "record image 1")),
    Case("coco-ico-format", coco(files=put("a.png", pil("ICO"))), ImageError, ("a.png", "unsupported image format ICO")),
    Case("imagefolder-postscript-as-jpg", folder("imagefolder", {"cat/a.jpg": EPS}), ImageError, ("a.jpg", "unsupported image format EPS")),
    Case("imagefolder-svg-as-png", folder("imagefolder", {"cat/a.png": SVG}), ImageError, ("a.png", "not a readable image")),
    Case("imagefolder-elf-as-png", folder("imagefolder", {"cat/a.png": b"\x7fELF" + b"\0" * 200}), ImageError, ("a.png", "not a readable image")),
    Case("imagefolder-zip-slip-as-jpg", folder("imagefolder", {"cat/a.jpg": ZIP_SLIP}), ImageError, ("a.jpg", "not a readable image")),
    Case("imagefolder-pdf-as-png", folder("imagefolder", {"cat/a.png": b"%PDF-1.4\n1 0 obj<<>>endobj\n"}), ImageError, ("a.png", "not a readable image")),
    Case("images-html-as-webp", folder("images", {"x/a.webp": "<html><script>alert(1)</script></html>"}), ImageError, ("a.webp", "not a readable image")),
    # --- cvat, labelme, label-studio, darknet yolo
    Case("cvat-billion-laughs", cvat_case("", raw=BILLION_LAUGHS.replace("annotation>", "annotations>")), ImportFormatError, ("annotations.xml", "DTD")),
    Case("cvat-xxe", cvat_case("", raw=XXE.replace("annotation>", "annotations>")), ImportFormatError, ("annotations.xml", "DTD")),
    Case("cvat-dotdot-name", cvat_case('<image id="1" name="../../etc/passwd" width="32" height="24"/>'), UnsafePathError, ("record image 1", "field 'name'", "'..'")),
    Case("cvat-symlink-out", cvat_case('<image id="1" name="b.png" width="32" height="24"/>', files=symlink("images/b.png", "/etc/hostname")), UnsafePathError, ("record image 1 (b.png)", "outside")),
    Case("cvat-400-digit-coordinate", cvat_case('<image id="1" name="a.png" width="32" height="24"><box label="cat" xtl="1e400" ytl="1" xbr="2" ybr="2"/></image>'), ImportFormatError, ("record image 1 (a.png) box 0", "field 'xtl'", "not finite")),
    Case("cvat-mask-declares-100k", cvat_case('<image id="1" name="a.png" width="32" height="24"><mask label="cat" rle="0, 10000000000" left="0" top="0" width="100000" height="100000"/></image>'), ImportFormatError, ("record image 1 (a.png) mask 0", "does not fit")),
    Case("cvat-unknown-label", cvat_case('<image id="1" name="a.png" width="32" height="24"><box label="&lt;script&gt;" xtl="1" ytl="1" xbr="2" ybr="2"/></image>'), ImportFormatError, ("field 'label'", "not one of the labels")),
    Case("labelme-imagedata-bomb", labelme_case(_lm_doc(imageData=_b64(jpeg_declaring(65000, 65000)))), ImageError, ("a.json", "bomb")),
    Case("labelme-mask-png-bomb", labelme_case(_lm_doc(shapes=[{"label": "cat", "points": [[0, 0], [5, 5]], "shape_type": "mask", "mask": _b64(jpeg_declaring(65000, 65000))}])), ImageError, ("a.json", "record shapes[0]", "bomb")),
    Case("labelme-json-nested-100k", labelme_case(raw='{"shapes": ' + "[" * 100_000 + "]" * 100_000 + "}"), ImportFormatError, ("a.json", "nested too deeply")),
    Case("labelme-5000-digit-point", labelme_case(raw='{"shapes": [{"label": "cat", "points": [[' + "9" * 5000 + ', 1]]}]}'), ImportFormatError, ("a.json", "unreadable JSON value")),
    Case("labelme-dotdot-imagepath", labelme_case(_lm_doc(imagePath="../../../../etc/passwd")), UnsafePathError, ("a.json", "field 'imagePath'", "leaves")),
    Case("labelme-imagepath-link-to-dev-zero", labelme_case(_lm_doc(imagePath="z.png"), files=symlink("z.png", "/dev/zero")), UnsafePathError, ("a.json", "field 'imagePath'", "outside")),
    Case("labelme-imagepath-fifo", labelme_case(_lm_doc(imagePath="f.png"), files=fifo("f.png")), ImportFormatError, ("a.json", "field 'imagePath'", "not found")),
    Case("label-studio-local-files-dotdot", label_studio_case(_ls_task("/data/local-files/?d=../../etc/passwd")), UnsafePathError, ("export.json", "record task 1", "'..'")),
    Case("label-studio-nan-percent", label_studio_case(raw=json.dumps(_ls_task()).replace('"x": 10', '"x": NaN')), ImportFormatError, ("record task 1 result r", "field 'value.x'", "not finite")),
    Case("label-studio-symlink-out", label_studio_case(_ls_task("b.png"), files=symlink("b.png", "/etc/hostname")), UnsafePathError, ("record task 1", "outside")),
    Case("label-studio-nested-100k", label_studio_case(raw="[" * 100_000 + "]" * 100_000), ImportFormatError, ("export.json", "nested too deeply")),
    Case("yolo-darknet-list-dotdot", lambda root: (put("obj.data", "train = train.txt\n")(root), put("train.txt", "../darknet-outside.png\n")(root), put("../darknet-outside.png", png())(root), ("yolo", root, {}))[-1], UnsafePathError, ("train.txt", "record line 1", "'..'")),
    Case("yolo-darknet-names-absolute", lambda root: (put("obj.data", "names = /etc/passwd\ntrain = t.txt\n")(root), ("yolo", root, {}))[-1], UnsafePathError, ("obj.data", "record names", "absolute")),
    Case("mvtec-mask-declares-65000px", mvtec_case(put("ground_truth/crack/000_mask.png", jpeg_declaring(65000, 65000))), ImageError, ("000_mask.png", "record test/crack/000.png", "bomb")),
    Case("mvtec-mask-png-bomb", mvtec_case(put("ground_truth/crack/000_mask.png", text_bomb(b"zTXt"))), ImageError, ("000_mask.png", "too large")),
    Case("mvtec-mask-link-out", mvtec_case(symlink("ground_truth/crack/000_mask.png", "/etc/hostname")), UnsafePathError, ("000_mask.png", "outside")),
    Case("mvtec-image-is-a-fifo", mvtec_case(fifo("test/crack/001.png")), ImportFormatError, ("001.png", "not a regular file")),
    # --- video
    Case("video-frames-over-pixel-limit", video_file("bomb.avi", lambda p: mjpeg_video(p, 8200, 8200, 1)), ImportFormatError, ("bomb.avi", "8200x8200", "pixel limit")),
    Case("video-frames-declare-60000px", video_file("v.avi", _frames_declaring(60000)), ImportFormatError, ("v.avi", "no readable frames")),
    Case("video-empty-file", single("video", "v.avi", b""), ImportFormatError, ("v.avi", "cannot open as a video")),
    Case("video-header-only", video_file("v.avi", _cut_avi(300)), ImportFormatError, ("v.avi", "cannot open as a video")),
    Case("video-random-bytes", single("video", "v.mp4", bytes(np.random.default_rng(0).integers(0, 256, 8000, dtype=np.uint8))), ImportFormatError, ("v.mp4", "cannot open as a video")),
    Case("video-too-many-frames", video_file("v.avi", _good_avi, max_frames=3), ImportFormatError, ("v.avi", "max_frames=3")),
    Case("video-is-a-fifo", lambda root: (fifo("v.mp4")(root), ("video", root / "v.mp4", {}))[1], ImportFormatError, ("v.mp4", "not found")),
    Case("video-link-to-dev-zero", lambda root: (symlink("v.mp4", "/dev/zero")(root), ("video", root / "v.mp4", {}))[1], ImportFormatError, ("v.mp4", "not found")),
    Case("video-folder-named-mp4", lambda root: ((root / "v.mp4").mkdir(), ("video", root / "v.mp4", {}))[1], ImportFormatError, ("v.mp4", "not found")),
]
# fmt: on

# the folder builders above take their extra files from here (the folder() helper only writes bytes)
_EXTRA: dict[str, Callable[[Path], None]] = {
    "imagefolder-fifo": fifo("cat/f.png"),
    "imagefolder-symlink-loop": symlink("cat/loop.png", "loop.png"),
    "imagefolder-link-to-dev-zero": symlink("cat/z.png", "/dev/zero"),
    "anomaly-sparse-16gb-image": sparse("anomalous/b.png", 1 << 34),
}

CATEGORIES = (  # first match wins: (category, id substrings)
    ("video", ("video",)),
    (
        "paths, names and special files",
        (
            "dotdot",
            "absolute",
            "symlink",
            "link",
            "path",
            "name-",
            "fifo",
            "drive",
            "too-long",
            "newline",
            "surrogate",
            "nul",
            "missing-image",
            "missing-folder",
            "list-",
            "sparse",
            "folder-named",
            "stray",
            "top",
            "-missing",
        ),
    ),
    ("images: bombs and oversize", ("bomb", "declares", "huge", "16gb")),
    (
        "images: corrupt, truncated, wrong type",
        ("corrupt", "truncated", "text-as", "-as-", "empty-image", "image", "format", "mask", "png", "jpg"),
    ),
    ("XML", ("voc", "cvat")),
    ("JSON", ("coco", "labelme", "label-studio")),
    ("YAML and label text", ("yolo", "yaml", "label")),
    ("folders", ("imagefolder", "anomaly", "images")),
)


def category(case_id: str) -> str:
    for name, keys in CATEGORIES:
        if any(k in case_id for k in keys):
            return name
    return "other"


def all_cases() -> list[tuple[str, Case]]:
    """(table, case): ``reader`` for the 115 reader cases, ``new`` for the ones above."""
    return [("reader", c) for c in CASES] + [("new", c) for c in NEW_CASES]


def build(case: Case, root: Path) -> tuple[str, Path, dict[str, Any]]:
    out = case.build(root)
    if case.id in _EXTRA:
        _EXTRA[case.id](root)
    return out


def tree_fingerprint(path: Path) -> dict[str, tuple]:
    """Every entry under ``path`` (not following symlinks): type, size, mtime."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(path))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def store_fingerprint(ws: Any) -> tuple:
    tables = [
        "datasets",
        "classes",
        "examples",
        "annotations",
        "blobs",
        "directories",
        "directory_members",
        "snapshots",
    ]
    rows = tuple(
        tuple(map(tuple, ws.conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall())) for t in tables
    )
    return rows, frozenset(ws.blobs.all()), len(ws.blobs.temp_files())


def run_case(built: tuple[str, Path, dict[str, Any]], ws: Any) -> BaseException | None:
    """Import a built case into dataset ``hostile`` of ``ws``, as the CLI does; the error, or None."""
    from workbench.data.transfer import import_source

    fmt, src, options = built
    try:
        import_source(ws, "hostile", src, fmt, **options)
    except BaseException as e:  # noqa: BLE001 - the caller judges what came out
        return e
    return None


def outside_fingerprint(work: Path) -> dict[str, tuple]:
    """Everything under ``work`` but the workspace folder (whose content ``store_fingerprint`` checks)."""
    return {k: v for k, v in tree_fingerprint(work).items() if not (k == "ws" or k.startswith("ws/"))}


# ------------------------------------------------------------------------------------------ one process
class _Alarm(Exception):
    pass


def _rss_kb(field: str) -> int:
    """VmRSS / VmHWM (peak since the last reset) of this process, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Alarm()


def build_all(work: Path) -> dict[str, Any]:
    """Build every case under ``work/src/<id>``; the manifest maps id -> [format, source, options]."""
    manifest = {}
    for _, case in all_cases():
        root = work / "src" / case.id
        root.mkdir(parents=True)
        fmt, src, options = build(case, root)
        manifest[case.id] = [fmt, str(src), options]
    (work / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def import_all(out_path: Path, work: Path, limit_bytes: int, per_case_s: int) -> None:
    """Import every built case (see ``build_all``) under RLIMIT_AS and a per-case alarm, in one process
    that built nothing (so its peak RSS is the imports' own); write {id: result} as JSON."""
    from workbench.data import Workspace
    from workbench.errors import WorkbenchError

    resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
    signal.signal(signal.SIGALRM, _alarm)
    manifest = json.loads((work / "manifest.json").read_text())
    ws = Workspace(work / "ws")
    results: dict[str, Any] = {}
    start_rss = _rss_kb("VmRSS")
    process_peak = start_rss
    for table, case in all_cases():
        fmt, src, options = manifest[case.id]
        before_store, before_tree = store_fingerprint(ws), outside_fingerprint(work)
        rss0 = _rss_kb("VmRSS")
        _reset_peak()
        t0 = time.monotonic()
        signal.alarm(per_case_s)
        try:
            err = run_case((fmt, Path(src), options), ws)
        except _Alarm:
            err = _Alarm(f"still running after {per_case_s} s")
        finally:
            signal.alarm(0)
        seconds = time.monotonic() - t0
        peak = _rss_kb("VmHWM")
        process_peak = max(process_peak, peak)
        results[case.id] = {
            "table": table,
            "category": category(case.id),
            "error": type(err).__name__ if err is not None else None,
            "typed": isinstance(err, WorkbenchError),
            "expected": isinstance(err, case.error),
            "message": str(err)[:3000] if err is not None else "",
            "seconds": round(seconds, 3),
            "peak_rss_mb": round(peak / 1024, 1),
            "rss_growth_mb": round((peak - rss0) / 1024, 1),
            "store_unchanged": store_fingerprint(ws) == before_store,
            "nothing_written_outside": outside_fingerprint(work) == before_tree,
            "code_ran": os.path.exists(MARKER),
        }
    ws.close()
    results["_process"] = {
        "start_rss_mb": round(start_rss / 1024, 1),
        "peak_rss_mb": round(process_peak / 1024, 1),
        "limit_mb": limit_bytes >> 20,
    }
    Path(out_path).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build_all(Path(sys.argv[2]))
    else:
        import_all(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
