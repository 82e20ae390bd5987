"""The evaluation after each training epoch (``DetectionTask.evaluate``: dicts in memory, bbox detections
handed to hotcoco as its ``load_res`` array) equals ``coco_metrics`` on the same ground truth and
detections written as files, and pycocotools on those files."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from workbench.data.records import Annotation, Example
from workbench.evaluate import STAT_KEYS, coco_metrics
from workbench.evaluate.coco_columns import detection_columns
from workbench.evaluate.synthetic import make_coco_pair

pytest.importorskip("torch")
pytest.importorskip("pycocotools")
from workbench.data.formats.coco_convert import ground_truth  # noqa: E402
from workbench.evaluate.coco import RUN_STAT_NAMES  # noqa: E402
from workbench.train.tasks import get_task  # noqa: E402


def examples_and_predictions(seed: int):
    gt, dt = make_coco_pair(30, 8, 3, seed=seed, crowd_fraction=0.1)
    names = [c["name"] for c in gt["categories"]]
    by_id = {c["id"]: c["name"] for c in gt["categories"]}
    examples = []
    for img in gt["images"]:
        anns = tuple(
            Annotation(
                kind="box", label=by_id[a["category_id"]], bbox=tuple(a["bbox"]), iscrowd=bool(a["iscrowd"])
            )
            for a in gt["annotations"]
            if a["image_id"] == img["id"] and a["bbox"][2] > 0 and a["bbox"][3] > 0
        )
        examples.append(
            Example(
                img["id"],
                "d",
                "0" * 64,
                img["file_name"],
                img["width"],
                img["height"],
                "val",
                "done",
                annotations=anns,
            )
        )
    examples.append(Example(999, "d", "0" * 64, "empty.jpg", 100, 80, "val", "done"))  # no truth, no dets
    preds = []
    for ex in examples:
        mine = [d for d in dt if d["image_id"] == ex.id and ex.id != examples[0].id]  # image 0: no dets
        preds.append(
            {
                "example_id": ex.id,
                "boxes": np.array([[max(v, 0.0) for v in d["bbox"]] for d in mine]).reshape(-1, 4),
                "scores": np.array([d["score"] for d in mine]),
                "labels": np.array([d["category_id"] - 1 for d in mine], dtype=np.int64),
            }
        )
    return examples, preds, names


@pytest.mark.parametrize("seed", [0, 1])
def test_in_training_equals_the_file_path(tmp_path, seed):
    examples, preds, names = examples_and_predictions(seed)
    task = get_task("detection")
    got = task.evaluate(preds, examples, names, detailed=True)
    gt = ground_truth(examples, names)
    dt = task.results(preds, examples, names, {})
    assert sum(a["iscrowd"] for a in gt["annotations"]) > 0
    assert detection_columns(dt, gt, "bbox") is not None  # the dict path hands hotcoco columns too
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dt))
    files = coco_metrics(tmp_path / "gt.json", tmp_path / "dt.json", per_class=True)
    for k, v in files.stats.items():
        assert got[RUN_STAT_NAMES[k]] == (None if v < 0 else v), k
    assert got["per_class"] == files.per_class

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO(str(tmp_path / "gt.json"))
        ev = COCOeval(g, g.loadRes(str(tmp_path / "dt.json")), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert np.abs(np.array([files.stats[k] for k in STAT_KEYS]) - ev.stats).max() < 1e-12


def segm_examples_and_predictions(seed: int):
    """Polygon truth, uncompressed-RLE crowd regions, compressed-RLE predicted masks (what ``predict``
    returns) with boxes and scores on exact halves of the written decimals."""
    import pycocotools.mask as mask_utils

    from workbench.evaluate.synthetic import _uncompressed

    gt, dt = make_coco_pair(25, 6, 3, seed=seed, iou_type="segm", crowd_fraction=0.1)
    names = [c["name"] for c in gt["categories"]]
    by_id = {c["id"]: c["name"] for c in gt["categories"]}
    examples = []
    for img in gt["images"]:
        anns = []
        for a in gt["annotations"]:
            if a["image_id"] != img["id"]:
                continue
            seg, label = a["segmentation"], by_id[a["category_id"]]
            if isinstance(seg, list):
                anns.append(Annotation(kind="polygon", label=label, bbox=tuple(a["bbox"]),
                                       polygons=tuple(tuple(p) for p in seg), iscrowd=bool(a["iscrowd"])))
            else:
                mask = seg if isinstance(seg["counts"], list) else _uncompressed(mask_utils, seg)
                anns.append(Annotation(kind="mask", label=label, bbox=tuple(a["bbox"]), mask=mask,
                                       iscrowd=bool(a["iscrowd"])))
        examples.append(Example(img["id"], "d", "0" * 64, img["file_name"], img["width"], img["height"],
                                "val", "done", annotations=tuple(anns)))
    preds = []
    for ex in examples:
        mine = [d for d in dt if d["image_id"] == ex.id]
        boxes = np.array([mask_utils.toBbox({"size": d["segmentation"]["size"],
                                             "counts": d["segmentation"]["counts"].encode()}) for d in mine])
        boxes = boxes.reshape(-1, 4) + np.arange(boxes.size).reshape(-1, 4) % 7 * 0.0005  # ties at 1/1000
        preds.append({
            "example_id": ex.id,
            "boxes": boxes,
            "scores": np.array([round(d["score"], 4) + 5e-7 for d in mine]),  # ties at the 6th place
            "labels": np.array([d["category_id"] - 1 for d in mine], dtype=np.int64),
            "masks": [d["segmentation"] for d in mine],
        })
    return examples, preds, names


@pytest.mark.parametrize("seed", [0, 1])
def test_segmentation_in_training_equals_the_written_rows_and_pycocotools(tmp_path, seed, monkeypatch):
    examples, preds, names = segm_examples_and_predictions(seed)
    task = get_task("segmentation")
    dt = task.results(preds, examples, names, {})
    import workbench.train.tasks as tasks

    def no_dicts(*args, **kwargs):
        raise AssertionError("the in-training evaluation built a dict per detection")

    monkeypatch.setattr(tasks, "detection_json", no_dicts)  # columns, not one dict per detection
    got = task.evaluate(preds, examples, names, detailed=True)
    monkeypatch.undo()
    gt = ground_truth(examples, names, segmentation=True)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dt))
    assert got["detections"] == len(dt)
    for iou_type, prefix in (("bbox", ""), ("segm", "mask_")):
        files = coco_metrics(tmp_path / "gt.json", tmp_path / "dt.json", iou_type, per_class=True)
        for k, v in files.stats.items():
            assert got[prefix + RUN_STAT_NAMES[k]] == (None if v < 0 else v), (iou_type, k)
        assert got[prefix + "per_class"] == files.per_class

        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        with contextlib.redirect_stdout(io.StringIO()):
            g = COCO(str(tmp_path / "gt.json"))
            ev = COCOeval(g, g.loadRes(str(tmp_path / "dt.json")), iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        assert np.abs(np.array([files.stats[k] for k in STAT_KEYS]) - ev.stats).max() < 1e-12


def test_detection_evaluate_builds_no_dict_per_detection(monkeypatch):
    examples, preds, names = examples_and_predictions(0)
    task = get_task("detection")
    want = task.evaluate(preds, examples, names)
    import workbench.train.tasks as tasks

    def no_dicts(*args, **kwargs):
        raise AssertionError("the in-training evaluation built a dict per detection")

    monkeypatch.setattr(tasks, "detection_json", no_dicts)
    assert task.evaluate(preds, examples, names) == want
