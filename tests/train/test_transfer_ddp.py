"""A frozen-then-unfrozen backbone under torchrun (2 CPU processes, DistributedDataParallel) learns what one
process learns: the model is wrapped again when the backbone starts training, so its gradients are averaged
over the processes from then on (without that, each process would move its own copy apart)."""

from __future__ import annotations

import pytest
import torch

from workbench.cli import main
from workbench.data import Workspace
from workbench.train.config import TrainConfig
from workbench.train.from_store import train_dataset
from workbench.train.models import MODELS
from workbench.train.runs import load_run, read_jsonl
from workbench.train.transfer import BACKBONES

from .ddp_worker import MLP, MLP_BACKBONE, mlp
from .test_distributed import _json_lines, _torchrun

ARGS = ["--model", "mlp-test", "--epochs", "3", "--image-size", "16", "--augment", "none", "--lr", "0.003",
        "--schedule", "plateau", "--freeze-backbone", "1", "--backbone-lr-scale", "0.5"]  # the reference's schedule


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_torchrun_freeze_then_unfreeze_equals_one_process(tmp_path, monkeypatch):
    monkeypatch.setitem(MODELS, MLP.name, MLP)
    monkeypatch.setitem(BACKBONES, MLP.name, MLP_BACKBONE)
    home = tmp_path / "ws"
    assert main(["--home", str(home), "sample", "d", "digits", "--count", "400"]) == 0
    torch.manual_seed(7)
    weights = tmp_path / "mlp.pt"
    torch.save(mlp(10, 16).state_dict(), weights)
    proc = _torchrun(home, ["--home", str(home), "train", "d", *ARGS, "--batch-size", "16", "--weights",
                            str(weights), "--json"], job="freeze")
    ddp = load_run(_json_lines(proc.stdout)[0]["run_dir"])
    with Workspace(home) as ws:
        cfg = TrainConfig(model="mlp-test", epochs=3, batch_size=32, image_size=16, augment="none", lr=0.003,
                          device="cpu", weights=str(weights), freeze_backbone=1, backbone_lr_scale=0.5)
        train_dataset(ws, "d", cfg, run_dir=tmp_path / "single")
    ref = read_jsonl(tmp_path / "single" / "history.jsonl")
    assert [h["transfer"]["backbone_frozen"] for h in ddp.history] == [True, False, False]
    for key in ("train_loss", "val_loss"):
        assert [h[key] for h in ddp.history] == pytest.approx([h[key] for h in ref], rel=1e-4), key
    ours = torch.load(ddp.path / "checkpoints" / "last.pt", weights_only=True)["model"]
    theirs = torch.load(tmp_path / "single" / "checkpoints" / "last.pt", weights_only=True)["model"]
    start = torch.load(weights, weights_only=True)
    assert not torch.equal(ours["1.weight"], start["1.weight"])  # the backbone trained after epoch 1
    for key, tensor in theirs.items():
        torch.testing.assert_close(ours[key], tensor, rtol=1e-4, atol=1e-6, msg=key)
