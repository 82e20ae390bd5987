"""The Train tab trains in a child process: the page's kernel never imports torch, hears every epoch,
stops the child with the Stop button, and outlives a child killed with SIGKILL (issue 17, goal 3)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from workbench.data import Workspace
from workbench.data.transfer import add_sample

pytestmark = pytest.mark.slow

TINY = {"batch_size": 8, "max_steps_per_epoch": 2, "image_size": 32}  # two steps an epoch


@pytest.fixture
def ws(tmp_path):
    with Workspace(tmp_path / "ws") as w:
        add_sample(w, "digits", "digits", count=40, seed=0)
        yield w


def _app(ws, epochs: int):
    from workbench.train.config import TrainConfig
    from workbench.widgets import WorkbenchApp

    return WorkbenchApp(ws.dataset("digits"), train_config=TrainConfig(epochs=epochs, **TINY))


def _wait_for(cond, timeout: float = 240.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("name", "sample", "views"),
    [("digits", "digits", ["ConfusionMatrixView", "ErrorGallery"]),
     ("shapes", "shapes-detection", ["APView", "ErrorGallery"])],
)
def test_training_from_the_app_runs_in_a_child_and_the_kernel_loads_no_torch(ws, name, sample, views):
    """A fresh interpreter builds the app and trains through it: the trainer's pid is another, the curves'
    state holds both epochs as the run folder has them, and torch never entered the app's process (nor
    for the evaluation views shown after the run)."""
    if name != "digits":
        add_sample(ws, name, sample, count=30, seed=0)
    code = (
        "import json, os, sys\n"
        "from workbench import Workspace\n"
        "from workbench.train.config import TrainConfig\n"
        "from workbench.widgets import WorkbenchApp\n"
        f"app = WorkbenchApp(Workspace({str(ws.home)!r}).dataset({name!r}), "
        f"train_config=TrainConfig(epochs=2, **{TINY!r}))\n"
        "app.tabs.selected_index = 3\n"
        "app.start_training(wait=True)\n"
        "st = app.curves.state\n"
        "print(json.dumps({'kernel': os.getpid(), 'child': app.process.pid, 'status': app.train_status.value,\n"
        "  'run_dir': app.run_dir, 'epochs': st.epochs, 'val_loss': st.column('val_loss'),\n"
        "  'steps': len(st.steps), 'summary': st.summary,\n"
        "  'views': [type(c).__name__ for c in app.evaluation.children],\n"
        "  'heavy': sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'torchvision', 'cv2'})}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["heavy"] == [], f"the kernel imported {got['heavy']}"
    assert got["child"] != got["kernel"] and got["child"] is not None
    assert "finished" in got["status"], got["status"]
    history = [json.loads(line) for line in open(os.path.join(got["run_dir"], "history.jsonl"))]
    assert got["epochs"] == [1.0, 2.0] == [float(h["epoch"]) for h in history]
    assert got["val_loss"] == pytest.approx([h["val_loss"] for h in history])
    assert got["steps"] == 4 and got["summary"]["status"] == "finished"
    assert got["views"] == views  # mined by the child, shown here


def test_stop_button_stops_the_child(ws):
    app = _app(ws, epochs=200)
    app.tabs.selected_index = 3
    app.start_training()
    proc = app.process
    assert proc.pid != os.getpid()
    _wait_for(lambda: len(app.curves.state.records) >= 1 or not app.thread.is_alive())
    assert not app.curves.stop_button.disabled
    app.curves.stop_button.click()
    app.thread.join(240)
    assert not app.thread.is_alive()
    assert proc.outcome is not None and proc.outcome.state == "stopped", proc.outcome
    assert "stopped" in app.train_status.value
    status = json.loads((proc.run_dir / "status.json").read_text())
    assert status["state"] == "stopped" and status["epoch"] < 200
    assert app.curves.state.summary["status"] == "stopped" and not app.curves.state.running
    assert (proc.run_dir / "metrics.json").is_file()  # a stopped run is still scored


def test_a_child_killed_with_sigkill_is_reported_and_the_app_trains_again(ws):
    app = _app(ws, epochs=200)
    app.start_training()
    first = app.process
    _wait_for(lambda: len(app.curves.state.records) >= 1 or not app.thread.is_alive())
    os.kill(first.pid, signal.SIGKILL)
    app.thread.join(60)
    assert not app.thread.is_alive()
    assert first.outcome.state == "died" and "SIGKILL" in first.outcome.error
    assert "training died" in app.train_status.value and "SIGKILL" in app.train_status.value
    assert app.curves.state.summary["status"] == "failed" and not app.curves.state.running
    # the run folder: every file whole, the status no longer "running"
    status = json.loads((first.run_dir / "status.json").read_text())
    assert status["state"] == "failed" and "SIGKILL" in status["error"]
    epochs = [json.loads(line)["epoch"] for line in (first.run_dir / "history.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, len(epochs) + 1)) and epochs
    assert (first.run_dir / "checkpoints" / "last.pt").is_file()
    # the kernel lives on: the same app trains again, in a new child
    app.train_config.epochs = 1
    app.start_training(wait=True)
    assert app.process is not first and app.process.pid not in (first.pid, os.getpid())
    assert "finished" in app.train_status.value, app.train_status.value
    assert app.curves.state.epochs == [1.0]


def test_the_child_stops_when_its_kernel_dies(ws):
    """A kernel that exits without a word (culled, killed) leaves no orphan training: the child sees its
    parent gone and ends the run as Stop would, into its folder."""
    code = (
        "import json, os, sys, time\n"
        "from workbench import Workspace\n"
        "from workbench.train.config import TrainConfig\n"
        "from workbench.widgets import WorkbenchApp\n"
        f"app = WorkbenchApp(Workspace({str(ws.home)!r}).dataset('digits'), "
        f"train_config=TrainConfig(epochs=200, **{TINY!r}))\n"
        "app.start_training()\n"
        "while not app.curves.state.records and app.thread.is_alive():\n"
        "    time.sleep(0.05)\n"
        "print(json.dumps([app.process.pid, str(app.process.run_dir)]), flush=True)\n"
        "os._exit(0)  # no atexit, no goodbye: as a SIGKILL-ed kernel\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    pid, run_dir = json.loads(out.stdout.strip().splitlines()[-1])
    status_file = os.path.join(run_dir, "status.json")

    def state() -> str:
        with open(status_file) as f:
            return json.load(f)["state"]

    _wait_for(lambda: state() != "running", timeout=300)
    assert state() == "stopped"
    _wait_for(lambda: not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read().lower(),
              timeout=120)


@pytest.mark.parametrize("sample", ["digits", "shapes-detection"])
def test_the_train_tab_takes_the_defaults_table_like_workbench_train(tmp_path, sample):
    """Pressing Train without a config trains what `workbench train NAME` would (the defaults table, by the
    dataset's type and training-split size), says what it chose, and records it in the run's config; it
    used to train 5 epochs of the digits settings whatever the data."""
    from workbench.train.defaults import choose_defaults
    from workbench.widgets import WorkbenchApp

    with Workspace(tmp_path / "ws") as w:
        ds, _ = add_sample(w, "d", sample, count=40, seed=0)
        app = WorkbenchApp(ds, train_in_kernel=True)
        seen = []
        app._train_here = lambda cfg, curves: seen.append(cfg)  # noqa: SLF001 - the config, not a run
        app.start_training(wait=True)
        row = choose_defaults(ds.type, ds.count(split="train"))
        (cfg,) = seen
        assert {k: getattr(cfg, k) for k in row.settings()} == row.settings()
        assert cfg.extra["defaults"]["table"] == row.to_dict()
        assert "defaults for " + ds.type in app.train_status.value
