from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import precision_recall_fscore_support, top_k_accuracy_score

from workbench.errors import ValidationError
from workbench.evaluate import (
    accuracy,
    classification_metrics,
    confusion_matrix,
    top_confusions,
    top_k_accuracy,
)

CLASSES = ["cat", "dog", "fox", "owl"]


def labels(seed: int, n: int = 200):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 4, n)
    p = np.where(rng.random(n) < 0.7, t, rng.integers(0, 4, n))
    return [CLASSES[i] for i in t], [CLASSES[i] for i in p]


@pytest.mark.parametrize("seed", range(5))
def test_matches_sklearn(seed):
    y_true, y_pred = labels(seed)
    rep = classification_metrics(y_true, y_pred, CLASSES)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=CLASSES, zero_division=0)
    assert [rep.precision[c] for c in CLASSES] == pytest.approx(p)
    assert [rep.recall[c] for c in CLASSES] == pytest.approx(r)
    assert [rep.f1[c] for c in CLASSES] == pytest.approx(f)
    assert [rep.support[c] for c in CLASSES] == list(s)
    assert rep.macro_f1 == pytest.approx(f.mean())
    assert np.array_equal(rep.confusion, sk_confusion(y_true, y_pred, labels=CLASSES))
    assert rep.accuracy == pytest.approx(np.mean(np.array(y_true) == np.array(y_pred)))
    assert accuracy(y_true, y_pred) == pytest.approx(rep.accuracy)


def test_never_predicted_and_absent_classes_are_zero():
    rep = classification_metrics(["a", "a", "b"], ["a", "a", "a"], ["a", "b", "c"])
    assert rep.precision == {"a": 2 / 3, "b": 0.0, "c": 0.0}
    assert rep.recall == {"a": 1.0, "b": 0.0, "c": 0.0}
    assert rep.support == {"a": 2, "b": 1, "c": 0}
    assert rep.confusion.tolist() == [[2, 0, 0], [1, 0, 0], [0, 0, 0]]


def test_default_classes_are_sorted_union_and_ints_work():
    rep = classification_metrics([2, 0, 1], [2, 1, 1])
    assert rep.classes == [0, 1, 2] and rep.accuracy == pytest.approx(2 / 3)
    assert confusion_matrix([2, 0, 1], [2, 1, 1]).tolist() == [[0, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_top_confusions():
    y_true = ["cat"] * 10 + ["dog"] * 10 + ["fox"] * 4
    y_pred = ["dog"] * 6 + ["cat"] * 4 + ["cat"] * 3 + ["dog"] * 7 + ["cat"] * 3 + ["fox"]
    rep = classification_metrics(y_true, y_pred, ["cat", "dog", "fox"])
    top = rep.top_confusions(2)
    assert top == [
        {"true": "cat", "predicted": "dog", "count": 6, "fraction": 0.6},
        {"true": "dog", "predicted": "cat", "count": 3, "fraction": 0.3},
    ]
    assert len(rep.top_confusions(10)) == 3  # only non-empty off-diagonal cells
    assert rep.top_confusions(10)[2] == {"true": "fox", "predicted": "cat", "count": 3, "fraction": 0.75}
    with pytest.raises(ValidationError):
        top_confusions(np.zeros((2, 3)), ["a", "b"])


def test_top_k_accuracy_matches_sklearn():
    rng = np.random.default_rng(0)
    scores = rng.random((50, 6))
    y = rng.integers(0, 6, 50)
    for k in (1, 2, 3):
        assert top_k_accuracy(y, scores, k) == pytest.approx(
            top_k_accuracy_score(y, scores, k=k, labels=range(6))
        )
    with pytest.raises(ValidationError):
        top_k_accuracy(y, scores[:, :1].ravel(), 1)
    with pytest.raises(ValidationError):
        top_k_accuracy(y + 10, scores, 1)


BAD = [
    (lambda: classification_metrics(["a"], ["a", "b"]), "y_pred", None),
    (lambda: classification_metrics([], []), "y_true", None),
    (lambda: classification_metrics(["a", "z"], ["a", "a"], ["a", "b"]), "y_true", "example 1"),
    (lambda: classification_metrics(["a", "b"], ["a", "q"], ["a", "b"]), "y_pred", "example 1"),
    (lambda: classification_metrics(["a"], ["a"], ["a", "a"]), "classes", None),
    (lambda: classification_metrics(["a", 1], ["a", 1]), "classes", None),
]


@pytest.mark.parametrize("call,field,record", BAD)
def test_bad_input(call, field, record):
    with pytest.raises(ValidationError) as info:
        call()
    assert info.value.field == field and info.value.record == record


def test_as_dict_is_plain():
    import json

    rep = classification_metrics(*labels(1), CLASSES)
    json.dumps(rep.as_dict())
