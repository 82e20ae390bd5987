"""Training faults: a NaN (from the learning rate, or an activation overflowing) stops the run with a clear
message and keeps the last good checkpoint, which loads and resumes; NaN pixels are refused up front; a disk that fills up while a checkpoint is saved
leaves the previous checkpoint intact, no temp file, and an error that names the file and the cause.

(tests/train/test_trainer.py poisons the weights directly; these inject the NaN the way it happens.)
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import workbench.fsutil as fsutil
from tests.train.sources import quick_config, sample_source
from workbench.errors import ImageError
from workbench.train.callbacks import Callback
from workbench.train.checkpoint import load_checkpoint, load_model
from workbench.train.errors import CheckpointError, NonFiniteLossError
from workbench.train.runs import load_run, read_jsonl
from workbench.train.source import TrainSource
from workbench.train.trainer import Trainer, resume

CONFIG = {"model": "small-cnn", "image_size": 16, "epochs": 3, "batch_size": 32}


def _config():
    return quick_config(**CONFIG)


class After(Callback):
    """Runs ``action(trainer)`` at the end of epoch ``epoch`` (after that epoch's checkpoint was saved)."""

    def __init__(self, epoch: int, action) -> None:
        self.epoch, self.action = epoch, action

    def on_epoch_end(self, record):
        if record["epoch"] == self.epoch:
            self.action(self.trainer)


def _nan_lr(trainer) -> None:
    for g in trainer.optimizer.param_groups:
        g["lr"] = float("nan")


def _checkpoints_ok(run: Path, epoch: int) -> None:
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["epoch"] == epoch
    assert all(torch.isfinite(v).all() for v in last["model"].values())
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert best["epoch"] <= epoch and all(torch.isfinite(v).all() for v in best["model"].values())
    model, _ = load_model(run)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert not [p.name for p in run.rglob("*") if p.name.endswith(".tmp")]


def _overflow(trainer) -> None:
    """An activation that overflows float32 from now on (what a diverging layer does)."""
    first = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
    first.register_forward_hook(lambda module, args, out: out * 1e39)


@pytest.mark.parametrize("inject", ["learning rate", "activations"])
def test_nan_stops_the_run_keeps_the_last_good_checkpoint_and_resumes(tmp_path, inject):
    source = sample_source("digits", 200)
    run = tmp_path / "run"
    poison = After(2, _nan_lr if inject == "learning rate" else _overflow)
    with pytest.raises(NonFiniteLossError) as info:
        Trainer(_config(), source, run, [poison]).fit()
    msg = str(info.value)
    assert "\n" not in msg and "at epoch 3" in msg and str(run / "checkpoints" / "last.pt") in msg
    assert "loss became nan" in msg or "loss became inf" in msg
    assert info.value.epoch == 3 and info.value.checkpoint == str(run / "checkpoints" / "last.pt")
    _checkpoints_ok(run, 2)
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and "at epoch 3" in status["error"]
    assert load_run(run).state == "failed" and [r["epoch"] for r in read_jsonl(run / "history.jsonl")] == [
        1,
        2,
    ]
    summary = resume(run, source)  # the kept checkpoint is a good one: the run goes on from epoch 2
    assert summary["status"] == "finished" and summary["epochs_run"] == 3
    assert np.isfinite(summary["test"]["accuracy"])


def test_a_source_giving_nan_pixels_is_refused_before_any_step(tmp_path):
    """Pixels are uint8 by contract: float (NaN) image data never reaches the loss."""
    base = sample_source("digits", 200)

    def nan_images(blob):
        from workbench.data.images import decode_rgb

        return np.full(decode_rgb(base.load_bytes(blob)).shape, np.nan, dtype=np.float32)

    source = TrainSource(base.examples, base.classes, base.dataset_type, nan_images, dataset=base.dataset)
    with pytest.raises(ImageError, match="uint8") as info:
        Trainer(_config(), source, tmp_path / "run", []).fit()
    assert "\n" not in str(info.value) and info.value.record is not None
    assert json.loads((tmp_path / "run" / "status.json").read_text())["state"] == "failed"
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()


class FullDisk:
    """``os`` as fsutil sees it, with ``fdopen`` returning files that hit ENOSPC after ``budget`` bytes once
    ``on`` and the temp file is one ``victim(name)`` picks."""

    def __init__(self, victim) -> None:
        self.victim, self.on, self.budget, self.hits = victim, False, 4096, []

    def __getattr__(self, name):
        return getattr(os, name)

    def fdopen(self, fd, *args, **kwargs):
        fh = os.fdopen(fd, *args, **kwargs)
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if not (self.on and self.victim(name)):
            return fh
        self.hits.append(name)
        return _FillingFile(fh, self.budget)


class _FillingFile:
    def __init__(self, fh, budget: int) -> None:
        self.fh, self.budget = fh, budget

    def write(self, data) -> int:
        data = bytes(data)
        if len(data) > self.budget:
            self.fh.write(data[: self.budget])
            self.budget = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.budget -= len(data)
        return self.fh.write(data)

    def __getattr__(self, name):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.fh.close()


pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds temp names through /proc")


def test_a_full_disk_while_saving_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    disk = FullDisk(lambda name: name.startswith((".last.pt.", ".best.pt.")))
    monkeypatch.setattr(fsutil, "os", disk)
    run = tmp_path / "run"
    with pytest.raises(CheckpointError) as info:
        Trainer(
            _config(), sample_source("digits", 200), run, [After(2, lambda t: setattr(disk, "on", True))]
        ).fit()
    msg = str(info.value)
    assert disk.hits and "\n" not in msg
    assert "cannot write the checkpoint (No space left on device)" in msg and "previous checkpoint" in msg
    assert info.value.file in (str(run / "checkpoints" / "last.pt"), str(run / "checkpoints" / "best.pt"))
    assert isinstance(info.value.__cause__, OSError) and info.value.__cause__.errno == errno.ENOSPC
    _checkpoints_ok(run, 2)  # the epoch-2 checkpoints, whole; no temp file left
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and "No space left on device" in status["error"]
    disk.on = False  # space freed: the run goes on from the kept checkpoint
    assert resume(run, sample_source("digits", 200))["status"] == "finished"


def test_a_disk_full_for_every_file_still_keeps_the_checkpoints_and_names_the_cause(tmp_path, monkeypatch):
    """Everything fails once the disk is full, the run's status file too: the checkpoints stay whole, no
    temp file is left, and the error that stopped the run (not the status file's) names a file and ENOSPC."""
    disk = FullDisk(lambda name: True)
    disk.budget = 0
    monkeypatch.setattr(fsutil, "os", disk)
    run = tmp_path / "run"
    with pytest.raises(CheckpointError) as info:
        Trainer(
            _config(), sample_source("digits", 200), run, [After(2, lambda t: setattr(disk, "on", True))]
        ).fit()
    chain = [info.value, info.value.__cause__, info.value.__context__]
    print(f"\nwhat reaches the user: {type(info.value).__name__}: {info.value}")
    assert any(isinstance(e, OSError) and e.errno == errno.ENOSPC for e in chain)
    assert str(run) in str(info.value) and "No space left on device" in str(info.value)
    disk.on = False
    _checkpoints_ok(run, 2)
