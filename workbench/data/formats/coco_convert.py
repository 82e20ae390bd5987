"""The one conversion between our records and COCO dicts: ground truth and predictions (torch-free).

Used by the COCO writer (``coco.write``), training's metrics (``train.tasks``), ``workbench evaluate``
(``train.from_store.evaluate_run``) and the evaluation widgets, so a run's ``metrics.json``, ``workbench
evaluate`` and pycocotools reading the exported files all see the same annotations:

- ``area`` is the annotation's own area (:attr:`Annotation.area`: the polygon's or the mask's area, the
  box's for a box), what the writer puts in the file and what pycocotools' ``COCO`` loader then uses for
  the small / medium / large buckets, for ``bbox`` and ``segm`` alike;
- ``iscrowd`` is :attr:`Annotation.iscrowd`, so a crowd region stays crowd (matched, never a miss);
- masks go out as compressed RLE strings (what COCO files hold); polygons as written.

Ground-truth category ids are ``class index + 1``; image ids are the examples' ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..records import Annotation, Example
from .rle import encode_counts_string

__all__ = ["annotation_json", "ground_truth", "detection_json"]


def annotation_json(
    a: Annotation, *, ann_id: Any, image_id: Any, category_id: Any, box_segmentation: bool = False,
    compress_masks: bool = True,
) -> dict[str, Any]:
    """The COCO geometry of one annotation: id, image, category, bbox, area, iscrowd and segmentation
    (polygons or RLE; with ``box_segmentation`` a box-only annotation gets its box as a polygon, which
    ``segm`` evaluation needs). A mask is compressed RLE (what files hold), or with ``compress_masks=False``
    its uncompressed counts (what evaluators read just as well, without encoding each mask in Python)."""
    if a.bbox is None:
        raise ValueError(f"annotation of kind {a.kind!r} has no region")
    d: dict[str, Any] = {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": [float(v) for v in a.bbox],
        "area": float(a.area),
        "iscrowd": int(a.iscrowd),
    }
    if a.polygons is not None:
        d["segmentation"] = [list(p) for p in a.polygons]
    elif a.mask is not None:
        counts = a.mask["counts"]
        d["segmentation"] = {"size": list(a.mask["size"]),
                             "counts": encode_counts_string(counts) if compress_masks else list(counts)}
    elif box_segmentation:
        x, y, w, h = d["bbox"]
        d["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    return d


def ground_truth(
    examples: Sequence[Example], class_names: Sequence[str], *, segmentation: bool = False
) -> dict[str, Any]:
    """A COCO ground-truth dict of ``examples``' regions (category id = class index + 1; regions of other
    classes are left out). ``segmentation``: every annotation carries one (boxes as polygons), for ``segm``.
    For evaluation: masks keep their uncompressed counts (pycocotools and hotcoco read them as they read the
    compressed string; encoding every mask in Python took 6.5 s of 8.5 s at 5,000 images)."""
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    index = {n: i + 1 for i, n in enumerate(class_names)}
    for ex in examples:
        images.append({"id": ex.id, "width": ex.width, "height": ex.height, "file_name": ex.file_name})
        for ann in ex.truth():
            if ann.bbox is None or ann.label not in index:
                continue
            annotations.append(
                annotation_json(
                    ann,
                    ann_id=len(annotations) + 1,
                    image_id=ex.id,
                    category_id=index[ann.label],
                    box_segmentation=segmentation,
                    compress_masks=False,
                )
            )
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(class_names)]
    return {"images": images, "annotations": annotations, "categories": categories}


def detection_json(
    image_id: int,
    class_index: int,
    bbox: Sequence[float],
    score: float,
    segmentation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One COCO result row (what ``loadRes`` reads): class index -> category id ``index + 1``, the box
    ``x, y, w, h`` in the image's pixels rounded to 1/1000 px, the score to 6 places."""
    row: dict[str, Any] = {
        "image_id": int(image_id),
        "category_id": int(class_index) + 1,
        "bbox": [round(float(v), 3) for v in bbox],
        "score": round(float(score), 6),
    }
    if segmentation is not None:
        row["segmentation"] = segmentation
    return row
