"""Checkpoints: atomic writes, weights_only loading, refusing crafted pickles, RNG round trips."""

from __future__ import annotations

import os
import pickle
import random

import numpy as np
import pytest
import torch

from workbench.train.checkpoint import capture_rng, load_checkpoint, load_model, restore_rng, save_checkpoint
from workbench.train.errors import CheckpointError
from workbench.train.models import build_model


class _Exploit:
    """Unpickling this runs a shell command: what a malicious checkpoint looks like."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _state(model):
    return {
        "model": model.state_dict(),
        "model_config": model.workbench_config,
        "epoch": 3,
        "rng": capture_rng(),
        "history": [{"epoch": 1, "train_loss": 0.5, "val_loss": None}],
        "config": {"lr": 0.001},
    }


def test_save_load_round_trip_with_weights_only(tmp_path):
    model = build_model("small-cnn", 3, image_size=16)
    path = save_checkpoint(tmp_path / "ckpt" / "last.pt", _state(model))
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temp file left
    state = load_checkpoint(path)
    assert state["epoch"] == 3 and state["history"][0]["val_loss"] is None
    assert all(torch.equal(state["model"][k], v) for k, v in model.state_dict().items())
    rebuilt, ckpt = load_model(path)
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(rebuilt(x), model.eval()(x)) and not rebuilt.training
    assert ckpt["model_config"]["name"] == "small-cnn"


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_crafted_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": _Exploit(marker)}, evil)
    with pytest.raises(CheckpointError, match="refused") as info:
        load_checkpoint(evil)
    assert info.value.file == str(evil)
    assert not marker.exists()
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"model": _Exploit(marker)}))
    with pytest.raises(CheckpointError):
        load_checkpoint(plain)
    with pytest.raises(CheckpointError):
        load_model(evil)
    assert not marker.exists()


def test_missing_corrupt_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError):
        load_checkpoint(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not a workbench checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_model(tmp_path)


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(2)}, "epoch": 1})

    class Unsaveable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(path, {"model": {}, "epoch": 2, "bad": Unsaveable()})
    assert load_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_rng_states_round_trip_through_a_checkpoint(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    random.random(), np.random.rand(), np.random.randn(), torch.rand(1)  # advance, with a cached gaussian
    save_checkpoint(tmp_path / "r.pt", {"model": {}, "rng": capture_rng()})
    expected = (random.random(), np.random.rand(), np.random.randn(), torch.rand(3))
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    restore_rng(load_checkpoint(tmp_path / "r.pt")["rng"])
    got = (random.random(), np.random.rand(), np.random.randn(), torch.rand(3))
    assert got[:3] == expected[:3] and torch.equal(got[3], expected[3])
