"""Small synthetic training sources for the train tests, built once per session (samples are seeded)."""

from __future__ import annotations

import functools
import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from workbench.data.records import Annotation, ClassDef, Example
from workbench.data.samples import make_sample
from workbench.train.callbacks import Callback
from workbench.train.config import TrainConfig
from workbench.train.source import TrainSource, source_from_batch


@functools.cache
def sample_source(name: str, count: int, seed: int = 0, **options) -> TrainSource:
    return source_from_batch(make_sample(name, count, seed, **options), dataset=name, seed=seed)


def png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


@functools.cache
def easy_anomaly_source(count: int = 80, size: int = 32, seed: int = 0) -> TrainSource:
    """Smooth grey gradients; an anomalous image carries a bright 6x6 square. Every 4th image is anomalous;
    val and test get good and anomalous ones."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    blobs, examples = {}, []
    for i in range(count):
        base = 60 + 60 * (np.cos(rng.uniform(0, 6.28)) * xx + np.sin(rng.uniform(0, 6.28)) * yy)
        img = np.clip(base + rng.normal(0, 3, (size, size)), 0, 255)
        bad = i % 4 == 0
        if bad:
            x, y = rng.integers(2, size - 8, 2)
            img[y : y + 6, x : x + 6] = 250
        px = np.repeat(img[:, :, None], 3, axis=2).astype(np.uint8)
        data = png(px)
        sha = hashlib.sha256(data).hexdigest()
        blobs[sha] = data
        split = "val" if i % 10 in (1, 4) else "test" if i % 10 in (2, 8) else "train"
        label = "anomalous" if bad else "good"
        examples.append(
            Example(
                i,
                "easy-anomaly",
                sha,
                f"a{i}.png",
                size,
                size,
                split,
                "annotated",
                annotations=(Annotation("anomaly", label),),
            )
        )
    return TrainSource(
        examples,
        [ClassDef("good", "#2ca02c"), ClassDef("anomalous", "#d62728")],
        "anomaly",
        blobs.__getitem__,
        dataset="easy-anomaly",
    )


def quick_config(**overrides) -> TrainConfig:
    base = {
        "epochs": 2,
        "batch_size": 16,
        "seed": 0,
        "augment": "none",
        "device": "cpu",
        "patience": None,
        "threads": 1,
    }
    base.update(overrides)
    return TrainConfig(**base)


@pytest.fixture
def digits() -> TrainSource:
    return sample_source("digits", 300)


class Crash(Exception):
    """What :class:`CrashAfterEpoch` raises: a kill, for tests that resume."""


class CrashAfterEpoch(Callback):
    """Simulates a kill right after epoch ``n``'s checkpoint was written."""

    def __init__(self, n):
        self.n = n

    def on_epoch_end(self, record):
        if record["epoch"] == self.n:
            raise Crash
