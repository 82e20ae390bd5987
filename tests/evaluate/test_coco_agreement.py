"""One COCO conversion: a run's metrics, ``workbench evaluate`` and pycocotools on the exported files agree.

The oracle is pycocotools reading the files Workbench writes (``workbench export --format coco`` and the
run's ``predictions.json``), with its own ``COCO`` loader and ``COCOeval``.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from workbench.cli import main
from workbench.data.formats import get_writer
from workbench.data.formats.coco_convert import detection_json, ground_truth
from workbench.data.records import Annotation, ClassDef, Example
from workbench.evaluate.coco import RUN_STAT_NAMES, STAT_KEYS, coco_metrics


def _pycocotools(gt: dict, dt: list, iou_type: str) -> dict[str, float]:
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        cd = cg.loadRes(copy.deepcopy(dt)) if dt else COCO()
        if not dt:
            return dict.fromkeys(STAT_KEYS, 0.0)
        ev = COCOeval(cg, cd, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return dict(zip(STAT_KEYS, (float(v) for v in ev.stats), strict=True))


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


_PNG = _png()


def _triangle_example(boxes: bool = True) -> tuple[Example, list[str]]:
    """A 40 x 40 triangle (area 800: COCO 'small') and a 30 x 40 box (area 1200: 'medium'), one crowd."""
    tri = Annotation("polygon", "tri", polygons=((10.0, 10.0, 50.0, 10.0, 10.0, 50.0),))
    box = Annotation("polygon", "box", polygons=((60.0, 20.0, 90.0, 20.0, 90.0, 60.0, 60.0, 60.0),))
    crowd = Annotation("box", "box", bbox=(5.0, 60.0, 30.0, 30.0), iscrowd=True)
    if not boxes:  # segm: every region needs a segmentation in the written file
        crowd = Annotation("polygon", "box", polygons=((5.0, 60.0, 35.0, 60.0, 35.0, 90.0, 5.0, 90.0),),
                           iscrowd=True)
    ex = Example(7, "t", hashlib.sha256(_PNG).hexdigest(), "t.png", 100, 100, "test", "annotated", annotations=(tri, box, crowd))
    return ex, ["tri", "box"]


def _written_gt(tmp_path, ex: Example, names: list[str]) -> dict:
    classes = [ClassDef(n, "#ff0000") for n in names]
    get_writer("coco").write(tmp_path / "out", [ex], classes, "segmentation", lambda _sha: _PNG)
    return json.loads((tmp_path / "out" / "annotations.json").read_text())




def test_ground_truth_area_and_crowd_are_the_written_files():
    ex, names = _triangle_example()
    gt = ground_truth([ex], names)
    assert [a["area"] for a in gt["annotations"]] == [800.0, 1200.0, 900.0]  # the triangle's, not its box's
    assert [a["iscrowd"] for a in gt["annotations"]] == [0, 0, 1]
    seg = ground_truth([ex], names, segmentation=True)
    assert all("segmentation" in a for a in seg["annotations"])
    assert [a["area"] for a in seg["annotations"]] == [800.0, 1200.0, 900.0]


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_size_buckets_equal_pycocotools_on_the_exported_file(tmp_path, iou_type):
    ex, names = _triangle_example(boxes=iou_type == "bbox")
    written = _written_gt(tmp_path, ex, names)
    assert [a["area"] for a in written["annotations"]] == [800.0, 1200.0, 900.0]
    tri_seg = [[10.0, 10.0, 50.0, 10.0, 10.0, 50.0]]
    dt = [
        detection_json(ex.id, 0, (10, 10, 40, 40), 0.9, {"size": [100, 100], "counts": _rle(tri_seg)}),
        detection_json(ex.id, 1, (60, 20, 30, 40), 0.8, {"size": [100, 100], "counts": _rle([[60, 20, 90, 20,
                                                                                             90, 60, 60, 60]])}),
        detection_json(ex.id, 1, (8, 62, 20, 20), 0.95, {"size": [100, 100], "counts": _rle([[8, 62, 28, 62,
                                                                                             28, 82, 8, 82]])}),
    ]
    gt = ground_truth([ex], names, segmentation=iou_type == "segm")
    ours = coco_metrics(gt, dt, iou_type)
    oracle = _pycocotools(written, dt, iou_type)
    assert ours.stats == pytest.approx(oracle, abs=1e-12)
    assert ours.stats["APs"] > 0 and ours.stats["APm"] > 0  # the triangle is small, the box medium
    assert ours.run_stats()["mAP_small"] == oracle["APs"]
    # the previous training-side conversion (area = box w*h) put the triangle (1600) among the medium ones
    boxed = copy.deepcopy(gt)
    for a in boxed["annotations"]:
        a["area"] = a["bbox"][2] * a["bbox"][3]
    assert coco_metrics(boxed, dt, iou_type).stats["APs"] != oracle["APs"]


def test_ground_truth_masks_stay_uncompressed_and_score_as_the_written_file(tmp_path):
    """Evaluation's ground truth keeps a mask's counts as stored (no encoding per mask); pycocotools reading
    the exported file (compressed RLE) gives the same 12 stats, hotcoco and pycocotools backends alike."""
    from workbench.data.formats.rle import rle_from_array

    disc = np.zeros((100, 100), np.uint8)
    yy, xx = np.mgrid[:100, :100]
    disc[(yy - 40) ** 2 + (xx - 45) ** 2 < 15**2] = 1  # area ~700: small
    blob = np.zeros((100, 100), np.uint8)
    blob[55:95, 20:60] = 1  # 1600: medium
    masks = [Annotation("mask", "a", mask=rle_from_array(disc)), Annotation("mask", "b", mask=rle_from_array(blob))]
    ex = Example(7, "t", hashlib.sha256(_PNG).hexdigest(), "t.png", 100, 100, "test", "annotated",
                 annotations=tuple(masks))
    gt = ground_truth([ex], ["a", "b"], segmentation=True)
    assert [a["segmentation"]["counts"] for a in gt["annotations"]] == [m.mask["counts"] for m in masks]
    written = _written_gt(tmp_path, ex, ["a", "b"])
    assert all(isinstance(a["segmentation"]["counts"], str) for a in written["annotations"])  # files: compressed
    dt = [detection_json(ex.id, 0, (30, 25, 31, 31), 0.9, {"size": [100, 100], "counts": _rle(
              [[30.0, 25.0, 61.0, 25.0, 61.0, 56.0, 30.0, 56.0]])}),
          detection_json(ex.id, 1, (20, 55, 40, 40), 0.8, {"size": [100, 100], "counts": _rle(
              [[20.0, 55.0, 60.0, 55.0, 60.0, 95.0, 20.0, 95.0]])})]
    oracle = _pycocotools(written, dt, "segm")
    assert oracle["AP"] > 0
    for backend in ("hotcoco", "pycocotools"):
        assert coco_metrics(gt, dt, "segm", backend=backend).stats == pytest.approx(oracle, abs=1e-12), backend
        assert coco_metrics(gt, dt, "segm", backend=backend, gt_checked=True).stats == pytest.approx(
            oracle, abs=1e-12), backend


def _rle(polys: list[list[float]]) -> str:
    from pycocotools import mask as mask_utils

    rle = mask_utils.merge(mask_utils.frPyObjects(polys, 100, 100))
    return rle["counts"].decode()


def test_a_segmentation_run_equals_workbench_evaluate_and_pycocotools(tmp_path, capsys):
    pytest.importorskip("torch")
    from tests.train.sources import quick_config
    from workbench.data.samples import make_sample
    from workbench.data.workspace import Workspace
    from workbench.train.from_store import train_dataset

    home = tmp_path / "ws"
    batch = make_sample("shapes-segmentation", 24, 0, size=64)
    with Workspace(home) as ws:
        ds = ws.create_dataset("s", batch.type, classes=[c.name for c in batch.classes])
        ds.import_batch(batch)
        config = quick_config(model="tiny-maskrcnn", image_size=64, epochs=1, batch_size=8, max_steps_per_epoch=2)
        train_dataset(ws, "s", config)
    run_dir = next(p for p in (home / "runs").rglob("metrics.json")).parent
    assert main(["--home", str(home), "runs", "s", "--json"]) == 0
    rid = json.loads(capsys.readouterr().out)[0]["run_id"]
    assert main(["--home", str(home), "evaluate", rid, "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)["test"]
    stored = json.loads((run_dir / "metrics.json").read_text())["test"]
    preds = json.loads((run_dir / "predictions.json").read_text())
    assert preds, "the run made no test predictions to compare"
    for prefix in ("", "mask_"):
        for name in RUN_STAT_NAMES.values():
            assert evaluated[prefix + name] == pytest.approx(stored[prefix + name], abs=1e-12), prefix + name
    assert main(["--home", str(home), "export", "s", str(tmp_path / "coco"), "--format", "coco", "--split",
                 "test"]) == 0
    capsys.readouterr()
    written = json.loads((tmp_path / "coco" / "annotations.json").read_text())
    by_name = {im["file_name"]: im["id"] for im in written["images"]}
    with Workspace(home) as ws:
        names = {ex.id: ex.file_name for ex in ws.dataset("s").examples()}
    cat_of = {c["name"]: c["id"] for c in written["categories"]}
    class_names = [c.name for c in batch.classes]
    dt = [{**p, "image_id": by_name[names[p["image_id"]]], "category_id": cat_of[class_names[p["category_id"] - 1]]}
          for p in preds]
    for iou_type, prefix in (("bbox", ""), ("segm", "mask_")):
        oracle = _pycocotools(written, dt, iou_type)
        for key, name in RUN_STAT_NAMES.items():
            want = None if oracle[key] < 0 else oracle[key]
            assert stored[prefix + name] == pytest.approx(want, abs=1e-12), (iou_type, key)
