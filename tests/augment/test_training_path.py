"""Training's path through the pipeline leaves out what only the preview reads, and sees the same draws.

``Augmenter(..., track_clipping=False)`` (what the trainer uses for detection) carries no box-corner
keypoints, and ``AugmentedSample.params`` is summarized only when read; pixels, boxes, labels and dropped
counts must equal the preview's for the same seed.
"""

from __future__ import annotations

import numpy as np
import pytest

import workbench.augment as wa
import workbench.augment.pipeline as pipeline

pytest.importorskip("albumentations")

RNG = np.random.default_rng(0)
IMAGE = RNG.integers(0, 256, (96, 128, 3), dtype=np.uint8)
# boxes inside, on the border and mostly outside (cut before the pipeline), so drops and clips happen
BOXES = np.array(
    [
        [10, 10, 30, 20],
        [0, 50, 25, 40],
        [100, 70, 40, 30],
        [60, 30, 8, 8],
        [-20, -5, 30, 30],
        [-40, -40, 20, 20.0],
    ]
)
LABELS = ["a", "b", "c", "a", "b", "c"]
EVERYTHING_ON = {
    "version": 1,
    "image_size": [64, 64],
    "min_visibility": 0.3,
    "transforms": [
        {"name": "HorizontalFlip", "params": {"p": 0.5}},
        {"name": "VerticalFlip", "params": {"p": 0.5}},
        {
            "name": "Affine",
            "params": {"scale": [0.6, 1.4], "translate_percent": [-0.3, 0.3], "rotate": [-30, 30], "p": 0.9},
        },
        {"name": "GaussNoise", "params": {"std_range": [0.02, 0.1], "p": 0.5}},
        {"name": "RandomBrightnessContrast", "params": {"p": 0.5}},
    ],
}


@pytest.mark.parametrize("config", [wa.preset("detection-default"), EVERYTHING_ON], ids=["preset", "strong"])
def test_training_path_sees_the_preview_draws(config):
    preview = wa.Augmenter(config, "detection")
    training = wa.Augmenter(config, "detection", track_clipping=False)
    assert "keypoints" not in training.compose.processors and "keypoints" in preview.compose.processors
    dropped = 0
    for seed in range(40):
        a = preview(IMAGE, BOXES, LABELS, seed=seed)
        b = training(IMAGE, BOXES, LABELS, seed=seed)
        assert np.array_equal(a.image, b.image), seed
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-9)
        assert (a.labels, a.kept, a.dropped) == (b.labels, b.kept, b.dropped)
        assert a.params == b.params
        assert b.clipped == 0 and b.visibility.size == 0
        dropped += a.dropped
    assert dropped > 0  # the strong config does push boxes out; the preset at least drops the outside one


def test_segmentation_keeps_its_corners():
    aug = wa.Augmenter(wa.preset("segmentation-default"), "segmentation", track_clipping=False)
    assert aug.corners and "keypoints" in aug.compose.processors  # its visibility rule needs them


def test_params_are_summarized_only_when_read(monkeypatch):
    calls = []
    real = pipeline.summarize
    monkeypatch.setattr(pipeline, "summarize", lambda name, p: calls.append(name) or real(name, p))
    aug = wa.Augmenter(EVERYTHING_ON, "detection", track_clipping=False)
    samples = [aug(IMAGE, BOXES, LABELS, seed=s) for s in range(10)]
    assert calls == []  # training reads image, boxes and labels only
    fired = [p["name"] for p in samples[0].params]
    assert fired and calls == fired and samples[0].params is samples[0].params  # once, then kept
    assert fired[-1] == "Resize" and samples[0].params[-1]["index"] is None
