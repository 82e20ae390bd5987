"""Model selection: a tie in the monitored metric goes to the epoch with the lower val loss."""

from __future__ import annotations

from tests.train.sources import sample_source
from workbench.train.checkpoint import load_checkpoint
from workbench.train.config import TrainConfig
from workbench.train.trainer import Trainer


def test_a_tie_in_accuracy_goes_to_the_lower_val_loss(tmp_path):
    # (val loss, accuracy) per epoch: epoch 3 ties epoch 2's accuracy with a third of its val loss; epoch 4
    # ties again with 3x the loss of epoch 3; epoch 5 is worse
    script = iter([(1.0, 0.5), (0.9, 0.9), (0.3, 0.9), (0.9, 0.9), (0.2, 0.8)])
    cfg = TrainConfig(model="small-cnn", epochs=5, batch_size=16, augment="none", device="cpu", patience=None,
                      threads=1, seed=0, max_steps_per_epoch=1)
    trainer = Trainer(cfg, sample_source("digits", 60), tmp_path / "r")

    def scripted(epoch: int | None = None):
        loss, acc = next(script)
        return loss, {"accuracy": acc}

    trainer._validate = scripted
    summary = trainer.fit()
    assert summary["best_epoch"] == 3
    assert load_checkpoint(tmp_path / "r" / "checkpoints" / "best.pt")["epoch"] == 3
    assert [h["best"] for h in trainer.history] == [True, True, True, False, False]
