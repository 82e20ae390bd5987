"""The trainer end to end: every dataset type learns, run folders are complete, runs are reproducible,
a killed or stopped run resumes to the same numbers, NaN stops cleanly, callbacks arrive in order."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from tests.train.sources import Crash, CrashAfterEpoch, easy_anomaly_source, quick_config, sample_source
from workbench.errors import AlreadyExistsError, ValidationError
from workbench.train.callbacks import Callback, RecordingCallback
from workbench.train.checkpoint import load_checkpoint, load_model
from workbench.train.errors import NonFiniteLossError, TrainingStateError
from workbench.train.runs import load_run
from workbench.train.trainer import Trainer, resume

# timing fields differ between runs; everything else in a history record must match exactly
_TIMING = {"data_time", "step_time", "train_time", "images_per_s", "data_share", "val_time", "epoch_time"}


def _numbers(history):
    return [{k: v for k, v in rec.items() if k not in _TIMING} for rec in history]


def _digits_config(**kw):
    base = {
        "model": "small-cnn",
        "image_size": 16,
        "epochs": 3,
        "batch_size": 32,
        "augment": "geometric",
        "schedule": "plateau",
        "patience": 5,
    }
    base.update(kw)
    return quick_config(**base)


# ---------------------------------------------------------------------------------------------- per type
E2E = {
    "classification": (lambda: sample_source("digits", 300), _digits_config(augment="none"), "accuracy", 0.4),
    "detection": (
        lambda: sample_source("shapes-detection", 150, size=64),
        quick_config(model="tiny-frcnn", image_size=64, epochs=3, batch_size=4, schedule="none"),
        "mAP50",
        0.1,
    ),
    "segmentation": (
        lambda: sample_source("shapes-segmentation", 24, size=64),
        quick_config(model="tiny-maskrcnn", image_size=64, epochs=1, batch_size=8, max_steps_per_epoch=2),
        "mask_mAP",
        None,
    ),
    "anomaly": (
        lambda: easy_anomaly_source(),
        quick_config(model="conv-ae", image_size=32, epochs=6),
        "auroc",
        0.8,
    ),
}


@pytest.mark.parametrize("kind", sorted(E2E))
def test_end_to_end(kind, tmp_path):
    make_source, config, metric, floor = E2E[kind]
    source = make_source()
    summary = Trainer(config, source, tmp_path / "run").fit()
    run = load_run(tmp_path / "run")
    assert summary["status"] == run.state == "finished"
    assert len(run.history) == config.epochs and run.history[-1]["epoch"] == config.epochs
    for rec in run.history:
        assert {"train_loss", "val_loss", "lr", metric, "data_time", "step_time", "data_share"} <= set(rec)
        assert rec["images"] > 0 and rec["step_time"] > 0 and 0 <= rec["data_share"] <= 1
    monitor = {"detection": "mAP", "segmentation": "mask_mAP"}.get(kind, metric)
    assert run.params["source"]["dataset_type"] == kind and run.params["resolved"]["monitor"] == monitor
    assert [c["name"] for c in run.params["source"]["classes"]] == source.class_names
    assert run.versions["torch"] == torch.__version__.split("+")[0] or run.versions["torch"].startswith(
        torch.__version__.split("+")[0]
    )
    assert set(run.checkpoints) == {"last", "best"}
    for path in run.checkpoints.values():
        load_checkpoint(path)  # weights_only=True
    test = run.metrics["test"]
    assert run.metrics["best_epoch"] == summary["best_epoch"] and test == json.loads(
        json.dumps(summary["test"])
    )
    if floor is not None:
        assert test[metric] > floor, test
    preds = run.predictions()
    test_examples = source.split("test")
    if kind == "classification":
        assert [p["example_id"] for p in preds] == [ex.id for ex in test_examples]
        assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-3 for p in preds)
        assert all(p["label"] in source.class_names for p in preds)
    elif kind == "anomaly":
        assert all(p["label"] in ("good", "anomalous") and isinstance(p["score"], float) for p in preds)
        assert test["threshold"] == pytest.approx(
            load_checkpoint(run.checkpoints["best"])["record"]["threshold"]
        )
    else:
        sizes = {ex.id: (ex.height, ex.width) for ex in test_examples}
        assert preds and all(p["image_id"] in sizes and 1 <= p["category_id"] <= 3 for p in preds)
        assert all(len(p["bbox"]) == 4 and 0 <= p["score"] <= 1 for p in preds)
        if kind == "segmentation":  # masks at each example's original size, COCO compressed RLE
            for p in preds[:20]:
                m = mask_utils.decode(
                    {"size": p["segmentation"]["size"], "counts": p["segmentation"]["counts"].encode()}
                )
                assert m.shape == sizes[p["image_id"]]


def test_train_accepts_a_source_without_val_or_test(tmp_path):
    source = sample_source("digits", 60)
    from workbench.train.source import TrainSource

    only_train = TrainSource(
        [ex for ex in source.examples if ex.split == "train"],
        source.classes,
        source.dataset_type,
        source.load_bytes,
    )
    summary = Trainer(_digits_config(epochs=1), only_train, tmp_path / "r").fit()
    assert summary["monitor"] == "train_loss" and summary["test"] == {} and summary["best_epoch"] == 1


# ---------------------------------------------------------------------------------------------- reproducibility
@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """One uninterrupted classification run (dropout, augmentation and a plateau schedule all use RNG)."""
    path = tmp_path_factory.mktemp("baseline") / "run"
    rec = RecordingCallback()
    summary = Trainer(_digits_config(), sample_source("digits", 300), path, [rec]).fit()
    return path, summary, rec


def test_same_seed_same_numbers(baseline, tmp_path):
    path, summary, _ = baseline
    again = Trainer(_digits_config(), sample_source("digits", 300), tmp_path / "again").fit()
    assert again["test"] == summary["test"]
    assert _numbers(load_run(path).history) == _numbers(load_run(tmp_path / "again").history)
    other = Trainer(_digits_config(seed=1), sample_source("digits", 300), tmp_path / "other").fit()
    assert _numbers(load_run(tmp_path / "other").history) != _numbers(load_run(path).history)
    assert other["status"] == "finished"


def test_resume_after_kill_gives_the_same_final_metrics(baseline, tmp_path):
    path, summary, _ = baseline
    source = sample_source("digits", 300)
    with pytest.raises(Crash):
        Trainer(_digits_config(), source, tmp_path / "r", [CrashAfterEpoch(1)]).fit()
    assert json.loads((tmp_path / "r" / "status.json").read_text())["state"] == "failed"
    rec = RecordingCallback()
    resumed = resume(tmp_path / "r", source, [rec])
    assert rec.events[0][1]["start_epoch"] == 2 and rec.events[0][1]["resumed"] is True
    assert resumed["test"] == summary["test"] and resumed["best_epoch"] == summary["best_epoch"]
    assert _numbers(load_run(tmp_path / "r").history) == _numbers(load_run(path).history)
    with pytest.raises(TrainingStateError, match="already finished"):
        resume(tmp_path / "r", source)


def test_stop_request_ends_after_the_current_step_and_resumes(baseline, tmp_path):
    path, summary, _ = baseline
    source = sample_source("digits", 300)

    class StopMidEpoch(Callback):
        def on_step(self, step, loss, data_time, step_time):
            if step == 9:  # epoch 2 of 3 (7 steps an epoch)
                self.trainer.request_stop()

    rec = RecordingCallback()
    stopped = Trainer(_digits_config(), source, tmp_path / "r", [StopMidEpoch(), rec]).fit()
    assert stopped["status"] == "stopped" and stopped["epochs_run"] == 1
    assert rec.names().count("step") == 9 and rec.names()[-1] == "fit_end"
    assert stopped["test"]  # the best weights so far were scored
    resumed = resume(tmp_path / "r", source)
    assert resumed["status"] == "finished" and resumed["test"] == summary["test"]


def test_callbacks_receive_events_in_order(baseline):
    _, summary, rec = baseline
    names = rec.names()
    assert names[0] == "fit_start" and names[-1] == "fit_end"
    epochs = [payload for name, payload in rec.events if name == "epoch_start"]
    assert epochs == [1, 2, 3]
    # every epoch: start, its steps, then its end
    blocks = "".join({"epoch_start": "[", "step": "s", "epoch_end": "]"}.get(n, "") for n in names)
    assert blocks == "[sssssss]" * 3
    steps = [p for n, p in rec.events if n == "step"]
    assert [s["step"] for s in steps] == list(range(1, 22))
    assert all(s["data_time"] >= 0 and s["step_time"] > 0 and np.isfinite(s["loss"]) for s in steps)
    ends = [p for n, p in rec.events if n == "epoch_end"]
    assert [e["epoch"] for e in ends] == [1, 2, 3] and all(e["monitor"] == "accuracy" for e in ends)
    assert rec.events[-1][1].to_json() == summary  # on_fit_end gets the RunSummary fit() returns as JSON


def test_nan_loss_stops_with_a_typed_error_and_keeps_the_last_good_checkpoint(tmp_path):
    class Poison(Callback):
        def on_epoch_end(self, record):
            with torch.no_grad():
                next(self.trainer.model.parameters()).fill_(float("nan"))

    with pytest.raises(NonFiniteLossError, match="epoch 2, step 1") as info:
        Trainer(_digits_config(), sample_source("digits", 300), tmp_path / "r", [Poison()]).fit()
    assert info.value.epoch == 2 and info.value.checkpoint.endswith("last.pt")
    last = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")
    assert last["epoch"] == 1 and all(torch.isfinite(v).all() for v in last["model"].values())
    model, _ = load_model(tmp_path / "r")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    status = json.loads((tmp_path / "r" / "status.json").read_text())
    assert status["state"] == "failed" and "loss became nan" in status["error"]


def test_early_stopping_keeps_the_best_epoch(tmp_path):
    # accuracy can never improve by more than 1.0, so every epoch after the first counts as bad
    cfg = _digits_config(epochs=6, patience=2, min_delta=1.0, augment="none")
    summary = Trainer(cfg, sample_source("digits", 300), tmp_path / "r").fit()
    assert summary["status"] == "early_stopped" and summary["epochs_run"] == 3 and summary["best_epoch"] == 1
    assert load_checkpoint(tmp_path / "r" / "checkpoints" / "best.pt")["epoch"] == 1


def test_overfitting_is_flagged_once_per_stretch(tmp_path):
    rec = RecordingCallback()
    trainer = Trainer(_digits_config(overfit_patience=2), sample_source("digits", 300), tmp_path / "r", [rec])
    losses = [(1.0, 1.0), (0.8, 0.5), (0.6, 0.4), (0.5, 0.4), (0.4, 1.0), (0.3, 2.0), (0.2, 3.0), (0.15, 4.0),
              (0.1, 5.0), (0.08, 0.2)]
    events = []
    for epoch, (t, v) in enumerate(losses, 1):
        trainer.history.append({"epoch": epoch, "train_loss": t, "val_loss": v})
        events.append(trainer._overfit_update())
    assert events == [[]] * 7 + [[(7, 8)], [], []]
    assert trainer.overfit_ranges == [(7, 9)]


def test_refusals(tmp_path):
    source = sample_source("digits", 60)
    Trainer(_digits_config(epochs=1), source, tmp_path / "r").fit()
    with pytest.raises(AlreadyExistsError):
        Trainer(_digits_config(epochs=1), source, tmp_path / "r")
    with pytest.raises(ValidationError, match="for detection datasets") as info:
        Trainer(_digits_config(model="tiny-frcnn"), source, tmp_path / "x")
    assert info.value.field == "model"
    with pytest.raises(TrainingStateError, match="not a run folder"):
        resume(tmp_path / "nothing", source)
    (tmp_path / "r" / "status.json").write_text('{"state": "failed"}')
    with pytest.raises(TrainingStateError, match="differs"):
        resume(tmp_path / "r", sample_source("digits", 61))
    with pytest.raises(ValidationError, match="square"):
        Trainer(
            quick_config(model="small-cnn", augment={"version": 1, "image_size": [16, 32], "transforms": []}),
            source,
            tmp_path / "y",
        )


def test_resume_of_a_run_killed_in_its_first_epoch_starts_over(baseline, tmp_path):
    path, summary, _ = baseline
    source = sample_source("digits", 300)

    class CrashEarly(Callback):
        def on_step(self, step, loss, data_time, step_time):
            raise Crash

    with pytest.raises(Crash):
        Trainer(_digits_config(), source, tmp_path / "r", [CrashEarly()]).fit()
    assert not (tmp_path / "r" / "checkpoints" / "last.pt").exists()
    resumed = resume(tmp_path / "r", source)
    assert resumed["test"] == summary["test"]
    assert _numbers(load_run(tmp_path / "r").history) == _numbers(load_run(path).history)
