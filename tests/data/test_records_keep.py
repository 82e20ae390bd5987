"""What a source says beyond geometry: annotation attributes and crowd flag, example / class origin, dataset
source info, the import report -- validated on the records, kept by the store and its snapshots, and read
back from workspaces made before they existed."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from workbench.data import Workspace
from workbench.data.records import (
    MAX_ATTRIBUTES_BYTES,
    Annotation,
    ClassDef,
    ImportBatch,
    ImportItem,
    ImportReport,
)
from workbench.errors import ValidationError

FIXTURE = Path(__file__).parent / "fixtures" / "workspace_v2"


def _png(color: tuple[int, int, int], size: tuple[int, int] = (8, 6)) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", size, color).save(b, "PNG")
    return b.getvalue()


# ---------------------------------------------------------------------------------------- records
def test_attributes_are_json_and_compare_after_a_round_trip():
    a = Annotation("box", "cat", bbox=(1, 2, 3, 4), attributes={"occluded": True, "keypoints": (1, 2, 2)})
    assert a.attributes == {"occluded": True, "keypoints": [1, 2, 2]}  # as it reads back from JSON
    assert Annotation.from_dict(json.loads(json.dumps(a.to_dict()))) == a
    assert a.content()["attributes"] == {"occluded": True, "keypoints": [1, 2, 2]}
    assert hash(a) == hash(Annotation("box", "cat", bbox=(1, 2, 3, 4)))  # attributes stay out of the hash


@pytest.mark.parametrize("bad", [
    {1: "x"}, {"": 1}, {"a": float("nan")}, {"a": float("inf")}, {"a": object()}, {"a": {2.5: 1}},
    {"a": b"bytes"}, ["not", "a", "mapping"], {"big": "x" * MAX_ATTRIBUTES_BYTES},
])
def test_bad_attributes_are_refused_naming_the_field(bad):
    with pytest.raises(ValidationError) as e:
        Annotation("box", "cat", bbox=(1, 2, 3, 4), attributes=bad)
    assert e.value.field == "attributes"


def test_iscrowd_only_on_regions_and_only_a_bool():
    assert Annotation("polygon", "p", polygons=((0, 0, 4, 0, 4, 4),), iscrowd=True).iscrowd
    with pytest.raises(ValidationError) as e:
        Annotation("label", "cat", iscrowd=True)
    assert e.value.field == "iscrowd"
    with pytest.raises(ValidationError):
        Annotation("box", "cat", bbox=(1, 2, 3, 4), iscrowd=1)  # type: ignore[arg-type]


def test_content_of_data_without_the_new_fields_is_unchanged():
    a = Annotation("box", "cat", bbox=(1, 2, 3, 4))
    assert a.content() == {"kind": "box", "label": "cat", "bbox": [1.0, 2.0, 3.0, 4.0]}
    crowd = Annotation("box", "cat", bbox=(1, 2, 3, 4), iscrowd=True)
    assert crowd.content()["iscrowd"] is True and crowd != a


def test_classdef_origin_does_not_change_equality():
    a = ClassDef("cat", "#ff0000", origin={"id": 17, "supercategory": "animal"})
    assert a == ClassDef("cat", "#ff0000") and hash(a) == hash(ClassDef("cat", "#ff0000"))
    assert a.origin == {"id": 17, "supercategory": "animal"}
    with pytest.raises(ValidationError):
        ClassDef("cat", "#ff0000", origin={"id": float("nan")})


def test_import_item_origin_is_validated_and_located():
    with pytest.raises(ValidationError) as e:
        ImportItem("a.png", data=b"x", origin={"id": {1, 2}}, record="image 7")
    assert e.value.field == "origin" and "image 7" in str(e.value)


def test_import_report_counts_merges_and_says_it():
    r = ImportReport()
    assert not r and r.lines() == []
    r.skip("image file not found (--skip-missing)", 2)
    r.skip("image file not found (--skip-missing)")
    r.clip("box outside the image (--clip-boxes)")
    r.keep("keypoints", 4)
    r.keep("keypoints", 0)  # nothing to say: no zero rows
    r.note("classes taken from obj.names")
    r.note("classes taken from obj.names")
    other = ImportReport()
    other.keep("COCO annotation field 'foo'")
    r.merge(other)
    assert r.total_skipped == 3 and r.total_clipped == 1 and r.total_kept == 5
    assert r.lines() == [
        "skipped: 3 (image file not found (--skip-missing))",
        "clipped: 1 (box outside the image (--clip-boxes))",
        "kept in attributes: 4 (keypoints)",
        "kept in attributes: 1 (COCO annotation field 'foo')",
        "note: classes taken from obj.names",
    ]
    assert ImportReport.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    with pytest.raises(ValueError):
        r.skip("", 1)
    with pytest.raises(ValueError):
        r.clip("x", -1)


# ---------------------------------------------------------------------------------------- store
def _batch() -> ImportBatch:
    items = [
        ImportItem("a.png", data=_png((255, 0, 0)), split="train", record=397133,
                   origin={"id": 397133, "file_name": "val2017/a.png"},
                   annotations=[
                       Annotation("box", "person", bbox=(1, 1, 3, 2), attributes={"occluded": True, "pose": "Left"}),
                       Annotation("box", "person", bbox=(0, 0, 8, 6), iscrowd=True,
                                  attributes={"keypoints": [1, 1, 2, 0, 0, 0], "num_keypoints": 1}),
                   ]),
        ImportItem("b.png", data=_png((0, 0, 255)), split="val", origin={"id": "img-b"},
                   annotations=[Annotation("box", "car", bbox=(2, 2, 1, 1))]),
    ]
    classes = [ClassDef("person", "#ff0000", origin={"id": 1, "supercategory": "human"}),
               ClassDef("car", "#00ff00", origin={"id": 3, "supercategory": "vehicle"})]
    return ImportBatch(items, classes, "detection", info={"info": {"year": 2017}, "licenses": [{"id": 1}]})


def test_store_keeps_attributes_crowd_origin_and_source_info(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ds = ws.create_dataset("d", "detection")
    ids = ds.import_batch(_batch())
    ws.close()
    ws = Workspace(tmp_path / "ws")  # read back from disk
    ds = ws.dataset("d")
    a, b = ds.examples(ids=ids)
    assert a.origin == {"id": 397133, "file_name": "val2017/a.png"} and b.origin == {"id": "img-b"}
    by_crowd = {x.iscrowd: x for x in a.annotations}
    assert by_crowd[False].attributes == {"occluded": True, "pose": "Left"}
    assert by_crowd[True].attributes == {"keypoints": [1, 1, 2, 0, 0, 0], "num_keypoints": 1}
    assert [x.bbox for x in a.targets()] == [(1.0, 1.0, 3.0, 2.0)]  # the crowd region is no target
    assert b.annotations[0].attributes == {} and not b.annotations[0].iscrowd
    assert [c.origin for c in ds.classes] == [{"id": 1, "supercategory": "human"},
                                              {"id": 3, "supercategory": "vehicle"}]
    assert ds.source_info == {"info": {"year": 2017}, "licenses": [{"id": 1}]}

    # editing keeps and changes them; a copy keeps the origin
    crowd = by_crowd[True]
    ds.update_annotation(crowd.id, Annotation("box", "person", bbox=(0, 0, 4, 4), iscrowd=True,
                                              attributes={"note": "edited"}))
    again = {x.id: x for x in ds.example(ids[0]).annotations}[crowd.id]
    assert again.iscrowd and again.attributes == {"note": "edited"}
    ds.update_annotation(crowd.id, Annotation("box", "person", bbox=(0, 0, 4, 4)))
    again = {x.id: x for x in ds.example(ids[0]).annotations}[crowd.id]
    assert not again.iscrowd and again.attributes == {}
    added = ds.add_annotation(ids[1], Annotation("box", "car", bbox=(1, 1, 2, 2), attributes={"truncated": 1}))
    assert {x.id: x for x in ds.example(ids[1]).annotations}[added.id].attributes == {"truncated": 1}
    (copy,) = ds.copy_without_annotations([ids[0]])
    assert ds.example(copy).origin == a.origin

    # a second source does not overwrite the dataset's info or a class's origin; it says so
    second = _batch()
    second.info = {"info": {"year": 2024}}
    second.classes[0] = ClassDef("person", "#ff0000", origin={"id": 99})
    ds.import_batch(second)
    assert ds.source_info["info"] == {"year": 2017} and ds.classes[0].origin["id"] == 1
    assert any("first source" in n for n in second.report.notes)
    ws.close()


def test_snapshots_keep_the_new_fields_and_they_change_the_id(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ds = ws.create_dataset("d", "detection")
    ids = ds.import_batch(_batch())
    s1 = ds.snapshot("with attributes")
    snap = ds.load_snapshot(s1.id)
    assert snap.examples == tuple(ds.examples())
    assert [c.origin for c in snap.classes] == [c.origin for c in ds.classes]
    assert snap.source_info == ds.source_info
    ann = next(x for x in ds.example(ids[0]).annotations if x.attributes.get("pose"))
    ds.update_annotation(ann.id, Annotation("box", "person", bbox=ann.bbox, attributes={"pose": "Right",
                                                                                         "occluded": True}))
    s2 = ds.snapshot("pose changed")
    assert s2.id != s1.id
    assert ds.diff(s1.id, s2.id)["annotations_changed"] == [ids[0]]
    ws.close()


def _old_workspace(tmp_path: Path) -> Path:
    home = tmp_path / "old-ws"
    home.mkdir()
    shutil.copytree(FIXTURE / "blobs", home / "blobs")
    conn = sqlite3.connect(home / "workbench.db")
    conn.executescript((FIXTURE / "workbench.sql").read_text())
    conn.close()
    return home


def test_a_workspace_made_before_the_new_fields_opens_and_keeps_its_snapshot_ids(tmp_path):
    home = _old_workspace(tmp_path)
    conn = sqlite3.connect(home / "workbench.db")
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "2"
    assert "attributes" not in {r[1] for r in conn.execute("PRAGMA table_info(annotations)")}
    conn.close()
    ws = Workspace(home)
    ds = ws.dataset("old")
    exs = ds.examples()
    assert [e.file_name for e in exs] == ["a.png", "b.png"] and [e.origin for e in exs] == [{}, {}]
    assert all(a.attributes == {} and not a.iscrowd for e in exs for a in e.annotations)
    assert sum(len(e.annotations) for e in exs) == 3
    assert [c.origin for c in ds.classes] == [{}, {}] and ds.source_info == {}
    (old,) = ds.snapshots()
    assert old.id == "ec92cafadecf5e86"  # taken by the Workbench that made the workspace
    assert ds.snapshot("same content, taken again").id == old.id
    assert len(ds.snapshots()) == 1
    assert ds.load_snapshot(old.id).examples == tuple(exs)
    # and it now keeps the new fields
    ann = exs[0].annotations[0]
    ds.update_annotation(ann.id, Annotation("box", ann.label, bbox=ann.bbox, attributes={"difficult": True}))
    assert ds.example(exs[0].id).annotations[0].attributes == {"difficult": True}
    ws.close()


def test_old_snapshot_id_is_the_documented_digest(tmp_path):
    """The id the old Workbench gave is the SHA-256 of the canonical content the snapshots module documents,
    computed here from the old database's rows by hand (an oracle independent of the module)."""
    home = _old_workspace(tmp_path)
    conn = sqlite3.connect(home / "workbench.db")
    conn.row_factory = sqlite3.Row
    classes = [[r["name"], r["color"]] for r in conn.execute("SELECT * FROM classes ORDER BY position")]
    names = {r["id"]: r["name"] for r in conn.execute("SELECT * FROM classes")}
    examples = []
    for e in conn.execute("SELECT * FROM examples ORDER BY id").fetchall():
        anns = sorted(json.dumps({"kind": a["kind"], "label": names[a["class_id"]],
                                  "bbox": [round(float(a[k]), 4) for k in "xywh"]}, sort_keys=True)
                      for a in conn.execute("SELECT * FROM annotations WHERE example_id=?", (e["id"],)))
        examples.append({"blob": e["blob"], "file_name": e["file_name"], "width": e["width"],
                         "height": e["height"], "split": e["split"], "annotations": anns})
    canon = json.dumps({"type": "detection", "classes": classes, "examples": examples}, sort_keys=True,
                       separators=(",", ":"))
    assert hashlib.sha256(canon.encode()).hexdigest()[:16] == "ec92cafadecf5e86"
    conn.close()


def test_source_id_is_kept_but_not_content(tmp_path):
    a = Annotation("box", "cat", bbox=(1, 2, 3, 4), source_id=17)
    assert a.content() == Annotation("box", "cat", bbox=(1, 2, 3, 4)).content()
    assert Annotation.from_dict(a.to_dict()).source_id == 17
    for bad in (True, 1.5, "", "x" * 201, [1]):
        with pytest.raises(ValidationError):
            Annotation("box", "cat", bbox=(1, 2, 3, 4), source_id=bad)  # type: ignore[arg-type]
    ws = Workspace(tmp_path / "ws")
    ds = ws.create_dataset("d", "detection", classes="cat")
    anns = [a, Annotation("box", "cat", bbox=(0, 0, 2, 2), source_id="ann-7"), Annotation("box", "cat", bbox=(0, 0, 1, 1))]
    (eid,) = ds.import_batch(ImportBatch([ImportItem("a.png", data=_png((1, 2, 3)), annotations=anns)]))
    assert [x.source_id for x in ds.example(eid).annotations] == [17, "ann-7", None]  # types kept
    s1 = ds.snapshot()
    assert [x.source_id for x in ds.load_snapshot(s1.id).examples[0].annotations] == [17, "ann-7", None]
    first = ds.example(eid).annotations[0]
    ds.update_annotation(first.id, Annotation("box", "cat", bbox=(1, 2, 3, 4)))  # same content, no source id
    assert ds.snapshot().id == s1.id
    ws.close()


def test_memory_sink_keeps_the_new_fields_like_the_store():
    from dataclasses import replace

    from workbench.widgets.sink import MemoryImage, MemorySink

    crowd = Annotation("box", "cat", bbox=(0, 0, 4, 4), iscrowd=True, attributes={"occluded": True}, source_id=3)
    sink = MemorySink("detection", ["cat"], [MemoryImage(_png((9, 9, 9)), 8, 6, annotations=[crowd])])
    (saved,) = sink.example(1).annotations
    moved = sink.update_annotation(saved.id, replace(saved, bbox=(1, 1, 4, 4)), "ann")  # a canvas move
    (now,) = sink.example(1).annotations
    assert now == moved and now.iscrowd and now.attributes == {"occluded": True} and now.source_id == 3
