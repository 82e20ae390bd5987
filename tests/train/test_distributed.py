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
import torch.distributed as dist

from workbench.cli import main
from workbench.data import Workspace
from workbench.data.records import Example
from workbench.train.checkpoint import load_model
from workbench.train.config import TrainConfig
from workbench.train.data import EpochSampler, VisionDataset, make_loader
from workbench.train.distributed import Distributed, DistributedError, LaunchInfo, launch_info
from workbench.train.from_store import train_dataset
from workbench.train.models import MODELS
from workbench.train.runs import list_runs, read_jsonl

from .ddp_worker import MLP

LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")
EPOCHS = 3


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
        "--json",
    ]


@pytest.fixture(scope="module")
def ddp_home(tmp_path_factory) -> Path:
    """One torchrun job, 2 CPU processes: `workbench train` with mlp-test, then with small-cnn."""
    home = tmp_path_factory.mktemp("ddp") / "ws"
    assert main(["--home", str(home), "sample", "d", "digits", "--count", "400"]) == 0
    worker = Path(__file__).with_name("ddp_worker.py")
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    env["WORKBENCH_HOME"] = str(home)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        str(worker),
        *_train_args(str(home), "mlp-test", 16),
        "--next",
        *_train_args(str(home), "small-cnn", 16),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (home / "torchrun.out").write_text(proc.stdout)
    return home


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
    with Workspace(ddp_home) as ws:
        runs = sorted(list_runs(ws.runs_dir), key=lambda r: r.params["created_at"])
    assert [r.params["config"]["model"] for r in runs] == ["mlp-test", "small-cnn"]
    # rank 0 alone reports: one JSON line per run on stdout
    lines = [json.loads(x) for x in (ddp_home / "torchrun.out").read_text().splitlines() if x.startswith("{")]
    assert [x["run_id"] for x in lines] == [r.run_id for r in runs]
    for run in runs:
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
    with Workspace(ddp_home) as ws:
        ddp = next(r for r in list_runs(ws.runs_dir) if r.params["config"]["model"] == "mlp-test")
    single = _single(tmp_path, ddp_home, "mlp-test")
    ref = read_jsonl(single / "history.jsonl")
    for key in ("train_loss", "val_loss"):
        assert [h[key] for h in ddp.history] == pytest.approx([h[key] for h in ref], rel=1e-4), key
    ours = {p["example_id"]: p["label"] for p in ddp.predictions()}
    theirs = {p["example_id"]: p["label"] for p in json.loads((single / "predictions.json").read_text())}
    assert ours == theirs
    assert ddp.metrics["test"]["accuracy"] > 0.7  # it learned something: 10 classes, chance is 0.1


def test_torchrun_matches_one_process_quality_with_batchnorm(ddp_home, tmp_path):
    with Workspace(ddp_home) as ws:
        ddp = next(r for r in list_runs(ws.runs_dir) if r.params["config"]["model"] == "small-cnn")
    single = _single(tmp_path, ddp_home, "small-cnn")
    ref_losses = [h["train_loss"] for h in read_jsonl(single / "history.jsonl")]
    assert [h["train_loss"] for h in ddp.history] == pytest.approx(ref_losses, rel=0.25)
    acc = ddp.metrics["test"]["accuracy"]
    ref = json.loads((single / "metrics.json").read_text())["test"]["accuracy"]
    assert acc >= 0.8 and abs(acc - ref) <= 0.15, (acc, ref)
