"""`workbench loop --quick` for detection learns: the quick settings (loop.params.QUICK: batch size, lr,
schedule, image size, epochs) on a small shapes-detection sample give a detector far above what the same
model scores untrained. Correctness, not time: a bound an untrained model cannot reach."""

from __future__ import annotations

import pytest

from tests.train.sources import quick_config, sample_source
from workbench.loop.params import QUICK
from workbench.train.models import build_model
from workbench.train.tasks import get_task
from workbench.train.trainer import Trainer


@pytest.mark.slow
def test_quick_detection_beats_an_untrained_model(tmp_path):
    q = QUICK["detection"]
    src = sample_source("shapes-detection", 120, size=q["image_size"])
    cfg = quick_config(model="tiny-frcnn", epochs=q["epochs"], batch_size=q["batch_size"], lr=q["lr"],
                       schedule=q["schedule"], image_size=q["image_size"], augment="detection-default")
    trainer = Trainer(cfg, src, tmp_path / "run")
    summary = trainer.fit()
    trained = summary["test"]["mAP50"]
    # the same model, untrained, scored the same way on the same test split
    untrained_model = build_model("tiny-frcnn", len(src.class_names), image_size=q["image_size"])
    task = get_task("detection")
    test = src.split("test")
    preds = task.predict(untrained_model, trainer.eval_loaders["test"], "cpu")
    untrained = task.evaluate(preds, test, src.class_names)["mAP50"]
    assert untrained < 0.05, untrained
    print(f"quick detection: test mAP50 {trained:.3f}, untrained {untrained:.3f}")
    assert trained >= 0.3, summary["test"]
    assert summary["status"] == "finished" and summary["epochs_run"] == q["epochs"]
