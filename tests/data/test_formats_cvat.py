"""CVAT for images 1.1 XML: reading (boxes, rotated boxes, polygons, attributes, subsets), writing it back,
and hostile files refused with a typed error that names file, record and field and leaves the store as it was."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pytest

from tests.data.test_formats import image_bytes, to_examples
from workbench.data import Workspace
from workbench.data.formats import get_reader, get_writer
from workbench.data.transfer import import_source
from workbench.errors import ImportFormatError, UnsafePathError

META = """<meta><task><labels>
  <label><name>car</name><color>#ff0000</color><attributes>
    <attribute><name>parked</name><input_type>checkbox</input_type><default_value>false</default_value>
      <values>false\ntrue</values></attribute>
    <attribute><name>speed</name><input_type>number</input_type><default_value>0</default_value>
      <values>0\n100\n1</values></attribute>
    <attribute><name>colour</name><input_type>select</input_type><default_value>red</default_value>
      <values>red\nblue</values></attribute>
  </attributes></label>
  <label><name>tree</name><color>#00ff00</color><attributes></attributes></label>
</labels></task></meta>"""


def write_task(root: Path, body: str, *, meta: str = META, images=(("a.png", 40, 30), ("b.png", 20, 10))) -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    for i, (name, w, h) in enumerate(images):
        (root / "images" / name).write_bytes(image_bytes(w, h, i))
    xml = root / "annotations.xml"
    xml.write_text(f'<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version>{meta}{body}'
                   "</annotations>")
    return xml


GOOD = """
<image id="7" name="a.png" width="40" height="30" subset="Train">
  <box label="car" occluded="1" source="auto" xtl="1.5" ytl="2" xbr="11.5" ybr="12" z_order="2" group_id="4">
    <attribute name="parked">true</attribute><attribute name="speed">42.5</attribute>
    <attribute name="colour">blue</attribute></box>
  <box label="car" occluded="0" xtl="10" ytl="10" xbr="20" ybr="14" rotation="90"></box>
  <polygon label="tree" occluded="0" points="0,0;10,0;10,8.25" z_order="0"></polygon>
</image>
<image id="8" name="b.png" width="20" height="10" subset="Validation"></image>
"""


def test_reads_shapes_attributes_and_subsets(tmp_path: Path) -> None:
    write_task(tmp_path, GOOD)
    batch = get_reader("cvat").read(tmp_path)
    assert [(c.name, c.color) for c in batch.classes] == [("car", "#ff0000"), ("tree", "#00ff00")]
    a, b = batch.items
    assert (a.split, b.split, a.origin, b.annotations) == ("train", "val", {"id": 7, "file_name": "a.png",
                                                                            "subset": "Train"}, [])
    box, rotated, poly = a.annotations
    assert box.bbox == (1.5, 2.0, 10.0, 10.0)
    assert box.attributes == {"occluded": True, "z_order": 2, "group_id": 4, "source": "auto", "parked": True,
                              "speed": 42.5, "colour": "blue"}
    # rotation=90 about the centre (15, 12): the 10x4 box stands up as a 4x10 polygon
    assert rotated.kind == "polygon"
    assert [round(v, 6) for v in rotated.bbox] == [13.0, 7.0, 4.0, 10.0]
    assert poly.polygons == ((0.0, 0.0, 10.0, 0.0, 10.0, 8.25),) and poly.attributes == {}
    assert batch.type == "segmentation"
    assert batch.report.kept_in_attributes == {"CVAT occluded / z_order / attributes": 1}


def test_round_trip_keeps_attributes_and_label_specs(tmp_path: Path) -> None:
    write_task(tmp_path / "src", GOOD)
    batch = get_reader("cvat").read(tmp_path / "src")
    examples, blobs = to_examples(batch)
    get_writer("cvat").write(tmp_path / "out", examples, batch.classes, "segmentation", blobs.__getitem__)
    back = get_reader("cvat").read(tmp_path / "out")
    assert [[a.content() for a in it.annotations] for it in back.items] == [
        [a.content() for a in it.annotations] for it in batch.items]
    assert [it.split for it in back.items] == [it.split for it in batch.items]
    assert [(c.name, c.color) for c in back.classes] == [(c.name, c.color) for c in batch.classes]
    assert back.classes[0].origin["attributes"]["colour"]["values"] == ["red", "blue"]


def test_through_the_store(tmp_path: Path) -> None:
    write_task(tmp_path / "src", GOOD)
    with Workspace(tmp_path / "ws") as ws:
        ds, ids = import_source(ws, "c", tmp_path / "src", "cvat")
        ex = ds.examples()[0]
        assert ex.origin["id"] == 7 and ex.annotations[0].attributes["speed"] == 42.5
        files = get_writer("cvat").write(tmp_path / "out", ds.examples(), ds.classes, ds.type, ds.load_bytes)
    text = (tmp_path / "out" / "annotations.xml").read_text()
    assert '<image id="7" name="a.png"' in text and '<image id="8" name="b.png"' in text  # source ids kept
    assert 'occluded="1"' in text and '<attribute name="parked">true</attribute>' in text
    assert sum(1 for f in files if f.suffix == ".png") == 2


def test_images_dir_and_unknown_subset(tmp_path: Path) -> None:
    body = GOOD.replace('subset="Validation"', 'subset="holdout"')
    xml = write_task(tmp_path / "x", body)
    (tmp_path / "x" / "images").rename(tmp_path / "pics")
    with pytest.raises(ImportFormatError, match="image 'a.png' not found.*--images"):
        get_reader("cvat").read(xml)
    batch = get_reader("cvat").read(xml, images_dir=tmp_path / "pics")
    assert batch.items[1].split is None and batch.items[1].origin["subset"] == "holdout"
    assert batch.report.skipped == {"image whose subset is not train/val/test (split chosen by the dataset)": 1}


def _case(body: str, meta: str = META) -> tuple[str, str]:
    return body, meta


IMG = '<image id="1" name="a.png" width="40" height="30">{}</image>'
HOSTILE = [
    ("malformed", IMG.format("<box"), ImportFormatError, ("annotations.xml", "malformed XML")),
    ("unknown-label", IMG.format('<box label="bus" xtl="1" ytl="1" xbr="2" ybr="2"/>'), ImportFormatError,
     ("record image 1 (a.png) box 0", "field 'label'", "'bus' is not one of the labels")),
    ("nan", IMG.format('<box label="car" xtl="nan" ytl="1" xbr="2" ybr="2"/>'), ImportFormatError,
     ("record image 1 (a.png) box 0", "field 'xtl'", "not finite")),
    ("not-a-number", IMG.format('<polygon label="tree" points="1,2;3,x;5,6"/>'), ImportFormatError,
     ("record image 1 (a.png) polygon 0", "field 'points'")),
    ("inverted-box", IMG.format('<box label="car" xtl="5" ytl="1" xbr="2" ybr="2"/>'), ImportFormatError,
     ("record image 1 (a.png) box 0", "field 'bbox'")),
    ("far-outside", IMG.format('<box label="car" xtl="30" ytl="1" xbr="60" ybr="2"/>'), ImportFormatError,
     ("record image 1 (a.png) box 0", "field 'bbox'", "--clip-boxes")),
    ("dotdot", '<image id="1" name="../a.png" width="40" height="30"/>', UnsafePathError,
     ("record image 1 (../a.png)", "field 'name'", "'..'")),
    ("absolute", '<image id="1" name="/etc/passwd" width="40" height="30"/>', UnsafePathError,
     ("record image 1 (/etc/passwd)", "field 'name'", "absolute")),
    ("size-mismatch", '<image id="1" name="a.png" width="41" height="30"/>', ImportFormatError,
     ("record image 1 (a.png)", "field 'width'", "40x30")),
    ("mask-sum", IMG.format('<mask label="car" rle="1, 2" left="0" top="0" width="2" height="2"/>'),
     ImportFormatError, ("record image 1 (a.png) mask 0", "field 'rle'", "sum to 3")),
    ("mask-outside", IMG.format('<mask label="car" rle="0, 4" left="39" top="0" width="2" height="2"/>'),
     ImportFormatError, ("field 'width'", "does not fit")),
    ("mask-negative", IMG.format('<mask label="car" rle="0, 4" left="-1" top="0" width="2" height="2"/>'),
     ImportFormatError, ("field 'left'",)),
    ("unsupported", IMG.format('<points label="car" points="1,2"/>'), ImportFormatError,
     ("field 'points'", "--skip-unsupported")),
    ("track", '<track id="0" label="car"/>', ImportFormatError, ("CVAT for video",)),
    ("bad-int", IMG.format('<box label="car" xtl="1" ytl="1" xbr="2" ybr="2" z_order="top"/>'), ImportFormatError,
     ("field 'z_order'",)),
]


@pytest.mark.parametrize("name,body,error,parts", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_files_are_refused_and_change_nothing(tmp_path: Path, name: str, body: str, error: type,
                                                      parts: tuple[str, ...]) -> None:
    write_task(tmp_path / "src", body)
    with Workspace(tmp_path / "ws") as ws:
        ws.create_dataset("c", "detection", classes=["car", "tree"])
        with pytest.raises(error) as e:
            import_source(ws, "c", tmp_path / "src", "cvat")
        assert ws.dataset("c").count() == 0
    for part in parts:
        assert part in str(e.value), (part, str(e.value))


def test_dtd_and_entities_are_refused(tmp_path: Path) -> None:
    xml = write_task(tmp_path, "")
    xml.write_text('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><annotations>&x;</annotations>')
    with pytest.raises(ImportFormatError, match="DTD"):
        get_reader("cvat").read(xml)


def test_missing_meta_labels(tmp_path: Path) -> None:
    write_task(tmp_path, IMG.format(""), meta="<meta/>")
    with pytest.raises(ImportFormatError, match="field 'labels'"):
        get_reader("cvat").read(tmp_path)


def test_border_hair_is_clipped_and_counted(tmp_path: Path) -> None:
    write_task(tmp_path, IMG.format('<box label="car" xtl="-0.02" ytl="1" xbr="40.03" ybr="30"/>'
                                    '<polygon label="tree" points="-0.01,0;40.02,0;20,30.01"/>'))
    batch = get_reader("cvat").read(tmp_path)
    box, poly = batch.items[0].annotations
    assert box.bbox == (0.0, 1.0, 40.0, 29.0)
    assert min(poly.polygons[0]) == 0.0 and max(poly.polygons[0][0::2]) == 40.0
    assert max(poly.polygons[0][1::2]) == 30.0
    assert batch.report.clipped == {"box outside the image": 1, "polygon outside the image": 1}
    assert math.isclose(poly.area, 40 * 30 / 2, rel_tol=2e-3)


def test_writer_names_are_sha_checked(tmp_path: Path) -> None:
    write_task(tmp_path / "src", GOOD)
    batch = get_reader("cvat").read(tmp_path / "src")
    examples, blobs = to_examples(batch)
    files = get_writer("cvat").write(tmp_path / "out", examples, batch.classes, "segmentation", blobs.__getitem__)
    pngs = sorted(f for f in files if f.suffix == ".png")
    assert [p.relative_to(tmp_path / "out").as_posix() for p in pngs] == ["images/Train/a.png",
                                                                         "images/Validation/b.png"]
    assert {hashlib.sha256(p.read_bytes()).hexdigest() for p in pngs} == set(blobs)


def test_mask_elements(tmp_path: Path) -> None:
    # CVAT's run lengths: zeros first, row by row over the 4x3 patch at (10, 5)
    write_task(tmp_path, IMG.format('<mask label="car" occluded="0" rle="1, 2, 3, 4, 2" left="10" top="5" '
                                    'width="4" height="3" z_order="0"/>'))
    (ann,) = get_reader("cvat").read(tmp_path).items[0].annotations
    from workbench.data.formats.rle import rle_to_array

    arr = rle_to_array(ann.mask)
    patch = [[0, 1, 1, 0], [0, 0, 1, 1], [1, 1, 0, 0]]
    assert arr[5:8, 10:14].tolist() == [[bool(v) for v in row] for row in patch]
    assert arr.sum() == 6 and ann.kind == "mask"
    examples, blobs = to_examples(get_reader("cvat").read(tmp_path))
    get_writer("cvat").write(tmp_path / "out", examples, get_reader("cvat").read(tmp_path).classes,
                             "segmentation", blobs.__getitem__)
    text = (tmp_path / "out" / "annotations.xml").read_text()
    assert 'rle="1, 2, 3, 4, 2" left="10" top="5" width="4" height="3"' in text  # as CVAT wrote it
    (back,) = get_reader("cvat").read(tmp_path / "out").items[0].annotations
    assert back.mask == ann.mask


def test_wholly_outside_with_clip_boxes_is_dropped_and_counted(tmp_path: Path) -> None:
    write_task(tmp_path, IMG.format('<box label="car" xtl="50" ytl="1" xbr="60" ybr="2"/>'
                                    '<box label="car" xtl="1" ytl="1" xbr="2" ybr="2"/>'))
    batch = get_reader("cvat").read(tmp_path, clip_boxes=True)
    assert [a.bbox for a in batch.items[0].annotations] == [(1.0, 1.0, 1.0, 1.0)]
    assert batch.report.skipped == {"box wholly outside the image (clipped to nothing)": 1}
