"""``coco_metrics`` on ``DetectionColumns`` (a model's arrays, no dict per detection).

Oracles: pycocotools reading the same ground truth and detections as files (the documented way), and
``coco_metrics`` on the same detections as dicts (the record-by-record path). Real files: COCO val2014's
first 100 images with pycocotools' demo results (tests/data/realworld/cocoapi-val2014-100, PROVENANCE).
Every bad column raises the ``ValidationError`` the dict path raises, naming the detection's row and field.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.evaluate.test_coco_files import edge_pair, pycocotools_files, write
from workbench.errors import ValidationError
from workbench.evaluate import STAT_KEYS, coco_metrics
from workbench.evaluate.coco_columns import DetectionColumns, round_like_python
from workbench.evaluate.synthetic import make_coco_pair

pytest.importorskip("pycocotools")
pytest.importorskip("hotcoco")

COCOAPI = Path(__file__).parents[1] / "data" / "realworld" / "cocoapi-val2014-100"


def columns_of(dt: list[dict], iou_type: str) -> DetectionColumns:
    """The dicts' values as columns (a box column only where every dict has one)."""
    return DetectionColumns(
        np.array([d["image_id"] for d in dt], dtype=np.int64).reshape(-1),
        np.array([d["category_id"] for d in dt], dtype=np.int64).reshape(-1),
        np.array([d["score"] for d in dt], dtype=np.float64).reshape(-1),
        np.array([d["bbox"] for d in dt], dtype=np.float64).reshape(-1, 4)
        if all("bbox" in d for d in dt)
        else None,
        [d["segmentation"] for d in dt] if iou_type == "segm" else None,
    )


def stats(res) -> np.ndarray:
    return np.array([res.stats[k] for k in STAT_KEYS])


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_columns_equal_pycocotools_and_the_dict_path(tmp_path, iou_type, seed):
    gt, dt = edge_pair(iou_type, seed)  # crowd, empty images, a class without truth, 150 dets on one image
    ref_stats, ref_precision = pycocotools_files(*write(tmp_path, gt, dt), iou_type)
    cols = columns_of(dt, iou_type)
    res = coco_metrics(gt, cols, iou_type, per_class=True)
    assert res.backend == "hotcoco"
    assert np.abs(stats(res) - ref_stats).max() < 1e-12
    assert np.array_equal(res.precision, ref_precision)
    assert res.as_dict() == coco_metrics(gt, dt, iou_type, per_class=True).as_dict()
    assert res.as_dict() == coco_metrics(gt, cols, iou_type, per_class=True, gt_checked=True).as_dict()
    other = coco_metrics(gt, cols, iou_type, backend="pycocotools")  # columns as dicts for other backends
    assert np.abs(stats(other) - ref_stats).max() < 1e-12


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_real_coco_val2014_as_columns(iou_type):
    g = COCOAPI / "instances_val2014_100.json"
    d = COCOAPI / f"instances_val2014_fake{iou_type}100_results.json"
    gt, dt = json.loads(g.read_text()), json.loads(d.read_text())
    ref_stats, ref_precision = pycocotools_files(g, d, iou_type)
    res = coco_metrics(gt, columns_of(dt, iou_type), iou_type, per_class=True)
    assert np.abs(stats(res) - ref_stats).max() < 1e-12
    assert np.array_equal(res.precision, ref_precision)
    assert res.as_dict() == coco_metrics(gt, dt, iou_type, per_class=True).as_dict()
    assert res.as_dict() == coco_metrics(g, d, iou_type, per_class=True).as_dict()


def test_segm_masks_in_other_forms_are_converted(tmp_path):
    """Polygons and uncompressed RLE rows go through the row-by-row conversion; the numbers stay pycocotools'."""
    import pycocotools.mask as mask_utils

    from workbench.evaluate.synthetic import _uncompressed

    gt, dt = make_coco_pair(15, 6, 3, seed=4, iou_type="segm")
    ref_stats, _ = pycocotools_files(*write(tmp_path, gt, dt), "segm")
    cols = columns_of(dt, "segm")
    segs = list(cols.segmentation)
    segs[0] = _uncompressed(mask_utils, segs[0])
    h, w = segs[1]["size"]
    x, y, bw, bh = (
        float(v) for v in mask_utils.toBbox({"size": [h, w], "counts": segs[1]["counts"].encode()})
    )
    segs[2] = {"size": segs[2]["size"], "counts": segs[2]["counts"].encode()}  # bytes counts
    segs[3] = {"size": [float(v) for v in segs[3]["size"]], "counts": segs[3]["counts"]}  # hotcoco refuses it
    mixed = DetectionColumns(cols.image_id, cols.category_id, cols.score, None, segs)
    res = coco_metrics(gt, mixed, "segm")
    assert np.abs(stats(res) - ref_stats).max() < 1e-12
    segs[1] = [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]]  # a polygon: changes that mask, still evaluates
    dicts = [dict(d, segmentation=s) for d, s in zip(dt, segs, strict=True)]
    polygon = coco_metrics(
        gt, DetectionColumns(cols.image_id, cols.category_id, cols.score, None, segs), "segm"
    )
    assert polygon.as_dict() == coco_metrics(gt, dicts, "segm").as_dict()


def test_no_detections():
    gt, _ = make_coco_pair(5, 4, 2, seed=2)
    empty = DetectionColumns(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros((0, 4)))
    assert coco_metrics(gt, empty).as_dict() == coco_metrics(gt, []).as_dict()
    assert len(empty) == 0
    empty = DetectionColumns([], [], [], [], [])  # plain empty lists will do too
    assert coco_metrics(gt, empty, "bbox").stats == coco_metrics(gt, []).stats


def test_a_user_dict_is_still_checked():
    """``gt_checked`` is the caller's word; without it a user's ground truth gets every per-record check."""
    gt, dt = make_coco_pair(6, 4, 2, seed=3)
    bad = copy.deepcopy(gt)
    bad["annotations"][1]["image_id"] = 999
    with pytest.raises(ValidationError) as err:
        coco_metrics(bad, columns_of(dt, "bbox"))
    assert err.value.field == "image_id" and err.value.record == f"annotation {bad['annotations'][1]['id']}"
    with pytest.raises(
        ValidationError
    ) as err:  # segm needs a segmentation on every annotation, checked or not
        coco_metrics(gt, columns_of(dt, "bbox"), "segm", gt_checked=True)
    assert err.value.field == "segmentation" and err.value.record == "annotation 1"


def _set(i, value):
    def fn(col):
        col = np.array(col, copy=True)
        col[i] = value
        return col

    return fn


BAD_COLUMNS = [  # (iou_type, change, field, record); "{n}": the number of detections
    ("bbox", {"image_id": _set(3, 12345)}, "image_id", "detection 3"),
    ("bbox", {"category_id": _set(5, 77)}, "category_id", "detection 5"),
    ("bbox", {"score": _set(2, math.nan)}, "score", "detection 2"),
    ("bbox", {"score": _set(0, math.inf)}, "score", "detection 0"),
    ("bbox", {"score": lambda c: np.array([*c[:4], None, *c[5:]], dtype=object)}, "score", "detection 4"),
    ("bbox", {"score": lambda c: c > 0.5}, "score", "detection 0"),
    ("bbox", {"score": lambda c: c[:-1]}, "score", "detection {n-1}"),
    ("bbox", {"bbox": _set((4, 1), math.nan)}, "bbox", "detection 4"),
    ("bbox", {"bbox": _set((6, 2), -3.0)}, "bbox", "detection 6"),
    ("bbox", {"bbox": _set((7, 3), -0.5)}, "bbox", "detection 7"),
    ("bbox", {"bbox": lambda c: c[:, :3]}, "bbox", None),
    ("bbox", {"bbox": lambda c: c.reshape(-1)}, "bbox", None),
    ("bbox", {"bbox": lambda c: None}, "bbox", None),
    ("bbox", {"bbox": lambda c: c[:-2]}, "bbox", "detection {n-2}"),
    ("bbox", {"image_id": lambda c: c.astype(float)}, "image_id", None),
    ("bbox", {"image_id": lambda c: c.reshape(-1, 1)}, "image_id", None),
    ("bbox", {"category_id": lambda c: c[:1]}, "category_id", "detection 1"),
    ("segm", {"image_id": _set(9, -1)}, "image_id", "detection 9"),
    ("segm", {"score": _set(8, math.nan)}, "score", "detection 8"),
    ("segm", {"segmentation": lambda c: None}, "segmentation", None),
    ("segm", {"segmentation": lambda c: c[:3]}, "segmentation", "detection 3"),
    ("segm", {"segmentation": lambda c: [c[0], 7, *c[2:]]}, "segmentation", "detection 1"),
    ("segm", {"segmentation": lambda c: [c[0], {"counts": "0"}, *c[2:]]}, "segmentation", "detection 1"),
]


@pytest.mark.parametrize("iou_type,change,field,record", BAD_COLUMNS)
def test_bad_columns_are_located(iou_type, change, field, record):
    gt, dt = make_coco_pair(8, 5, 3, seed=6, iou_type=iou_type)
    cols = columns_of(dt, iou_type)
    values = {k: getattr(cols, k) for k in ("image_id", "category_id", "score", "bbox", "segmentation")}
    for key, fn in change.items():
        values[key] = fn(values[key])
    n = len(dt)
    if record is not None:
        record = record.replace("{n-1}", str(n - 1)).replace("{n-2}", str(n - 2))
    with pytest.raises(ValidationError) as err:
        coco_metrics(gt, DetectionColumns(**values), iou_type)
    assert err.value.field == field, err.value
    assert err.value.record == record, err.value


@pytest.mark.parametrize(
    "key,row,value",
    [
        ("image_id", 3, 12345),
        ("category_id", 5, 77),
        ("score", 2, math.nan),
        ("bbox", 4, [1.0, math.nan, 3.0, 4.0]),
        ("bbox", 6, [1.0, 2.0, -3.0, 4.0]),
    ],
)
def test_columns_and_dicts_name_the_same_row(key, row, value):
    gt, dt = make_coco_pair(8, 5, 3, seed=6)
    dt[row][key] = value
    with pytest.raises(ValidationError) as dicts:
        coco_metrics(gt, dt)
    with pytest.raises(ValidationError) as columns:
        coco_metrics(gt, columns_of(dt, "bbox"))
    assert (
        (columns.value.field, columns.value.record)
        == (dicts.value.field, dicts.value.record)
        == (
            key,
            f"detection {row}",
        )
    )
    assert columns.value.detail.split(",")[0] == dicts.value.detail.split(",")[0]


def test_round_like_python_equals_round():
    rng = np.random.default_rng(0)
    values = np.concatenate(
        [
            rng.uniform(-1e4, 1e4, 20000),
            np.arange(-3000, 3000) / 2000,  # halves at the 3rd decimal: ties and near-ties
            np.arange(0, 4000) / 2000 + 0.0005,
            [0.0005, 1.0005, 2.675, -0.0015, 1e-7, 5e-4, 1e15 + 0.5, 4.5e12 + 0.0625, 1e17, -0.0, 1e300],
        ]
    )
    for decimals in (3, 6):
        for some in (values, values[np.abs(values) < 1e9]):  # with and without values past 2**52 / 10**d
            got = round_like_python(some, decimals)
            want = np.array([round(float(v), decimals) for v in some])
            assert np.array_equal(got, want), some[got != want][:5]
    box = round_like_python(values[:400].reshape(-1, 4), 3)
    assert box.shape == (100, 4) and np.array_equal(box.reshape(-1), round_like_python(values[:400], 3))
    special = round_like_python(np.array([math.nan, math.inf, -math.inf]), 3)
    assert np.isnan(special[0]) and special[1] == math.inf and special[2] == -math.inf


def test_undecodable_mask_counts_are_located():
    gt, dt = make_coco_pair(8, 5, 3, seed=6, iou_type="segm")
    cols = columns_of(dt, "segm")
    segs = list(cols.segmentation)
    segs[4] = {"size": segs[4]["size"], "counts": "\x01zz"}
    with pytest.raises(ValidationError) as err:
        coco_metrics(gt, DetectionColumns(cols.image_id, cols.category_id, cols.score, None, segs), "segm")
    assert (err.value.field, err.value.record) == ("segmentation", "detection 4")


@pytest.mark.parametrize("seed", [0, 1])
def test_segm_results_with_boxes_take_the_box_areas_as_pycocotools(tmp_path, seed):
    """Results carrying a box and a mask (what training writes, as detectron2 does): pycocotools' loadRes
    gives each the box's area, which decides its area range (APs / APm / APl). The dict path, the columns
    and the file path all follow it; a list where not every result has a box takes the masks' areas
    (pycocotools, looking at the first result, does the same when that one has none)."""
    import pycocotools.mask as mask_utils

    gt, dt = edge_pair("segm", seed)
    for i, d in enumerate(dt):
        rle = {"size": d["segmentation"]["size"], "counts": d["segmentation"]["counts"].encode()}
        x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
        d["bbox"] = [x, y, w * (1.6 if i % 3 == 0 else 1.0), h]  # a third get boxes wider than their masks
    ref_stats, ref_precision = pycocotools_files(*write(tmp_path, gt, dt), "segm")
    for res in (
        coco_metrics(gt, dt, "segm"),
        coco_metrics(gt, columns_of(dt, "segm"), "segm"),
        coco_metrics(gt, columns_of(dt, "segm"), "segm", backend="pycocotools"),
        coco_metrics(tmp_path / "gt.json", tmp_path / "dt.json", "segm"),
    ):
        assert np.abs(stats(res) - ref_stats).max() < 1e-12
        assert np.array_equal(res.precision, ref_precision)
    masks_only, _ = pycocotools_files(
        *write(tmp_path, gt, [{k: v for k, v in d.items() if k != "bbox"} for d in dt], "m"), "segm"
    )
    assert np.abs(masks_only - ref_stats).max() > 1e-6  # the areas matter here
    mixed = [{k: v for k, v in d.items() if k != "bbox"} if i == 0 else d for i, d in enumerate(dt)]
    mixed_stats, _ = pycocotools_files(*write(tmp_path, gt, mixed, "x"), "segm")
    assert np.abs(mixed_stats - masks_only).max() < 1e-12
    assert np.abs(stats(coco_metrics(gt, mixed, "segm")) - mixed_stats).max() < 1e-12


def test_a_mask_without_a_size_is_located_in_dicts_too():
    gt, dt = make_coco_pair(8, 5, 3, seed=6, iou_type="segm")
    dt[5]["segmentation"] = {"counts": dt[5]["segmentation"]["counts"]}
    for detections in (dt, columns_of(dt, "segm")):
        with pytest.raises(ValidationError) as err:
            coco_metrics(gt, detections, "segm")
        assert (err.value.field, err.value.record) == ("segmentation", "detection 5")


def test_segm_files_with_boxes_on_some_results_take_the_located_path(tmp_path):
    """hotcoco's file reader would give the boxed results their boxes' areas; pycocotools (first result
    without a box) and coco.py give every result its mask's."""
    import pycocotools.mask as mask_utils

    from workbench.evaluate.coco_files import fast_file_eval

    gt, dt = make_coco_pair(20, 6, 3, seed=8, iou_type="segm")
    for d in dt:
        rle = {"size": d["segmentation"]["size"], "counts": d["segmentation"]["counts"].encode()}
        x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
        d["bbox"] = [x, y, w * 1.7, h]
    g, d = write(tmp_path, gt, dt)
    assert fast_file_eval(g, d, "segm") is not None  # every result has a box: hotcoco's rule is pycocotools'
    ref, _ = pycocotools_files(g, d, "segm")
    assert np.abs(stats(coco_metrics(g, d, "segm")) - ref).max() < 1e-12
    mixed = [{k: v for k, v in r.items() if k != "bbox"} if i % 2 == 0 else r for i, r in enumerate(dt)]
    g, d = write(tmp_path, gt, mixed, "mixed")
    assert fast_file_eval(g, d, "segm") is None
    ref, _ = pycocotools_files(g, d, "segm")
    assert np.abs(stats(coco_metrics(g, d, "segm")) - ref).max() < 1e-12
    dt[3]["bbox"] = [1.0, 2.0, -3.0, 4.0]  # a negative size in a segm result's box is located as in bbox
    g, d = write(tmp_path, gt, dt, "negative")
    assert fast_file_eval(g, d, "segm") is None
    with pytest.raises(ValidationError) as err:
        coco_metrics(g, d, "segm")
    assert (err.value.field, err.value.record) == ("bbox", "detection 3")


def _resized(seg: dict, h: int, w: int) -> dict:
    """The same compressed mask re-encoded at another size (a model that forgot to paste it back)."""
    from pycocotools import mask as mu

    m = mu.decode(seg)
    out = np.zeros((h, w), np.uint8, order="F")
    out[: min(h, m.shape[0]), : min(w, m.shape[1])] = m[:h, :w]
    rle = mu.encode(np.asfortranarray(out))
    return {"size": [h, w], "counts": rle["counts"].decode()}


def test_a_mask_of_another_size_than_its_image_is_located_not_scored_as_no_overlap():
    """pycocotools refuses such a pair and hotcoco scores it as no overlap without a word: every path names
    the detection (columns, clean dicts, dicts taking the record-by-record path) or the ground-truth
    annotation."""
    gt, dt = make_coco_pair(8, 5, 3, seed=6, iou_type="segm")
    h, w = dt[3]["segmentation"]["size"]
    dt[3]["segmentation"] = _resized(dt[3]["segmentation"], h // 2, w)
    mixed = copy.deepcopy(dt)
    mixed[0]["segmentation"] = [[1.0, 1.0, 9.0, 1.0, 9.0, 9.0]]  # a polygon: the record-by-record path
    for detections in (dt, columns_of(dt, "segm"), mixed):
        with pytest.raises(ValidationError, match="would score as no overlap") as err:
            coco_metrics(gt, detections, "segm")
        assert (err.value.field, err.value.record) == ("segmentation", "detection 3")
    gt_bad = copy.deepcopy(gt)
    ann = next(a for a in gt_bad["annotations"] if isinstance(a.get("segmentation"), dict))
    img = next(i for i in gt_bad["images"] if i["id"] == ann["image_id"])
    ann["segmentation"] = _resized(ann["segmentation"], img["height"], img["width"] + 3)
    _, good_dt = make_coco_pair(8, 5, 3, seed=6, iou_type="segm")
    with pytest.raises(ValidationError) as err:
        coco_metrics(gt_bad, good_dt, "segm")
    assert (err.value.field, err.value.record) == ("segmentation", f"annotation {ann['id']}")
