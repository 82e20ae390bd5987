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
from pathlib import Path

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


# ------------------------------------------------------------------ the byte scan on other layouts and real files
REAL = Path(__file__).parents[1] / "data" / "realworld"
COCOAPI = REAL / "cocoapi-val2014-100"  # COCO val2014's first 100 images, pycocotools' demo results (PROVENANCE)
LAYOUTS = {  # how other tools write JSON: json.dumps defaults, pretty, datumaro's compact pretty, minified, keys sorted
    "default": {},
    "indent": {"indent": 2},
    "datumaro": {"indent": 4, "separators": (",", ":")},
    "minified": {"separators": (",", ":")},
    "sorted": {"sort_keys": True, "indent": 1},
}


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_real_coco_files_take_the_fast_path_and_equal_pycocotools(iou_type):
    g, d = COCOAPI / "instances_val2014_100.json", COCOAPI / f"instances_val2014_fake{iou_type}100_results.json"
    assert fast_file_eval(g, d, iou_type) is not None
    ref_stats, ref_precision = pycocotools_files(g, d, iou_type)
    res = coco_metrics(g, d, iou_type, per_class=True)
    assert np.abs(np.array([res.stats[k] for k in STAT_KEYS]) - ref_stats).max() < 1e-12
    assert np.array_equal(res.precision, ref_precision)
    slow = coco_metrics(json.loads(g.read_text()), json.loads(d.read_text()), iou_type, per_class=True)
    assert res.as_dict() == slow.as_dict()  # per-class counts from hotcoco equal the dict path's


def _layout_pair(layout: str, negative_score: bool = True) -> tuple[dict, list]:
    gt, dt = make_coco_pair(12, 5, 3, seed=31, crowd_fraction=0.1)
    for i, d in enumerate(dt):  # negative corners, exponents, negative scores: all fine for the fast path
        x, y, w, h = d["bbox"]
        d["bbox"] = [x - 3.0 if i % 3 == 0 else x, y, w, h * 1e-05 if i % 7 == 0 else h]
        if negative_score and i % 4 == 0:
            d["score"] = -d["score"]
    return gt, dt


def write_as(tmp_path, gt, dt, layout: str, name: str = "") -> tuple:
    g, d = tmp_path / f"gt{name}.json", tmp_path / f"dt{name}.json"
    g.write_text(json.dumps(gt, **LAYOUTS[layout]))
    d.write_text(json.dumps(dt, **LAYOUTS[layout]))
    return g, d


@pytest.mark.parametrize("layout", LAYOUTS)
def test_clean_files_in_any_layout_take_the_fast_path(tmp_path, layout):
    gt, dt = _layout_pair(layout)
    g, d = write_as(tmp_path, gt, dt, layout)
    assert fast_file_eval(g, d, "bbox") is not None
    ref_stats, _ = pycocotools_files(g, d, "bbox")
    res = coco_metrics(g, d)
    assert np.abs(np.array([res.stats[k] for k in STAT_KEYS]) - ref_stats).max() < 1e-12


LAYOUT_FLAWS = [  # (what, mutate(gt, dt), file, record, field)
    ("negative width", lambda g, d: d[5]["bbox"].__setitem__(2, -4.0), "dt", "detection 5", "bbox"),
    ("negative height", lambda g, d: d[6]["bbox"].__setitem__(3, -0.5), "dt", "detection 6", "bbox"),
    ("both negative", lambda g, d: d[7].update(bbox=[-1.0, -2.0, -3.0, -4.0]), "dt", "detection 7", "bbox"),
    ("null score", lambda g, d: d[8].update(score=None), "dt", "detection 8", "score"),
    ("no score", lambda g, d: d[9].pop("score"), "dt", "detection 9", "score"),
    ("null area", lambda g, d: g["annotations"][3].update(area=None), None, None, None),
    ("null gt box", lambda g, d: g["annotations"][4].update(bbox=None), "gt", "annotation 5", "bbox"),
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("what,mutate,file,record,field", LAYOUT_FLAWS, ids=[f[0] for f in LAYOUT_FLAWS])
def test_flaws_in_any_layout_take_the_located_path(tmp_path, layout, what, mutate, file, record, field):
    gt, dt = _layout_pair(layout)
    mutate(gt, dt)
    g, d = write_as(tmp_path, gt, dt, layout)
    assert fast_file_eval(g, d, "bbox") is None
    if file is None:  # a null area is filled like a missing one: same numbers as the dicts
        assert coco_metrics(g, d).stats == coco_metrics(gt, dt).stats
        return
    with pytest.raises(ValidationError) as info:
        coco_metrics(g, d)
    assert (info.value.file, info.value.record, info.value.field) == (str(g if file == "gt" else d), record, field)


def test_a_key_after_an_escaped_quote_is_not_counted(tmp_path):
    """An image field named '"bbox' holds the bytes '"bbox":' after a backslash: it must not stand in for
    the box an annotation lacks."""
    gt, dt = make_coco_pair(6, 4, 2, seed=13)
    for d in dt:
        d["bbox"] = [abs(v) for v in d["bbox"]]
    gt["images"][0]['"bbox'] = 1
    del gt["annotations"][2]["bbox"]
    g, d = write(tmp_path, gt, dt)
    assert b'\\"bbox":' in g.read_bytes()
    assert fast_file_eval(g, d, "bbox") is None
    with pytest.raises(ValidationError) as info:
        coco_metrics(g, d)
    assert (info.value.file, info.value.record, info.value.field) == (str(g), "annotation 3", "bbox")


def test_values_far_from_their_colons(tmp_path):
    """Three blanks after each colon: the numbers are still pycocotools', and a null there is still seen."""
    gt, dt = make_coco_pair(6, 4, 2, seed=14)
    for d in dt:
        d["bbox"] = [abs(v) for v in d["bbox"]]
    g, d = tmp_path / "gt.json", tmp_path / "dt.json"
    g.write_text(json.dumps(gt, separators=(", ", ":   ")))
    d.write_text(json.dumps(dt, separators=(", ", ":   ")))
    ref_stats, _ = pycocotools_files(g, d, "bbox")
    res = coco_metrics(g, d)
    assert np.abs(np.array([res.stats[k] for k in STAT_KEYS]) - ref_stats).max() < 1e-12
    dt[3]["score"] = None
    d.write_text(json.dumps(dt, separators=(", ", ":   ")))
    assert fast_file_eval(g, d, "bbox") is None
    with pytest.raises(ValidationError) as info:
        coco_metrics(g, d)
    assert (info.value.record, info.value.field) == ("detection 3", "score")


def test_datumaro_written_ground_truth(tmp_path):
    """datumaro's own COCO export (tests/data/realworld/keep, PROVENANCE): hotcoco's file reader refuses its
    ``"year": ""`` and its dict reader its integer ``date_captured``; the located path hands hotcoco only
    what evaluation needs, so the numbers are pycocotools' and a flaw is still located."""
    g = REAL / "keep" / "datumaro" / "coco_dataset" / "coco_instances" / "annotations" / "instances_val.json"
    gt = json.loads(g.read_text())
    assert gt["info"]["year"] == "" and gt["images"][0]["date_captured"] == 0
    dt = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9 - 0.1 * i}
        for i, a in enumerate(gt["annotations"])
    ]
    d = tmp_path / "dt.json"
    d.write_text(json.dumps(dt, **LAYOUTS["datumaro"]))
    assert fast_file_eval(g, d, "bbox") is None
    ref_stats, _ = pycocotools_files(g, d, "bbox")
    assert np.abs(np.array([coco_metrics(g, d).stats[k] for k in STAT_KEYS]) - ref_stats).max() < 1e-12
    dt[0]["bbox"] = [*dt[0]["bbox"][:3], -1.0]
    d.write_text(json.dumps(dt, **LAYOUTS["datumaro"]))
    with pytest.raises(ValidationError) as info:
        coco_metrics(g, d)
    assert (info.value.file, info.value.record, info.value.field) == (str(d), "detection 0", "bbox")


def test_a_box_spread_over_many_blanks_takes_the_located_path(tmp_path):
    """A sign inside a box the scan cannot see whole (its numbers 100 blanks apart) is left to the
    located path, which finds a negative corner fine and a negative size bad."""
    gt, dt = make_coco_pair(6, 4, 2, seed=15)
    for d in dt:
        d["bbox"] = [abs(v) for v in d["bbox"]]
    dt[2]["bbox"][0] = -1.5
    g, d = tmp_path / "gt.json", tmp_path / "dt.json"
    g.write_text(json.dumps(gt))
    d.write_text(json.dumps(dt, indent=100))
    assert fast_file_eval(g, d, "bbox") is None
    ref_stats, _ = pycocotools_files(g, d, "bbox")
    res = coco_metrics(g, d)
    assert np.abs(np.array([res.stats[k] for k in STAT_KEYS]) - ref_stats).max() < 1e-12
    dt[2]["bbox"][3] = -1.5
    d.write_text(json.dumps(dt, indent=100))
    with pytest.raises(ValidationError) as info:
        coco_metrics(g, d)
    assert (info.value.file, info.value.record, info.value.field) == (str(d), "detection 2", "bbox")


def test_a_crash_in_the_scanning_thread_leaves_the_numbers_to_the_located_path(tmp_path, monkeypatch):
    from workbench.evaluate import coco_files

    gt, dt = make_coco_pair(6, 4, 2, seed=16)
    for d in dt:
        d["bbox"] = [abs(v) for v in d["bbox"]]
    g, d = write(tmp_path, gt, dt)

    def crash(*args):
        raise RuntimeError("scan crashed")

    monkeypatch.setattr(coco_files, "_clean", crash)
    assert fast_file_eval(g, d, "bbox") is None
    ref_stats, _ = pycocotools_files(g, d, "bbox")
    res = coco_metrics(g, d)
    assert np.abs(np.array([res.stats[k] for k in STAT_KEYS]) - ref_stats).max() < 1e-12


def test_a_forked_child_gets_its_own_scanning_threads(tmp_path):
    """The scanning threads are kept between calls; a child forked after a call has none of them and
    must start its own rather than wait on a thread that does not exist there. (hotcoco itself hangs in
    such a child -- its own thread pool does not survive a fork either -- so the child runs the pool
    with a plain task.)"""
    import multiprocessing

    gt, dt = make_coco_pair(6, 4, 2, seed=17)
    for d in dt:
        d["bbox"] = [abs(v) for v in d["bbox"]]
    g, d = write(tmp_path, gt, dt)
    assert fast_file_eval(g, d, "bbox") is not None  # the parent's pool now has an idle thread
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_pool_answers).get(timeout=60) == 42


def _pool_answers() -> int:
    import os

    from workbench.evaluate import coco_files

    return coco_files._workers(os.getpid()).submit(int, "42").result(timeout=30)


def _resized_rle(seg: dict, size: list[int]) -> dict:
    """The same mask drawn on an image of ``size`` (a detection made on a resized copy of the image)."""
    from pycocotools import mask as mask_utils

    m = np.asfortranarray(np.zeros(size, np.uint8))
    src = mask_utils.decode(seg)
    h, w = min(size[0], src.shape[0]), min(size[1], src.shape[1])
    m[:h, :w] = src[:h, :w]
    out = mask_utils.encode(m)
    return {"size": [int(v) for v in out["size"]], "counts": out["counts"].decode()}


def test_a_mask_of_another_size_than_its_image_is_located_not_scored(tmp_path):
    """hotcoco scores such a mask against the image's masks without a word (here as a miss); the file path
    now sends it to the located path, which names it, as the dict and column paths do."""
    gt, dt = make_coco_pair(6, 4, 2, seed=3, iou_type="segm")
    k = next(i for i, d in enumerate(dt) if isinstance(d["segmentation"], dict))
    h, w = dt[k]["segmentation"]["size"]
    dt[k]["segmentation"] = _resized_rle(dt[k]["segmentation"], [h * 2, w * 2])
    g, d = write(tmp_path, gt, dt)
    assert fast_file_eval(g, d, "segm") is None
    with pytest.raises(ValidationError, match="is not the size of image") as info:
        coco_metrics(g, d, "segm")
    assert (info.value.file, info.value.record, info.value.field) == (str(d), f"detection {k}", "segmentation")


def test_a_ground_truth_mask_of_another_size_is_located_not_scored(tmp_path):
    gt, dt = make_coco_pair(6, 4, 2, seed=3, iou_type="segm")
    a = gt["annotations"][2]
    im = next(i for i in gt["images"] if i["id"] == a["image_id"])
    from pycocotools import mask as mask_utils

    rles = mask_utils.frPyObjects(a["segmentation"], im["height"], im["width"]) if isinstance(
        a["segmentation"], list) else [a["segmentation"]]
    rle = mask_utils.merge(rles) if len(rles) > 1 else rles[0]
    rle = {"size": list(rle["size"]), "counts": rle["counts"].decode() if isinstance(rle["counts"], bytes)
           else rle["counts"]}
    a["segmentation"] = _resized_rle(rle, [im["height"] + 10, im["width"]])
    g, d = write(tmp_path, gt, dt)
    assert fast_file_eval(g, d, "segm") is None
    with pytest.raises(ValidationError, match="size") as info:
        coco_metrics(g, d, "segm")
    assert info.value.file == str(g) and info.value.field == "segmentation"


@pytest.mark.parametrize("compact", [False, True])
def test_masks_whose_size_comes_last_keep_the_fast_path(tmp_path, compact):
    """The mask-size check reads each RLE's size from the bytes: "size" after "counts", in a compact file whose
    very last bytes are the last size or in an indented one (a size over several lines), still reads as clean
    (and gives pycocotools' numbers)."""
    gt, dt = make_coco_pair(6, 4, 2, seed=5, iou_type="segm")
    dt = [dict(d, segmentation={"counts": d["segmentation"]["counts"], "size": d["segmentation"]["size"]})
          if isinstance(d["segmentation"], dict) else d for d in dt]
    dt = [{k: v for k, v in d.items() if k != "segmentation"} | {"segmentation": d["segmentation"]} for d in dt]
    g, d = tmp_path / "gt.json", tmp_path / "dt.json"
    g.write_text(json.dumps(gt))
    d.write_text(json.dumps(dt, separators=(",", ":")) if compact else json.dumps(dt, indent=2))
    assert isinstance(dt[-1]["segmentation"], dict)
    assert d.read_bytes().rstrip().endswith(b"]}}]" if compact else b"]\n    }\n  }\n]")
    fast = fast_file_eval(g, d, "segm")
    assert fast is not None
    ref_stats, _ = pycocotools_files(g, d, "segm")
    res = coco_metrics(g, d, "segm")
    assert res.backend == "hotcoco"
    assert np.abs(np.array([res.stats[k] for k in STAT_KEYS]) - ref_stats).max() < 1e-12
