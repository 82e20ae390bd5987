"""When a run fails, writing ``status.json`` is best effort: a disk on which every write fails (full, gone
read-only) must not swap the error that ended the run for the status file's own ``OSError``.

Every atomic write fails from the end of epoch 1 on (``workbench.fsutil.atomic_write``, which checkpoints,
the history and ``status.json`` all go through; replaced in ``fsutil`` and where ``checkpoint`` imported
it): the epoch-2 checkpoint fails with ``CheckpointError``, then the handler's ``status.json`` write fails
too. The caller must see the ``CheckpointError``, with the
status file's failure attached as a note and logged.
"""

from __future__ import annotations

import errno
import json
import logging

import pytest

import workbench.fsutil as fsutil
import workbench.train.checkpoint as checkpoint
from tests.train.sources import quick_config, sample_source
from workbench.train.callbacks import Callback
from workbench.train.errors import CheckpointError, NonFiniteLossError
from workbench.train.trainer import Trainer


class DiskFullAfter(Callback):
    """From the end of epoch ``epoch`` on, every atomic write raises ENOSPC."""

    def __init__(self, epoch: int, monkeypatch: pytest.MonkeyPatch, on_epoch_end=None) -> None:
        self.epoch, self.monkeypatch, self.refused = epoch, monkeypatch, []
        self.also = on_epoch_end

    def _full(self, path, write, **kwargs):
        self.refused.append(str(path))
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    def on_epoch_end(self, record):
        if record["epoch"] == self.epoch:
            for module in (fsutil, checkpoint):
                self.monkeypatch.setattr(module, "atomic_write", self._full)
            if self.also is not None:
                self.also(self.trainer)


def _fit(tmp_path, callback):
    config = quick_config(model="small-cnn", image_size=16, epochs=3, batch_size=32)
    return Trainer(config, sample_source("digits", 200), tmp_path / "run", [callback]).fit()


def test_the_checkpoint_error_reaches_the_caller_when_status_json_cannot_be_written_either(
    tmp_path, monkeypatch, caplog
):
    full = DiskFullAfter(1, monkeypatch)
    with caplog.at_level(logging.WARNING, logger="workbench.train"), pytest.raises(CheckpointError) as info:
        _fit(tmp_path, full)
    run = tmp_path / "run"
    status_file = str(run / "status.json")
    assert status_file in full.refused  # the handler did try, and that write failed too
    err = info.value
    assert err.file in (str(run / "checkpoints" / "best.pt"), str(run / "checkpoints" / "last.pt"))
    assert "No space left on device" in str(err) and "\n" not in str(err)
    assert isinstance(err.__cause__, OSError) and err.__cause__.errno == errno.ENOSPC
    notes = getattr(err, "__notes__", [])
    assert len(notes) == 1 and status_file in notes[0] and "'failed'" in notes[0]
    assert "No space left on device" in notes[0]
    assert any(status_file in r.getMessage() and "CheckpointError" in r.getMessage() for r in caplog.records)
    # status.json still says what it said after epoch 1: it was never half written
    assert json.loads((run / "status.json").read_text())["state"] == "running"


def test_a_non_finite_loss_error_is_kept_too(tmp_path, monkeypatch):
    """The handler's other branches are best effort as well (here: the NaN branch)."""

    def nan_lr(trainer):
        for group in trainer.optimizer.param_groups:
            group["lr"] = float("nan")

    full = DiskFullAfter(1, monkeypatch, on_epoch_end=nan_lr)
    with pytest.raises(NonFiniteLossError) as info:
        _fit(tmp_path, full)
    assert info.value.epoch == 2 and full.refused == [str(tmp_path / "run" / "status.json")]
    assert "could not be updated" in info.value.__notes__[0]
