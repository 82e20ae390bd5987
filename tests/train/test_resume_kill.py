"""A training process killed with SIGKILL mid-epoch resumes from last.pt to the same final metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.train.sources import quick_config, sample_source
from workbench.train.checkpoint import load_checkpoint
from workbench.train.runs import load_run
from workbench.train.trainer import Trainer, resume

ROOT = Path(__file__).resolve().parents[2]
CONFIG = {
    "model": "small-cnn",
    "image_size": 16,
    "epochs": 3,
    "batch_size": 32,
    "augment": "geometric",
    "schedule": "cosine",
    "optimizer": "sgd",
    "lr": 0.05,
}

CHILD = textwrap.dedent("""
    import os, signal, sys
    from tests.train.sources import quick_config, sample_source
    from workbench.train.callbacks import Callback
    from workbench.train.trainer import Trainer

    class KillMidEpoch(Callback):
        def on_step(self, step, loss, data_time, step_time):
            if step == 10:  # epoch 2 (7 steps an epoch), after epoch 1's checkpoint
                os.kill(os.getpid(), signal.SIGKILL)

    Trainer(quick_config(**{config}), sample_source("digits", 300), sys.argv[1], [KillMidEpoch()]).fit()
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkilled_run_resumes_to_the_same_metrics(tmp_path):
    run_dir = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD.replace("{config}", repr(CONFIG)), str(run_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["epoch"] == 1
    assert json.loads((run_dir / "status.json").read_text())["state"] == "running"  # never got to say more
    assert len(load_run(run_dir).history) == 1

    source = sample_source("digits", 300)
    resumed = resume(run_dir, source)
    straight = Trainer(quick_config(**CONFIG), source, tmp_path / "straight").fit()
    assert resumed["status"] == "finished"
    assert resumed["test"] == straight["test"] and resumed["best_epoch"] == straight["best_epoch"]
    timing = {"data_time", "step_time", "train_time", "images_per_s", "data_share", "val_time", "epoch_time"}
    strip = lambda h: [{k: v for k, v in r.items() if k not in timing} for r in h]  # noqa: E731
    assert strip(load_run(run_dir).history) == strip(load_run(tmp_path / "straight").history)
    assert not list((run_dir / "checkpoints").glob("*.tmp"))
