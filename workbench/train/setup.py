"""Run set-up shared by the trainer and the benchmarks: determinism, seeding, the augmentation to use."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from ..errors import ValidationError
from .config import TrainConfig
from .models import default_model, model_spec

__all__ = ["deterministic_mode", "resolve_augment", "seed_everything"]


@contextlib.contextmanager
def deterministic_mode(enabled: bool, threads: int | None, device: str = "cpu") -> Iterator[None]:
    """Fixed thread count, and on CUDA deterministic algorithms (warn-only where none exists); restored after.

    On CPU, torch's kernels already give the same result for the same inputs and thread count, so the
    global deterministic flag (whose first use imports the Inductor compiler, seconds of start-up) is
    left alone there; the tests check that two CPU runs agree exactly.
    """
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    prev_threads = torch.get_num_threads()
    prev_cudnn = torch.backends.cudnn.benchmark
    cuda = enabled and device.startswith("cuda")
    try:
        if cuda:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        if threads:
            torch.set_num_threads(threads)
        yield
    finally:
        if cuda:
            torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
            torch.backends.cudnn.benchmark = prev_cudnn
        torch.set_num_threads(prev_threads)


def resolve_augment(config: TrainConfig, dataset_type: str) -> tuple[dict[str, Any], int]:
    """The augmentation config to train with, resized to the training image size, and that size."""
    from ..augment import default_preset, preset, set_image_size, validate

    if config.augment is None:
        spec = model_spec(config.model or default_model(dataset_type))
        aug = preset(spec.augment or default_preset(dataset_type))
    elif isinstance(config.augment, str):
        aug = preset(config.augment)
    else:
        aug = validate(config.augment)
    size = config.image_size
    if size is None and isinstance(config.augment, dict) and aug.get("image_size"):
        h, w = aug["image_size"]
        if h != w:
            raise ValidationError(
                f"training needs square images; the augmentation config resizes to {h}x{w}",
                field="augment.image_size",
            )
        size = int(h)
    if size is None:
        size = model_spec(config.model or default_model(dataset_type)).default_image_size
    return set_image_size(aug, [size, size]), int(size)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
