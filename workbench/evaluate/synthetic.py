"""Seeded synthetic COCO ground truth and detections, for tests and the metrics benchmark.

``make_coco_pair`` builds a ground-truth dict (images of varied sizes, several classes, small / medium /
large objects, polygons, compressed RLE, crowd regions as uncompressed RLE) and a detection list that
looks like a real detector's: jittered true positives, misses, wrong classes, duplicates and false
positives, with untied scores. Same arguments, same output.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

__all__ = ["make_coco_pair"]

_AREA_SIDES = ((4, 31), (32, 95), (96, 400))  # small / medium / large, as COCO's area ranges


def _polygon(rng: np.random.Generator, x: float, y: float, w: float, h: float) -> list[float]:
    """A star-ish polygon inscribed in the box (first vertex on each side so its bbox is the box)."""
    k = int(rng.integers(8, 17))
    angles = np.sort(rng.uniform(0, 2 * math.pi, k))
    radii = rng.uniform(0.75, 1.0, k)
    cx, cy = x + w / 2, y + h / 2
    xs = cx + np.cos(angles) * radii * w / 2
    ys = cy + np.sin(angles) * radii * h / 2
    pts = np.stack([xs, ys], 1)
    # pin the four extremes to the box edges
    pts = np.concatenate([pts, [[x, cy], [x + w, cy], [cx, y], [cx, y + h]]])
    order = np.argsort(np.arctan2(pts[:, 1] - cy, pts[:, 0] - cx))
    return [round(float(v), 2) for v in pts[order].reshape(-1)]


def _uncompressed(mask_utils: Any, rle: dict[str, Any]) -> dict[str, Any]:
    """Compressed RLE -> COCO's uncompressed form (column-major run lengths, starting with zeros)."""
    with warnings.catch_warnings():
        # pycocotools 2.0.11's decode trips numpy 2's __array__(copy=) DeprecationWarning; harmless
        warnings.simplefilter("ignore", DeprecationWarning)
        m = mask_utils.decode(rle).reshape(-1, order="F")
    change = np.flatnonzero(np.diff(m)) + 1
    bounds = np.concatenate([[0], change, [m.size]])
    counts = np.diff(bounds).tolist()
    if m.size and m[0] == 1:
        counts = [0, *counts]
    return {"size": list(rle["size"]), "counts": [int(c) for c in counts]}


def _rle_json(rle: dict[str, Any]) -> dict[str, Any]:
    counts = rle["counts"]
    return {
        "size": [int(s) for s in rle["size"]],
        "counts": counts.decode() if isinstance(counts, bytes) else counts,
    }


def make_coco_pair(
    n_images: int = 50,
    boxes_per_image: int = 8,
    n_classes: int = 4,
    *,
    seed: int = 0,
    iou_type: str = "bbox",
    crowd_fraction: float = 0.04,
    rle_fraction: float = 0.3,
    miss_fraction: float = 0.15,
    false_positives: float = 0.25,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(ground_truth, detections)`` for ``iou_type`` ``"bbox"`` or ``"segm"``.

    Boxes per image vary around ``boxes_per_image``; ``false_positives`` is the number of false positives
    per true object. For ``"segm"`` every ground-truth object has a segmentation (polygon, compressed RLE,
    or uncompressed RLE when crowd) and detections carry compressed RLE masks (what pycocotools' loadRes
    accepts); for ``"bbox"`` ground truth has no segmentation and detections only boxes.
    """
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be bbox or segm, got {iou_type!r}")
    segm = iou_type == "segm"
    mask_utils: Any = None
    if segm:
        import pycocotools.mask  # noqa: PLC0415

        mask_utils = pycocotools.mask

    rng = np.random.default_rng(seed)
    cats = [{"id": i + 1, "name": f"class_{i}", "supercategory": "thing"} for i in range(n_classes)]
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    dets: list[dict[str, Any]] = []
    for img_id in range(1, n_images + 1):
        w, h = int(rng.integers(160, 641)), int(rng.integers(160, 641))
        images.append({"id": img_id, "file_name": f"{img_id:06d}.jpg", "width": w, "height": h})
        n = int(rng.poisson(boxes_per_image))
        for _ in range(n):
            lo, hi = _AREA_SIDES[int(rng.integers(0, 3))]
            bw = float(min(int(rng.integers(lo, hi + 1)), w - 1))
            bh = float(min(max(2, bw * rng.uniform(0.6, 1.6)), h - 1))
            x = float(rng.uniform(0, w - bw))
            y = float(rng.uniform(0, h - bh))
            cat = int(rng.integers(1, n_classes + 1))
            crowd = bool(rng.random() < crowd_fraction)
            ann: dict[str, Any] = {
                "id": len(anns) + 1,
                "image_id": img_id,
                "category_id": cat,
                "iscrowd": int(crowd),
            }
            if segm:
                poly = _polygon(rng, x, y, bw, bh)
                rle = mask_utils.merge(mask_utils.frPyObjects([poly], h, w))
                area = float(mask_utils.area(rle))
                if area == 0:
                    continue
                if crowd:
                    ann["segmentation"] = _uncompressed(mask_utils, rle)
                elif rng.random() < rle_fraction:
                    ann["segmentation"] = _rle_json(rle)
                else:
                    ann["segmentation"] = [poly]
                ann["bbox"] = [float(v) for v in mask_utils.toBbox(rle)]
                ann["area"] = area
            else:
                ann["bbox"] = [round(x, 2), round(y, 2), round(bw, 2), round(bh, 2)]
                ann["area"] = ann["bbox"][2] * ann["bbox"][3]
            anns.append(ann)
            if crowd or rng.random() < miss_fraction:
                continue
            copies = 2 if rng.random() < 0.05 else 1  # occasional duplicate detection
            for _ in range(copies):
                dets.append(_detection(rng, ann, img_id, w, h, n_classes, mask_utils))
        for _ in range(int(rng.poisson(false_positives * boxes_per_image))):
            bw = float(rng.integers(4, max(5, w // 3)))
            bh = float(rng.integers(4, max(5, h // 3)))
            fake = {"bbox": [float(rng.uniform(0, w - bw)), float(rng.uniform(0, h - bh)), bw, bh]}
            det = _detection(rng, fake, img_id, w, h, n_classes, mask_utils, jitter=0.0)
            det["category_id"] = int(rng.integers(1, n_classes + 1))
            det["score"] = float(rng.uniform(0.01, 0.6))
            dets.append(det)
    gt = {
        "info": {"description": "workbench synthetic"},
        "images": images,
        "annotations": anns,
        "categories": cats,
    }
    return gt, dets


def _detection(
    rng: np.random.Generator,
    ann: dict[str, Any],
    img_id: int,
    w: int,
    h: int,
    n_classes: int,
    mask_utils: Any,
    jitter: float = 0.12,
) -> dict[str, Any]:
    x, y, bw, bh = ann["bbox"]
    dx, dy = rng.normal(0, jitter * bw), rng.normal(0, jitter * bh)
    sw, sh = math.exp(rng.normal(0, jitter)), math.exp(rng.normal(0, jitter))
    nw, nh = max(1.0, bw * sw), max(1.0, bh * sh)
    nx = float(np.clip(x + dx, 0, w - nw))
    ny = float(np.clip(y + dy, 0, h - nh))
    cat = ann.get("category_id", 1)
    if rng.random() < 0.08:
        cat = int(rng.integers(1, n_classes + 1))
    det: dict[str, Any] = {"image_id": img_id, "category_id": cat, "score": float(rng.uniform(0.3, 1.0))}
    if mask_utils is None:
        det["bbox"] = [round(nx, 2), round(ny, 2), round(nw, 2), round(nh, 2)]
    else:
        poly = _polygon(rng, nx, ny, nw, nh)
        rle = mask_utils.merge(mask_utils.frPyObjects([poly], h, w))
        det["segmentation"] = _rle_json(rle)
    return det
