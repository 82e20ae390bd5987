"""Transfer learning: the backbone registry per architecture, --freeze-backbone (no gradient, BatchNorm
statistics kept, unfrozen on time, also across a resume), --backbone-lr-scale (a parameter group of its
own), weights files checked key by key (hostile and mismatched files named with their keys), the CLI,
the loop's parameters and the run record; and the progress records of validation and test scoring."""

from __future__ import annotations

import io
import json

import pytest
import torch

from tests.train.sources import quick_config, sample_source
from workbench.cli import main
from workbench.errors import UnsafePathError, ValidationError
from workbench.loop.params import check_value, resolve_weights
from workbench.progress import Progress, ProgressPrinter
from workbench.runs.records import RunParams
from workbench.train.callbacks import Callback, RecordingCallback
from workbench.train.config import TrainConfig
from workbench.train.models import MODELS, build_model, load_weights
from workbench.train.progress import ProgressCallback
from workbench.train.runs import load_run
from workbench.train.trainer import Trainer, resume
from workbench.train.transfer import BACKBONES, TransferPlan, backbone_spec

_TIMING = {"data_time", "step_time", "train_time", "images_per_s", "data_share", "val_time", "epoch_time"}


def _numbers(history):
    return [{k: v for k, v in rec.items() if k not in _TIMING} for rec in history]


def _cfg(**kw):
    base = {"model": "small-cnn", "image_size": 16, "epochs": 3, "batch_size": 32, "augment": "none",
            "schedule": "none", "lr": 3e-3}
    base.update(kw)
    return quick_config(**base)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A small-cnn trained one epoch on 300 digits: its state_dict, as a user would save it."""
    root = tmp_path_factory.mktemp("pre")
    Trainer(_cfg(epochs=1), sample_source("digits", 300), root / "run").fit()
    from workbench.train.checkpoint import load_model

    model, _ = load_model(root / "run")
    torch.save(model.state_dict(), root / "weights.pt")
    return root / "weights.pt"


# ---------------------------------------------------------------------------------------------- registry
# model -> the module whose parameters must be exactly the backbone (its path in the built model)
EXPECTED_BACKBONE = {
    "small-cnn": "net.features",
    "mobilenet_v3_small": "net.features",
    "tiny-frcnn": "backbone",
    "tiny-maskrcnn": "backbone",
    "fasterrcnn_mobilenet_v3_large_320_fpn": "backbone.body",
    "ssdlite320": "backbone.features",
}


@pytest.mark.parametrize("name", sorted(n for n, s in MODELS.items() if s.dataset_type != "anomaly"))
def test_every_classifier_detector_and_segmenter_declares_its_backbone(name):
    """The registry's prefixes pick exactly the feature extractor (checked against the module tree torchvision
    / our builders make), and leave a trainable head."""
    spec = MODELS[name]
    model = build_model(name, 3, image_size=spec.default_image_size)
    plan = TransferPlan.for_model(model, name, 1, 0.5)
    assert plan.backbone_names and plan.head_names
    if name == "resnet18":
        want = {f"net.{n}" for n, _ in model.net.named_parameters() if not n.startswith("fc.")}
    else:
        module = model.get_submodule(EXPECTED_BACKBONE[name])
        want = {f"{EXPECTED_BACKBONE[name]}.{n}" for n, _ in module.named_parameters()}
    assert set(plan.backbone_names) == want
    assert set(plan.backbone_names).isdisjoint(plan.head_names)
    assert len(plan.backbone_names) + len(plan.head_names) == len(list(model.parameters()))


def test_a_model_without_a_backbone_refuses_freezing_and_bad_values_are_refused():
    model = build_model("conv-ae", 2, image_size=16)
    with pytest.raises(ValidationError, match="declares no backbone") as info:
        TransferPlan.for_model(model, "conv-ae", 2, 1.0)
    assert info.value.field == "freeze_backbone" and "small-cnn" in str(info.value)
    assert not TransferPlan.for_model(model, "conv-ae", 0, 1.0).active  # nothing asked: nothing changes
    for bad in ({"freeze_backbone": -1}, {"freeze_backbone": 1.5}, {"freeze_backbone": True},
                {"backbone_lr_scale": 0}, {"backbone_lr_scale": float("nan")}, {"backbone_lr_scale": "0.1"}):
        with pytest.raises(ValidationError) as info:
            TrainConfig(**bad)
        assert info.value.field == next(iter(bad))
    assert "patchcore" not in BACKBONES and backbone_spec("nope") is None


@pytest.mark.parametrize("name", ["tiny-frcnn", "tiny-maskrcnn"])
def test_a_frozen_detector_backbone_gets_no_gradient_and_keeps_its_batchnorm_statistics(name):
    torch.manual_seed(0)
    model = build_model(name, 2, image_size=64)
    plan = TransferPlan.for_model(model, name, 1, 1.0)
    before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("backbone.")}
    assert plan.set_frozen(model, True) and not plan.set_frozen(model, True)
    model.train()
    assert plan.batchnorm_eval(model) == 7  # the seven conv + BN layers
    images = [torch.rand(3, 64, 64) for _ in range(2)]
    target = {"boxes": torch.tensor([[8.0, 8.0, 40.0, 40.0]]), "labels": torch.tensor([1])}
    if name == "tiny-maskrcnn":
        mask = torch.zeros(1, 64, 64, dtype=torch.uint8)
        mask[0, 8:40, 8:40] = 1
        target["masks"] = mask
    loss = sum(model(images, [target, target]).values())
    loss.backward()
    params = dict(model.named_parameters())
    assert all(params[n].grad is None for n in plan.backbone_names)
    assert any(params[n].grad is not None for n in plan.head_names)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running means / vars too
    plan.set_frozen(model, False)
    model.train()
    assert plan.batchnorm_eval(model) == 0 and all(params[n].requires_grad for n in plan.backbone_names)


# ---------------------------------------------------------------------------------------------- weights files
def _bb(state):
    return {k: v for k, v in state.items() if k.startswith("net.features.")}


def test_mismatched_weights_name_the_file_and_the_keys(pretrained, tmp_path):
    good = torch.load(pretrained, weights_only=True)
    model = build_model("small-cnn", 10, image_size=16)
    cases = {}
    missing = dict(good)
    for k in [k for k in good if k.startswith("net.features.3.")]:
        del missing[k]
    cases["missing"] = (missing, ["missing backbone keys", "'net.features.3.weight'"])
    hostile = dict(good)
    hostile["net.features.99.weight\n\x1b[31m<script>"] = torch.zeros(3)
    cases["unexpected"] = (hostile, ["unexpected keys (1)", "net.features.99.weight\\n\\x1b[31m<script>"])
    shaped = dict(good)
    shaped["net.features.0.weight"] = torch.zeros(32, 1, 3, 3)
    cases["shape"] = (shaped, ["keys of another shape (1)", "'net.features.0.weight' (32, 1, 3, 3) vs (32, 3, 3, 3)"])
    other = build_model("resnet18", 10, image_size=32).net.state_dict()  # another architecture entirely
    cases["other"] = (other, ["missing backbone keys (30): 'features.0.weight'", "other keys of the file with no "
                              "place in the model (", "'bn1.bias'", "read as the inner network's (net) names"])
    for case, (state, wanted) in cases.items():
        path = tmp_path / f"{case}.pt"
        torch.save(state, path)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        with pytest.raises(ValidationError) as info:
            load_weights(model, path)
        msg = str(info.value)
        assert info.value.file == str(path) and info.value.field == "weights", case
        assert str(path) in msg and "\n" not in msg and "\x1b" not in msg, case
        for w in wanted:
            assert w in msg, (case, w, msg)
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), case  # nothing loaded


def test_a_head_for_other_classes_stays_new_and_is_said(pretrained):
    model = build_model("small-cnn", 4, image_size=16)
    report = load_weights(model, pretrained)
    assert set(report["head_new"]) == {"net.fc.weight", "net.fc.bias"} == set(report["skipped"])
    state = torch.load(pretrained, weights_only=True)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in _bb(state).items())


# ---------------------------------------------------------------------------------------------- the trainer
class _Snapshots(Callback):
    """The backbone, the head and the backbone's BatchNorm statistics after every epoch; lrs per group."""

    def __init__(self):
        self.after = {}
        self.groups = {}

    def on_epoch_end(self, record):
        t = self.trainer
        self.after[record.epoch] = {k: v.detach().clone() for k, v in t.model.state_dict().items()}
        self.groups[record.epoch] = [(g.get("name"), g["lr"]) for g in t.optimizer.param_groups]


def test_freeze_for_n_epochs_then_train_at_a_scaled_lr(pretrained, tmp_path):
    snaps = _Snapshots()
    cfg = _cfg(weights=str(pretrained), freeze_backbone=2, backbone_lr_scale=0.1)
    Trainer(cfg, sample_source("digits", 300), tmp_path / "r", [snaps]).fit()
    start = torch.load(pretrained, weights_only=True)
    bb = [k for k in start if k.startswith("net.features.") and "num_batches" not in k]
    for epoch in (1, 2):  # frozen: weights and BatchNorm running stats exactly the file's
        assert all(torch.equal(snaps.after[epoch][k], start[k]) for k in bb), epoch
        assert not torch.equal(snaps.after[epoch]["net.fc.weight"], start["net.fc.weight"])
    assert not torch.equal(snaps.after[3]["net.features.0.weight"], start["net.features.0.weight"])
    assert not torch.equal(snaps.after[3]["net.features.1.running_mean"], start["net.features.1.running_mean"])
    assert snaps.groups[1] == snaps.groups[3] == [("head", 3e-3), ("backbone", pytest.approx(3e-4))]
    run = load_run(tmp_path / "r")
    assert [h["transfer"]["backbone_frozen"] for h in run.history] == [True, True, False]
    assert [h["lr"] for h in run.history] == [3e-3] * 3  # the lr column stays the head's
    params = RunParams.from_json(json.loads((tmp_path / "r" / "params.json").read_text()))
    assert (params.freeze_backbone, params.backbone_lr_scale, params.weights) == (2, 0.1, str(pretrained))
    transfer = params.resolved["transfer"]
    n_backbone = sum(1 for n, _ in build_model("small-cnn", 10, image_size=16).named_parameters()
                     if n.startswith("net.features."))
    assert transfer["backbone"]["parameters"] == n_backbone and transfer["weights"]["loaded"] == len(start)
    assert transfer["weights"]["file"] == str(pretrained) and transfer["weights"]["head_new"] == []


def test_a_resumed_run_freezes_and_unfreezes_as_an_uninterrupted_one(pretrained, tmp_path):
    source = sample_source("digits", 300)
    cfg = _cfg(weights=str(pretrained), freeze_backbone=2, backbone_lr_scale=0.5, epochs=4)
    whole = Trainer(cfg, source, tmp_path / "whole").fit()

    class Crash(Exception):
        pass

    class CrashAfter(Callback):
        def on_epoch_end(self, record):
            if record.epoch == 1:
                raise Crash

    with pytest.raises(Crash):
        Trainer(cfg, source, tmp_path / "r", [CrashAfter()]).fit()
    snaps = _Snapshots()
    resumed = resume(tmp_path / "r", source, [snaps])
    assert resumed["test"] == whole["test"]
    assert _numbers(load_run(tmp_path / "r").history) == _numbers(load_run(tmp_path / "whole").history)
    start = torch.load(pretrained, weights_only=True)
    assert torch.equal(snaps.after[2]["net.features.0.weight"], start["net.features.0.weight"])  # still frozen
    assert not torch.equal(snaps.after[3]["net.features.0.weight"], start["net.features.0.weight"])
    # the weights report of the first start survives the resume
    params = json.loads((tmp_path / "r" / "params.json").read_text())
    last = torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=True)
    assert last["resolved"]["transfer"]["weights"] == params["resolved"]["transfer"]["weights"]
    assert last["resolved"]["transfer"]["weights"]["loaded"] == len(start)


def test_old_run_records_and_configs_still_load():
    old = {"run_id": "r1", "created_at": "2025-01-01T00:00:00Z", "config": {"epochs": 3, "lr": 0.01},
           "resolved": {"monitor": "accuracy"}, "source": {"dataset": "d", "dataset_type": "classification"}}
    p = RunParams.from_json(old)
    assert (p.freeze_backbone, p.backbone_lr_scale, p.weights) == (0, 1.0, None)
    for bad in ({"freeze_backbone": -2}, {"freeze_backbone": "2"}, {"backbone_lr_scale": 0}):
        with pytest.raises(ValidationError) as info:
            RunParams.from_json({**old, "config": {**old["config"], **bad}}, file="params.json")
        assert info.value.file == "params.json" and info.value.field == f"config.{next(iter(bad))}"
    cfg = TrainConfig.from_dict({"epochs": 2, "weights": None})
    assert (cfg.freeze_backbone, cfg.backbone_lr_scale) == (0, 1.0)


# ---------------------------------------------------------------------------------------------- progress
def test_validation_and_test_scoring_report_progress_in_order_with_counts(tmp_path):
    source = sample_source("digits", 300)
    rec = RecordingCallback()
    Trainer(_cfg(epochs=2), source, tmp_path / "r", [rec]).fit()
    n_val = sum(1 for e in source.examples if e.split == "val")
    n_test = sum(1 for e in source.examples if e.split == "test")
    val_batches, test_batches = -(-n_val // 32), -(-n_test // 32)
    names = rec.names()
    starts = [i for i, n in enumerate(names) if n == "epoch_start"]
    assert len(starts) == 2
    for epoch, start in zip((1, 2), starts, strict=True):
        end = names.index("epoch_end", start)
        block = rec.events[start:end]
        first_progress = next(i for i, (n, _) in enumerate(block) if n == "progress")
        assert all(n == "step" for n, _ in block[1:first_progress])  # the steps, then validation
        events = [p for n, p in block[first_progress:]]
        assert all(isinstance(p, Progress) and (p.task, p.stage) == ("validate", f"epoch {epoch}/2")
                   for p in events)
        assert [p.done for p in events] == [*range(2 * val_batches + 1), 2 * val_batches]
        assert {p.total for p in events} == {2 * val_batches} and [p.final for p in events][-2:] == [False, True]
        assert [p.detail for p in events[1:-1]] == ["loss"] * val_batches + ["predictions"] * val_batches
        assert events[-1].detail == f"{n_val} images"
    last_end = len(names) - 1 - names[::-1].index("epoch_end")
    tail = [p for n, p in rec.events[last_end:] if n == "progress"]
    assert names[-1] == "fit_end" and all(n != "step" for n in names[last_end:])
    assert [(p.task, p.done, p.final) for p in tail] == (
        [("test", i, False) for i in range(test_batches + 1)] + [("test", test_batches, True)])
    assert tail[0].stage.startswith("scoring epoch ") and tail[-1].detail == f"{n_test} images"


def test_progress_callback_and_the_cli_render_validation_and_test_lines(tmp_path, capsys):
    stream = io.StringIO()
    Trainer(_cfg(epochs=1), sample_source("digits", 300), tmp_path / "r",
            [ProgressCallback(ProgressPrinter(stream, tty=False, interval=3600))]).fit()
    lines = stream.getvalue().splitlines()
    kinds = [line.split(":")[0] for line in lines]
    assert kinds == ["train", "validate", "validate", "train", "test", "test"], lines
    assert lines[2].startswith("validate: epoch 1/1  ") and "(100%)  done in" in lines[2]
    assert lines[3].startswith("train: epoch 1/1") and "accuracy" in lines[3]
    assert lines[5].startswith("test: scoring epoch 1 weights") and "(100%)  done in" in lines[5]


def test_cli_train_with_weights_freeze_and_scale_says_so_and_records_it(pretrained, tmp_path, capsys):
    h = str(tmp_path / "ws")
    assert main(["--home", h, "sample", "d", "digits", "--count", "120"]) == 0
    capsys.readouterr()
    code = main(["--home", h, "train", "d", "--epochs", "2", "--batch-size", "32", "--image-size", "16",
                 "--augment", "none", "--weights", str(pretrained), "--freeze-backbone", "1",
                 "--backbone-lr-scale", "0.25", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    res = json.loads(out.strip().splitlines()[-1])
    assert res["transfer"]["freeze_backbone"] == 1 and res["transfer"]["backbone_lr_scale"] == 0.25
    n = len(torch.load(pretrained, weights_only=True))
    assert f"weights: {pretrained}: {n} tensors loaded" in err
    assert "frozen for epochs 1-1 (BatchNorm statistics kept), then trained at lr x 0.25" in err
    assert "[backbone frozen]" in err.split("epoch 1/2  train_loss")[1].splitlines()[0]
    assert "validate: epoch 1/2" in err and "test: scoring" in err
    bad = tmp_path / "bad.pt"
    torch.save({"net.features.0.weight": torch.zeros(1)}, bad)
    for args, flag in ((["--weights", str(bad)], "--weights"), (["--freeze-backbone", "-1"], "--freeze-backbone"),
                       (["--backbone-lr-scale", "0"], "--backbone-lr-scale")):
        assert main(["--home", h, "train", "d", "--epochs", "1", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and f"field '{flag}'" in err, err
        if flag == "--weights":
            assert str(bad) in err and "keys of another shape (1): 'net.features.0.weight' (1,)" in err, err


def test_loop_parameters_type_and_contain_the_transfer_settings(tmp_path):
    assert check_value("freeze_backbone", 2) == 2 and check_value("backbone_lr_scale", 1) == 1.0
    for name, value in (("freeze_backbone", -1), ("freeze_backbone", 1.5), ("backbone_lr_scale", 0.0),
                        ("weights", 3)):
        with pytest.raises(ValidationError):
            check_value(name, value)
    ws, out = tmp_path / "ws", tmp_path / "out"
    ws.mkdir()
    (ws / "w.pt").write_bytes(b"x")
    assert resolve_weights("w.pt", out=out, workspace=ws) == str((ws / "w.pt").resolve())
    for outside in ("/etc/passwd", "../w.pt"):
        with pytest.raises(UnsafePathError):
            resolve_weights(outside, out=out, workspace=ws, file="p.yaml")


def test_the_loop_trains_from_weights_with_a_frozen_backbone(pretrained, tmp_path):
    """A params file names the weights (inside the loop's workspace), the freeze and the scale; the train
    notebook passes them on, and the run records them."""
    import shutil

    from workbench.loop.runner import run_loop

    out = tmp_path / "out"
    (out / "workspace").mkdir(parents=True)
    shutil.copy(pretrained, out / "workspace" / "digits-cnn.pt")
    params = tmp_path / "params.yaml"
    params.write_text("sample_count: 150\nepochs: 2\nbatch_size: 32\nimage_size: 16\naugment_preset: ''\n"
                      "weights: digits-cnn.pt\nfreeze_backbone: 1\nbackbone_lr_scale: 0.5\n")
    res = run_loop(out, params_file=params, steps=("01_annotate", "02_train"), html=False)
    assert res.params["weights"] == str((out / "workspace" / "digits-cnn.pt").resolve())
    (run_dir,) = [p.parent for p in (out / "workspace" / "runs").glob("*/params.json")]
    run = load_run(run_dir)
    config = run.params["config"]
    assert (config["weights"], config["freeze_backbone"], config["backbone_lr_scale"]) == (
        res.params["weights"], 1, 0.5)
    assert run.params["resolved"]["transfer"]["weights"]["loaded"] == len(torch.load(pretrained, weights_only=True))
    assert [h["transfer"]["backbone_frozen"] for h in run.history] == [True, False]
    (params.parent / "outside.yaml").write_text(f"weights: {pretrained}\n")
    with pytest.raises(UnsafePathError, match="outside the loop's output folder"):
        run_loop(tmp_path / "out2", params_file=params.parent / "outside.yaml", html=False)
