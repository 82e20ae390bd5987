from __future__ import annotations

import contextlib
import copy
import io
import json

import numpy as np
import pytest

from workbench.errors import UnknownNameError, ValidationError
from workbench.evaluate import STAT_KEYS, coco_metrics
from workbench.evaluate.coco_backends import BACKENDS, PREFERENCE, get_backend, quiet
from workbench.evaluate.synthetic import make_coco_pair

pytest.importorskip("pycocotools")

INSTALLED = [name for name, b in BACKENDS.items() if b.available()]


def reference(gt: dict, dt: list, iou_type: str) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools' own COCOeval, used the documented way, on untouched copies."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    coco_gt = COCO()
    coco_gt.dataset = copy.deepcopy(gt)
    coco_gt.createIndex()
    with contextlib.redirect_stdout(io.StringIO()):
        if dt:
            coco_dt = coco_gt.loadRes(copy.deepcopy(dt))
        else:
            coco_dt = COCO()
            coco_dt.dataset = {"images": gt["images"], "categories": gt["categories"], "annotations": []}
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats), np.asarray(ev.eval["precision"])


@pytest.fixture(scope="module", params=["bbox", "segm"])
def pair(request):
    gt, dt = make_coco_pair(50, 10, 5, seed=7, iou_type=request.param)
    return request.param, gt, dt


def test_generated_pair_covers_the_cases(pair):
    iou_type, gt, dt = pair
    anns = gt["annotations"]
    areas = np.array([a["area"] for a in anns])
    assert (
        (areas < 32**2).sum() > 20
        and ((areas >= 32**2) & (areas < 96**2)).sum() > 20
        and (areas >= 96**2).sum() > 20
    )
    assert sum(a["iscrowd"] for a in anns) >= 3
    assert len({a["category_id"] for a in anns}) == 5
    assert len(gt["images"]) == 50 and len(dt) > 300
    assert len({d["score"] for d in dt}) == len(dt)
    if iou_type == "segm":
        kinds = {
            (
                "polygon"
                if isinstance(a["segmentation"], list)
                else "uncompressed"
                if isinstance(a["segmentation"]["counts"], list)
                else "compressed"
            )
            for a in anns
        }
        assert kinds == {"polygon", "uncompressed", "compressed"}


@pytest.mark.parametrize("backend", INSTALLED)
def test_stats_equal_pycocotools(pair, backend):
    iou_type, gt, dt = pair
    ref_stats, ref_precision = reference(gt, dt, iou_type)
    res = coco_metrics(gt, dt, iou_type, backend=backend, per_class=True)
    assert res.backend == backend and res.iou_type == iou_type
    ours = np.array([res.stats[k] for k in STAT_KEYS])
    assert np.abs(ours - ref_stats).max() < 1e-12
    assert res.precision.shape == ref_precision.shape == (10, 101, 5, 4, 3)
    assert np.abs(res.precision - ref_precision).max() < 1e-12
    assert 0.05 < res.stats["AP"] < 0.9  # a non-trivial case, not all zeros or ones
    # per-class AP from the reference array
    for k, cat in enumerate(res.categories):
        p = ref_precision[:, :, k, 0, -1]
        assert res.per_class[cat["name"]]["AP"] == pytest.approx(p[p > -1].mean(), abs=1e-12)
        assert res.per_class[cat["name"]]["AP50"] == pytest.approx(p[0].mean(), abs=1e-12)


def test_per_class_and_curves_agree_with_stats(pair):
    iou_type, gt, dt = pair
    res = coco_metrics(gt, dt, iou_type, per_class=True)
    aps = [v["AP"] for v in res.per_class.values()]
    assert np.mean(aps) == pytest.approx(res.stats["AP"], abs=1e-12)
    assert np.mean([v["AP50"] for v in res.per_class.values()]) == pytest.approx(res.stats["AP50"], abs=1e-12)
    curve = res.pr_curves["all"]
    assert curve["recall"][0] == 0 and curve["recall"][-1] == 1 and len(curve["recall"]) == 101
    assert np.mean(curve["precision50"]) == pytest.approx(res.stats["AP50"], abs=1e-12)
    assert np.mean(curve["precision"]) == pytest.approx(res.stats["AP"], abs=1e-12)
    assert set(res.pr_curves) == {"all", *res.per_class}
    counts = {
        c["name"]: sum(1 for a in gt["annotations"] if a["category_id"] == c["id"] and not a["iscrowd"])
        for c in gt["categories"]
    }
    assert {k: v["gt"] for k, v in res.per_class.items()} == counts
    json.dumps(res.as_dict())  # JSON-able
    assert coco_metrics(gt, dt, iou_type).per_class == {}


@pytest.mark.parametrize("backend", INSTALLED)
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_empty_detections(backend, iou_type):
    gt, _ = make_coco_pair(20, 8, 3, seed=3, iou_type=iou_type)
    ref_stats, _ = reference(gt, [], iou_type)
    res = coco_metrics(gt, [], iou_type, backend=backend, per_class=True)
    ours = np.array([res.stats[k] for k in STAT_KEYS])
    assert np.abs(ours - ref_stats).max() < 1e-12
    assert (ours == 0).all()  # every area range has ground truth here, so every number is 0
    assert all(v["AP"] == 0 for v in res.per_class.values())


def test_class_without_ground_truth_is_minus_one():
    gt, dt = make_coco_pair(10, 6, 2, seed=1)
    gt["categories"].append({"id": 99, "name": "ghost"})
    dt.append(dict(dt[0], category_id=99))
    ref_stats, _ = reference(gt, dt, "bbox")
    res = coco_metrics(gt, dt, per_class=True)
    assert np.abs(np.array([res.stats[k] for k in STAT_KEYS]) - ref_stats).max() < 1e-12
    assert res.per_class["ghost"] == {"AP": -1.0, "AP50": -1.0, "AP75": -1.0, "gt": 0}
    assert "ghost" not in res.pr_curves


@pytest.mark.parametrize("backend", INSTALLED)
def test_prints_nothing(backend, capfd):
    gt, dt = make_coco_pair(5, 4, 2, seed=2, iou_type="segm")
    coco_metrics(gt, dt, "segm", backend=backend)
    coco_metrics(gt, [], "bbox", backend=backend)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_quiet_restores_output(capfd):
    with quiet():
        print("hidden")
    print("shown")
    assert capfd.readouterr().out == "shown\n"


def test_inputs_are_not_changed():
    gt, dt = make_coco_pair(8, 5, 2, seed=4, iou_type="segm")
    g0, d0 = copy.deepcopy(gt), copy.deepcopy(dt)
    for backend in INSTALLED:
        coco_metrics(gt, dt, "segm", backend=backend)
        coco_metrics(gt, dt, "bbox", backend=backend)  # detections with only masks get their masks' boxes
    assert gt == g0 and dt == d0


def test_files_in_files_out(tmp_path):
    gt, dt = make_coco_pair(8, 5, 2, seed=5)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dt))
    a = coco_metrics(tmp_path / "gt.json", str(tmp_path / "dt.json"))
    assert a.stats == coco_metrics(gt, dt).stats
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValidationError) as info:
        coco_metrics(tmp_path / "bad.json", dt)
    assert info.value.file.endswith("bad.json")
    with pytest.raises(ValidationError) as info:
        coco_metrics(gt, tmp_path / "missing.json")
    assert info.value.file.endswith("missing.json")


def test_unknown_image_id_is_a_clear_error(tmp_path):
    gt, dt = make_coco_pair(8, 5, 2, seed=6)
    dt[3] = dict(dt[3], image_id=12345)
    with pytest.raises(ValidationError) as info:
        coco_metrics(gt, dt)
    assert (
        info.value.record == "detection 3" and info.value.field == "image_id" and "12345" in str(info.value)
    )
    (tmp_path / "dt.json").write_text(json.dumps(dt))
    with pytest.raises(ValidationError) as info:
        coco_metrics(gt, tmp_path / "dt.json")
    assert info.value.file.endswith("dt.json")


BAD_DETECTIONS = [
    (lambda d: d.update(category_id=77), "category_id"),
    (lambda d: d.update(score=float("nan")), "score"),
    (lambda d: d.pop("score"), "score"),
    (lambda d: d.update(bbox=[1, 2, 3]), "bbox"),
    (lambda d: d.update(bbox=[1, 2, -3, 4]), "bbox"),
    (lambda d: d.pop("bbox"), "bbox"),
]


@pytest.mark.parametrize("mutate,field", BAD_DETECTIONS)
def test_bad_detections(mutate, field):
    gt, dt = make_coco_pair(5, 4, 2, seed=8)
    mutate(dt[0])
    with pytest.raises(ValidationError) as info:
        coco_metrics(gt, dt)
    assert info.value.field == field and info.value.record == "detection 0"


BAD_GT = [
    (lambda g: g.pop("categories"), "categories", None),
    (lambda g: g["annotations"][0].update(image_id=999), "image_id", "annotation 1"),
    (lambda g: g["annotations"][0].update(category_id=999), "category_id", "annotation 1"),
    (lambda g: g["annotations"][0].update(bbox=None), "bbox", "annotation 1"),
    (lambda g: g["annotations"][0].pop("id"), "id", "annotation 0"),
]


@pytest.mark.parametrize("mutate,field,record", BAD_GT)
def test_bad_ground_truth(mutate, field, record):
    gt, dt = make_coco_pair(5, 4, 2, seed=9)
    mutate(gt)
    with pytest.raises(ValidationError) as info:
        coco_metrics(gt, dt)
    assert info.value.field == field and info.value.record == record


def test_missing_area_and_iscrowd_are_filled():
    gt, dt = make_coco_pair(10, 5, 2, seed=10, iou_type="segm", crowd_fraction=0.0)
    bare = copy.deepcopy(gt)
    for a in bare["annotations"]:
        del a["area"], a["iscrowd"]
    assert coco_metrics(bare, dt, "segm").stats == coco_metrics(gt, dt, "segm").stats


def test_segm_detections_as_polygons_or_rle_agree():
    from pycocotools import mask as mu

    gt, dt = make_coco_pair(6, 4, 2, seed=11, iou_type="segm")
    images = {i["id"]: i for i in gt["images"]}
    # polygons: the rectangle of each detection's mask box; RLE: the same rectangles rasterized
    poly_dt, rle_dt = [], []
    for d in dt:
        img = images[d["image_id"]]
        x, y, w, h = mu.toBbox(d["segmentation"]).tolist()
        poly = [[x, y, x + w, y, x + w, y + h, x, y + h]]
        poly_dt.append(dict(d, segmentation=poly))
        rle = mu.merge(mu.frPyObjects(poly, img["height"], img["width"]))
        rle_dt.append(dict(d, segmentation={"size": rle["size"], "counts": rle["counts"].decode()}))
    a = coco_metrics(gt, poly_dt, "segm")
    assert a.stats == coco_metrics(gt, rle_dt, "segm").stats
    assert np.abs(np.array(list(a.stats.values())) - reference(gt, rle_dt, "segm")[0]).max() < 1e-12
    with pytest.raises(ValidationError) as info:
        coco_metrics(gt, [dict(dt[0], segmentation="oops")], "segm")
    assert info.value.field == "segmentation"
    missing = copy.deepcopy(gt)
    del missing["annotations"][0]["segmentation"]
    with pytest.raises(ValidationError, match="segmentation"):
        coco_metrics(missing, dt, "segm")


def test_registry_and_names():
    assert set(PREFERENCE) <= set(BACKENDS)
    assert get_backend("auto").name == next(n for n in PREFERENCE if BACKENDS[n].available())
    with pytest.raises(UnknownNameError) as info:
        coco_metrics({"images": [], "annotations": [], "categories": []}, [], backend="detectron")
    assert "pycocotools" in str(info.value) and "auto" in str(info.value)
    with pytest.raises(UnknownNameError):
        coco_metrics({"images": [], "annotations": [], "categories": []}, [], iou_type="keypoints")
