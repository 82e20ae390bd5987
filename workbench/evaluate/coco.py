"""COCO detection / instance-segmentation metrics that equal pycocotools' COCOeval.

``coco_metrics(gt, dt, iou_type="bbox")`` checks and normalizes the inputs, runs one backend from the
registry in ``coco_backends`` (default ``"auto"``: hotcoco, else faster-coco-eval, else pycocotools; all
give pycocotools' numbers) with its printing silenced, and returns a ``CocoResult``: the 12 summary stats,
per-class AP / AP50 / AP75 and precision-recall curves read from the evaluator's ``eval["precision"]``.

Conventions kept from pycocotools: a value is -1 where it is undefined (no ground truth in that class or
area range); the 101 recall points are 0, 0.01, ..., 1; maxDets is 1 / 10 / 100.
Input rules: ground truth must be a COCO dict (or a JSON file of one); an annotation with no ``area`` gets
the area of its segmentation (else of its box), one with no ``iscrowd`` gets 0 (pycocotools would crash on
both). Detections must name known images and categories; for ``segm`` a detection's segmentation may be a
polygon, uncompressed or compressed RLE (all are converted to compressed RLE, which is what loadRes takes),
and its area (which puts it in an area range) is its box's when every detection has a box (pycocotools'
``loadRes`` rule: it looks at the first result; detectron2-style results carry both), else its mask's;
for ``bbox`` a detection needs a box (one with only a mask gets the mask's box).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UnknownNameError, ValidationError
from .coco_backends import Backend, RawEval, get_backend, quiet
from .coco_columns import (
    DetectionColumns,
    check_mask_sizes,
    checked_columns,
    detection_columns,
    mask_utils,
    to_compressed_rle,
)
from .coco_files import fast_file_eval

__all__ = ["STAT_KEYS", "RUN_STAT_NAMES", "IOU_TYPES", "CocoResult", "coco_metrics", "load_ground_truth", "load_detections"]

STAT_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
IOU_TYPES = ("bbox", "segm")
# The names a run's metrics (metrics.json, history, ``workbench evaluate``) give the 12 stats; the
# pycocotools names (``STAT_KEYS``) stay those of ``CocoResult.stats`` and ``workbench metrics coco``.
RUN_STAT_NAMES = dict(
    zip(
        STAT_KEYS,
        ("mAP", "mAP50", "mAP75", "mAP_small", "mAP_medium", "mAP_large",
         "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large"),
        strict=True,
    )
)
RECALL_POINTS = [round(x, 2) for x in np.linspace(0.0, 1.0, 101)]


@dataclass(frozen=True)
class CocoResult:
    """What one COCO evaluation produced.

    ``stats``: the 12 numbers under ``STAT_KEYS``. ``per_class``: class name -> ``{"AP", "AP50", "AP75",
    "gt"}`` (``gt``: non-crowd ground-truth objects; filled when ``per_class=True``). ``pr_curves``: ``"all"``
    (and each class with ground truth, when ``per_class=True``) -> ``{"recall": 101 points, "precision50":
    precision at IoU 0.5, "precision": mean over IoU 0.5:0.95}``, area ``all``, 100 detections.
    ``precision``: the evaluator's raw array ``[T, R, K, A, M]``; ``categories``: ``{"id", "name"}`` per K.
    """

    iou_type: str
    backend: str
    stats: dict[str, float]
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    pr_curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    categories: list[dict[str, Any]] = field(default_factory=list)
    precision: np.ndarray = field(default_factory=lambda: np.zeros((10, 101, 0, 4, 3)), repr=False)

    def run_stats(self, prefix: str = "") -> dict[str, float | None]:
        """The 12 stats under a run's names (``RUN_STAT_NAMES``, after ``prefix``: ``"mask_"`` for segm),
        with pycocotools' -1 ("undefined") as None."""
        return {prefix + RUN_STAT_NAMES[k]: (None if v < 0 else v) for k, v in self.stats.items()}

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (without the raw precision array)."""
        return {
            "iou_type": self.iou_type,
            "backend": self.backend,
            "stats": dict(self.stats),
            "per_class": {k: dict(v) for k, v in self.per_class.items()},
            "pr_curves": {k: {kk: list(vv) for kk, vv in v.items()} for k, v in self.pr_curves.items()},
            "categories": [dict(c) for c in self.categories],
        }


def _read_json(path: str | Path, what: str) -> Any:
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValidationError(f"cannot read {what}: {exc.strerror}", file=str(p)) from None
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{what} is not valid JSON: {exc}", file=str(p)) from None


def _num(v: Any) -> bool:
    return (
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)
    )


def load_ground_truth(gt: dict[str, Any] | str | Path) -> dict[str, Any]:
    """A checked, normalized shallow copy of a COCO ground-truth dict (or of the JSON file ``gt``)."""
    file = None
    if isinstance(gt, (str, Path)):
        file = str(gt)
        gt = _read_json(gt, "ground truth")
    if not isinstance(gt, dict):
        raise ValidationError(
            "ground truth must be a COCO object with images, annotations, categories", file=file
        )
    for key in ("images", "annotations", "categories"):
        if not isinstance(gt.get(key), list):
            raise ValidationError(f"ground truth has no '{key}' list", file=file, field=key)
    images = _by_id(gt["images"], "image", file)
    cats = _by_id(gt["categories"], "category", file)
    bulk = _complete_annotations(gt["annotations"], images, cats)
    if bulk is not None:  # the usual case: every check passed over whole columns
        _check_boxes([a.get("bbox") for a in bulk], lambda i: f"annotation {bulk[i]['id']}", file)
        return {**gt, "annotations": bulk}
    anns = [_checked_annotation(a, i, images, cats, file) for i, a in enumerate(gt["annotations"])]
    _check_boxes([a.get("bbox") for a in anns], lambda i: f"annotation {anns[i]['id']}", file)
    return {**gt, "annotations": anns}


def _by_id(entries: list[Any], what: str, file: str | None) -> dict[Any, dict[str, Any]]:
    """The ``images`` or ``categories`` entries by id (each must be an object with an ``id``)."""
    out = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "id" not in entry:
            raise ValidationError(f"{what} entry has no id", file=file, record=f"{what} {i}", field="id")
        out[entry["id"]] = entry
    return out


def _checked_annotation(
    a: Any, i: int, images: dict[Any, dict[str, Any]], cats: dict[Any, Any], file: str | None
) -> dict[str, Any]:
    """Annotation ``i`` checked (known image and category, an id), with the ``iscrowd`` and ``area``
    pycocotools needs filled in a copy (a complete one is shared)."""
    if not isinstance(a, dict):
        raise ValidationError("annotation must be an object", file=file, record=f"annotation {i}")
    rec = f"annotation {a.get('id', i)}"
    if a.get("image_id") not in images:
        raise ValidationError(f"unknown image_id {a.get('image_id')!r}", file=file, record=rec, field="image_id")
    if a.get("category_id") not in cats:
        raise ValidationError(
            f"unknown category_id {a.get('category_id')!r}", file=file, record=rec, field="category_id"
        )
    if "id" not in a:
        raise ValidationError("annotation has no id", file=file, record=rec, field="id")
    if "area" not in a or "iscrowd" not in a:
        a = dict(a)
        a.setdefault("iscrowd", 0)
        if "area" not in a:
            a["area"] = _default_area(a, images[a["image_id"]], file, rec)
    return a


def _complete_annotations(
    anns: list[Any], images: dict[Any, Any], cats: dict[Any, Any]
) -> list[dict[str, Any]] | None:
    """``anns`` itself when every one is a dict with ``id``, ``area``, ``iscrowd`` and known image and
    category ids (checked over whole columns); ``None`` sends them through the per-record loop."""
    try:
        if not all(type(a) is dict and "id" in a and "area" in a and "iscrowd" in a for a in anns):
            return None
        if not set(map(itemgetter("image_id"), anns)) <= images.keys():
            return None
        if not set(map(itemgetter("category_id"), anns)) <= cats.keys():
            return None
    except (TypeError, KeyError):  # an unhashable or a missing id: the loop names it
        return None
    return list(anns)


def _default_area(ann: dict[str, Any], img: dict[str, Any], file: str | None, rec: str) -> float:
    if "segmentation" in ann:
        try:
            return float(mask_utils().area(to_compressed_rle(ann["segmentation"], img, rec)))
        except ValidationError as exc:
            raise exc.located(file=file) from None
    bbox = ann.get("bbox")
    _check_boxes([bbox], lambda _: rec, file)
    assert bbox is not None
    return float(bbox[2]) * float(bbox[3])


def _check_boxes(
    boxes: list[Any], record: Callable[[int], str], file: str | None, *, allow_negative: bool = True
) -> None:
    """Every box is 4 finite numbers (and, unless allowed, no negative size). Vectorized for the usual
    case; on a failure, the per-box loop finds the first bad one and names its record (``record(i)``)."""
    if boxes:
        try:
            arr = np.array(boxes)
            ok = arr.dtype.kind in "iuf" and arr.shape == (len(boxes), 4) and bool(np.isfinite(arr).all())
            ok = ok and (allow_negative or bool((arr[:, 2:] >= 0).all()))
        except (ValueError, TypeError):
            ok = False
        if ok:
            return
    for i, bbox in enumerate(boxes):
        if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4 and all(_num(v) for v in bbox)):
            raise ValidationError(
                f"bbox must be 4 finite numbers, got {bbox!r}", file=file, record=record(i), field="bbox"
            )
        if not allow_negative and (bbox[2] < 0 or bbox[3] < 0):
            raise ValidationError(
                f"bbox has negative size {list(bbox)}", file=file, record=record(i), field="bbox"
            )


def load_detections(dt: list[dict[str, Any]] | str | Path) -> list[dict[str, Any]]:
    """The detection list (from a list or a JSON file), not yet checked against ground truth."""
    file = None
    if isinstance(dt, (str, Path)):
        file = str(dt)
        dt = _read_json(dt, "detections")
    if not isinstance(dt, list):
        raise ValidationError("detections must be a list of objects", file=file)
    return dt


def _normalize_detections(
    dt: list[dict[str, Any]], gt: dict[str, Any], iou_type: str, file: str | None
) -> list[dict[str, Any]]:
    images = {img["id"]: img for img in gt["images"]}
    cat_ids = {c["id"] for c in gt["categories"]}
    boxed = iou_type == "segm" and all(isinstance(d, dict) and d.get("bbox") is not None for d in dt)
    out = []
    for i, d in enumerate(dt):
        rec = f"detection {i}"
        if not isinstance(d, dict):
            raise ValidationError("a detection must be an object", file=file, record=rec)
        img = images.get(d.get("image_id"))
        if img is None:
            raise ValidationError(
                f"image_id {d.get('image_id')!r} is not in the ground truth; detections must be for its images",
                file=file,
                record=rec,
                field="image_id",
            )
        if d.get("category_id") not in cat_ids:
            raise ValidationError(
                f"category_id {d.get('category_id')!r} is not a ground-truth category",
                file=file,
                record=rec,
                field="category_id",
            )
        n = {"image_id": d["image_id"], "category_id": d["category_id"], "score": d.get("score")}
        if iou_type == "segm":
            if "segmentation" not in d:
                raise ValidationError(
                    "segm evaluation needs a segmentation", file=file, record=rec, field="segmentation"
                )
            try:
                n["segmentation"] = to_compressed_rle(d["segmentation"], img, rec)
            except ValidationError as exc:
                raise exc.located(file=file) from None
            if boxed:  # every detection has a box: its area is the box's, as pycocotools' loadRes sets it
                n["bbox"] = d["bbox"]
        else:
            bbox = d.get("bbox")
            if bbox is None and "segmentation" in d:
                bbox = [float(v) for v in mask_utils().toBbox(to_compressed_rle(d["segmentation"], img, rec))]
            n["bbox"] = bbox
        out.append(n)
    _check_scores([n["score"] for n in out], file)
    if iou_type == "segm":
        check_mask_sizes([n["image_id"] for n in out], [n["segmentation"] for n in out], images, None, file)
    if iou_type == "bbox" or (boxed and out):
        _check_boxes([n["bbox"] for n in out], lambda i: f"detection {i}", file, allow_negative=False)
    return out


def _check_scores(scores: list[Any], file: str | None) -> None:
    """Every score a finite number (whole column at once; the loop names the first bad one)."""
    try:
        good = np.array(scores).dtype.kind in "iuf" and bool(np.isfinite(np.array(scores, dtype=float)).all())
        good = good and not any(v is True or v is False for v in scores)  # numpy reads True as 1.0
    except (ValueError, TypeError):
        good = False
    if not good:
        i = next(i for i, v in enumerate(scores) if not _num(v))
        raise ValidationError(
            f"score must be a finite number, got {scores[i]!r}",
            file=file,
            record=f"detection {i}",
            field="score",
        )


def coco_metrics(
    gt: dict[str, Any] | str | Path,
    dt: list[dict[str, Any]] | str | Path | DetectionColumns,
    iou_type: str = "bbox",
    *,
    backend: str = "auto",
    per_class: bool = False,
    gt_checked: bool = False,
) -> CocoResult:
    """COCO metrics of detections ``dt`` against ground truth ``gt`` (dicts or JSON file paths).

    ``dt`` may also be ``DetectionColumns`` (a model's arrays; no dict per detection). ``gt_checked``:
    ``gt`` is a dict that already follows the input rules (Workbench built it from its store, e.g.
    ``ground_truth``), so its per-record checks are skipped; detections are always checked.
    ``backend``: a name in ``coco_backends.BACKENDS`` or ``"auto"``. Empty detections give zeros (and -1
    where there is no ground truth), not an error. Prints nothing.
    """
    if iou_type not in IOU_TYPES:
        raise UnknownNameError("COCO iou_type", str(iou_type), IOU_TYPES)
    be = get_backend(backend)
    if be.name == "hotcoco" and isinstance(gt, (str, Path)) and isinstance(dt, (str, Path)):
        fast = fast_file_eval(gt, dt, iou_type, counts=per_class)  # None: not plainly clean, the located path decides
        if fast is not None:
            return _result(iou_type, be.name, fast.raw, fast.categories, fast.gt_counts, per_class)
    gt_file = str(gt) if isinstance(gt, (str, Path)) else None
    dt_file = str(dt) if isinstance(dt, (str, Path)) else None
    gtn = gt if gt_checked and isinstance(gt, dict) else load_ground_truth(gt)
    if iou_type == "segm":
        gtn = _with_segmentations(gtn, gt_file)
    dt_list: list[Any] = []
    if isinstance(dt, DetectionColumns):
        cols: DetectionColumns | None = checked_columns(dt, gtn, iou_type, None)
    else:
        dt_list = load_detections(dt)
        cols = detection_columns(dt_list, gtn, iou_type) if be.run_columns is not None else None
    if cols is not None and iou_type == "segm" and cols.segmentation is not None:
        check_mask_sizes(cols.image_id.tolist(), cols.segmentation, {img["id"]: img for img in gtn["images"]}, None,
                         dt_file)
    raw = _run_columns(be, gtn, dt, cols, iou_type) if cols is not None else None
    if raw is None:
        with quiet():
            if cols is not None and not isinstance(dt, DetectionColumns) and iou_type == "segm":
                cols = None  # hotcoco refused a mask: the record-by-record path converts or names it
            dtn = cols.records(iou_type) if cols is not None else _normalize_detections(dt_list, gtn, iou_type, dt_file)
            raw = be.run(gtn, dtn, iou_type)
    cats = {c["id"]: c for c in gtn["categories"]}
    return _result(iou_type, be.name, raw, cats, lambda: _gt_counts(gtn), per_class)


def _run_columns(
    be: Backend, gt: dict[str, Any], dt: Any, cols: DetectionColumns, iou_type: str
) -> RawEval | None:
    """The backend on the columns, or ``None`` where it takes dicts only (or an id is too large for its
    float rows) or, for dicts, it refused a mask the quick column check let through."""
    if be.run_columns is None or not cols.exact_as_floats():
        return None
    try:
        with quiet():
            return be.run_columns(gt, cols, iou_type)
    except ValidationError:
        raise
    except ValueError:  # hotcoco's typed reader refused a mask (no size, a float in it...)
        if iou_type != "segm":
            raise
    if not isinstance(dt, DetectionColumns):
        return None
    strict = checked_columns(dt, gt, iou_type, None, strict=True)  # converts those rows or names them
    with quiet():
        return be.run_columns(gt, strict, iou_type)


def _result(
    iou_type: str,
    backend: str,
    raw: RawEval,
    cats: dict[Any, dict[str, Any]],
    gt_counts: Callable[[], dict[Any, int]],
    per_class: bool,
) -> CocoResult:
    stats = {k: float(v) for k, v in zip(STAT_KEYS, raw.stats, strict=True)}
    names = _names([cats[i] for i in raw.cat_ids])
    categories = [{"id": i, "name": n} for i, n in zip(raw.cat_ids, names, strict=True)]
    curves = {"all": _curve(raw.precision, None)}
    classes: dict[str, dict[str, float]] = {}
    if per_class:
        counts = gt_counts()
        for k, (cid, name) in enumerate(zip(raw.cat_ids, names, strict=True)):
            classes[name] = {
                "AP": _mean_valid(raw.precision[:, :, k, 0, -1]),
                "AP50": _mean_valid(raw.precision[0, :, k, 0, -1]),
                "AP75": _mean_valid(raw.precision[5, :, k, 0, -1]),
                "gt": counts.get(cid, 0),
            }
            if (raw.precision[:, :, k, 0, -1] > -1).any():
                curves[name] = _curve(raw.precision, k)
    return CocoResult(iou_type, backend, stats, classes, curves, categories, raw.precision)


def _with_segmentations(gt: dict[str, Any], file: str | None) -> dict[str, Any]:
    """``gt`` when every annotation has a segmentation and every mask is its image's size."""
    for a in gt["annotations"]:
        if "segmentation" not in a:
            raise ValidationError(
                "segm evaluation needs a segmentation on every ground-truth annotation",
                file=file,
                record=f"annotation {a['id']}",
                field="segmentation",
            )
    anns = gt["annotations"]
    check_mask_sizes([a["image_id"] for a in anns], [a["segmentation"] for a in anns],
                     {img["id"]: img for img in gt["images"]}, [f"annotation {a['id']}" for a in anns], file)
    return gt


def _names(cats: list[dict[str, Any]]) -> list[str]:
    names = [str(c.get("name", c["id"])) for c in cats]
    dup = {n for n in names if names.count(n) > 1}
    return [f"{n} ({c['id']})" if n in dup else n for n, c in zip(names, cats, strict=True)]


def _gt_counts(gt: dict[str, Any]) -> dict[Any, int]:
    counts: dict[Any, int] = {}
    for a in gt["annotations"]:
        if not a.get("iscrowd"):
            counts[a["category_id"]] = counts.get(a["category_id"], 0) + 1
    return counts


def _mean_valid(values: np.ndarray) -> float:
    """pycocotools' summary rule: the mean of the entries > -1, or -1 when there are none."""
    v = values[values > -1]
    return float(np.mean(v)) if v.size else -1.0


def _curve(precision: np.ndarray, k: int | None) -> dict[str, list[float]]:
    """Precision at the 101 recall points (area all, last maxDets): at IoU 0.5, and averaged over IoUs
    (each point: ``_mean_valid`` of its entries, over whole arrays at once)."""
    p = precision[:, :, :, 0, -1] if k is None else precision[:, :, k : k + 1, 0, -1]  # [T, R, K']
    at50 = _mean_valid_rows(p[0])  # [R, K']
    avg = _mean_valid_rows(p.transpose(1, 0, 2).reshape(p.shape[1], -1))  # [R, T * K']
    return {"recall": list(RECALL_POINTS), "precision50": at50, "precision": avg}


def _mean_valid_rows(values: np.ndarray) -> list[float]:
    """``_mean_valid`` of each row of a 2-d array."""
    valid = values > -1
    n = valid.sum(axis=1)
    sums = np.where(valid, values, 0.0).sum(axis=1)
    return np.where(n > 0, sums / np.maximum(n, 1), -1.0).tolist()
