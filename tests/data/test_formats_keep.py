"""Keep what the source says: real COCO files written by datumaro and Roboflow (tests/data/realworld/keep,
see PROVENANCE) are read with their crowd regions, attributes, keypoints, ids, file names and info, checked
against pycocotools as the oracle, and written back so that pycocotools reads the same thing again; the
per-split layout is the one datumaro's own assets use. Crowd regions are no training targets and are
evaluated as COCO crowd regions."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from workbench.data import Workspace
from workbench.data.formats import get_reader, get_writer
from workbench.data.formats.rle import canonical_counts
from workbench.data.records import Annotation, ClassDef, Example, ImportItem
from workbench.data.transfer import export_with_report, import_source

pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")

KEEP = Path(__file__).parent / "realworld" / "keep" / "datumaro"
INSTANCES = KEEP / "coco_dataset" / "coco_instances"
KEYPOINTS = KEEP / "coco_dataset" / "coco_person_keypoints"
ROBOFLOW = KEEP / "roboflow_dataset" / "coco" / "train" / "_annotations.coco.json"


def _coco(path: Path) -> COCO:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def _pc_mask(coco: COCO, ann: dict) -> np.ndarray:
    return coco.annToMask(ann).astype(bool)


def _our_mask(a: Annotation, h: int, w: int) -> np.ndarray:
    """Our geometry rasterized by pycocotools (one rasterizer for both sides)."""
    from pycocotools import mask as mask_utils

    if a.mask is not None:
        rle = mask_utils.frPyObjects({"size": a.mask["size"], "counts": a.mask["counts"]}, h, w)
    else:
        assert a.polygons is not None
        rle = mask_utils.merge(mask_utils.frPyObjects([list(p) for p in a.polygons], h, w))
    return mask_utils.decode(rle).astype(bool)


def _check_against_pycocotools(path: Path, batch) -> None:
    """Every image, category and annotation pycocotools reads is in the batch, equal."""
    coco = _coco(path)
    by_id = {it.origin["id"]: it for it in batch.items}
    assert sorted(by_id) == sorted(coco.getImgIds())
    cats = {c["id"]: c for c in coco.loadCats(coco.getCatIds())}
    assert [(c.origin["id"], c.name) for c in batch.classes] == [(i, cats[i]["name"]) for i in cats]
    for c in batch.classes:
        assert c.origin.get("supercategory") == cats[c.origin["id"]].get("supercategory")
    for iid, item in by_id.items():
        im = coco.loadImgs(iid)[0]
        assert item.origin["file_name"] == im["file_name"]
        anns = coco.loadAnns(coco.getAnnIds(imgIds=iid, iscrowd=None))
        assert len(item.annotations) == len(anns)
        for ours, theirs in zip(item.annotations, sorted(anns, key=lambda a: a["id"]), strict=True):
            assert ours.label == cats[theirs["category_id"]]["name"]
            assert ours.iscrowd == bool(theirs["iscrowd"])
            assert list(ours.bbox) == theirs["bbox"]
            if theirs.get("segmentation"):
                assert np.array_equal(_our_mask(ours, im["height"], im["width"]), _pc_mask(coco, theirs))
                if ours.kind == "mask":  # pycocotools' area of an RLE is its pixel count, as ours
                    assert ours.area == theirs["area"]
            for k in ("keypoints", "num_keypoints"):
                if k in theirs:
                    assert ours.attributes[k] == theirs[k]
            assert {k: v for k, v in ours.attributes.items() if k not in ("keypoints", "num_keypoints")} \
                == theirs.get("attributes", {})
            assert ours.source_id == theirs["id"]


@pytest.mark.parametrize("split", ["train", "val"])
def test_datumaro_coco_instances_read_as_pycocotools_reads_them(split):
    path = INSTANCES / "annotations" / f"instances_{split}.json"
    batch = get_reader("coco").read(path)  # images found in images/<split>/ (datumaro's layout)
    _check_against_pycocotools(path, batch)
    raw = json.loads(path.read_text())
    assert batch.info == {"coco": {"licenses": raw["licenses"], "info": raw["info"]}}
    for item, im in zip(batch.items, raw["images"], strict=True):
        assert item.origin["coco"] == {k: im[k] for k in ("license", "flickr_url", "coco_url", "date_captured")}
    if split == "val":  # the crowd region and the attributes datumaro's exporter wrote
        crowd = [a for it in batch.items for a in it.annotations if a.iscrowd]
        assert len(crowd) == 1 and crowd[0].kind == "mask" and crowd[0].label == "b"
        assert batch.items[0].annotations[0].attributes == {"x": 1, "y": "hello"}
        assert any("crowd" in n for n in batch.report.notes)
        assert any("x, y" in n for n in batch.report.notes)


def test_keypoints_are_kept_in_attributes_and_the_report_says_so():
    path = KEYPOINTS / "annotations" / "person_keypoints_val.json"
    batch = get_reader("coco").read(path)
    _check_against_pycocotools(path, batch)
    (reason,) = batch.report.kept_in_attributes
    assert "keypoints" in reason and batch.report.kept_in_attributes[reason] == 2
    assert any("keypoints" in line for line in batch.report.lines())
    raw = json.loads(path.read_text())
    assert [c.origin["coco"] for c in batch.classes] == [
        {"keypoints": c["keypoints"], "skeleton": c["skeleton"]} for c in raw["categories"]]


def test_roboflow_coco_with_annotation_id_zero():
    batch = get_reader("coco").read(ROBOFLOW)
    _check_against_pycocotools(ROBOFLOW, batch)
    assert [it.origin["file_name"] for it in batch.items] == ["train_001.jpg", "train_002.jpg"]


# ---------------------------------------------------------------------------------------- round trips
def _import_split(ws: Workspace, name: str, path: Path, split: str):
    """Import one instances_<split>.json into ``name`` with that split (the reader reads the per-image
    ``split`` field; datumaro's files have none, so the test sets it, as ``--split`` does)."""
    from workbench.data.formats import coco as coco_module

    batch = coco_module.read(path)
    for it in batch.items:
        it.split = split
    if ws.has_dataset(name):
        ds = ws.dataset(name)
    else:
        ds = ws.create_dataset(name, "segmentation", classes=batch.classes)  # train: boxes, val: masks
    ds.import_batch(batch)
    return ds, batch


def _pc_equal(ours_path: Path, theirs_path: Path) -> None:
    """The file we wrote says what the source file says, as pycocotools reads both."""
    ours, theirs = _coco(ours_path), _coco(theirs_path)
    assert sorted(ours.getImgIds()) == sorted(theirs.getImgIds())
    assert ours.loadCats(ours.getCatIds()) == [
        {**c, "color": o["color"]} for c, o in zip(theirs.loadCats(theirs.getCatIds()),
                                                   ours.loadCats(ours.getCatIds()), strict=True)]
    for iid in theirs.getImgIds():
        ti, oi = theirs.loadImgs(iid)[0], ours.loadImgs(iid)[0]
        assert {k: v for k, v in oi.items() if k != "split"} == ti
        ta = sorted(theirs.loadAnns(theirs.getAnnIds(imgIds=iid, iscrowd=None)), key=lambda a: a["bbox"])
        oa = sorted(ours.loadAnns(ours.getAnnIds(imgIds=iid, iscrowd=None)), key=lambda a: a["bbox"])
        assert len(ta) == len(oa)
        for t, o in zip(ta, oa, strict=True):
            for k in ("id", "category_id", "bbox", "iscrowd", "attributes", "keypoints", "num_keypoints"):
                assert o.get(k) == t.get(k), k
            if t.get("segmentation"):
                assert np.array_equal(_pc_mask(ours, o), _pc_mask(theirs, t))
            if isinstance(t.get("segmentation"), dict):
                assert o["area"] == t["area"]
    assert json.loads(ours_path.read_text())["info"] == json.loads(theirs_path.read_text())["info"]
    assert json.loads(ours_path.read_text())["licenses"] == json.loads(theirs_path.read_text())["licenses"]


@pytest.mark.parametrize("source", [INSTANCES, KEYPOINTS], ids=["instances", "keypoints"])
def test_per_split_export_is_datumaros_layout_and_reads_back_the_same(tmp_path, source):
    prefix = "instances" if source == INSTANCES else "person_keypoints"
    with Workspace(tmp_path / "ws") as ws:
        for split in ("train", "val"):
            ds, _ = _import_split(ws, "d", source / "annotations" / f"{prefix}_{split}.json", split)
        result = export_with_report(ds, tmp_path / "out", "coco", per_split=True)
        assert result.total_left_out == 0
        out = tmp_path / "out"
        files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
        assert files == ["annotations/instances_train.json", "annotations/instances_val.json",
                         "images/train/a.jpg", "images/val/b.jpg"]  # the source's own layout
        for split in ("train", "val"):
            _pc_equal(out / "annotations" / f"instances_{split}.json",
                      source / "annotations" / f"{prefix}_{split}.json")
            assert (out / "images" / split / ("a.jpg" if split == "train" else "b.jpg")).read_bytes() == \
                (source / "images" / split / ("a.jpg" if split == "train" else "b.jpg")).read_bytes()
        # and back in: the same examples, attributes, crowd flags, ids, splits
        for split in ("train", "val"):
            back, _ = _import_split(ws, "back", out / "annotations" / f"instances_{split}.json", split)

        def said(d):
            return sorted((e.blob, e.split, json.dumps(e.origin, sort_keys=True),
                           sorted(json.dumps(a.content(), sort_keys=True) for a in e.annotations))
                          for e in d.examples())

        assert said(back) == said(ds)
        assert [(c.name, c.origin) for c in back.classes] == [(c.name, c.origin) for c in ds.classes]
        assert back.source_info == ds.source_info


def test_single_file_export_round_trip_through_the_store(tmp_path):
    src = INSTANCES / "annotations" / "instances_val.json"
    with Workspace(tmp_path / "ws") as ws:
        ds, _ = import_source(ws, "d", src, "coco")
        (ex,) = ds.examples()
        assert ex.origin["id"] == 40 and ex.origin["file_name"] == "b.jpg"
        export_with_report(ds, tmp_path / "one", "coco")
        _pc_equal(tmp_path / "one" / "annotations.json", src)
        back, _ = import_source(ws, "back", tmp_path / "one" / "annotations.json", "coco")
        (bex,) = back.examples()
        assert bex.origin == ex.origin and bex.split == ex.split
        assert [a.content() for a in bex.annotations] == [a.content() for a in ex.annotations]
        export_with_report(back, tmp_path / "two", "coco")
        assert json.loads((tmp_path / "two" / "annotations.json").read_text()) == \
            json.loads((tmp_path / "one" / "annotations.json").read_text())


def test_ids_and_names_are_reused_only_while_unique(tmp_path):
    """Two sources with the same image id 5 and file name a.jpg: neither keeps them both; every other
    example keeps its own."""
    with Workspace(tmp_path / "ws") as ws:
        ds, _ = _import_split(ws, "d", INSTANCES / "annotations" / "instances_train.json", "train")
        _import_split(ws, "d", KEYPOINTS / "annotations" / "person_keypoints_train.json", "train")
        _import_split(ws, "d", INSTANCES / "annotations" / "instances_val.json", "val")
        a1, a2, b = ds.examples()
        assert a1.origin["id"] == a2.origin["id"] == 5 and b.origin["id"] == 40
        export_with_report(ds, tmp_path / "out", "coco")
        doc = json.loads((tmp_path / "out" / "annotations.json").read_text())
        ids = [im["id"] for im in doc["images"]]
        names = [im["file_name"] for im in doc["images"]]
        assert len(set(ids)) == 3 and 40 in ids and ids.count(5) == 0
        assert len(set(names)) == 3 and "b.jpg" in names
        assert _coco(tmp_path / "out" / "annotations.json").getImgIds()


def test_sub_folders_of_file_names_are_kept(tmp_path):
    """A COCO file whose file_name carries a folder (CVAT project exports: Train/img0.jpg, Test/img0.jpg)
    is written back with the same names, the same stem in two folders kept apart."""
    root = tmp_path / "src"
    for folder in ("Train", "Test"):
        (root / folder).mkdir(parents=True)
        shutil.copy(INSTANCES / "images" / "train" / "a.jpg", root / folder / "img0.jpg")
    (root / "Test" / "img0.jpg").write_bytes((INSTANCES / "images" / "val" / "b.jpg").read_bytes())
    doc = {"images": [{"id": 1, "file_name": "Train/img0.jpg", "width": 10, "height": 5},
                      {"id": 2, "file_name": "Test/img0.jpg", "width": 5, "height": 10}],
           "categories": [{"id": 7, "name": "a", "supercategory": "s"}],
           "annotations": [{"id": 1, "image_id": 2, "category_id": 7, "bbox": [0, 0, 2, 2], "iscrowd": 0,
                            "attributes": {"occluded": True}}]}
    (root / "ann.json").write_text(json.dumps(doc))
    with Workspace(tmp_path / "ws") as ws:
        ds, _ = import_source(ws, "d", root / "ann.json", "coco")
        default = export_with_report(ds, tmp_path / "default", "coco")  # Train/img0.jpg has no objects: new
        assert default.examples == 1 and default.left_out == {"new": 1}
        export_with_report(ds, tmp_path / "out", "coco", status="new,annotated")
        back = json.loads((tmp_path / "out" / "annotations.json").read_text())
        assert [(im["id"], im["file_name"]) for im in back["images"]] == [(1, "Train/img0.jpg"),
                                                                         (2, "Test/img0.jpg")]
        assert (tmp_path / "out" / "images" / "Test" / "img0.jpg").read_bytes() == \
            (root / "Test" / "img0.jpg").read_bytes()
        assert back["categories"][0]["id"] == 7 and back["categories"][0]["supercategory"] == "s"
        assert back["annotations"][0]["attributes"] == {"occluded": True}


def test_extra_annotation_fields_go_back_where_they_came_from(tmp_path):
    shutil.copy(INSTANCES / "images" / "train" / "a.jpg", tmp_path / "a.jpg")
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 5}],
           "categories": [{"id": 1, "name": "a"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "iscrowd": 0,
                            "ignore": 1, "track": {"id": 3}}]}
    (tmp_path / "ann.json").write_text(json.dumps(doc))
    batch = get_reader("coco").read(tmp_path / "ann.json")
    (a,) = batch.items[0].annotations
    assert a.attributes == {"coco.ignore": 1, "coco.track": {"id": 3}}
    assert sorted(batch.report.kept_in_attributes.values()) == [1, 1]
    ex = Example(1, "d", _blob(tmp_path / "a.jpg"), "a.jpg", 10, 5, "train", "annotated", annotations=(a,))
    get_writer("coco").write(tmp_path / "out", [ex], batch.classes, "detection",
                             lambda _b: (tmp_path / "a.jpg").read_bytes())
    (out,) = json.loads((tmp_path / "out" / "annotations.json").read_text())["annotations"]
    assert out["ignore"] == 1 and out["track"] == {"id": 3} and "attributes" not in out


def _blob(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_crowd_skip_is_counted(tmp_path):
    batch = get_reader("coco").read(INSTANCES / "annotations" / "instances_val.json", crowd="skip")
    assert not any(a.iscrowd for it in batch.items for a in it.annotations)
    assert batch.report.skipped == {"COCO crowd region (crowd='skip')": 1}


# ---------------------------------------------------------------------------------------- crowd downstream
def _crowd_example() -> tuple[Example, list[str]]:
    box = Annotation("box", "person", bbox=(4.0, 4.0, 20.0, 20.0))
    crowd = Annotation("box", "person", bbox=(30.0, 30.0, 30.0, 30.0), iscrowd=True)
    other = Annotation("box", "car", bbox=(40.0, 2.0, 10.0, 10.0))
    return Example(1, "d", "x", "x.png", 64, 64, "test", "annotated", annotations=(box, crowd, other)), \
        ["person", "car"]


def test_a_crowd_region_is_no_training_target():
    pytest.importorskip("torch")
    from tests.train.sources import png
    from workbench.train.data import VisionDataset

    ex, names = _crowd_example()
    data = png(np.full((64, 64, 3), 90, np.uint8))
    ds = VisionDataset([ex], dataset_type="detection", class_names=names, load_bytes=lambda _b: data,
                       image_size=64)
    _image, target = ds[0]
    boxes = target["boxes"].tolist()
    assert len(boxes) == 2 and target["labels"].tolist() == [1, 2]
    assert [30.0, 30.0, 60.0, 60.0] not in [[round(v, 3) for v in b] for b in boxes]
    seg = VisionDataset([ex], dataset_type="segmentation", class_names=names, load_bytes=lambda _b: data,
                        image_size=64)
    _image, target = seg[0]
    assert target["labels"].tolist() == [1, 2] and target["masks"].shape[0] == 2


def test_crowd_regions_are_evaluated_as_coco_crowd_like_pycocotools():
    from workbench.data.formats.coco_convert import ground_truth
    from workbench.evaluate.coco import coco_metrics

    ex, names = _crowd_example()
    gt = ground_truth([ex], names)
    assert [a["iscrowd"] for a in gt["annotations"]] == [0, 1, 0]
    dt = [{"image_id": 1, "category_id": 1, "bbox": [4, 4, 20, 20], "score": 0.9},
          {"image_id": 1, "category_id": 1, "bbox": [32, 32, 20, 20], "score": 0.95},  # inside the crowd
          {"image_id": 1, "category_id": 2, "bbox": [40, 2, 10, 10], "score": 0.8}]

    def pycocotools_stats(g):
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            cg = COCO()
            cg.dataset = copy.deepcopy(g)
            cg.createIndex()
            cd = cg.loadRes(copy.deepcopy(dt))
            ev = COCOeval(cg, cd, "bbox")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        return list(ev.stats)

    ours = coco_metrics(gt, dt, "bbox")
    theirs = pycocotools_stats(gt)
    assert [ours.stats[k] for k in ours.stats] == pytest.approx(theirs)
    assert ours.stats["AP"] == pytest.approx(1.0)  # the detection on the crowd is neither a hit nor a miss
    not_crowd = copy.deepcopy(gt)
    for a in not_crowd["annotations"]:
        a["iscrowd"] = 0
    assert pycocotools_stats(not_crowd)[0] < 1.0  # were it an object, the crowd would be a miss


# ---------------------------------------------------------------------------------------- records at the edge
def test_reader_attributes_over_the_limit_are_located(tmp_path):
    shutil.copy(INSTANCES / "images" / "train" / "a.jpg", tmp_path / "a.jpg")
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 5}],
           "categories": [{"id": 1, "name": "a"}],
           "annotations": [{"id": 9, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2],
                            "attributes": {"big": "x" * 70_000}}]}
    (tmp_path / "ann.json").write_text(json.dumps(doc))
    from workbench.errors import ImportFormatError

    with pytest.raises(ImportFormatError) as e:
        get_reader("coco").read(tmp_path / "ann.json")
    assert "annotation 9" in str(e.value) and "attributes" in str(e.value)
    doc["annotations"][0]["attributes"] = {"keypoints": 1}
    (tmp_path / "ann.json").write_text(json.dumps(doc))
    with pytest.raises(ImportFormatError, match="reserved"):
        get_reader("coco").read(tmp_path / "ann.json")


def test_category_ids_fall_back_when_not_unique():
    from workbench.data.formats.coco_fields import category_ids, image_ids

    assert category_ids([ClassDef("a", "#000000", origin={"id": 4}), ClassDef("b", "#000000")]) == [4, 2]
    assert category_ids([ClassDef("a", "#000000", origin={"id": 2}), ClassDef("b", "#000000")]) == [2, 3]
    assert category_ids([ClassDef("a", "#000000", origin={"id": 1}),
                         ClassDef("b", "#000000", origin={"id": 1})]) == [1, 2]
    exs = [Example(i, "d", "x", "f", 1, 1, "train", "new", origin=o) for i, o in
           [(1, {"id": 40}), (2, {"id": 40}), (3, {}), (40, {"id": 7})]]
    ids = image_ids(exs)
    assert ids[3] == 7 and len(set(ids)) == 4 and 40 not in ids[:1]


def test_import_item_origin_survives_the_store(tmp_path):
    with Workspace(tmp_path / "ws") as ws:
        ds = ws.create_dataset("d", "detection", classes="a")
        data = (INSTANCES / "images" / "train" / "a.jpg").read_bytes()
        from workbench.data.records import ImportBatch

        (eid,) = ds.import_batch(ImportBatch([ImportItem("a.jpg", data=data, origin={"id": "x/1"})]))
        assert ds.example(eid).origin == {"id": "x/1"}


def test_uncompressed_crowd_rle_is_stored_canonically():
    batch = get_reader("coco").read(INSTANCES / "annotations" / "instances_val.json")
    crowd = next(a for a in batch.items[0].annotations if a.iscrowd)
    assert crowd.mask == {"size": [10, 5], "counts": canonical_counts([0, 20, 30])}


def test_error_mining_neither_misses_a_crowd_region_nor_counts_a_prediction_inside_it():
    from workbench.evaluate.mining import rank_examples

    ex, names = _crowd_example()
    ex = Example(1, "d", "0" * 64, "x.png", 64, 64, "test", "annotated", annotations=ex.annotations)
    rows = [{"image_id": 1, "category_id": 1, "bbox": [4, 4, 20, 20], "score": 0.9},
            {"image_id": 1, "category_id": 1, "bbox": [32, 32, 20, 20], "score": 0.95},  # inside the crowd
            {"image_id": 1, "category_id": 2, "bbox": [40, 2, 10, 10], "score": 0.8}]
    (m,) = rank_examples([ex], rows, "detection", names)
    assert m.details["ground_truth"] == 2 and m.details["predictions"] == 2  # the crowd and the one inside it
    assert m.score == 0.0 and m.reasons == [] and m.details["errors"] == []
    as_object = Example(1, "d", "0" * 64, "x.png", 64, 64, "test", "annotated",
                        annotations=tuple(Annotation(a.kind, a.label, bbox=a.bbox) for a in ex.annotations))
    (m,) = rank_examples([as_object], rows[:1] + rows[2:], "detection", names)
    assert m.details["missed"] == 1  # the same region as an object is a miss


def test_an_export_says_what_its_format_cannot_hold(tmp_path, capsys):
    from workbench.cli import main

    home = str(tmp_path / "ws")
    src = INSTANCES / "annotations" / "instances_val.json"
    assert main(["--home", home, "import", "d", str(src), "--format", "coco"]) == 0
    capsys.readouterr()
    assert main(["--home", home, "export", "d", str(tmp_path / "yolo"), "--format", "yolo"]) == 0
    out = capsys.readouterr().out
    assert "not written: 1 crowd regions written as ordinary objects (yolo has no crowd flag)" in out
    assert "not written: 1 annotations whose attributes yolo cannot hold" in out
    assert main(["--home", home, "export", "d", str(tmp_path / "coco"), "--format", "coco"]) == 0
    assert "not written" not in capsys.readouterr().out


def test_string_ids_of_other_sources_are_not_coco_image_ids(tmp_path):
    """VOC keeps its file stems as ids; a COCO export still writes integer image ids."""
    from workbench.data.formats.coco_fields import image_ids

    exs = [Example(i, "d", "x", "f", 1, 1, "train", "new", origin={"id": f"2007_00000{i}"}) for i in (1, 2)]
    assert image_ids(exs) == [1, 2]


def test_we_keep_what_datumaro_keeps_of_coco_instances():
    """datumaro's own expectation for these two files (tests/unit/test_coco_format.py,
    test_can_import_instances, same commit as the assets): per item its image id; per annotation its id,
    label, geometry, is_crowd and attributes x / y. Everything it keeps, we keep (and more: category ids
    1 2 4, supercategories, image file fields, info / licenses)."""
    datumaro_expects = {
        5: [("b", 1, "bbox", (2, 2, 3, 1), False, {})],
        40: [("a", 1, "polygon", (0, 0, 1, 2), False, {"x": 1, "y": "hello"}),
             ("b", 2, "mask", (0, 0, 1, 9), True, {})],
    }
    mask_2 = np.array([[1, 1, 0, 0, 0]] * 10, dtype=bool)
    for split in ("train", "val"):
        batch = get_reader("coco").read(INSTANCES / "annotations" / f"instances_{split}.json")
        for item in batch.items:
            got = [(a.label, a.source_id, a.kind, a.bbox, a.iscrowd, a.attributes) for a in item.annotations]
            want = [(lab, aid, "box" if kind == "bbox" else kind, tuple(float(v) for v in bb), crowd, at)
                    for lab, aid, kind, bb, crowd, at in datumaro_expects[item.origin["id"]]]
            assert got == want
            for a in item.annotations:
                if a.kind == "mask":
                    assert np.array_equal(_our_mask(a, 10, 5), mask_2)
        assert [c.name for c in batch.classes] == ["a", "b", "c"]
        assert [c.origin["id"] for c in batch.classes] == [1, 2, 4]
