"""Overfitting detection, early stopping and the callback fan-out."""

from __future__ import annotations

import logging

import pytest

from workbench.runs.records import EpochRecord, RunSummary
from workbench.train.callbacks import (
    Callback,
    CallbackList,
    EarlyStopping,
    LoggingCallback,
    RecordingCallback,
    find_overfit_ranges,
)

OVERFIT_CASES = [
    # (train losses, val losses, patience, min_delta, expected ranges) -- epochs numbered from 1
    ("none: both fall", [5, 4, 3, 2, 1], [5, 4, 3, 2, 1], 2, 0.0, []),
    ("classic", [5, 4, 3, 2, 1.5, 1.0], [5, 4, 4.2, 4.5, 4.9, 5.5], 3, 0.0, [(3, 6)]),
    ("too short", [5, 4, 3, 2, 1], [5, 4, 4.5, 4.2, 4.0], 2, 0.0, []),
    ("exactly patience", [4, 3, 2, 1], [4, 3, 3.5, 4.0], 2, 0.0, [(3, 4)]),
    ("two stretches", [9, 8, 7, 6, 5, 4, 3, 2], [9, 9.5, 10, 8, 7, 7.5, 8, 8.5], 2, 0.0, [(2, 3), (6, 8)]),
    ("min_delta hides noise", [5, 4, 3, 2, 1], [5, 5.01, 5.02, 5.03, 5.04], 2, 0.05, []),
    ("min_delta keeps real rises", [5, 4, 3, 2, 1], [5, 5.1, 5.2, 5.3, 5.4], 2, 0.05, [(2, 5)]),
    ("train must fall too", [1, 1, 1, 1, 1], [1, 2, 3, 4, 5], 1, 0.0, []),
    ("missing val breaks a run", [5, 4, 3, 2, 1], [1, 2, None, 4, 5], 2, 0.0, []),
    ("nan breaks a run", [5, 4, 3, 2, 1], [1, 2, float("nan"), 4, 5], 1, 0.0, [(2, 2), (5, 5)]),
    ("empty", [], [], 1, 0.0, []),
]


@pytest.mark.parametrize(
    ("train", "val", "patience", "delta", "expected"),
    [c[1:] for c in OVERFIT_CASES],
    ids=[c[0] for c in OVERFIT_CASES],
)
def test_find_overfit_ranges(train, val, patience, delta, expected):
    assert find_overfit_ranges(train, val, patience=patience, min_delta=delta) == expected


def test_find_overfit_ranges_first_epoch_and_bad_args():
    assert find_overfit_ranges([3, 2, 1], [1, 2, 3], patience=2, first_epoch=10) == [(11, 12)]
    with pytest.raises(ValueError):
        find_overfit_ranges([1], [1], patience=0)
    with pytest.raises(ValueError):
        find_overfit_ranges([1, 2], [1], patience=1)


def test_early_stopping_max_and_min():
    es = EarlyStopping("max", patience=2, min_delta=0.01)
    assert es.update(1, 0.5) is True
    assert es.update(2, 0.505) is False  # within min_delta
    assert es.update(3, None) is False
    assert es.should_stop and es.best_epoch == 1 and es.best_value == 0.5
    es2 = EarlyStopping("min", patience=None)
    for epoch, v in enumerate([3.0, 2.0, 2.5, 2.6, 2.7, 2.8], 1):
        es2.update(epoch, v)
    assert es2.best_epoch == 2 and not es2.should_stop
    restored = EarlyStopping("min")
    restored.load_state_dict(es2.state_dict())
    assert restored.state_dict() == es2.state_dict()
    with pytest.raises(ValueError):
        EarlyStopping("sideways")


def test_callback_list_fans_out_in_order_and_ors_should_stop():
    a, b = RecordingCallback(), RecordingCallback(stop_after_steps=1)
    cbs = CallbackList([a, b, Callback()])
    marker = object()
    cbs.bind(marker)
    assert a.trainer is marker
    cbs.on_fit_start({"x": 1})
    cbs.on_epoch_start(1)
    assert not cbs.should_stop()
    cbs.on_step(1, 0.5, 0.01, 0.1)
    cbs.on_epoch_end(EpochRecord(1))
    cbs.on_overfit(1, 3)
    cbs.on_fit_end(RunSummary("r", "finished"))
    assert cbs.should_stop()
    assert a.names() == b.names() == ["fit_start", "epoch_start", "step", "epoch_end", "overfit", "fit_end"]


def test_logging_callback_writes_lines(caplog):
    cb = LoggingCallback()
    with caplog.at_level(logging.INFO, logger="workbench.train"):
        cb.on_fit_start({"model": "small-cnn", "counts": {"train": 3}, "device": "cpu"})
        cb.on_epoch_end(
            EpochRecord.from_json({
                "epoch": 1,
                "train_loss": 0.5,
                "val_loss": 0.6,
                "lr": 0.001,
                "monitor": "accuracy",
                "accuracy": 0.9,
                "images": 10,
            })
        )
        cb.on_overfit(2, 4)
        cb.on_fit_end(RunSummary("r", "finished", best_epoch=1))
    text = caplog.text
    assert "small-cnn" in text and "accuracy=0.9" in text and "images" not in text and "epochs 2-4" in text
