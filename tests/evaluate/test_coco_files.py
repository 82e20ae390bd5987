"""``coco_metrics`` on two files: hotcoco reads them itself when bulk checks prove them clean.

Oracle: pycocotools' COCO(file) / loadRes(file) / COCOeval, the documented way. Every check the
record-by-record path makes must still fire (file, record, field named) when the files go through the
fast path's gate; unusual but valid files (negative box corners, missing areas) must give the same numbers.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json

import numpy as np
import pytest

from workbench.errors import ValidationError
from workbench.evaluate import STAT_KEYS, coco_metrics
from workbench.evaluate.coco_files import fast_file_eval
from workbench.evaluate.synthetic import make_coco_pair

pytest.importorskip("pycocotools")
pytest.importorskip("hotcoco")


def pycocotools_files(gt_path, dt_path, iou_type: str) -> tuple[np.ndarray, np.ndarray]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        dt = gt.loadRes(str(dt_path))
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats), np.asarray(ev.eval["precision"])


def write(tmp_path, gt, dt, name: str = "") -> tuple:
    g, d = tmp_path / f"gt{name}.json", tmp_path / f"dt{name}.json"
    g.write_text(json.dumps(gt))
    d.write_text(json.dumps(dt))
    return g, d


def edge_pair(iou_type: str, seed: int) -> tuple[dict, list]:
    """Crowd regions, an image with neither ground truth nor detections, an image with ground truth but
    no detections, a class with detections but no ground truth, a class with neither, an image with 150
    detections (maxDets 100 cuts it)."""
    gt, dt = make_coco_pair(40, 8, 4, seed=seed, iou_type=iou_type, crowd_fraction=0.1)
    assert sum(a["iscrowd"] for a in gt["annotations"]) > 0
    gt["images"].append({"id": 1000, "file_name": "empty.jpg", "width": 300, "height": 200})
    undetected = gt["images"][0]["id"]
    dt = [d for d in dt if d["image_id"] != undetected]
    assert any(a["image_id"] == undetected for a in gt["annotations"])
    gt["categories"] += [{"id": 50, "name": "ghost"}, {"id": 51, "name": "unused"}]
    dt.append(dict(dt[0], category_id=50, score=0.5))
    crowded = gt["images"][1]["id"]
    donor = next(d for d in dt if d["image_id"] == crowded)
    rng = np.random.default_rng(seed)
    dt += [dict(donor, score=float(s)) for s in rng.random(150)]
    return gt, dt


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_path_equals_pycocotools(tmp_path, iou_type, seed):
    gt, dt = edge_pair(iou_type, seed) if seed else make_coco_pair(60, 10, 5, seed=21, iou_type=iou_type)
    if iou_type == "bbox":  # boxes with negative corners take the located path: keep this pair clean
        for d in dt:
            d["bbox"] = [max(d["bbox"][0], 0.0), max(d["bbox"][1], 0.0), *d["bbox"][2:]]
    g, d = write(tmp_path, gt, dt)
    assert fast_file_eval(g, d, iou_type) is not None  # the gate lets clean files through
    ref_stats, ref_precision = pycocotools_files(g, d, iou_type)
    res = coco_metrics(g, d, iou_type, per_class=True)
    assert res.backend == "hotcoco"
    assert np.abs(np.array([res.stats[k] for k in STAT_KEYS]) - ref_stats).max() < 1e-12
    assert np.array_equal(res.precision, ref_precision)
    slow = coco_metrics(gt, dt, iou_type, per_class=True)  # dicts: the record-by-record path
    assert res.as_dict() == slow.as_dict()
    if seed:
        assert res.per_class["ghost"]["gt"] == 0 and res.per_class["ghost"]["AP"] == -1.0


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_unusual_but_valid_files_give_the_same_numbers(tmp_path, iou_type):
    gt, dt = make_coco_pair(20, 6, 3, seed=5, iou_type=iou_type, crowd_fraction=0.0)
    bare = copy.deepcopy(gt)
    for a in bare["annotations"]:
        del a["area"], a["iscrowd"]
    g, d = write(tmp_path, bare, dt)
    assert fast_file_eval(g, d, iou_type) is None  # missing areas are filled by the located path
    ref = coco_metrics(gt, dt, iou_type)
    assert coco_metrics(g, d, iou_type).stats == ref.stats
    if iou_type == "bbox":
        dt[0]["bbox"] = [-3.0, -2.0, *dt[0]["bbox"][2:]]  # a negative corner is fine (a size is not)
        dt[1]["bbox"] = [*dt[1]["bbox"][:2], 2e-05, 3.5e-06]  # and so is a minus in an exponent
        g, d = write(tmp_path, gt, dt, "2")
        assert fast_file_eval(g, d, iou_type) is not None
        ref_stats, _ = pycocotools_files(g, d, iou_type)
        res = coco_metrics(g, d, iou_type)
        assert np.abs(np.array([res.stats[k] for k in STAT_KEYS]) - ref_stats).max() < 1e-12


BAD_DETECTIONS = [
    (lambda d: d.update(category_id=77), "category_id"),
    (lambda d: d.update(image_id=12345), "image_id"),
    (lambda d: d.update(score=float("nan")), "score"),
    (lambda d: d.update(score=True), "score"),
    (lambda d: d.pop("score"), "score"),
    (lambda d: d.update(bbox=[1, 2, 3]), "bbox"),
    (lambda d: d.update(bbox=[1, 2, -3, 4]), "bbox"),
    (lambda d: d.update(bbox=[1, 2, 3, -4]), "bbox"),
    (lambda d: d.update(bbox=[1, 2, -3, -4]), "bbox"),
    (lambda d: d.pop("bbox"), "bbox"),
    (lambda d: d.update(bbox=None), "bbox"),
]


@pytest.mark.parametrize("mutate,field", BAD_DETECTIONS)
@pytest.mark.parametrize("which", [0, -1])
def test_bad_detection_files_are_located(tmp_path, mutate, field, which):
    gt, dt = make_coco_pair(5, 4, 2, seed=8)
    for d in dt:
        d["bbox"] = [abs(v) for v in d["bbox"]]
    mutate(dt[which])
    g, d = write(tmp_path, gt, dt)
    assert fast_file_eval(g, d, "bbox") is None
    with pytest.raises(ValidationError) as info:
        coco_metrics(g, d)
    assert info.value.field == field and info.value.record == f"detection {len(dt) - 1 if which else 0}"
    assert info.value.file == str(d)


BAD_SEGM_DETECTIONS = [
    (lambda d: d.update(segmentation="oops"), "segmentation"),
    (lambda d: d.pop("segmentation"), "segmentation"),
    (lambda d: d.pop("score"), "score"),
]


@pytest.mark.parametrize("mutate,field", BAD_SEGM_DETECTIONS)
def test_bad_segm_detection_files_are_located(tmp_path, mutate, field):
    gt, dt = make_coco_pair(5, 4, 2, seed=8, iou_type="segm")
    mutate(dt[2])
    g, d = write(tmp_path, gt, dt)
    assert fast_file_eval(g, d, "segm") is None
    with pytest.raises(ValidationError) as info:
        coco_metrics(g, d, "segm")
    assert (info.value.file, info.value.record, info.value.field) == (str(d), "detection 2", field)


BAD_GT = [
    (lambda g: g.pop("categories"), "categories", None),
    (lambda g: g.pop("images"), "images", None),
    (lambda g: g["images"][0].pop("id"), "id", "image 0"),
    (lambda g: g["categories"][0].pop("id"), "id", "category 0"),
    (lambda g: g["annotations"][0].update(image_id=999), "image_id", "annotation 1"),
    (lambda g: g["annotations"][0].update(category_id=999), "category_id", "annotation 1"),
    (lambda g: g["annotations"][0].update(bbox=None), "bbox", "annotation 1"),
    (lambda g: g["annotations"][0].pop("bbox"), "bbox", "annotation 1"),
    (lambda g: g["annotations"][0].update(bbox=[1, 2, float("inf"), 3]), "bbox", "annotation 1"),
    (lambda g: g["annotations"][0].pop("id"), "id", "annotation 0"),
]


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
@pytest.mark.parametrize("mutate,field,record", BAD_GT)
def test_bad_ground_truth_files_are_located(tmp_path, mutate, field, record, iou_type):
    gt, dt = make_coco_pair(5, 4, 2, seed=9, iou_type=iou_type)
    mutate(gt)
    g, d = write(tmp_path, gt, dt)
    assert fast_file_eval(g, d, iou_type) is None
    with pytest.raises(ValidationError) as info:
        coco_metrics(g, d, iou_type)
    assert (info.value.file, info.value.record, info.value.field) == (str(g), record, field)


def test_segm_ground_truth_without_segmentation_is_located(tmp_path):
    gt, dt = make_coco_pair(5, 4, 2, seed=9, iou_type="segm")
    del gt["annotations"][3]["segmentation"]
    g, d = write(tmp_path, gt, dt)
    assert fast_file_eval(g, d, "segm") is None
    with pytest.raises(ValidationError) as info:
        coco_metrics(g, d, "segm")
    assert (info.value.file, info.value.record, info.value.field) == (str(g), "annotation 4", "segmentation")


def test_files_of_the_wrong_shape(tmp_path):
    gt, dt = make_coco_pair(5, 4, 2, seed=9)
    g, d = write(tmp_path, gt, {"annotations": dt})  # hotcoco would read this; coco.py's rule says list
    assert fast_file_eval(g, d, "bbox") is None
    with pytest.raises(ValidationError, match="list") as info:
        coco_metrics(g, d)
    assert info.value.file == str(d)
    g, d = write(tmp_path, [gt], dt, "2")
    with pytest.raises(ValidationError) as info:
        coco_metrics(g, d)
    assert info.value.file == str(g)
    dup = copy.deepcopy(gt)
    dup["annotations"][1]["id"] = dup["annotations"][0]["id"]  # hotcoco warns: the located path decides
    g, d = write(tmp_path, dup, dt, "3")
    assert fast_file_eval(g, d, "bbox") is None


@pytest.mark.parametrize("mutate,field", BAD_DETECTIONS)
def test_bad_detection_dicts_are_located(mutate, field):
    """The in-memory path checks whole columns first; a bad one still gets the record-by-record message."""
    gt, dt = make_coco_pair(5, 4, 2, seed=8)
    for d in dt:
        d["bbox"] = [abs(v) for v in d["bbox"]]
    mutate(dt[3])
    with pytest.raises(ValidationError) as info:
        coco_metrics(gt, dt)
    assert (info.value.record, info.value.field) == ("detection 3", field)


def test_a_harmless_null_keeps_the_fast_path(tmp_path):
    gt, dt = make_coco_pair(6, 4, 2, seed=12)
    for d in dt:
        d["bbox"] = [abs(v) for v in d["bbox"]]
    gt["info"] = {"url": None, "year": None}
    gt["images"][0]["license"] = None
    g, d = write(tmp_path, gt, dt)
    assert fast_file_eval(g, d, "bbox") is not None
    assert coco_metrics(g, d).stats == coco_metrics(gt, dt).stats
    gt["annotations"][2]["area"] = None  # one of the keys the rules need: the located path
    g, d = write(tmp_path, gt, dt, "2")
    assert fast_file_eval(g, d, "bbox") is None
