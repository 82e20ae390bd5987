"""Training under torchrun: 2 CPU processes (gloo, DistributedDataParallel) against one process.

The main test starts one torchrun job (2 processes) that runs ``workbench train`` twice on a 400-image
digits dataset, and compares each run with the same training in one process at the same global batch
(2 x 16 against 32):

- ``mlp-test`` (no BatchNorm, no dropout): the global batches are the single-process batches and DDP
  averages the gradients, so the only difference left is floating-point summation order (two 16-image sums
  added, 1 thread per process, against one 32-image sum on 2 threads). Every epoch's train / val loss must
  agree to 1e-4 relative and the test predictions must be the same.
- ``small-cnn`` (the default, with BatchNorm; at 16 px): each process normalizes over its own 16 images instead of
  32 (and keeps rank 0's running statistics), so the two runs differ the way two seeds do. Measured here,
  one process, seeds 0-3: epoch-3 train loss 0.33-0.41, test accuracy 0.85-0.975 on the 40 test images; 2
  processes: 0.41 and 0.875. So: every epoch's train loss within 25 % of the one-process run's, test
  accuracy at least 0.8 and within 0.15 of it.

Resume: the same job also starts small-cnn and mlp-test runs that a stop request ends (in epoch 2, and
before the first checkpoint); a second torchrun job (fresh processes, as after a preemption) resumes both
with ``workbench train d --resume RUN``. Each must end as the uninterrupted 2-process run of the same
config did: history (timings aside) and weights to 1e-4 relative, the same test predictions. small-cnn has
dropout, so this needs every process's random state back, not rank 0's (rank 0 alone validates, and each
DataLoader pass draws from the global generator). An audit hook in each process records what it wrote:
rank 1 writes nothing inside a run folder, in either job.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from workbench.cli import main
from workbench.data import Workspace
from workbench.data.records import Example
from workbench.train.checkpoint import load_checkpoint, load_model
from workbench.train.config import TrainConfig
from workbench.train.data import EpochSampler, VisionDataset, make_loader
from workbench.train.distributed import Distributed, DistributedError, LaunchInfo, launch_info
from workbench.train.from_store import train_dataset
from workbench.train.models import MODELS
from workbench.train.runs import RunRecord, list_runs, load_run, read_jsonl

from .ddp_worker import MLP

LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")
EPOCHS = 3
STOP_AT_STEP = 13  # epoch 2, step 3: the stopped run resumes from epoch 1's last.pt


@pytest.fixture(autouse=True)
def _alone(monkeypatch):
    """Each test starts as a plain single process, whatever launched pytest."""
    for name in LAUNCH_VARS:
        monkeypatch.delenv(name, raising=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------------- sharding
@pytest.mark.parametrize(("n", "world"), [(10, 2), (11, 2), (37, 3), (3, 4)])
def test_the_process_shares_are_the_single_process_order(n, world):
    one = EpochSampler(n, shuffle=True, seed=3)
    shares = [EpochSampler(n, shuffle=True, seed=3, num_replicas=world, rank=r) for r in range(world)]
    for s in (one, *shares):
        s.set_epoch(2)
    orders = [[i for i, _ in s] for s in shares]
    assert all(len(o) == len(s) == -(-n // world) for o, s in zip(orders, shares, strict=True))
    interleaved = [o[k] for k in range(len(orders[0])) for o in orders]
    single = [i for i, _ in one]
    # process r's k-th index is position k * world + r of the single-process order (padded with its start),
    # so the first b of every process together are the single process's first b * world: the same batches
    assert interleaved[:n] == single and interleaved[n:] == single[: len(interleaved) - n]
    assert {e for s in shares for _, e in s} == {2}
    another_epoch = EpochSampler(n, shuffle=True, seed=3, num_replicas=world, rank=0)
    another_epoch.set_epoch(3)
    assert n < 4 or [i for i, _ in another_epoch] != orders[0]


def test_per_process_loader_leaves_out_a_lone_last_image():
    examples = [Example(i, "d", "0" * 64, f"{i}.png", 8, 8, "train", "annotated") for i in range(34)]
    ds = VisionDataset(
        examples, dataset_type="classification", class_names=["a"], load_bytes=bytes.fromhex, image_size=8
    )
    # 34 images on 2 processes: 17 each; batches of 16 would end in a single image, which BatchNorm refuses
    loaders = [make_loader(ds, batch_size=16, shuffle=True, num_replicas=2, rank=r) for r in (0, 1)]
    assert [len(ld.sampler) for ld in loaders] == [16, 16]
    assert [len(ld) for ld in loaders] == [1, 1]
    with pytest.raises(ValueError, match="rank 2 does not fit 2 processes"):
        EpochSampler(10, shuffle=True, num_replicas=2, rank=2)


# ---------------------------------------------------------------------------------------------- launch
COMPLETE = {"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29511"}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"RANK": "0", "WORLD_SIZE": "1"}, None),
        (
            {**COMPLETE, "LOCAL_RANK": "1", "TORCHELASTIC_RUN_ID": "x"},
            LaunchInfo(1, 2, 1, "127.0.0.1", 29511, torchrun=True),
        ),
        (COMPLETE, LaunchInfo(1, 2, 1, "127.0.0.1", 29511, torchrun=False)),
        ({"WORLD_SIZE": "2"}, "WORLD_SIZE is set but RANK is not.*torchrun --nproc_per_node"),
        ({"RANK": "1"}, "RANK is set but WORLD_SIZE is not"),
        ({**COMPLETE, "RANK": "2"}, r"RANK=2 does not fit WORLD_SIZE=2"),
        ({"RANK": "one", "WORLD_SIZE": "2"}, "RANK='one' is not an integer"),
        ({"RANK": "0", "WORLD_SIZE": "2"}, "MASTER_ADDR and MASTER_PORT are not set.*torchrun"),
        ({**COMPLETE, "MASTER_PORT": ""}, "MASTER_PORT is not set"),
    ],
)
def test_launch_environment(env, expected):
    if isinstance(expected, str):
        with pytest.raises(DistributedError, match=expected):
            launch_info(env)
    else:
        assert launch_info(env) == expected


def test_processes_started_without_torchrun_get_a_one_line_error(tmp_path, monkeypatch, capsys):
    home = str(tmp_path / "ws")
    assert main(["--home", home, "sample", "d", "digits", "--count", "60"]) == 0
    capsys.readouterr()
    for rank in ("0", "1"):  # `RANK=r WORLD_SIZE=2 workbench train d`, twice by hand
        monkeypatch.setenv("RANK", rank)
        monkeypatch.setenv("WORLD_SIZE", "2")
        assert main(["--home", home, "train", "d", "--epochs", "1"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "MASTER_ADDR and MASTER_PORT" in err and "torchrun" in err
    with Workspace(home) as ws:
        assert list_runs(ws.runs_dir) == []


def test_a_process_whose_partner_never_starts_gives_up(monkeypatch):
    monkeypatch.setenv("WORKBENCH_DIST_JOIN_TIMEOUT", "1")
    env = {**COMPLETE, "RANK": "0", "MASTER_PORT": str(_free_port())}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    t0 = time.perf_counter()
    with pytest.raises(DistributedError, match=r"did not join at 127\.0\.0\.1:\d+ within 1 s.*torchrun"):
        Distributed.start("cpu")
    assert time.perf_counter() - t0 < 15 and not dist.is_initialized()


def test_one_process_is_a_pass_through():
    d = Distributed.start("cpu")
    assert (d.enabled, d.is_main, d.world_size, d.backend) == (False, True, 1, None)
    assert d.broadcast({"a": 1}) == {"a": 1} and d.any(True) and not d.any(False)
    assert d.on_main(lambda x: x + 1, 1) == 2 and d.local_device("cuda") == "cuda"
    assert d.describe(16) == {
        "processes": 1,
        "backend": None,
        "batch_size_per_process": 16,
        "global_batch_size": 16,
    }


# ---------------------------------------------------------------------------------------------- torchrun
def _train_args(home: str, model: str, batch: int) -> list[str]:
    return [
        "--home",
        home,
        "train",
        "d",
        "--model",
        model,
        "--epochs",
        str(EPOCHS),
        "--batch-size",
        str(batch),
        "--image-size",
        "16",
        "--augment",
        "none",
        "--lr",
        "0.003",
        "--schedule",  # the reference's (TrainConfig's default), not the defaults table's for this data
        "plateau",
        "--json",
    ]


def _torchrun(home: Path, *commands: list[str], job: str) -> subprocess.CompletedProcess[str]:
    """One torchrun job of 2 CPU processes running ``commands`` (``workbench`` command lines) in turn; what
    each process wrote goes to ``home/writes/<job>/rank<R>.txt``."""
    worker = Path(__file__).with_name("ddp_worker.py")
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    env["WORKBENCH_HOME"] = str(home)
    argv = [arg for i, command in enumerate(commands) for arg in (["--next"] if i else []) + command]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        str(worker),
        "--writes-log",
        str(home / "writes" / job),
        *argv,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _json_lines(text: str) -> list[dict]:
    return [json.loads(x) for x in text.splitlines() if x.startswith("{")]


@pytest.fixture(scope="module")
def ddp_home(tmp_path_factory) -> Path:
    """One torchrun job, 2 CPU processes: `workbench train` with mlp-test, then with small-cnn; for the
    resume tests, small-cnn again stopped at step 13 (epoch 2 of 3, 10 steps an epoch), and mlp-test
    stopped at step 1 (before any checkpoint)."""
    home = tmp_path_factory.mktemp("ddp") / "ws"
    assert main(["--home", str(home), "sample", "d", "digits", "--count", "400"]) == 0
    proc = _torchrun(
        home,
        _train_args(str(home), "mlp-test", 16),
        _train_args(str(home), "small-cnn", 16),
        [*_train_args(str(home), "small-cnn", 16), "--stop-after-steps", str(STOP_AT_STEP)],
        [*_train_args(str(home), "mlp-test", 16), "--stop-after-steps", "1"],
        job="train",
    )
    (home / "torchrun.out").write_text(proc.stdout)
    return home


def _runs(home: Path) -> list[RunRecord]:
    """The runs the first torchrun job made, in the order it made them (from rank 0's JSON lines)."""
    lines = _json_lines((home / "torchrun.out").read_text())
    with Workspace(home) as ws:
        by_id = {r.run_id: r for r in list_runs(ws.runs_dir)}
    return [by_id[x["run_id"]] for x in lines]


def _single(tmp_path: Path, home: Path, model: str) -> Path:
    """The same training in this process, at the same global batch (32)."""
    run = tmp_path / model
    with Workspace(home) as ws:
        cfg = TrainConfig(
            model=model, epochs=EPOCHS, batch_size=32, image_size=16, augment="none", lr=0.003, device="cpu"
        )
        train_dataset(ws, "d", cfg, run_dir=run)
    return run


def test_torchrun_writes_one_run_record_per_run(ddp_home, monkeypatch):
    monkeypatch.setitem(MODELS, MLP.name, MLP)  # to load its checkpoint here
    runs = _runs(ddp_home)  # rank 0 alone reports: one JSON line per run on stdout
    with Workspace(ddp_home) as ws:
        assert sorted(r.run_id for r in list_runs(ws.runs_dir)) == sorted(r.run_id for r in runs)
    assert [r.params["config"]["model"] for r in runs] == ["mlp-test", "small-cnn", "small-cnn", "mlp-test"]
    lines = _json_lines((ddp_home / "torchrun.out").read_text())
    assert [x["status"] for x in lines] == ["finished", "finished", "stopped", "stopped"]
    for run in runs[:2]:
        assert run.state == "finished" and len(run.history) == EPOCHS
        assert run.params["resolved"]["distributed"] == {
            "processes": 2,
            "backend": "gloo",
            "batch_size_per_process": 16,
            "global_batch_size": 32,
        }
        assert [h["images"] for h in run.history] == [320] * EPOCHS  # both shares counted
        assert set(run.checkpoints) == {"best", "last"}
        model, ckpt = load_model(run.path)
        assert not any(k.startswith("module.") for k in ckpt["model"])  # the bare model, not the DDP wrapper
        assert ckpt["resolved"]["distributed"]["processes"] == 2 and model.workbench_config["name"]
        assert len(run.predictions()) == 40  # the whole test split, scored once


def test_torchrun_equals_one_process_without_batchnorm(ddp_home, tmp_path, monkeypatch):
    monkeypatch.setitem(MODELS, MLP.name, MLP)
    ddp = _runs(ddp_home)[0]
    assert ddp.params["config"]["model"] == "mlp-test"
    single = _single(tmp_path, ddp_home, "mlp-test")
    ref = read_jsonl(single / "history.jsonl")
    for key in ("train_loss", "val_loss"):
        assert [h[key] for h in ddp.history] == pytest.approx([h[key] for h in ref], rel=1e-4), key
    ours = {p["example_id"]: p["label"] for p in ddp.predictions()}
    theirs = {p["example_id"]: p["label"] for p in json.loads((single / "predictions.json").read_text())}
    assert ours == theirs
    assert ddp.metrics["test"]["accuracy"] > 0.7  # it learned something: 10 classes, chance is 0.1


def test_torchrun_matches_one_process_quality_with_batchnorm(ddp_home, tmp_path):
    ddp = _runs(ddp_home)[1]
    assert ddp.params["config"]["model"] == "small-cnn"
    single = _single(tmp_path, ddp_home, "small-cnn")
    ref_losses = [h["train_loss"] for h in read_jsonl(single / "history.jsonl")]
    assert [h["train_loss"] for h in ddp.history] == pytest.approx(ref_losses, rel=0.25)
    acc = ddp.metrics["test"]["accuracy"]
    ref = json.loads((single / "metrics.json").read_text())["test"]["accuracy"]
    assert acc >= 0.8 and abs(acc - ref) <= 0.15, (acc, ref)


# ---------------------------------------------------------------------------------------------- resume
TIMING = {"data_time", "step_time", "train_time", "images_per_s", "data_share", "val_time", "epoch_time"}


@pytest.fixture(scope="module")
def ddp_resumed(ddp_home) -> dict[str, RunRecord]:
    """The two stopped runs, resumed by a second torchrun job (fresh processes, as after a preemption):
    ``workbench train d --resume RUN``, small-cnn from epoch 1's last.pt, mlp-test (no checkpoint yet)
    from the start. Also keeps the job's stdout in ``home/resume.out``."""
    mlp, cnn, cnn_stopped, mlp_stopped = _runs(ddp_home)
    assert cnn_stopped.state == "stopped" and [h["epoch"] for h in cnn_stopped.history] == [1]
    assert load_checkpoint(cnn_stopped.path / "checkpoints" / "last.pt")["epoch"] == 1
    assert mlp_stopped.state == "stopped" and not mlp_stopped.history and not mlp_stopped.checkpoints
    resume = [
        ["--home", str(ddp_home), "train", "d", "--resume", r.run_id, "--json"]
        for r in (cnn_stopped, mlp_stopped)
    ]
    proc = _torchrun(ddp_home, *resume, job="resume")
    (ddp_home / "resume.out").write_text(proc.stdout)
    return {
        "mlp": mlp,
        "cnn": cnn,
        "cnn_resumed": load_run(cnn_stopped.path),
        "mlp_restarted": load_run(mlp_stopped.path),
    }


def _same_run(ours: RunRecord, theirs: RunRecord) -> None:
    """Same config, history (timings aside; floats to 1e-4 relative), weights, test metrics, predictions."""
    assert ours.state == "finished" and ours.params["config"] == theirs.params["config"]
    assert ours.params["resolved"]["distributed"] == theirs.params["resolved"]["distributed"]
    assert [h["epoch"] for h in ours.history] == list(range(1, EPOCHS + 1))
    for mine, ref in zip(ours.history, theirs.history, strict=True):
        assert {k for k in mine if k not in TIMING} == {k for k in ref if k not in TIMING}
        for key, value in ref.items():
            if isinstance(value, float) and key not in TIMING:
                assert mine[key] == pytest.approx(value, rel=1e-4), (mine["epoch"], key)
            elif key not in TIMING:
                assert mine[key] == value, (mine["epoch"], key)
    for name in ("last.pt", "best.pt"):
        mine, ref = (load_checkpoint(r.path / "checkpoints" / name) for r in (ours, theirs))
        assert mine["epoch"] == ref["epoch"] and mine["model"].keys() == ref["model"].keys()
        for key, tensor in ref["model"].items():
            torch.testing.assert_close(mine["model"][key], tensor, rtol=1e-4, atol=1e-6, msg=key)
    assert ours.metrics["test"]["accuracy"] == pytest.approx(theirs.metrics["test"]["accuracy"])
    assert ours.predictions() == theirs.predictions()


def test_a_stopped_torchrun_run_resumes_under_torchrun_to_the_uninterrupted_run(ddp_resumed, ddp_home):
    """small-cnn has dropout and BatchNorm: every process's random state must come back as it was at the end
    of epoch 1 (rank 0 alone validates, which draws from its generator) for epochs 2-3 to repeat."""
    lines = _json_lines((ddp_home / "resume.out").read_text())  # rank 0 alone reports
    assert [x["run_id"] for x in lines] == [ddp_resumed[k].run_id for k in ("cnn_resumed", "mlp_restarted")]
    _same_run(ddp_resumed["cnn_resumed"], ddp_resumed["cnn"])


def test_a_torchrun_run_stopped_before_its_first_checkpoint_starts_over(ddp_resumed):
    _same_run(ddp_resumed["mlp_restarted"], ddp_resumed["mlp"])


# what rank 0 wrote into the stopped runs' folders, per job (the restarted one's params.json written anew)
RECORD = {"status.json", "metrics.json", "predictions.json"}
EPOCH_FILES = {"history.jsonl", "last.pt", "best.pt"}
WRITTEN = {
    ("train", "cnn_resumed"): {"params.json", "versions.json", *RECORD, *EPOCH_FILES},
    ("train", "mlp_restarted"): {"params.json", "versions.json", *RECORD},
    ("resume", "cnn_resumed"): {*RECORD, *EPOCH_FILES},
    ("resume", "mlp_restarted"): {"params.json", "versions.json", *RECORD, *EPOCH_FILES},
}


@pytest.mark.parametrize("job", ["train", "resume"])
def test_rank_0_alone_writes_the_run_folders(ddp_resumed, ddp_home, job):
    runs_dir = ddp_home / "runs"
    writes = {
        rank: (ddp_home / "writes" / job / f"rank{rank}.txt").read_text().splitlines() for rank in (0, 1)
    }
    # nothing inside a run folder (every process makes sure `runs/` itself is there, which is harmless)
    assert not [p for p in writes[1] if Path(p).is_relative_to(runs_dir) and Path(p) != runs_dir]
    # the recording does see rank 0's writes, so rank 1's empty list means something
    for key in ("cnn_resumed", "mlp_restarted"):
        folder = ddp_resumed[key].path
        written = {Path(p).name for p in writes[0] if Path(p).is_relative_to(folder)}
        assert WRITTEN[job, key] <= written, (job, key, written)
