"""Error mining: rankings on hand-made predictions for each dataset type (pure, no store)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from workbench.data.formats.rle import encode_counts_string, rasterize, rle_from_array
from workbench.data.records import Annotation, Example
from workbench.errors import UnknownNameError, ValidationError
from workbench.evaluate.matching import Instance, box_iou, match_image
from workbench.evaluate.mining import REASONS, MinedExample, MiningSettings, anomaly_threshold, rank_examples

CLASSES = ["cat", "dog"]


def ex(i: int, *anns: Annotation, status: str = "annotated", size: int = 100) -> Example:
    return Example(i, "d", "0" * 64, f"{i}.png", size, size, "test", status, annotations=tuple(anns))


def box(label: str, x: float, y: float, w: float, h: float) -> Annotation:
    return Annotation("box", label, bbox=(x, y, w, h))


def det(i: int, label: str, bbox, score: float, **extra) -> dict:
    return {
        "image_id": i,
        "category_id": CLASSES.index(label) + 1,
        "bbox": list(bbox),
        "score": score,
        **extra,
    }


def rle_string(mask: np.ndarray) -> dict:
    rle = rle_from_array(mask)
    return {"size": rle["size"], "counts": encode_counts_string(rle["counts"])}


B1, B2, FAR = (10, 10, 30, 30), (60, 60, 30, 30), (50, 0, 20, 20)


# ---------------------------------------------------------------------------------------------- the contract
# Each case: examples, predictions, kwargs. Ids 3 / 2 / 1 hold a confident mistake / a low-confidence right
# answer / a confident right answer, so id order is the reverse of the expected rank order.
def _classification():
    exs = [ex(i, Annotation("label", "cat")) for i in (1, 2, 3)]
    rows = [
        {"example_id": 3, "probabilities": {"cat": 0.05, "dog": 0.95}},
        {"example_id": 2, "probabilities": [0.55, 0.45]},
        {"example_id": 1, "probabilities": {"cat": 0.99, "dog": 0.01}},
    ]
    return exs, rows, {}


def _anomaly():
    exs = [
        ex(1, Annotation("anomaly", "good")),
        ex(2, Annotation("anomaly", "anomalous")),
        ex(3, Annotation("anomaly", "good")),
    ]
    rows = [
        {"example_id": 3, "score": 20.0},
        {"example_id": 2, "score": 5.1},
        {"example_id": 1, "score": 0.0},
    ]
    return exs, rows, {"threshold": 5.0}


def _detection():
    exs = [ex(i, box("cat", *B1)) for i in (1, 2, 3)]
    rows = [
        det(3, "cat", B1, 0.99),
        det(3, "dog", FAR, 0.95),
        det(2, "cat", B1, 0.3),
        det(1, "cat", B1, 0.99),
    ]
    return exs, rows, {}


def _segmentation():
    poly = (10.0, 10.0, 40.0, 10.0, 40.0, 40.0, 10.0, 40.0)
    exs = [ex(i, Annotation("polygon", "cat", polygons=(poly,))) for i in (1, 2, 3)]
    seg = rle_string(rasterize([poly], None, 100, 100))
    far = rle_string(rasterize(None, FAR, 100, 100))
    rows = [
        det(3, "cat", B1, 0.99, segmentation=seg),
        det(3, "dog", FAR, 0.95, segmentation=far),
        det(2, "cat", B1, 0.3, segmentation=seg),
        det(1, "cat", B1, 0.99, segmentation=seg),
    ]
    return exs, rows, {}


CASES = {
    "classification": _classification,
    "anomaly": _anomaly,
    "detection": _detection,
    "segmentation": _segmentation,
}


@pytest.mark.parametrize("dtype", list(CASES))
def test_confident_mistake_then_unsure_right_then_sure_right(dtype):
    exs, rows, kw = CASES[dtype]()
    classes = ["good", "anomalous"] if dtype == "anomaly" else CLASSES
    ranked = rank_examples(exs, rows, dtype, classes, **kw)
    assert [m.example_id for m in ranked] == [3, 2, 1]
    top, unsure, sure = ranked
    assert "confident_mistake" in top.reasons and top.score >= 1.0
    assert unsure.reasons == ["low_confidence"] and 0.0 < unsure.score < 1.0
    assert sure.reasons == [] and sure.score < unsure.score
    assert all(set(m.reasons) <= set(REASONS) for m in ranked)
    # same input in another order: same ranking
    shuffled = list(rows)
    random.Random(1).shuffle(shuffled)
    again = rank_examples(list(reversed(exs)), shuffled, dtype, classes, **kw)
    assert [m.to_dict() for m in again] == [m.to_dict() for m in ranked]


def test_classification_scores_follow_the_formula():
    exs, rows, _ = _classification()
    by_id = {m.example_id: m for m in rank_examples(exs, rows, "classification", CLASSES)}
    assert by_id[3].score == pytest.approx(1.95) and by_id[3].details["predicted"] == "dog"
    assert by_id[2].score == pytest.approx(1 - (0.55 - 0.45))
    assert by_id[1].score == pytest.approx(1 - 0.98)
    assert by_id[3].to_dict()["true"] == "cat" and by_id[3].to_dict()["reason"] == "likely_label_error"


@pytest.mark.parametrize(
    "p_wrong, label_error, reasons",
    [
        (0.95, True, ["likely_label_error", "confident_mistake", "misclassified"]),
        (0.85, False, ["confident_mistake", "misclassified"]),
        (0.60, False, ["misclassified"]),
    ],
)
def test_classification_label_error_flag(p_wrong, label_error, reasons):
    rows = [{"example_id": 1, "probabilities": {"cat": 1 - p_wrong, "dog": p_wrong}}]
    (m,) = rank_examples([ex(1, Annotation("label", "cat"))], rows, "classification", CLASSES)
    assert m.reasons == reasons and m.likely_label_error is label_error
    assert m.label_error_score == pytest.approx(p_wrong)


def test_ties_go_to_the_lower_example_id():
    exs = [ex(i, Annotation("label", "cat")) for i in (7, 3, 5)]
    rows = [{"example_id": i, "probabilities": [0.4, 0.6]} for i in (5, 7, 3)]
    assert [m.example_id for m in rank_examples(exs, rows, "classification", CLASSES)] == [3, 5, 7]


def test_examples_without_truth_or_prediction_are_left_out():
    exs = [ex(1, Annotation("label", "cat")), ex(2, status="new"), ex(3, Annotation("label", "cat"))]
    rows = [{"example_id": i, "probabilities": [0.9, 0.1]} for i in (1, 2)]
    assert [m.example_id for m in rank_examples(exs, rows, "classification", CLASSES)] == [1]
    # detection: an unannotated new image is not judged; an annotated image with no boxes is
    dexs = [ex(1, status="new"), ex(2, status="reviewed")]
    ranked = rank_examples(dexs, [det(1, "cat", B1, 0.9), det(2, "cat", B1, 0.9)], "detection", CLASSES)
    assert [(m.example_id, m.reasons) for m in ranked] == [
        (2, ["likely_label_error", "confident_mistake", "false_positive"])
    ]


# ---------------------------------------------------------------------------------------------- detection
DETECTION = [
    # name, ground truth, predictions, expected counts, expected reasons, expected score
    (
        "missed and false positive",
        [box("cat", *B1), box("dog", *B2)],
        [("cat", B1, 0.9), ("cat", FAR, 0.95)],
        {"matched": 1, "missed": 1, "false_positives": 1},
        ["likely_label_error", "confident_mistake", "missed_box", "false_positive"],
        1.5 + 1.95,
    ),
    (
        "class confusion",
        [box("dog", *B1)],
        [("cat", B1, 0.95)],
        {"matched": 0, "missed": 0, "false_positives": 0, "misclassified": 1},
        ["likely_label_error", "confident_mistake", "misclassified"],
        1.95,
    ),
    (
        "poor localization",
        [box("cat", 0, 0, 40, 40)],
        [("cat", (20, 0, 40, 40), 0.9)],
        {"matched": 0, "missed": 0, "false_positives": 0, "poor_localization": 1},
        ["poor_localization"],
        1.0,
    ),
    (
        "duplicate is a false positive but no label error",
        [box("cat", *B1)],
        [("cat", B1, 0.9), ("cat", (12, 10, 30, 30), 0.6)],
        {"matched": 1, "false_positives": 1},
        ["false_positive"],
        1.6,
    ),
    (
        "low scores never count as false positives",
        [box("cat", *B1)],
        [("cat", B1, 0.9), ("dog", FAR, 0.3)],
        {"matched": 1, "false_positives": 0, "predictions": 1},
        [],
        0.0,
    ),
    (
        "found only at a low score",
        [box("cat", *B1)],
        [("cat", B1, 0.2)],
        {"matched": 1, "low_confidence": 1},
        ["low_confidence"],
        0.8,
    ),
    (
        "nothing predicted",
        [box("cat", *B1), box("cat", *B2)],
        [],
        {"matched": 0, "missed": 2, "ground_truth": 2},
        ["missed_box"],
        3.0,
    ),
    (
        "greedy by score within a class",
        [box("cat", *B1), box("cat", 14, 10, 30, 30)],
        [("cat", (13, 10, 30, 30), 0.6), ("cat", (11, 10, 30, 30), 0.9)],
        {"matched": 2, "missed": 0, "false_positives": 0},
        [],
        0.0,
    ),
]


@pytest.mark.parametrize("name, gts, preds, counts, reasons, score", DETECTION, ids=[c[0] for c in DETECTION])
def test_detection_outcomes(name, gts, preds, counts, reasons, score):
    rows = [det(1, lab, b, s) for lab, b, s in preds]
    (m,) = rank_examples([ex(1, *gts)], rows, "detection", CLASSES)
    assert {k: m.details[k] for k in counts} == counts
    assert m.reasons == reasons
    assert m.score == pytest.approx(score)
    assert sum(e["type"] != "low_confidence" for e in m.details["errors"]) == sum(
        m.details[k] for k in ("missed", "false_positives", "misclassified", "poor_localization")
    )


def test_detection_accepts_per_example_prediction_dicts():
    rows = [
        {
            "example_id": 1,
            "boxes": np.array([B1, FAR], dtype=float),
            "scores": np.array([0.9, 0.95]),
            "labels": np.array([0, 1]),
        }
    ]
    coco = [det(1, "cat", B1, 0.9), det(1, "dog", FAR, 0.95)]
    a = rank_examples([ex(1, box("cat", *B1))], rows, "detection", CLASSES)
    b = rank_examples([ex(1, box("cat", *B1))], coco, "detection", CLASSES)
    assert a[0].to_dict() == b[0].to_dict() and a[0].details["false_positives"] == 1


def test_segmentation_uses_mask_iou():
    """Two triangles splitting one square: the boxes agree, the masks do not overlap."""
    lower = (0.0, 0.0, 0.0, 40.0, 40.0, 40.0)
    upper = rasterize([(0.0, 0.0, 40.0, 0.0, 40.0, 40.0)], None, 100, 100)
    gt = Annotation("polygon", "cat", polygons=(lower,), bbox=(0, 0, 40, 40))
    rows = [det(1, "cat", (0, 0, 40, 40), 0.9, segmentation=rle_string(upper))]
    (seg,) = rank_examples([ex(1, gt)], rows, "segmentation", CLASSES)
    assert (seg.details["missed"], seg.details["false_positives"], seg.details["matched"]) == (1, 1, 0)
    (boxes,) = rank_examples([ex(1, gt)], rows, "detection", CLASSES)
    assert (boxes.details["matched"], boxes.reasons) == (1, [])


def test_segmentation_mask_against_stored_rle():
    arr = np.zeros((100, 100), dtype=np.uint8)
    arr[10:40, 10:40] = 1
    gt = Annotation("mask", "cat", mask=rle_from_array(arr))
    uncompressed = rle_from_array(arr)
    (m,) = rank_examples(
        [ex(1, gt)], [det(1, "cat", B1, 0.9, segmentation=uncompressed)], "segmentation", CLASSES
    )
    assert m.details["matched"] == 1 and m.details["mean_iou"] == 1.0


def test_match_image_and_box_iou_directly():
    assert box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 10, 10], [20, 20, 5, 5]])).tolist() == [
        [pytest.approx(50 / 150), 0.0]
    ]
    gts = [Instance("cat", (0, 0, 10, 10))]
    out = match_image([Instance("cat", (0, 0, 10, 10), 0.7), Instance("cat", (0, 0, 10, 10), 0.8)], gts)
    assert out.matched == [(1, 0, 1.0)] and out.false_positive == [0] and out.isolated == set()
    with pytest.raises(ValidationError):
        match_image([], gts, iou=0.5, loc_iou=0.6)


# ---------------------------------------------------------------------------------------------- anomaly
def test_anomaly_miss_and_false_alarm_with_threshold_from_labels():
    exs = [
        ex(1, Annotation("anomaly", "anomalous")),
        ex(2, Annotation("anomaly", "good")),
        ex(3, Annotation("anomaly", "good")),
        ex(4, Annotation("anomaly", "anomalous")),
    ]
    rows = [
        {"example_id": 1, "score": 0.15, "label": "good"},
        {"example_id": 2, "score": 0.2, "label": "good"},
        {"example_id": 3, "score": 0.9, "label": "anomalous"},
        {"example_id": 4, "score": 0.52, "label": "anomalous"},
    ]
    assert anomaly_threshold(rows) == 0.52
    by_id = {m.example_id: m for m in rank_examples(exs, rows, "anomaly", ["good", "anomalous"])}
    assert by_id[1].reasons[-1] == "anomaly_miss" and by_id[3].reasons[-1] == "anomaly_false_alarm"
    assert by_id[3].score > by_id[1].score > 1.0 >= by_id[4].score > by_id[2].score
    std = float(np.std([0.15, 0.2, 0.9, 0.52]))
    assert by_id[3].score == pytest.approx(2 - math.exp(-0.38 / std))
    assert by_id[4].reasons == ["low_confidence"] and by_id[4].score == 1.0  # right at the threshold


def test_anomaly_label_error_flag_far_on_the_wrong_side():
    exs = [ex(i, Annotation("anomaly", "good")) for i in range(1, 11)]
    rows = [{"example_id": i, "score": 0.1} for i in range(1, 10)] + [{"example_id": 10, "score": 5.0}]
    ranked = rank_examples(exs, rows, "anomaly", ["good", "anomalous"], threshold=0.3)
    assert ranked[0].example_id == 10 and ranked[0].likely_label_error
    assert ranked[0].label_error_score > 0.9 and not any(m.likely_label_error for m in ranked[1:])


# ---------------------------------------------------------------------------------------------- bad input
BAD = [
    ("classification", [{"probabilities": [0.5, 0.5]}], {}, 0, "example_id"),
    ("classification", [{"example_id": 1, "probabilities": [1.0]}], {}, 0, "probabilities"),
    ("classification", [{"example_id": 1, "probabilities": {"cat": 1.0}}], {}, 0, "probabilities"),
    ("classification", [{"example_id": 1, "probabilities": [float("nan"), 1.0]}], {}, 0, "probabilities"),
    (
        "detection",
        [det(1, "cat", B1, 0.9), {**det(1, "cat", B1, 0.9), "category_id": 0}],
        {},
        1,
        "category_id",
    ),
    ("detection", [{**det(1, "cat", B1, 0.9), "bbox": [1, 2, 3]}], {}, 0, "bbox"),
    ("detection", [{**det(1, "cat", B1, 0.9), "bbox": ["a", "b", "c", "d"]}], {}, 0, "bbox"),
    ("detection", [{**det(1, "cat", B1, 0.9), "score": "high"}], {}, 0, "score"),
    ("detection", [{"example_id": 1, "boxes": [B1], "scores": [], "labels": [0]}], {}, 0, "boxes"),
    (
        "segmentation",
        [det(1, "cat", B1, 0.9, segmentation={"size": [100, 100], "counts": [5]})],
        {},
        0,
        "segmentation",
    ),
    ("segmentation", [det(1, "cat", B1, 0.9, segmentation="nope")], {}, 0, "segmentation"),
    ("anomaly", [{"example_id": 1, "score": None}], {"threshold": 0.5}, 0, "score"),
    ("anomaly", [{"example_id": 1, "score": 0.3}], {}, None, "threshold"),
]


@pytest.mark.parametrize("dtype, rows, kw, record, field", BAD)
def test_bad_prediction_rows_name_the_row_and_field(dtype, rows, kw, record, field):
    classes = ["good", "anomalous"] if dtype == "anomaly" else CLASSES
    truth = (
        Annotation("anomaly", "good")
        if dtype == "anomaly"
        else (Annotation("label", "cat") if dtype == "classification" else box("cat", *B1))
    )
    with pytest.raises(ValidationError) as err:
        rank_examples([ex(1, truth)], rows, dtype, classes, **kw)
    assert err.value.field == field and err.value.record == record


def test_mask_of_the_wrong_size_names_the_example():
    rows = [det(1, "cat", B1, 0.9, segmentation={"size": [10, 10], "counts": [0, 100]})]
    with pytest.raises(ValidationError, match="example 1"):
        rank_examples(
            [ex(1, Annotation("polygon", "cat", polygons=((10, 10, 40, 10, 40, 40),)))],
            rows,
            "segmentation",
            CLASSES,
        )


def test_unknown_type_and_bad_settings():
    with pytest.raises(UnknownNameError, match="classification"):
        rank_examples([], [], "keypoints", CLASSES)
    with pytest.raises(ValidationError, match="iou"):
        rank_examples([], [], "detection", CLASSES, iou=0)
    with pytest.raises(ValidationError) as err:
        MiningSettings(confident=1.5)
    assert err.value.field == "confident"
    with pytest.raises(ValidationError):
        MiningSettings(missed_weight=-1)


def test_mined_example_to_dict_is_plain_json():
    import json

    m = MinedExample(4, 1.23456789, ["misclassified"], {"true": "cat", "predicted": "dog"}, 0.5, "val")
    d = json.loads(json.dumps(m.to_dict()))
    assert d == {
        "example_id": 4,
        "score": 1.234568,
        "reasons": ["misclassified"],
        "reason": "misclassified",
        "details": {"true": "cat", "predicted": "dog"},
        "label_error_score": 0.5,
        "split": "val",
        "true": "cat",
        "predicted": "dog",
    }


def test_mask_iou_on_crops_equals_full_image_iou():
    from workbench.evaluate.matching import _iou_matrix, instance_mask

    rng = np.random.default_rng(3)
    h, w = 60, 80

    def random_instance():
        x, y = rng.uniform(-5, 60), rng.uniform(-5, 40)
        bw, bh = rng.uniform(3, 30), rng.uniform(3, 30)
        kind = rng.integers(0, 3)
        if kind == 0:  # a triangle
            poly = (x, y, x + bw, y + rng.uniform(0, bh), x + rng.uniform(0, bw), y + bh)
            return Instance("cat", (x, y, bw, bh), 0.9, polygons=(poly,))
        if kind == 1:  # a random blob inside the box
            m = np.zeros((h, w), dtype=np.uint8)
            x0, y0 = max(int(x), 0), max(int(y), 0)
            x1, y1 = min(int(x + bw), w), min(int(y + bh), h)
            m[y0:y1, x0:x1] = rng.integers(0, 2, (max(y1 - y0, 0), max(x1 - x0, 0)))
            return Instance("cat", (x, y, bw, bh), 0.9, rle=rle_from_array(m))
        return Instance("cat", (x, y, bw, bh), 0.9)  # box only

    preds = [random_instance() for _ in range(25)]
    gts = [random_instance() for _ in range(25)]
    got = _iou_matrix(preds, gts, True, (h, w))
    for i, p in enumerate(preds):
        for j, g in enumerate(gts):
            if not (p.has_mask and g.has_mask):
                continue
            a, b = instance_mask(p, h, w), instance_mask(g, h, w)
            union = (a | b).sum()
            assert got[i, j] == pytest.approx((a & b).sum() / union if union else 0.0), (i, j)
