"""Longer learning checks (``-m slow``): the default detector reaches a useful mAP on CPU in minutes."""

from __future__ import annotations

import pytest

from tests.train.sources import quick_config
from workbench.data.samples import make_sample
from workbench.train.source import source_from_batch
from workbench.train.trainer import Trainer


@pytest.mark.slow
def test_tiny_frcnn_passes_map50_one_half_at_128px(tmp_path):
    batch = make_sample("shapes-detection", 500, 0, size=128)
    source = source_from_batch(batch, val_fraction=0.1, test_fraction=0.1)
    cfg = quick_config(
        model="tiny-frcnn",
        image_size=128,
        epochs=6,
        batch_size=8,
        schedule="cosine",
        augment="detection-default",
    )
    summary = Trainer(cfg, source, tmp_path / "run").fit()
    assert summary["val"]["mAP50"] > 0.5 and summary["test"]["mAP50"] > 0.5, summary["test"]
