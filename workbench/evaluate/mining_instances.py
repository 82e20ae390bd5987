"""Error mining for detection and segmentation: prediction rows to instances, matched per image.

The scoring formula is described in :mod:`workbench.evaluate.mining`; the matching in :mod:`.matching`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..data.records import Example
from ..errors import ValidationError
from .matching import ImageMatch, Instance, match_image
from .mined import MinedExample, MiningSettings, ordered_reasons, row_example_id, row_number

__all__ = ["predicted_instances", "rank_detection", "rank_segmentation"]


def _segmentation(seg: Any, i: int) -> dict[str, Any]:
    """A prediction's ``segmentation`` as {"rle": ...} or {"polygons": ...}."""
    from ..data.formats._rle import decode_counts_string

    if isinstance(seg, Mapping) and "size" in seg and "counts" in seg:
        counts = seg["counts"]
        if isinstance(counts, (str, bytes)):
            counts = decode_counts_string(counts, seg["size"])
        elif (
            not isinstance(counts, Sequence)
            or not all(isinstance(c, (int, np.integer)) and c >= 0 for c in counts)
            or sum(int(c) for c in counts) != int(np.prod(seg["size"]))
        ):
            raise ValidationError(
                "mask counts must be non-negative integers adding up to h*w", record=i, field="segmentation"
            )
        return {"rle": {"size": [int(v) for v in seg["size"]], "counts": [int(c) for c in counts]}}
    if isinstance(seg, Sequence) and seg and all(isinstance(p, Sequence) and len(p) >= 6 for p in seg):
        return {"polygons": tuple(tuple(float(v) for v in p) for p in seg)}
    raise ValidationError(
        "segmentation must be an RLE dict or a list of polygons", record=i, field="segmentation"
    )


def _instance(label: str, bbox: Any, score: Any, seg: Any, i: int) -> Instance:
    try:
        box = np.asarray(bbox, dtype=np.float64).reshape(-1) if bbox is not None else np.zeros(0)
    except (TypeError, ValueError):
        box = np.zeros(0)
    if box.shape != (4,) or not np.isfinite(box).all():
        raise ValidationError(
            f"bbox must be 4 finite numbers (x, y, w, h), got {bbox!r}", record=i, field="bbox"
        )
    geometry = _segmentation(seg, i) if seg is not None else {}
    return Instance(
        label,
        (float(box[0]), float(box[1]), float(box[2]), float(box[3])),
        row_number(score, i, "score"),
        geometry.get("polygons"),
        geometry.get("rle"),
    )


def _class(index: Any, i: int, class_names: Sequence[str], field_name: str, offset: int) -> str:
    k = int(index) - offset if isinstance(index, (int, np.integer)) and not isinstance(index, bool) else -1
    if not 0 <= k < len(class_names):
        raise ValidationError(
            f"class {index!r} is not one of the {len(class_names)} classes (ids from {offset})",
            record=i,
            field=field_name,
        )
    return class_names[k]


def predicted_instances(
    rows: Sequence[Mapping[str, Any]], class_names: Sequence[str]
) -> dict[int, list[Instance]]:
    """Detection / segmentation prediction rows (either form) as instances per example id."""
    out: dict[int, list[Instance]] = {}
    for i, r in enumerate(rows):
        if isinstance(r, Mapping) and "image_id" in r:  # one COCO result per row
            out.setdefault(row_example_id(r, i, "image_id"), []).append(
                _instance(
                    _class(r.get("category_id"), i, class_names, "category_id", 1),
                    r.get("bbox"),
                    r.get("score"),
                    r.get("segmentation"),
                    i,
                )
            )
            continue
        eid = row_example_id(r, i)
        boxes, scores, labels = r.get("boxes", ()), r.get("scores", ()), r.get("labels", ())
        masks = r.get("masks")
        if not len(boxes) == len(scores) == len(labels) or (masks is not None and len(masks) != len(boxes)):
            raise ValidationError(
                "boxes, scores, labels (and masks) differ in length", record=i, field="boxes"
            )
        out.setdefault(eid, []).extend(
            _instance(
                _class(labels[k], i, class_names, "labels", 0),
                boxes[k],
                scores[k],
                None if masks is None else masks[k],
                i,
            )
            for k in range(len(boxes))
        )
    return out


def _in_crowd(p: Instance, ex: Example, iou: float) -> bool:
    """A prediction inside a crowd region of its class (COCO's rule: intersection over the prediction's own
    area): neither a hit nor a false positive, so not mined."""
    px, py, pw, ph = p.bbox
    for a in ex.truth():
        if not a.iscrowd or a.label != p.label or a.bbox is None or pw * ph <= 0:
            continue
        x, y, w, h = a.bbox
        iw = min(px + pw, x + w) - max(px, x)
        ih = min(py + ph, y + h) - max(py, y)
        if iw > 0 and ih > 0 and iw * ih / (pw * ph) >= iou:
            return True
    return False


def _truth_instances(ex: Example, known: set[str]) -> tuple[list[Instance], int]:
    gts, skipped = [], 0
    for a in ex.targets():  # crowd regions are no objects to find
        if a.bbox is None:
            continue
        if a.label not in known:
            skipped += 1
            continue
        gts.append(Instance(a.label, a.bbox, 1.0, a.polygons, a.mask))
    return gts, skipped


def _box(inst: Instance) -> list[float]:
    return [round(v, 2) for v in inst.bbox]


def _rank_instances(
    examples: Sequence[Example],
    rows: Sequence[Mapping[str, Any]],
    class_names: Sequence[str],
    *,
    iou: float,
    settings: MiningSettings,
    threshold: float | None,
    masks: bool,
) -> list[MinedExample]:
    preds_by_id = predicted_instances(rows, class_names)
    known = set(class_names)
    out = []
    for ex in examples:
        if not ex.truth() and ex.status == "new":
            continue  # never annotated: nothing to compare with
        preds = [p for p in preds_by_id.get(ex.id, []) if not _in_crowd(p, ex, iou)]
        gts, skipped = _truth_instances(ex, known)
        try:
            m = match_image(
                preds,
                gts,
                iou=iou,
                loc_iou=settings.loc_iou,
                min_score=settings.min_score,
                masks=masks,
                size=(ex.height, ex.width),
            )
        except ValidationError as e:
            raise e.located(record=f"example {ex.id}") from None
        out.append(_judge_image(ex, m, preds, gts, skipped, settings))
    return out


def _judge_image(
    ex: Example,
    m: ImageMatch,
    preds: Sequence[Instance],
    gts: Sequence[Instance],
    skipped: int,
    s: MiningSettings,
) -> MinedExample:
    """One image's score, reasons and details from its matching (the module doc of :mod:`.mining`)."""
    low = [(i, j, v) for i, j, v in m.matched if preds[i].score < s.min_score]
    score, errors = _object_errors(m, preds, gts, low, s)
    label_error = max([preds[i].score for i in m.isolated & set(m.false_positive)]
                      + [preds[i].score for i, _, _ in m.misclassified], default=0.0)
    reasons = {kind for kind, items in (
        ("missed_box", m.missed),
        ("false_positive", m.false_positive),
        ("misclassified", m.misclassified),
        ("poor_localization", m.poor_localization),
        ("low_confidence", low),
    ) if items}
    wrong = [preds[i].score for i in m.false_positive] + [preds[i].score for i, _, _ in m.misclassified]
    if wrong and max(wrong) >= s.confident:
        reasons.add("confident_mistake")
    if label_error >= s.label_error:
        reasons.add("likely_label_error")
    details: dict[str, Any] = {
        "ground_truth": len(gts),
        "predictions": sum(p.score >= s.min_score for p in preds),
        "matched": len(m.matched),
        "missed": len(m.missed),
        "false_positives": len(m.false_positive),
        "misclassified": len(m.misclassified),
        "poor_localization": len(m.poor_localization),
        "low_confidence": len(low),
        "mean_iou": round(float(np.mean([v for _, _, v in m.matched])), 4) if m.matched else None,
        "errors": errors,
    }
    if skipped:
        details["unknown_class_annotations"] = skipped
    return MinedExample(ex.id, score, ordered_reasons(reasons), details, label_error, ex.split)


def _object_errors(
    m: ImageMatch,
    preds: Sequence[Instance],
    gts: Sequence[Instance],
    low: Sequence[tuple[int, int, float]],
    s: MiningSettings,
) -> tuple[float, list[dict[str, Any]]]:
    """(the image's score: one term per object error; the errors, in the order of the terms)."""
    score = 0.0
    errors: list[dict[str, Any]] = []
    for j in m.missed:
        score += s.missed_weight
        errors.append({"type": "missed_box", "label": gts[j].label, "bbox": _box(gts[j])})
    for i in m.false_positive:
        p = preds[i]
        score += 1.0 + p.score
        errors.append({"type": "false_positive", "label": p.label, "bbox": _box(p), "score": round(p.score, 4),
                       "isolated": i in m.isolated})
    for i, j, v in m.misclassified:
        score += 1.0 + preds[i].score
        errors.append({"type": "misclassified", "true": gts[j].label, "predicted": preds[i].label,
                       "bbox": _box(gts[j]), "score": round(preds[i].score, 4), "iou": round(v, 4)})
    for i, j, v in m.poor_localization:
        score += s.localization_weight
        errors.append({"type": "poor_localization", "label": gts[j].label, "bbox": _box(gts[j]),
                       "predicted_bbox": _box(preds[i]), "score": round(preds[i].score, 4), "iou": round(v, 4)})
    for i, j, v in low:
        score += 1.0 - preds[i].score
        errors.append({"type": "low_confidence", "label": gts[j].label, "bbox": _box(gts[j]),
                       "score": round(preds[i].score, 4), "iou": round(v, 4)})
    return score, errors


def rank_detection(
    examples: Sequence[Example], rows: Sequence[Mapping[str, Any]], class_names: Sequence[str], **kw: Any
) -> list[MinedExample]:
    return _rank_instances(examples, rows, class_names, masks=False, **kw)


def rank_segmentation(
    examples: Sequence[Example], rows: Sequence[Mapping[str, Any]], class_names: Sequence[str], **kw: Any
) -> list[MinedExample]:
    return _rank_instances(examples, rows, class_names, masks=True, **kw)
