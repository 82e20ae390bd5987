"""Format adapters: registry, safe paths, RLE, and the batch-level round trip of every writable format.

Round trip contract: items with real images -> Examples -> writer -> reader -> the same image bytes, the
same Annotation.content() per image (in order), the same classes and the same splits.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from workbench.data.formats import READERS, WRITERS, get_reader, get_writer
from workbench.data.formats.paths import list_images, safe_join
from workbench.data.formats.rle import (
    canonical_counts,
    decode_counts_string,
    encode_counts_string,
    mask_to_polygons,
    rasterize,
    rle_from_array,
    rle_to_array,
)
from workbench.data.images import probe_image
from workbench.data.records import Annotation, ClassDef, Example, ImportBatch, ImportItem, default_color
from workbench.errors import AlreadyExistsError, UnknownNameError, UnsafePathError, ValidationError


# ----------------------------------------------------------------------------------------------- helpers
def image_bytes(w: int, h: int, seed: int, fmt: str = "PNG", mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([(xx * 7 + seed * 31) % 256, (yy * 5 + seed * 17) % 256, rng.integers(0, 256, (h, w))], -1)
    im = Image.fromarray(arr.astype(np.uint8)).convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


# (file name, width, height, format, mode): varied sizes, encodings and modes; two share a file name.
IMAGES = [
    ("a.jpg", 64, 48, "JPEG", "RGB"),
    ("b.png", 40, 56, "PNG", "RGB"),
    ("dup.jpg", 50, 50, "JPEG", "L"),
    ("sub/dup.jpg", 33, 21, "JPEG", "RGB"),
    ("c.png", 72, 30, "PNG", "RGBA"),
    ("d.bmp", 24, 36, "BMP", "RGB"),
]
SPLIT_CYCLE = ["train", "train", "val", "test", "train", "val"]


def disk_mask(h: int, w: int, cx: float, cy: float, r: float) -> dict:
    yy, xx = np.mgrid[0:h, 0:w]
    return rle_from_array(((xx - cx) ** 2 + (yy - cy) ** 2) <= r * r)


def geometry_for(kind: str, i: int, w: int, h: int) -> list[tuple[str, dict]]:
    """Annotations (kind, kwargs) for image i suited to a dataset type."""
    if kind == "detection":
        if i == 4:
            return []  # an image without objects
        return [
            ("box", {"bbox": (1.0 + i, 2.5, w / 2, h / 3)}),
            ("box", {"bbox": (w - 10.25, h - 8.0, 10.25, 8.0)}),
        ]
    if kind == "segmentation":
        poly = (1.0, 1.0, w - 2.0, 1.5, w / 2, h - 1.0, 2.25, h / 2)
        return [
            ("polygon", {"polygons": (poly,)}),
            ("mask", {"mask": disk_mask(h, w, w / 2, h / 2, min(w, h) / 4 + i)}),
            ("box", {"bbox": (0.0, 0.0, 5.0, 4.0)}),
        ]
    if kind == "segmentation-polygons":  # YOLO: one polygon per instance, no masks
        return [
            ("polygon", {"polygons": ((1.0, 1.0, w - 2.0, 1.5, w / 2, h - 1.0),)}),
            ("box", {"bbox": (3.0, 2.0, 6.5, 4.0)}),
        ]
    raise AssertionError(kind)


def make_batch(dataset_type: str, *, custom_colors: bool = False) -> ImportBatch:
    # Sorted names (ImageFolder orders classes by folder name); anomaly classes in records' order.
    names = ["good", "anomalous"] if dataset_type == "anomaly" else ["bird", "cat", "dog"]
    colors = (
        ["#123456", "#abcdef", "#00ff7f"] if custom_colors else [default_color(i) for i in range(len(names))]
    )
    classes = [ClassDef(n, colors[i]) for i, n in enumerate(names)]
    items = []
    for i, (name, w, h, fmt, mode) in enumerate(IMAGES):
        data = image_bytes(w, h, i, fmt, mode)
        if dataset_type == "classification":
            anns = [Annotation("label", names[i % len(names)])]
        elif dataset_type == "anomaly":
            if i % 2 == 0:
                anns = [Annotation("anomaly", "good")]
            elif i == 3:
                anns = [Annotation("anomaly", "anomalous")]  # anomalous without a region
            else:
                anns = [Annotation("anomaly", "anomalous", mask=disk_mask(h, w, w / 3, h / 3, 5 + i))]
        else:
            geo_kind = dataset_type
            anns = [
                Annotation(kind, names[(i + k) % len(names)], **kw)
                for k, (kind, kw) in enumerate(geometry_for(geo_kind, i, w, h))
            ]
        items.append(ImportItem(file_name=name, data=data, annotations=anns, split=SPLIT_CYCLE[i]))
    batch_type = "segmentation" if dataset_type.startswith("segmentation") else dataset_type
    return ImportBatch(items=items, classes=classes, type=batch_type)


def to_examples(batch: ImportBatch) -> tuple[list[Example], dict[str, bytes]]:
    """The tiny adapter: ImportItems -> Examples over a dict of blobs."""
    blobs: dict[str, bytes] = {}
    examples = []
    for i, it in enumerate(batch.items, 1):
        data = it.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        blobs[sha] = data
        info = probe_image(data)
        examples.append(
            Example(
                id=i,
                dataset="t",
                blob=sha,
                file_name=it.file_name,
                width=info.width,
                height=info.height,
                split=it.split or "train",
                status="annotated",
                annotations=tuple(it.annotations),
            )
        )
    return examples, blobs


def signature(batch: ImportBatch) -> dict[str, tuple[str | None, list[dict]]]:
    out = {}
    for it in batch.items:
        sha = hashlib.sha256(it.read_bytes()).hexdigest()
        assert sha not in out, "two items with the same bytes"
        out[sha] = (it.split, [a.content() for a in it.annotations])
    return out


# (format, batch type given to make_batch, dataset type written, colours carried by the format)
ROUND_TRIPS = [
    ("coco", "detection", "detection", True),
    ("coco", "segmentation", "segmentation", True),
    ("yolo", "detection", "detection", False),
    ("yolo", "segmentation-polygons", "segmentation", False),
    ("voc", "detection", "detection", False),
    ("imagefolder", "classification", "classification", False),
    ("anomaly-folder", "anomaly", "anomaly", False),
    ("cvat", "detection", "detection", True),
    ("cvat", "segmentation", "segmentation", True),
    ("labelme", "detection", "detection", False),
    ("labelme", "segmentation", "segmentation", False),
    ("label-studio", "detection", "detection", True),
    ("label-studio", "segmentation-polygons", "segmentation", True),
    ("label-studio", "classification", "classification", True),
]


# ----------------------------------------------------------------------------------------------- round trip
@pytest.mark.parametrize(
    "fmt,batch_kind,dtype,colors", ROUND_TRIPS, ids=[f"{r[0]}-{r[2]}" for r in ROUND_TRIPS]
)
def test_round_trip(tmp_path: Path, fmt: str, batch_kind: str, dtype: str, colors: bool) -> None:
    batch = make_batch(batch_kind, custom_colors=colors)
    examples, blobs = to_examples(batch)
    written = get_writer(fmt).write(tmp_path / "out", examples, batch.classes, dtype, blobs.__getitem__)
    out = (tmp_path / "out").resolve()
    assert written and all(Path(p).resolve().is_relative_to(out) for p in written)
    assert all(Path(p).is_file() for p in written)

    src = out / "annotations.json" if fmt == "coco" else out
    back = get_reader(fmt).read(src)
    assert back.type == dtype
    if fmt == "imagefolder":  # class order is the sorted folder names
        assert [c.name for c in back.classes] == sorted(c.name for c in batch.classes)
    else:
        assert back.classes == batch.classes
    assert signature(back) == signature(batch)
    # The two images called dup.jpg both survive, under different names.
    names = sorted(it.file_name for it in back.items)
    assert len(names) == len(set(names)) == len(IMAGES)


@pytest.mark.parametrize(
    "fmt,batch_kind,dtype,colors", ROUND_TRIPS, ids=[f"{r[0]}-{r[2]}" for r in ROUND_TRIPS]
)
def test_writers_are_deterministic(
    tmp_path: Path, fmt: str, batch_kind: str, dtype: str, colors: bool
) -> None:
    batch = make_batch(batch_kind, custom_colors=colors)
    examples, blobs = to_examples(batch)
    trees = []
    for name, order in (("one", examples), ("two", list(reversed(examples)))):
        get_writer(fmt).write(tmp_path / name, order, batch.classes, dtype, blobs.__getitem__)
        root = tmp_path / name
        trees.append(
            {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
        )
    assert trees[0] == trees[1]


def test_round_trip_twice_is_stable(tmp_path: Path) -> None:
    """import -> export -> import -> export: the second export equals the first (COCO, masks included)."""
    batch = make_batch("segmentation", custom_colors=True)
    examples, blobs = to_examples(batch)
    get_writer("coco").write(tmp_path / "one", examples, batch.classes, "segmentation", blobs.__getitem__)
    back = get_reader("coco").read(tmp_path / "one" / "annotations.json")
    examples2, blobs2 = to_examples(back)
    get_writer("coco").write(tmp_path / "two", examples2, back.classes, "segmentation", blobs2.__getitem__)
    assert (tmp_path / "one" / "annotations.json").read_bytes() == (
        tmp_path / "two" / "annotations.json"
    ).read_bytes()


@pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")  # numpy 2 copy= notice in annToMask
@pytest.mark.parametrize("dtype", ["detection", "segmentation"])
def test_pycocotools_loads_what_we_write(tmp_path: Path, dtype: str) -> None:
    from pycocotools.coco import COCO

    batch = make_batch(dtype, custom_colors=True)
    examples, blobs = to_examples(batch)
    get_writer("coco").write(tmp_path, examples, batch.classes, dtype, blobs.__getitem__)
    coco = COCO(str(tmp_path / "annotations.json"))
    assert len(coco.getImgIds()) == len(examples)
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == [c.name for c in batch.classes]
    n_anns = sum(len(ex.annotations) for ex in examples)
    assert len(coco.getAnnIds()) == n_anns
    by_id = {ex.id: ex for ex in examples}
    for ann in coco.loadAnns(coco.getAnnIds()):
        ex = by_id[ann["image_id"]]
        ours = next(a for a in ex.annotations if list(a.bbox) == ann["bbox"])
        if ours.kind == "mask":  # pycocotools decodes our compressed RLE to exactly our mask
            assert np.array_equal(coco.annToMask(ann), rle_to_array(ours.mask))
            assert ann["area"] == ours.area
        elif ours.kind == "polygon":
            assert coco.annToMask(ann).shape == (ex.height, ex.width)


# ----------------------------------------------------------------------------------------------- registry
def test_registry_names_and_errors() -> None:
    assert set(READERS) == {"coco", "yolo", "voc", "imagefolder", "anomaly-folder", "images", "video", "cvat",
                            "labelme", "label-studio", "mvtec"}
    assert set(WRITERS) == {"coco", "yolo", "voc", "imagefolder", "anomaly-folder", "cvat", "labelme",
                            "label-studio", "mvtec"}
    with pytest.raises(UnknownNameError, match="unknown format 'kitti'; valid: anomaly-folder, coco"):
        get_reader("kitti")
    with pytest.raises(UnknownNameError, match="video"):
        get_writer("video")
    assert "clip_boxes" in get_reader("coco").options and "every" in get_reader("video").options


def test_importing_formats_loads_no_heavy_library() -> None:
    code = (
        "import sys, workbench.data.formats; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'cv2', 'pycocotools', 'yaml', 'defusedxml'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_option_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="no option 'clipboxes'.*valid: .*clip_boxes"):
        get_reader("coco").read(tmp_path / "x.json", clipboxes=True)
    with pytest.raises(ValidationError, match="no option 'indent'"):
        get_writer("yolo").write(tmp_path, [], [], "detection", lambda s: b"", indent=2)


@pytest.mark.parametrize(
    "fmt,dtype",
    [
        ("coco", "classification"),
        ("yolo", "anomaly"),
        ("voc", "segmentation"),
        ("imagefolder", "detection"),
        ("anomaly-folder", "classification"),
    ],
)
def test_writer_refuses_other_dataset_types(tmp_path: Path, fmt: str, dtype: str) -> None:
    with pytest.raises(ValidationError, match=f"the {fmt} format holds"):
        get_writer(fmt).write(tmp_path / "o", [], [], dtype, lambda s: b"")
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------------------------- writers
def _one_example(file_name: str = "x.png", anns=(), split: str = "train") -> tuple[Example, dict[str, bytes]]:
    data = image_bytes(20, 10, 1)
    sha = hashlib.sha256(data).hexdigest()
    return Example(1, "t", sha, file_name, 20, 10, split, "new", annotations=tuple(anns)), {sha: data}


def test_writer_refuses_non_empty_folder_unless_overwrite(tmp_path: Path) -> None:
    ex, blobs = _one_example(anns=[Annotation("box", "a", bbox=(1, 1, 3, 3))])
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(AlreadyExistsError, match="not empty"):
        get_writer("coco").write(tmp_path, [ex], [ClassDef("a", "#ff0000")], "detection", blobs.__getitem__)
    get_writer("coco").write(
        tmp_path, [ex], [ClassDef("a", "#ff0000")], "detection", blobs.__getitem__, overwrite=True
    )
    assert (tmp_path / "keep.txt").read_text() == "mine" and (tmp_path / "annotations.json").is_file()


@pytest.mark.parametrize("fmt", ["coco", "yolo", "voc"])
def test_writers_stay_inside_out_and_fix_suffixes(tmp_path: Path, fmt: str) -> None:
    ex, blobs = _one_example("../../escape.jpg", anns=[Annotation("box", "a", bbox=(1, 1, 3, 3))])
    files = get_writer(fmt).write(
        tmp_path / "o", [ex], [ClassDef("a", "#ff0000")], "detection", blobs.__getitem__
    )
    assert all(p.resolve().is_relative_to((tmp_path / "o").resolve()) for p in files)
    assert not list(tmp_path.glob("escape*"))
    # The bytes are a PNG, so the name says .png.
    assert [p.name for p in files if p.suffix in (".png", ".jpg")] == ["escape.png"]


def test_writer_checks_labels_and_blobs(tmp_path: Path) -> None:
    ex, blobs = _one_example(anns=[Annotation("box", "zebra", bbox=(1, 1, 3, 3))])
    with pytest.raises(ValidationError, match="record example 1: field 'label'.*zebra"):
        get_writer("coco").write(
            tmp_path / "a", [ex], [ClassDef("a", "#ff0000")], "detection", blobs.__getitem__
        )
    ex, _ = _one_example(anns=[Annotation("box", "a", bbox=(1, 1, 3, 3))])
    with pytest.raises(ValidationError, match="field 'blob'"):
        get_writer("coco").write(
            tmp_path / "b", [ex], [ClassDef("a", "#ff0000")], "detection", lambda sha: image_bytes(20, 10, 2)
        )
    ex, blobs = _one_example(anns=[Annotation("polygon", "a", polygons=((1, 1, 5, 1, 3, 4),))])
    with pytest.raises(ValidationError, match="cannot hold 'polygon'"):
        get_writer("yolo").write(
            tmp_path / "c", [ex], [ClassDef("a", "#ff0000")], "detection", blobs.__getitem__
        )


@pytest.mark.parametrize("name", ["a/b", "..", ".hidden"])
def test_imagefolder_refuses_class_names_that_are_not_folder_names(tmp_path: Path, name: str) -> None:
    ex, blobs = _one_example(anns=[Annotation("label", name)])
    with pytest.raises(ValidationError, match="cannot be a folder name"):
        get_writer("imagefolder").write(
            tmp_path / "o", [ex], [ClassDef(name, "#ff0000")], "classification", blobs.__getitem__
        )
    assert not (tmp_path / "o").exists()


def test_imagefolder_writer_needs_a_label(tmp_path: Path) -> None:
    ex, blobs = _one_example()
    cls = [ClassDef("a", "#ff0000")]
    with pytest.raises(ValidationError, match="record example 1: field 'label': has no class label"):
        get_writer("imagefolder").write(tmp_path / "o", [ex], cls, "classification", blobs.__getitem__)
    assert (
        get_writer("imagefolder").write(
            tmp_path / "p", [ex], cls, "classification", blobs.__getitem__, skip_unlabeled=True
        )
        == []
    )


def test_yolo_writes_masks_as_traced_polygons(tmp_path: Path) -> None:
    mask = np.zeros((10, 20), np.uint8)
    mask[2:6, 3:9] = 1
    ex, blobs = _one_example(anns=[Annotation("mask", "a", mask=rle_from_array(mask))])
    get_writer("yolo").write(tmp_path, [ex], [ClassDef("a", "#ff0000")], "segmentation", blobs.__getitem__)
    back = get_reader("yolo").read(tmp_path)
    (ann,) = back.items[0].annotations
    assert ann.kind == "polygon" and ann.bbox == (3.0, 2.0, 6.0, 4.0)


def test_anomaly_writer_fills_polygon_regions(tmp_path: Path) -> None:
    ex, blobs = _one_example(
        anns=[Annotation("anomaly", "anomalous", polygons=((2, 2, 10, 2, 10, 8, 2, 8),))]
    )
    get_writer("anomaly-folder").write(tmp_path, [ex], [], "anomaly", blobs.__getitem__)
    (item,) = get_reader("anomaly-folder").read(tmp_path).items
    (ann,) = item.annotations
    assert ann.kind == "anomaly" and ann.mask is not None and ann.bbox == (2.0, 2.0, 8.0, 6.0)
    assert ann.area == 48.0  # pixel-centre rule: the polygon's own area


# ----------------------------------------------------------------------------------------------- readers
def test_coco_reader_details(tmp_path: Path) -> None:
    """Uncompressed + compressed RLE, iscrowd, images/ fallback, image id kept, colour optional."""
    from pycocotools import mask as mask_utils

    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "p.png").write_bytes(image_bytes(30, 20, 3))
    m = np.zeros((20, 30), np.uint8)
    m[5:9, 4:20] = 1
    comp = mask_utils.encode(np.asfortranarray(m))
    doc = {
        "images": [{"id": 7, "file_name": "p.png", "width": 30, "height": 20}],
        "categories": [{"id": 3, "name": "thing"}, {"id": 9, "name": "other", "color": "#ABCDEF"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 7,
                "category_id": 3,
                "iscrowd": 1,
                "segmentation": {"size": [20, 30], "counts": comp["counts"].decode()},
            },
            {
                "id": 2,
                "image_id": 7,
                "category_id": 9,
                "iscrowd": 0,
                "segmentation": {"size": [20, 30], "counts": [0, 0, 0, 600]},
            },  # zero-length runs canonicalized
            {"id": 3, "image_id": 7, "category_id": 3, "bbox": [1, 2, 3, 4]},
        ],
    }
    (tmp_path / "ann.json").write_text(json.dumps(doc))
    batch = get_reader("coco").read(tmp_path / "ann.json")
    assert batch.type == "segmentation"
    assert [(c.name, c.color) for c in batch.classes] == [("thing", default_color(0)), ("other", "#abcdef")]
    (item,) = batch.items
    assert item.record == 7 and item.file_name == "p.png"
    a1, a2, a3 = item.annotations
    assert np.array_equal(rle_to_array(a1.mask), m) and a1.bbox == (4.0, 5.0, 16.0, 4.0)
    assert a2.mask["counts"] == [0, 600]
    assert a3.kind == "box" and a3.bbox == (1.0, 2.0, 3.0, 4.0)
    skipped = get_reader("coco").read(tmp_path / "ann.json", crowd="skip")
    assert len(skipped.items[0].annotations) == 2


def test_coco_lenient_options(tmp_path: Path) -> None:
    (tmp_path / "p.png").write_bytes(image_bytes(30, 20, 3))
    doc = {
        "images": [
            {"id": 1, "file_name": "p.png", "width": 30, "height": 20},
            {"id": 2, "file_name": "gone.png", "width": 30, "height": 20},
        ],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [25, 15, 10, 10]},
            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [1, 1, 2, 2]},
        ],
    }
    (tmp_path / "a.json").write_text(json.dumps(doc))
    batch = get_reader("coco").read(tmp_path / "a.json", clip_boxes=True, skip_missing=True)
    (item,) = batch.items
    assert [a.bbox for a in item.annotations] == [(25.0, 15.0, 5.0, 5.0)]


def test_yolo_reads_folder_layout_and_list_files(tmp_path: Path) -> None:
    for split in ("train", "val"):
        (tmp_path / "images" / split).mkdir(parents=True)
        (tmp_path / "labels" / split).mkdir(parents=True)
    (tmp_path / "images" / "train" / "a.png").write_bytes(image_bytes(40, 20, 1))
    (tmp_path / "images" / "val" / "b.png").write_bytes(image_bytes(40, 20, 2))
    (tmp_path / "labels" / "train" / "a.txt").write_text("2 0.5 0.5 0.5 0.5\n\n")
    with pytest.raises(ValidationError, match=r"1 of 2 images have no label file \(first: images/val/b.png.*"
                                              r"--allow-unlabeled"):
        get_reader("yolo").read(tmp_path)
    batch = get_reader("yolo").read(tmp_path, allow_unlabeled=True)  # no classes.txt: names "0".."2"
    assert [c.name for c in batch.classes] == ["0", "1", "2"]
    assert [(it.file_name, it.split) for it in batch.items] == [("a.png", "train"), ("b.png", "val")]
    assert batch.items[0].annotations[0].bbox == (10.0, 5.0, 20.0, 10.0)
    assert batch.items[1].annotations == []
    assert [it.status for it in batch.items] == ["annotated", "new"]
    (tmp_path / "labels" / "val" / "b.txt").write_text("")
    # A yaml with a .txt image list and a names dict.
    (tmp_path / "train.txt").write_text("./images/train/a.png\nimages/val/b.png\n")
    (tmp_path / "data.yaml").write_text("train: train.txt\nnames: {0: x, 1: y, 2: z}\n")
    batch = get_reader("yolo").read(tmp_path / "data.yaml")
    assert [c.name for c in batch.classes] == ["x", "y", "z"]
    assert [it.split for it in batch.items] == ["train", "train"]


def test_voc_coordinates_one_based_when_asked(tmp_path: Path) -> None:
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "JPEGImages" / "i.png").write_bytes(image_bytes(20, 10, 1))
    (tmp_path / "Annotations" / "i.xml").write_text(
        "<annotation><filename>i.png</filename><size><width>20</width><height>10</height></size>"
        "<object><name>a</name><difficult>1</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>20</xmax>"
        "<ymax>10</ymax></bndbox></object></annotation>"
    )
    (item,) = get_reader("voc").read(tmp_path, one_based=True).items
    assert item.annotations[0].bbox == (0.0, 0.0, 20.0, 10.0) and item.split is None
    assert get_reader("voc").read(tmp_path, skip_difficult=True).items[0].annotations == []
    (item,) = get_reader("voc").read(tmp_path).items  # by default as written (datumaro, torchvision, globox)
    assert item.annotations[0].bbox == (1.0, 1.0, 19.0, 9.0)


def test_imagefolder_flat_layout(tmp_path: Path) -> None:
    (tmp_path / "cat" / "deep").mkdir(parents=True)
    (tmp_path / "dog").mkdir()
    (tmp_path / "empty").mkdir()
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / "cat" / "deep" / "a.png").write_bytes(image_bytes(8, 8, 1))
    (tmp_path / "dog" / "b.jpg").write_bytes(image_bytes(8, 8, 2, "JPEG"))
    (tmp_path / "dog" / "notes.txt").write_text("ignored")
    (tmp_path / ".ipynb_checkpoints" / "c.png").write_bytes(image_bytes(8, 8, 3))
    batch = get_reader("imagefolder").read(tmp_path)
    assert [c.name for c in batch.classes] == ["cat", "dog", "empty"]
    assert [(it.record, it.split, it.annotations[0].label) for it in batch.items] == [
        ("cat/deep/a.png", None, "cat"),
        ("dog/b.jpg", None, "dog"),
    ]


def test_anomaly_masks_at_the_root_with_splits(tmp_path: Path) -> None:
    (tmp_path / "test" / "anomalous").mkdir(parents=True)
    (tmp_path / "train" / "good").mkdir(parents=True)
    (tmp_path / "masks").mkdir()
    (tmp_path / "train" / "good" / "g.png").write_bytes(image_bytes(12, 10, 1))
    (tmp_path / "test" / "anomalous" / "x.png").write_bytes(image_bytes(12, 10, 2))
    m = np.zeros((10, 12), np.uint8)
    m[2:4, 5:9] = 255
    Image.fromarray(m).save(tmp_path / "masks" / "x.png")
    batch = get_reader("anomaly-folder").read(tmp_path)
    assert [c.name for c in batch.classes] == ["good", "anomalous"] and batch.type == "anomaly"
    good, bad = sorted(batch.items, key=lambda it: it.record)[::-1]
    assert (good.split, good.annotations[0].content()) == ("train", {"kind": "anomaly", "label": "good"})
    assert bad.split == "test" and bad.annotations[0].bbox == (5.0, 2.0, 4.0, 2.0)


def test_yolo_absolute_path_to_its_own_folder_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "images" / "train" / "a.png").write_bytes(image_bytes(8, 8, 1))
    (tmp_path / "data.yaml").write_text(f"path: {tmp_path}\ntrain: images/train\nnames: [a]\n")
    batch = get_reader("yolo").read(tmp_path / "data.yaml", allow_unlabeled=True)
    assert [(it.file_name, it.split, it.annotations) for it in batch.items] == [("a.png", "train", [])]


def test_yolo_roboflow_style_yaml(tmp_path: Path) -> None:
    """Roboflow writes ``train: ../train/images``; Ultralytics reads it as ``train/images`` in the root."""
    for split in ("train", "valid"):
        (tmp_path / split / "images").mkdir(parents=True)
        (tmp_path / split / "labels").mkdir(parents=True)
        (tmp_path / split / "images" / f"{split}.png").write_bytes(image_bytes(10, 10, 1 + len(split)))
    (tmp_path / "train" / "labels" / "train.txt").write_text("0 0.5 0.5 0.4 0.2\n")
    (tmp_path / "valid" / "labels" / "valid.txt").write_text("")
    (tmp_path / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 1\nnames: ['a']\n")
    batch = get_reader("yolo").read(tmp_path)
    assert [(it.file_name, it.split, len(it.annotations)) for it in batch.items] == [
        ("train.png", "train", 1),
        ("valid.png", "val", 0),
    ]


def test_images_reader_recursive_and_single_file(tmp_path: Path) -> None:
    (tmp_path / "x" / ".ipynb_checkpoints").mkdir(parents=True)
    (tmp_path / "x" / "b.png").write_bytes(image_bytes(8, 8, 1))
    (tmp_path / "a.JPG").write_bytes(image_bytes(8, 8, 2, "JPEG"))
    (tmp_path / "x" / ".ipynb_checkpoints" / "c.png").write_bytes(image_bytes(8, 8, 3))
    (tmp_path / "notes.txt").write_text("not an image")
    batch = get_reader("images").read(tmp_path)
    assert [it.record for it in batch.items] == ["a.JPG", "x/b.png"]
    assert batch.type is None and all(not it.annotations for it in batch.items)
    assert len(get_reader("images").read(tmp_path / "a.JPG").items) == 1
    assert [it.record for it in get_reader("images").read(tmp_path, recursive=False).items] == ["a.JPG"]


# ----------------------------------------------------------------------------------------------- video
def _video(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    import cv2

    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def _noise(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return np.kron(small, np.ones((8, 8, 1), np.uint8))  # 48x64, blocky so JPEG keeps it


def test_video_every_count_and_duplicates(tmp_path: Path) -> None:
    frames = [_noise(i // 3) for i in range(30)]  # 10 distinct scenes, each held for 3 frames
    src = _video(tmp_path / "clip.avi", frames)
    every = get_reader("video").read(src, every=10)
    assert [it.file_name for it in every.items] == [
        "clip_f000000.png",
        "clip_f000010.png",
        "clip_f000020.png",
    ]
    assert every.items[1].record == "frame 10" and every.type is None
    assert probe_image(every.items[0].data).format == "PNG"
    count = get_reader("video").read(src, count=3)
    assert [it.record for it in count.items] == ["frame 5", "frame 15", "frame 25"]
    unique = get_reader("video").read(src, skip_duplicates=True)
    assert [it.record for it in unique.items] == [f"frame {3 * k}" for k in range(10)]
    assert len(get_reader("video").read(src).items) == 30
    with pytest.raises(ValidationError, match="max_frames"):
        get_reader("video").read(src, max_frames=5)
    with pytest.raises(ValidationError, match="not both"):
        get_reader("video").read(src, every=2, count=2)


# ----------------------------------------------------------------------------------------------- paths
@pytest.mark.parametrize("rel", ["a.png", "sub/a.png", "sub\\a.png", "./a.png", "sub/./a.png"])
def test_safe_join_accepts_relative_paths(tmp_path: Path, rel: str) -> None:
    assert safe_join(tmp_path, rel).is_relative_to(tmp_path.resolve())


@pytest.mark.parametrize(
    "rel,message",
    [
        ("../a.png", "'..'"),
        ("sub/../../a.png", "'..'"),
        ("/etc/passwd", "absolute"),
        ("C:\\x.png", "absolute"),
        ("..\\a.png", "'..'"),
        ("a\x00.png", "NUL"),
    ],
)
def test_safe_join_refuses_escapes(tmp_path: Path, rel: str, message: str) -> None:
    with pytest.raises(UnsafePathError, match=message) as e:
        safe_join(tmp_path, rel, file="ann.json", record="image 3", field="file_name")
    assert "ann.json: record image 3: field 'file_name'" in str(e.value)


def test_safe_join_and_list_images_refuse_symlinks_out(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "o.png").write_bytes(image_bytes(4, 4, 1))
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "z.png").write_bytes(image_bytes(4, 4, 2))
    (root / "a.png").write_bytes(image_bytes(4, 4, 3))
    os.symlink(root / "a.png", root / "inside_link.png")
    os.symlink(root / "d", root / "dir_link")  # not followed
    assert [p.relative_to(root).as_posix() for p in list_images(root)] == [
        "a.png",
        "d/z.png",
        "inside_link.png",
    ]
    os.symlink(outside / "o.png", root / "evil.png")
    with pytest.raises(UnsafePathError, match="outside"):
        safe_join(root, "evil.png")
    with pytest.raises(UnsafePathError, match="evil.png: symlink points to"):
        list_images(root)


# ----------------------------------------------------------------------------------------------- RLE
def _random_masks() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    masks = [np.zeros((5, 7), np.uint8), np.ones((5, 7), np.uint8)]
    for _ in range(20):
        h, w = rng.integers(1, 40, 2)
        masks.append((rng.random((h, w)) < rng.random()).astype(np.uint8))
    big = np.zeros((300, 400), np.uint8)
    big[50:250, 10:390] = 1  # long runs: multi-chunk counts
    masks.append(big)
    return masks


def test_rle_matches_pycocotools() -> None:
    from pycocotools import mask as mask_utils

    for m in _random_masks():
        ours = rle_from_array(m)
        theirs = mask_utils.encode(np.asfortranarray(m))
        assert encode_counts_string(ours["counts"]) == theirs["counts"].decode()
        assert decode_counts_string(theirs["counts"], ours["size"]) == ours["counts"]
        assert np.array_equal(rle_to_array(ours), m)
        fr = mask_utils.frPyObjects({"size": ours["size"], "counts": ours["counts"]}, *ours["size"])
        assert fr["counts"] == theirs["counts"]


@pytest.mark.parametrize(
    "s,message",
    [("0`0", "sum"), ("0\x7f", "invalid byte"), ("0b", "ends in the middle"), ("o" * 20, "large")],
)
def test_rle_string_refuses_malformed(s: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        decode_counts_string(s, [3, 3])


def test_canonical_counts_and_geometry_helpers() -> None:
    assert canonical_counts([2, 0, 3, 1]) == [5, 1]
    assert canonical_counts([0, 0, 3, 2, 0, 1]) == [3, 3]
    assert canonical_counts([0, 4, 0, 2]) == [0, 6]
    arr = rasterize([(1, 1, 5, 1, 5, 4, 1, 4)], None, 6, 8)
    assert arr.sum() == 12 and arr[1, 1] == 1 and arr[4, 5] == 0  # 4 x 3 pixels, centre rule
    rect = rasterize(None, (2, 1, 3, 2), 6, 8)
    assert rect.sum() == 6
    polys = mask_to_polygons(rle_from_array(rect))
    assert polys == [(2.0, 1.0, 2.0, 3.0, 5.0, 3.0, 5.0, 1.0)]
    # Tracing a hole-free mask along pixel edges and filling it back gives the very same pixels.
    for m in [rect, rasterize([(3.2, 0.5, 7.9, 2.2, 6.1, 5.8, 1.0, 4.4)], None, 6, 8)]:
        traced = mask_to_polygons(rle_from_array(m))
        assert np.array_equal(rasterize(traced, None, *m.shape), m)


@given(st.text(alphabet="ab./\\ ", max_size=12))
def test_a_coco_file_name_gives_the_name_path_gives(rel):
    """The COCO reader takes an image's name with a string split (20,000 Path objects cost a tenth of a
    second): the same name ``Path`` gives, for ``/`` and ``\\`` separators, dots and empty parts."""
    from pathlib import Path

    from workbench.data.formats.coco import _base_name

    assert _base_name(rel) == Path(rel.replace("\\", "/")).name
