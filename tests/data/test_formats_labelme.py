"""LabelMe JSON: rectangles, polygons, masks, embedded images, paths relative to the JSON, flags and
attributes through a round trip, and hostile files refused (typed error naming file, record, field; the
store unchanged)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.data.test_formats import image_bytes, to_examples
from workbench.data import Workspace
from workbench.data.formats import get_reader, get_writer
from workbench.data.transfer import export_with_report, import_source
from workbench.errors import ImageError, ImportFormatError, UnsafePathError


def shape(label: str, kind: str, points: list, **extra) -> dict:
    return {"label": label, "points": points, "group_id": None, "description": "", "shape_type": kind,
            "flags": {}, "mask": None, **extra}


def doc(shapes: list, image_path: str = "a.png", w: int = 40, h: int = 30, **extra) -> dict:
    return {"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": image_path, "imageData": None,
            "imageHeight": h, "imageWidth": w, **extra}


def put(root: Path, name: str, d: dict | str, image: tuple[str, int, int] | None = ("a.png", 40, 30)) -> Path:
    p = root / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(d if isinstance(d, str) else json.dumps(d))
    if image is not None:
        (p.parent / image[0]).write_bytes(image_bytes(image[1], image[2], 3))
    return p


def test_reads_rectangles_polygons_and_attributes(tmp_path: Path) -> None:
    put(tmp_path, "train/a.json", doc([
        shape("cat", "rectangle", [[30, 20], [10, 5]], group_id=3, flags={"truncated": True}),
        shape("dog", "polygon", [[1, 1], [20, 1], [10, 25]], description="sitting"),
        shape("cat", None, [[2, 2], [8, 2], [5, 9]]),  # labelme < 3: no shape_type means a polygon
    ], image_path="a.png", flags={"night": True}))
    batch = get_reader("labelme").read(tmp_path)
    (it,) = batch.items
    assert (it.file_name, it.split, it.status) == ("a.png", "train", "annotated")
    assert it.origin == {"file_name": "train/a.json", "flags": {"night": True}}
    box, poly, old = it.annotations
    assert box.bbox == (10.0, 5.0, 20.0, 15.0) and box.attributes == {"group_id": 3, "flags": {"truncated": True}}
    assert poly.polygons == ((1.0, 1.0, 20.0, 1.0, 10.0, 25.0),) and poly.attributes == {"description": "sitting"}
    assert old.kind == "polygon"
    assert [c.name for c in batch.classes] == ["cat", "dog"] and batch.type == "segmentation"
    assert batch.report.kept_in_attributes == {"labelme group_id / description / shape flags": 2}


def test_image_data_and_paths_relative_to_the_json(tmp_path: Path) -> None:
    data = image_bytes(16, 12, 5)
    put(tmp_path, "ann/embedded.json", doc([shape("x", "rectangle", [[1, 1], [4, 4]])], image_path="gone.png",
                                           w=16, h=12, imageData=base64.b64encode(data).decode()), image=None)
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "b.png").write_bytes(image_bytes(40, 30, 1))
    put(tmp_path, "ann/b.json", doc([], image_path="..\\images\\b.png"), image=None)  # written on Windows
    batch = get_reader("labelme").read(tmp_path)
    b, emb = batch.items
    assert b.path == (tmp_path / "images" / "b.png").resolve() and b.annotations == []
    assert emb.data == data and emb.file_name == "gone.png"
    assert batch.type == "detection"


def test_mask_shape_is_placed_at_its_first_point(tmp_path: Path) -> None:
    patch = np.zeros((5, 7), dtype=np.uint8)
    patch[1:4, 2:6] = 1
    buf = io.BytesIO()
    Image.fromarray(patch).save(buf, format="PNG")
    put(tmp_path, "a.json", doc([shape("blob", "mask", [[10, 20], [16, 24]],
                                       mask=base64.b64encode(buf.getvalue()).decode())]))
    (ann,) = get_reader("labelme").read(tmp_path).items[0].annotations
    assert ann.kind == "mask" and ann.area == 12 and ann.bbox == (12.0, 21.0, 4.0, 3.0)


def test_round_trip_keeps_geometry_flags_and_attributes(tmp_path: Path) -> None:
    put(tmp_path / "src", "val/a.json", doc([
        shape("cat", "rectangle", [[10, 5], [30, 20]], group_id=1),
        shape("dog", "polygon", [[1, 1], [20, 1], [10, 25]], flags={"occluded": True}),
    ], flags={"blurry": False}))
    batch = get_reader("labelme").read(tmp_path / "src")
    with Workspace(tmp_path / "ws") as ws:
        ds, _ = import_source(ws, "l", tmp_path / "src", "labelme")
        get_writer("labelme").write(tmp_path / "out", ds.examples(), ds.classes, ds.type, ds.load_bytes)
    back = get_reader("labelme").read(tmp_path / "out")
    assert [a.content() for a in back.items[0].annotations] == [a.content() for a in batch.items[0].annotations]
    assert back.items[0].origin["flags"] == {"blurry": False} and back.items[0].split == "val"
    written = json.loads((tmp_path / "out" / "val" / "a.json").read_text())
    assert written["imagePath"] == "a.png" and written["shapes"][0]["group_id"] == 1


def test_writer_masks_read_back_equal(tmp_path: Path) -> None:
    from tests.data.test_formats import make_batch

    batch = make_batch("segmentation")
    examples, blobs = to_examples(batch)
    get_writer("labelme").write(tmp_path, examples, batch.classes, "segmentation", blobs.__getitem__)
    back = get_reader("labelme").read(tmp_path)
    masks = sorted(a.mask["counts"] == b.mask["counts"] for it, jt in zip(
        sorted(back.items, key=lambda i: i.file_name), sorted(batch.items, key=lambda i: i.file_name), strict=True)
        for a, b in zip(it.annotations, jt.annotations, strict=True) if a.kind == "mask")
    assert masks and all(masks)


HOSTILE = [
    ("malformed", "{\"shapes\": [", ImportFormatError, ("a.json", "malformed JSON")),
    ("not-labelme", json.dumps({"images": []}), ImportFormatError, ("a.json", "field 'shapes'", "not a LabelMe")),
    ("nan", doc([shape("x", "rectangle", [[float("nan"), 1], [3, 3]])]), ImportFormatError,
     ("a.json", "record shapes[0]", "field 'points'", "not finite")),
    ("no-label", doc([shape("", "rectangle", [[1, 1], [3, 3]])]), ImportFormatError,
     ("record shapes[0]", "field 'label'")),
    ("one-point-rect", doc([shape("x", "rectangle", [[1, 1]])]), ImportFormatError,
     ("record shapes[0]", "field 'points'", "2 points")),
    ("flat-polygon", doc([shape("x", "polygon", [[1, 1], [2, 2], [3, 3]])]), ImportFormatError,
     ("record shapes[0]", "field 'polygons'", "no area")),
    ("circle", doc([shape("x", "circle", [[1, 1], [3, 3]])]), ImportFormatError,
     ("record shapes[0]", "field 'shape_type'", "--skip-unsupported")),
    ("far-outside", doc([shape("x", "rectangle", [[1, 1], [90, 3]])]), ImportFormatError,
     ("record shapes[0]", "field 'bbox'", "--clip-boxes")),
    ("dotdot", doc([], image_path="../../etc/passwd"), UnsafePathError, ("field 'imagePath'", "leaves")),
    ("absolute", doc([], image_path="/etc/passwd"), UnsafePathError, ("field 'imagePath'", "absolute")),
    ("missing-image", doc([], image_path="nope.png"), ImportFormatError, ("field 'imagePath'", "not found")),
    ("size-mismatch", doc([], w=41), ImportFormatError, ("field 'imageWidth'", "40x30")),
    ("bad-image-data", doc([], imageData="bm90IGFuIGltYWdl"), ImageError, ("a.json",)),
    ("no-image", doc([], image_path=""), ImportFormatError, ("field 'imagePath'", "neither")),
    ("bad-mask", doc([shape("x", "mask", [[1, 1], [3, 3]], mask=12)]), ImportFormatError,
     ("record shapes[0]", "field 'mask'")),
]


@pytest.mark.parametrize("name,content,error,parts", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_files_are_refused_and_change_nothing(tmp_path: Path, name: str, content, error: type,
                                                      parts: tuple[str, ...]) -> None:
    put(tmp_path / "src", "a.json", content if isinstance(content, str) else json.dumps(content))
    put(tmp_path / "src", "b.json", doc([shape("x", "rectangle", [[1, 1], [3, 3]])], image_path="a.png"),
        image=None)
    with Workspace(tmp_path / "ws") as ws:
        ws.create_dataset("l", "detection", classes=["x"])
        with pytest.raises(error) as e:
            import_source(ws, "l", tmp_path / "src", "labelme")
        assert ws.dataset("l").count() == 0
    for part in parts:
        assert part in str(e.value), (part, str(e.value))


def test_skip_unsupported_counts_and_empty_folder(tmp_path: Path) -> None:
    put(tmp_path, "a.json", doc([shape("x", "circle", [[1, 1], [3, 3]]), shape("x", "line", [[1, 1], [3, 3]]),
                                 shape("x", "rectangle", [[1, 1], [3, 3]])]))
    batch = get_reader("labelme").read(tmp_path, skip_unsupported=True)
    assert len(batch.items[0].annotations) == 1
    assert batch.report.skipped == {"circle shape (not supported; --skip-unsupported)": 1,
                                    "line shape (not supported; --skip-unsupported)": 1}
    with pytest.raises(ImportFormatError, match="no LabelMe .json files"):
        get_reader("labelme").read(tmp_path / "train") if (tmp_path / "train").mkdir() is None else None


def test_crowd_regions(tmp_path: Path) -> None:
    put(tmp_path / "src", "a.json", doc([
        shape("__ignore__", "polygon", [[1, 1], [20, 1], [10, 25]]),
        shape("person", "rectangle", [[1, 1], [5, 5]], flags={"iscrowd": True, "blurred": True}),
        shape("person", "rectangle", [[2, 2], [6, 6]]),
    ]))
    batch = get_reader("labelme").read(tmp_path / "src")
    assert [(a.label, a.iscrowd, a.attributes) for a in batch.items[0].annotations] == [
        ("__ignore__", True, {}), ("person", True, {"flags": {"blurred": True}}), ("person", False, {})]
    assert batch.report.notes == ["2 __ignore__ or iscrowd-flagged shapes imported as crowd regions (not trained on)"]
    examples, blobs = to_examples(batch)
    get_writer("labelme").write(tmp_path / "out", examples, batch.classes, "segmentation", blobs.__getitem__)
    back = get_reader("labelme").read(tmp_path / "out")
    assert [a.content() for a in back.items[0].annotations] == [a.content() for a in batch.items[0].annotations]
    assert json.loads((tmp_path / "out" / "train" / "a.json").read_text())["shapes"][1]["flags"] == {
        "blurred": True, "iscrowd": True}


def test_absolute_image_path_from_another_machine(tmp_path: Path) -> None:
    put(tmp_path, "a.json", doc([], image_path="C:\\Users\\ann\\data\\a.png"))
    put(tmp_path, "b.json", doc([], image_path="/home/ann/data/b.png"), image=("b.png", 40, 30))
    batch = get_reader("labelme").read(tmp_path)
    assert [it.path for it in batch.items] == [(tmp_path / "a.png").resolve(), (tmp_path / "b.png").resolve()]
    put(tmp_path / "x", "c.json", doc([], image_path="/home/ann/data/c.png"), image=None)
    with pytest.raises(UnsafePathError, match="c.json.*field 'imagePath'.*absolute"):
        get_reader("labelme").read(tmp_path / "x")


def test_other_sources_attributes_are_written_as_extra_shape_keys(tmp_path: Path) -> None:
    from tests.data.test_formats_cvat import GOOD, write_task

    write_task(tmp_path / "cvat", GOOD)
    with Workspace(tmp_path / "ws") as ws:
        ds, _ = import_source(ws, "c", tmp_path / "cvat", "cvat")
        result = export_with_report(ds, tmp_path / "out", "labelme")
        assert result.not_written == {}  # labelme holds them all
        get_writer("labelme").write(tmp_path / "out2", ds.examples(), ds.classes, ds.type, ds.load_bytes)
        before = {e.file_name: [a.content() for a in e.annotations] for e in ds.examples()}
    shapes = json.loads((tmp_path / "out" / "train" / "a.json").read_text())["shapes"]
    assert shapes[0]["group_id"] == 4
    assert shapes[0]["attributes"] == {"occluded": True, "z_order": 2, "source": "auto", "parked": True, "speed": 42.5,
                                       "colour": "blue"}
    back = get_reader("labelme").read(tmp_path / "out2")
    assert {it.file_name: [a.content() for a in it.annotations] for it in back.items} == before
    # a shape key labelme does not know (another tool's) is kept too
    doc_ = json.loads((tmp_path / "out2" / "train" / "a.json").read_text())
    doc_["shapes"][0]["score_by_tool"] = 0.5
    (tmp_path / "out2" / "train" / "a.json").write_text(json.dumps(doc_))
    assert get_reader("labelme").read(tmp_path / "out2").items[0].annotations[0].attributes["score_by_tool"] == 0.5


def test_skip_missing(tmp_path: Path) -> None:
    put(tmp_path, "a.json", doc([]))
    put(tmp_path, "b.json", doc([], image_path="gone.png"), image=None)
    with pytest.raises(ImportFormatError, match="b.json.*'gone.png' not found.*--skip-missing"):
        get_reader("labelme").read(tmp_path)
    batch = get_reader("labelme").read(tmp_path, skip_missing=True)
    assert [it.file_name for it in batch.items] == ["a.png"]
    assert batch.report.skipped == {"JSON whose image is not found (--skip-missing)": 1}
