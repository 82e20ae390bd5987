"""The training commands end to end on a small real-digits dataset: train -> runs -> evaluate -> mine ->
predict -> export-model, and resume."""

from __future__ import annotations

import json

import pytest

from workbench.cli import main


@pytest.fixture
def home(tmp_path, capsys):
    h = str(tmp_path / "ws")
    assert main(["--home", h, "sample", "d", "digits", "--count", "300"]) == 0
    capsys.readouterr()
    return h


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_train_and_the_run_commands(home, capsys, tmp_path):
    out = run(capsys, "--home", home, "train", "d", "--epochs", "4", "--batch-size", "32", "--lr", "0.003",
              "--augment", "no-flip", "--json")
    res = json.loads(out.strip().splitlines()[-1])
    assert res["status"] in ("finished", "early_stopped")
    assert res["metrics"]["test"]["accuracy"] > 0.5  # 10 classes: chance is 0.1
    rid = res["run_id"]
    rows = json.loads(run(capsys, "--home", home, "runs", "d", "--json"))
    assert [r["run_id"] for r in rows] == [rid]
    ev = json.loads(run(capsys, "--home", home, "evaluate", rid[:12], "--json"))
    assert abs(ev["test"]["accuracy"] - res["metrics"]["test"]["accuracy"]) < 1e-9
    assert len(ev["test"]["confusion"]) == 10 and set(ev["test"]["f1"]) == {str(d) for d in range(10)}
    mined = json.loads(run(capsys, "--home", home, "mine", rid, "--count", "12", "--json"))
    assert len(mined["selected"]) <= 12 and mined["directory"] == "review"
    img_dir = tmp_path / "imgs"
    assert main(["--home", home, "export", "d", str(img_dir), "--format", "imagefolder", "--split", "test"]) == 0
    capsys.readouterr()
    out = run(capsys, "--home", home, "predict", rid, str(img_dir / "test" / "3"), "--out", str(tmp_path / "p"))
    preds = json.loads((tmp_path / "p" / "predictions.json").read_text())
    assert preds and "predicted" in out
    out = run(capsys, "--home", home, "export-model", rid, str(tmp_path / "m.onnx"))
    assert (tmp_path / "m.onnx").stat().st_size > 1000 and "largest difference" in out


def test_train_refuses_tiny_dataset_and_unknown_model(tmp_path, capsys):
    h = str(tmp_path / "ws")
    assert main(["--home", h, "sample", "t", "digits", "--count", "10"]) == 0
    capsys.readouterr()
    assert main(["--home", h, "train", "t", "--epochs", "1"]) == 2
    assert "at least 10" in capsys.readouterr().err
    assert main(["--home", h, "sample", "u", "digits", "--count", "100"]) == 0
    capsys.readouterr()
    assert main(["--home", h, "train", "u", "--model", "nope"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "small-cnn" in err
