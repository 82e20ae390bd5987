"""Per-batch schedules (one-cycle, warm-up + cosine) stepped by the trainer after every batch; the defaults
table per dataset type and size; ``workbench train`` saying what it chose and keeping it in the run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from tests.train.sources import Crash, CrashAfterEpoch, quick_config, sample_source
from workbench.cli import main
from workbench.errors import UnknownNameError
from workbench.train.callbacks import Callback
from workbench.train.config import (
    PER_STEP_SCHEDULES,
    SCHEDULES,
    TrainConfig,
    build_schedule,
    register_schedule,
    steps_per_batch,
)
from workbench.train.defaults import DEFAULTS_TABLE, SIZE_BUCKETS, choose_defaults, size_bucket
from workbench.train.trainer import Trainer


def _lrs(name: str, epochs: int, steps_per_epoch: int, lr: float = 0.1) -> list[float]:
    opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=lr)
    sched = build_schedule(opt, TrainConfig(schedule=name, epochs=epochs, lr=lr), "max", steps_per_epoch)
    out = []
    for _ in range(epochs * steps_per_epoch):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_per_batch_schedules_are_listed_and_validated():
    assert {"onecycle", "warmup-cosine"} <= set(SCHEDULES) and set(PER_STEP_SCHEDULES) <= set(SCHEDULES)
    assert steps_per_batch("onecycle") and steps_per_batch("warmup-cosine") and not steps_per_batch("cosine")
    with pytest.raises(UnknownNameError, match="onecycle"):
        TrainConfig(schedule="one-cycle")


@pytest.mark.parametrize("name", sorted(PER_STEP_SCHEDULES))
def test_per_batch_schedule_spans_all_steps(name):
    lrs = _lrs(name, epochs=4, steps_per_epoch=25)
    peak = max(range(len(lrs)), key=lrs.__getitem__)
    assert math.isclose(lrs[peak], 0.1, rel_tol=0.02)  # reaches the configured lr ...
    assert lrs[0] < 0.1 * 0.1 and lrs[-1] < 0.1 * 0.05  # ... from low, and ends low at the LAST step
    assert 0 < peak < len(lrs) // 2
    assert all(a <= b for a, b in zip(lrs[:peak], lrs[1 : peak + 1], strict=True))  # up, then down
    assert all(a >= b for a, b in zip(lrs[peak:-1], lrs[peak + 1 :], strict=True))


def test_register_a_per_batch_schedule():
    def constant(opt, cfg, mode, total):
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 if step < total else 0.0)

    register_schedule("const-steps", constant, per_step=True)
    try:
        assert steps_per_batch("const-steps") and TrainConfig(schedule="const-steps").schedule == "const-steps"
        assert _lrs("const-steps", 2, 3) == [0.1] * 6
    finally:
        PER_STEP_SCHEDULES.pop("const-steps")
        SCHEDULES.pop("const-steps")


class _StepLrs(Callback):
    def __init__(self):
        self.lrs: list[float] = []

    def on_step(self, step, loss, data_time, step_time):
        self.lrs.append(self.trainer.optimizer.param_groups[0]["lr"])


@pytest.mark.parametrize("schedule", ["onecycle", "warmup-cosine"])
def test_trainer_steps_a_per_batch_schedule_after_every_batch(schedule, tmp_path):
    src = sample_source("digits", 300)
    rec = _StepLrs()
    cfg = quick_config(model="small-cnn", image_size=16, epochs=3, batch_size=32, lr=0.01, schedule=schedule)
    trainer = Trainer(cfg, src, tmp_path / "run", [rec])
    trainer.fit()
    steps = len(trainer.train_loader)
    assert len(rec.lrs) == 3 * steps
    # the rate moves within an epoch (per batch), and the run spans the whole schedule exactly once
    assert len(set(rec.lrs[:steps])) == steps
    assert trainer.scheduler.last_epoch == 3 * steps
    assert max(rec.lrs) > 0.5 * 0.01 and rec.lrs[-1] < 0.05 * 0.01
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert history[-1]["lr"] < 0.05 * 0.01


def test_size_buckets_and_table_rows():
    assert [size_bucket(n) for n in (10, 99, 100, 299, 300, 2999, 3000, 10**7)] == [
        "tiny", "tiny", "small", "small", "medium", "medium", "large", "large"]
    names = [b for b, _ in SIZE_BUCKETS]
    for dtype, rows in DEFAULTS_TABLE.items():
        assert list(rows) == names, dtype
        for row in rows.values():
            TrainConfig(**{k: v for k, v in row.settings().items()})  # every row is a valid config
    det = choose_defaults("detection", 160)
    assert (det.bucket, det.batch_size, det.dataset_type, det.train_examples) == ("small", 4, "detection", 160)
    assert "batch 4" in det.describe() and "160 training examples" in det.describe() and det.why in det.describe()
    assert choose_defaults("classification", 20_000).epochs < choose_defaults("classification", 100).epochs
    with pytest.raises(UnknownNameError, match="detection"):
        choose_defaults("keypoints", 10)


def _params(home: str) -> dict:
    run_dirs = sorted(Path(home, "runs").rglob("params.json"))
    assert len(run_dirs) == 1
    return json.loads(run_dirs[0].read_text())


def test_cli_train_uses_and_says_the_table_defaults(tmp_path, capsys):
    home = str(tmp_path / "ws")
    assert main(["--home", home, "sample", "d", "digits", "--count", "120"]) == 0
    capsys.readouterr()
    # no training flags but the epochs (kept short): the rest comes from the table, and it says so
    assert main(["--home", home, "train", "d", "--epochs", "1"]) == 0
    err = capsys.readouterr().err
    row = choose_defaults("classification", _params(home)["source"]["counts"]["train"])
    line = next(line for line in err.splitlines() if line.startswith("defaults for classification"))
    assert f"batch {row.batch_size}, lr {row.lr:g}, {row.schedule} schedule" in line
    assert "given: --epochs 1" in line and row.why in line
    params = _params(home)
    assert params["config"]["batch_size"] == row.batch_size and params["config"]["schedule"] == row.schedule
    assert params["config"]["epochs"] == 1 and params["config"]["lr"] == row.lr
    assert params["config"]["extra"]["defaults"]["table"]["bucket"] == row.bucket
    assert params["config"]["extra"]["defaults"]["given"] == ["--epochs 1"]
    assert params["config"]["extra"]["defaults"]["note"] == line


def test_cli_train_schedule_flag(tmp_path, capsys):
    home = str(tmp_path / "ws")
    assert main(["--home", home, "sample", "d", "digits", "--count", "120"]) == 0
    capsys.readouterr()
    assert main(["--home", home, "train", "d", "--schedule", "bogus"]) == 2
    err = capsys.readouterr().err
    assert "--schedule" in err and "warmup-cosine" in err
    assert main(["--home", home, "train", "d", "--epochs", "1", "--schedule", "warmup-cosine", "--lr", "0.004",
                 "--batch-size", "16"]) == 0
    err = capsys.readouterr().err
    assert "given: --batch-size 16, --lr 0.004, --schedule warmup-cosine, --epochs 1" in err
    cfg = _params(home)["config"]
    assert (cfg["schedule"], cfg["lr"], cfg["batch_size"]) == ("warmup-cosine", 0.004, 16)


def test_loop_params_take_a_checked_schedule(tmp_path):
    from workbench.errors import ValidationError
    from workbench.loop.params import QUICK, load_params

    p = tmp_path / "p.yaml"
    p.write_text("dataset_type: detection\nschedule: warmup-cosine\n")
    params = load_params(p, quick=True)
    assert params["schedule"] == "warmup-cosine"  # the file's value, not --quick's
    # --quick fills the rest for the file's type: its sample and the type's default model
    assert (params["sample"], params["model"]) == ("shapes-detection", "")
    assert params["batch_size"] == QUICK["detection"]["batch_size"]
    for bad in ("bogus", "1", "ONECYCLE"):
        p.write_text(f"schedule: '{bad}'\n")
        with pytest.raises(ValidationError, match="onecycle") as exc:
            load_params(p)
        assert exc.value.field == "schedule"
    p.write_text("schedule: 3\n")
    with pytest.raises(ValidationError, match="expected a string"):
        load_params(p)


_TIMES = ("data_time", "step_time", "train_time", "val_time", "epoch_time", "images_per_s", "data_share")


def test_resumed_one_cycle_run_continues_the_schedule(tmp_path):
    """A killed one-cycle run resumes mid-schedule (the scheduler's step count is in last.pt): same rates,
    same numbers as the uninterrupted run."""
    from workbench.train.runs import load_run
    from workbench.train.trainer import resume

    src = sample_source("digits", 300)
    cfg = quick_config(model="small-cnn", image_size=16, epochs=3, batch_size=32, lr=0.01, schedule="onecycle")
    whole = Trainer(cfg, src, tmp_path / "whole").fit()
    with pytest.raises(Crash):
        Trainer(cfg, src, tmp_path / "r", [CrashAfterEpoch(1)]).fit()
    resumed = resume(tmp_path / "r", src)
    assert resumed["test"] == whole["test"]

    def numbers(path):
        return [{k: v for k, v in h.items() if k not in _TIMES} for h in load_run(path).history]

    assert numbers(tmp_path / "r") == numbers(tmp_path / "whole")
