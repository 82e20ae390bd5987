from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from workbench.errors import ValidationError
from workbench.evaluate import at_threshold, auroc, best_threshold, pixel_auroc
from workbench.evaluate.anomaly import binary_labels


def scored(seed: int, n: int = 120):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    s = rng.normal(0, 1, n) + 1.5 * y
    return y, np.round(s, 1)  # rounding makes ties, which the threshold search must handle


@pytest.mark.parametrize("seed", range(4))
def test_auroc_matches_sklearn(seed):
    y, s = scored(seed)
    assert auroc(y, s) == pytest.approx(roc_auc_score(y, s))
    names = ["anomalous" if v else "good" for v in y]
    assert auroc(names, s) == pytest.approx(roc_auc_score(y, s))


@pytest.mark.parametrize("seed", range(4))
def test_best_threshold_is_the_f1_optimum(seed):
    y, s = scored(seed)
    choice = best_threshold(y, s)
    # brute force over every candidate
    f1s = {t: f1_score(y, s >= t, zero_division=0) for t in np.unique(s)}
    best = max(f1s.values())
    assert choice.f1 == pytest.approx(best)
    assert choice.threshold == max(t for t, f in f1s.items() if np.isclose(f, best))  # ties: highest
    assert choice.precision == pytest.approx(precision_score(y, s >= choice.threshold))
    assert choice.recall == pytest.approx(recall_score(y, s >= choice.threshold))


def test_best_threshold_on_separable_scores():
    choice = best_threshold([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert choice.threshold == 0.8 and choice.f1 == 1.0


def test_at_threshold_counts():
    m = at_threshold(["good", "good", "anomalous", "anomalous", "good"], [0.1, 0.6, 0.7, 0.2, 0.65], 0.6)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (1, 2, 1, 1)
    assert m["precision"] == pytest.approx(1 / 3) and m["recall"] == 0.5
    assert m["f1"] == pytest.approx(0.4) and m["accuracy"] == pytest.approx(0.4)
    none_flagged = at_threshold([0, 1], [0.1, 0.2], 5.0)
    assert none_flagged["precision"] == 0 and none_flagged["f1"] == 0


def test_pixel_auroc():
    rng = np.random.default_rng(0)
    masks, maps = [], []
    for i in range(4):
        m = np.zeros((16, 16), np.uint8)
        if i % 2:
            m[4:9, 4:9] = 1
        masks.append(m)
        maps.append(rng.random((16, 16)) + m * 0.8)
    y = np.concatenate([m.ravel() for m in masks])
    s = np.concatenate([a.ravel() for a in maps])
    assert pixel_auroc(masks, maps) == pytest.approx(roc_auc_score(y, s))
    sub = pixel_auroc(masks, maps, max_pixels=500, seed=1)
    assert sub == pixel_auroc(masks, maps, max_pixels=500, seed=1) and abs(sub - roc_auc_score(y, s)) < 0.1


BAD = [
    (lambda: auroc([0, 0, 0], [1, 2, 3]), "labels"),
    (lambda: auroc([0, 1], [1, 2, 3]), "scores"),
    (lambda: auroc([0, 1], [1, float("inf")]), "scores"),
    (lambda: auroc(["good", "bad"], [1, 2]), "labels"),
    (lambda: best_threshold([1, 1], [0.2, 0.3]), "labels"),
    (lambda: at_threshold([], [], 0.5), "labels"),
    (lambda: pixel_auroc([np.zeros((2, 2))], [np.zeros((2, 3))]), "maps"),
    (lambda: pixel_auroc([np.zeros((2, 2))], []), "maps"),
    (lambda: pixel_auroc([np.zeros((2, 2))], [np.zeros((2, 2))]), "labels"),
]


@pytest.mark.parametrize("call,field", BAD)
def test_bad_input(call, field):
    with pytest.raises(ValidationError) as info:
        call()
    assert info.value.field == field


def test_binary_labels():
    assert binary_labels([True, False, 1, 0, "good", "anomalous", np.int64(1)]).tolist() == [
        1,
        0,
        1,
        0,
        0,
        1,
        1,
    ]
    with pytest.raises(ValidationError) as info:
        binary_labels([0, 2])
    assert info.value.record == "example 1"
    with pytest.raises(ValidationError):
        binary_labels([0.5])
