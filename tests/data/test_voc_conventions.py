"""Pascal VOC as peers read it: coordinates as written (datumaro, globox, torchvision; Roboflow writes them
so), an opt-in 1-based devkit convention, boxes on the image edge, and every object field datumaro keeps
(difficult, truncated, occluded, pose, point, actions, parts, <attributes>) kept and written back. Real files
from datumaro's and Roboflow's exports (tests/data/realworld/keep, see PROVENANCE); the oracle is a small
independent reader written here that follows datumaro's VOC reader (voc/base.py): box = (xmin, ymin,
xmax - xmin, ymax - ymin), flags default to False, actions and <attributes> are per-object values."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.data import Workspace
from workbench.data.formats import get_reader
from workbench.data.records import Annotation, ClassDef, ImportBatch, ImportItem
from workbench.data.transfer import export_with_report, import_source
from workbench.errors import ImportFormatError

KEEP = Path(__file__).parent / "realworld" / "keep" / "datumaro"
VOC1 = KEEP / "voc_dataset" / "voc_dataset1"
VOC3 = KEEP / "voc_dataset" / "voc_dataset3"
ROBOFLOW_VOC = KEEP / "roboflow_dataset" / "voc_as_devkit"
ROBOFLOW_COCO = KEEP / "roboflow_dataset" / "coco" / "train" / "_annotations.coco.json"


def oracle(xml_path: Path) -> list[dict]:
    """Each object as datumaro's VOC reader sees it (independent of Workbench)."""
    out = []
    for obj in ET.parse(xml_path).getroot().iter("object"):
        bb = obj.find("bndbox")
        x0, y0, x1, y1 = (float(bb.find(t).text) for t in ("xmin", "ymin", "xmax", "ymax"))
        d = {"name": obj.find("name").text, "bbox": (x0, y0, x1 - x0, y1 - y0)}
        for flag in ("difficult", "truncated", "occluded"):
            el = obj.find(flag)
            d[flag] = el is not None and el.text.strip() in ("1", "true")
        pose = obj.find("pose")
        d["pose"] = pose.text if pose is not None else None
        acts = obj.find("actions")
        d["actions"] = {a.tag: a.text.strip() == "1" for a in acts} if acts is not None else {}
        d["parts"] = [(p.find("name").text, tuple(float(p.find("bndbox").find(t).text)
                                                  for t in ("xmin", "ymin", "xmax", "ymax")))
                      for p in obj.findall("part")]
        attrs = obj.find("attributes")
        d["attributes"] = {a.find("name").text: a.find("value").text for a in attrs.iter("attribute")} \
            if attrs is not None else {}
        out.append(d)
    return out


def as_oracle(a: Annotation) -> dict:
    """What datumaro would know of our annotation."""
    at = a.attributes
    extra = {k: v for k, v in at.items()
             if k not in ("difficult", "truncated", "occluded", "pose", "actions", "parts", "point")}
    return {"name": a.label, "bbox": a.bbox,
            **{f: bool(at.get(f, False)) for f in ("difficult", "truncated", "occluded")},
            "pose": at.get("pose", "Unspecified"),
            "actions": at.get("actions", {}),
            "parts": [(p["name"], tuple(p["bndbox"])) for p in at.get("parts", [])],
            "attributes": extra}


def _same_as_oracle(ours: list[Annotation], xml_path: Path) -> None:
    theirs = oracle(xml_path)
    assert len(ours) == len(theirs)
    for a, t in zip(ours, theirs, strict=True):
        mine = as_oracle(a)
        if t["pose"] is None:  # no <pose>: the devkit's "Unspecified"
            t["pose"] = "Unspecified"
        assert mine == t


def test_datumaro_voc_keeps_every_object_field():
    batch = get_reader("voc").read(VOC1)
    one, two = batch.items
    assert (one.record, one.split, two.record, two.split) == ("2007_000001", "train", "2007_000002", "test")
    _same_as_oracle(one.annotations, VOC1 / "Annotations" / "2007_000001.xml")
    cat, person = one.annotations
    assert cat.bbox == (1.0, 2.0, 2.0, 2.0) and cat.attributes == {"truncated": True}
    assert person.attributes["parts"] == [{"name": "head", "bndbox": [5.5, 6.0, 7.5, 8.0]}]
    assert person.attributes["actions"]["jumping"] is False and person.attributes["actions"]["walking"] is True
    # listed in ImageSets/Main/test.txt without an annotation file: an image without objects, said so
    assert two.annotations == [] and two.file_name == "2007_000002.jpg"
    assert any("without an annotation file" in n for n in batch.report.notes)
    assert one.origin == {"id": "2007_000001", "file_name": "2007_000001.jpg"}


def test_comment_lines_in_split_lists():
    (item,) = get_reader("voc").read(VOC3).items
    assert item.split == "train"
    _same_as_oracle(item.annotations, VOC3 / "Annotations" / "2007_000001.xml")


def test_roboflow_voc_boxes_on_the_edge_equal_its_coco_export():
    """Roboflow exported the same images as VOC and as COCO: read as written, the VOC boxes are the COCO
    boxes (a -1 on read would put the xmin = 0 boxes outside the image)."""
    voc = get_reader("voc").read(ROBOFLOW_VOC)
    coco = json.loads(ROBOFLOW_COCO.read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    by_file = {im["file_name"]: im["id"] for im in coco["images"]}
    checked = 0
    for item in voc.items:
        _same_as_oracle(item.annotations, ROBOFLOW_VOC / "Annotations" / f"{item.record}.xml")
        if item.file_name in by_file:
            theirs = sorted((names[a["category_id"]], tuple(a["bbox"])) for a in coco["annotations"]
                            if a["image_id"] == by_file[item.file_name])
            assert sorted((a.label, a.bbox) for a in item.annotations) == theirs
            checked += 1
    assert checked == 2
    assert any(a.bbox[0] == 0.0 for it in voc.items for a in it.annotations)
    with pytest.raises(ImportFormatError, match="outside"):  # the old devkit reading refuses them
        get_reader("voc").read(ROBOFLOW_VOC, one_based=True)


def test_one_based_is_the_old_devkit_convention(tmp_path):
    as_written = get_reader("voc").read(VOC1).items[0].annotations
    devkit = get_reader("voc").read(VOC1, one_based=True)
    assert any("--voc-one-based" in n for n in devkit.report.notes)
    for a, b in zip(as_written, devkit.items[0].annotations, strict=True):
        x, y, w, h = a.bbox
        assert b.bbox == (x - 1, y - 1, w + 1, h + 1)
    with Workspace(tmp_path / "ws") as ws:
        ds, _ = import_source(ws, "d", VOC1, "voc", one_based=True)
        export_with_report(ds, tmp_path / "out", "voc", one_based=True, status="new,annotated")
        back = oracle(tmp_path / "out" / "Annotations" / "2007_000001.xml")
        assert [t["bbox"] for t in back] == [t["bbox"] for t in oracle(VOC1 / "Annotations" / "2007_000001.xml")]


def _said(ds) -> list:
    return sorted((e.blob, e.split, sorted(json.dumps(a.content(), sort_keys=True) for a in e.annotations))
                  for e in ds.examples())


@pytest.mark.parametrize("src", [VOC1, VOC3, ROBOFLOW_VOC], ids=["voc1", "voc3", "roboflow"])
def test_round_trip_keeps_boxes_attributes_and_splits(tmp_path, src):
    with Workspace(tmp_path / "ws") as ws:
        ds, _ = import_source(ws, "d", src, "voc")
        export_with_report(ds, tmp_path / "out", "voc", status="new,annotated,reviewed")
        for xml in (src / "Annotations").glob("*.xml"):  # what we wrote, datumaro reads as the source
            ours = oracle(tmp_path / "out" / "Annotations" / xml.name)
            theirs = oracle(xml)
            for t in theirs:
                t["pose"] = t["pose"] or "Unspecified"
            assert ours == theirs
        back, _ = import_source(ws, "back", tmp_path / "out", "voc")
        assert _said(back) == _said(ds)
        assert [c.name for c in back.classes] == [c.name for c in ds.classes]
        assert [c.color for c in back.classes] == [c.color for c in ds.classes]  # via labelmap.txt


def test_labelmap_is_what_datumaro_parses(tmp_path):
    with Workspace(tmp_path / "ws") as ws:
        ds, _ = import_source(ws, "d", VOC1, "voc")
        ds.set_class_color("cat", "#102030")
        export_with_report(ds, tmp_path / "out", "voc")
    lines = (tmp_path / "out" / "labelmap.txt").read_text().splitlines()
    assert lines[0].startswith("#")
    parsed = {}
    for line in lines[1:]:  # datumaro's parse_label_map: name:r,g,b:parts:actions, 4 fields
        fields = line.split(":")
        assert len(fields) == 4
        parsed[fields[0]] = (tuple(int(c) for c in fields[1].split(",")),
                             [p for p in fields[2].split(",") if p], [a for a in fields[3].split(",") if a])
    assert list(parsed) == ["cat", "person"]
    assert parsed["cat"] == ((16, 32, 48), [], [])
    assert parsed["person"][1] == ["head"] and "jumping" in parsed["person"][2]
    assert (tmp_path / "out" / "labels.txt").read_text() == "cat\nperson\n"


def test_labelmap_with_background_is_read(tmp_path):
    root = tmp_path / "voc"
    shutil.copytree(VOC3, root)
    (root / "labelmap.txt").write_text("# label:color_rgb:parts:actions\nbackground:0,0,0::\ncat:64,0,0::\n")
    batch = get_reader("voc").read(root)
    assert batch.classes == [ClassDef("cat", "#400000")]
    assert any("background" in n for n in batch.report.notes)


def test_difficult_round_trip_and_skip_is_counted(tmp_path):
    data = (VOC3 / "JPEGImages" / "2007_000001.jpg").read_bytes()
    anns = [Annotation("box", "cat", bbox=(0, 0, 5, 5), attributes={"difficult": True, "occluded": True,
                                                                      "pose": "Left", "track": 3}),
            Annotation("box", "cat", bbox=(5, 5, 4, 4))]
    with Workspace(tmp_path / "ws") as ws:
        ds = ws.create_dataset("d", "detection", classes="cat")
        ds.import_batch(ImportBatch([ImportItem("x.jpg", data=data, annotations=anns, split="val")]))
        export_with_report(ds, tmp_path / "out", "voc")
        (t, u) = oracle(tmp_path / "out" / "Annotations" / "x.xml")
        assert (t["difficult"], t["occluded"], t["pose"], t["attributes"]) == (True, True, "Left", {"track": "3"})
        assert (u["difficult"], u["occluded"], u["pose"]) == (False, False, "Unspecified")
        back = get_reader("voc").read(tmp_path / "out")
        (item,) = back.items
        assert item.split == "val" and item.annotations[0].attributes == {
            "difficult": True, "occluded": True, "pose": "Left", "track": "3"}  # <attributes> values are text
        skipped = get_reader("voc").read(tmp_path / "out", skip_difficult=True)
        assert len(skipped.items[0].annotations) == 1
        assert skipped.report.skipped == {"difficult object (skip_difficult)": 1}


def test_cli_flags(tmp_path, capsys):
    home = str(tmp_path / "ws")
    assert main(["--home", home, "import", "d", str(VOC1), "--format", "voc", "--voc-one-based"]) == 0
    capsys.readouterr()
    code = main(["--home", home, "export", "d", str(tmp_path / "out"), "--format", "voc", "--voc-one-based"])
    out = capsys.readouterr().out
    assert code == 0 and "1 examples with status annotated or reviewed" in out
    assert "left out 1 examples by status (1 new); --status annotated,new,reviewed includes them" in out
    xmin = ET.parse(tmp_path / "out" / "Annotations" / "2007_000001.xml").getroot().find("object/bndbox/xmin")
    assert xmin.text == "1"  # read 1-based, written 1-based: the devkit numbers again
    assert main(["--home", home, "export", "d", str(tmp_path / "o2"), "--format", "voc", "--per-split"]) != 0
    assert "--per-split" in capsys.readouterr().err
    assert main(["--home", home, "export", "d", str(tmp_path / "o3"), "--format", "coco", "--status", "done"]) != 0
    assert "--status" in capsys.readouterr().err
    assert main(["--home", home, "export", "d", str(tmp_path / "o4"), "--format", "coco", "--per-split",
                 "--status", "new,annotated"]) == 0
    assert "2 examples" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "o4" / "annotations").iterdir()) == [
        "instances_test.json", "instances_train.json"]
    assert main(["--home", home, "import", "e", str(ROBOFLOW_COCO), "--format", "coco", "--voc-one-based"]) != 0
    assert "--voc-one-based" in capsys.readouterr().err
