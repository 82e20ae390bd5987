"""Augmentation: JSON-able pipeline configs, named presets, seeded albumentations pipelines, box-loss reports.

Nothing here imports albumentations until a pipeline is built (``build``, ``Augmenter``, ``sample``).
"""

from __future__ import annotations

from .config import (
    from_json,
    load,
    save,
    set_enabled,
    set_image_size,
    set_param,
    to_json,
    validate,
)
from .pipeline import AugmentedSample, Augmenter, augmenter, build, draw_seed, sample
from .presets import PRESETS, default_preset, preset, preset_names, register_preset
from .report import box_loss_report
from .specs import TRANSFORMS, transform_names, transform_spec

__all__ = [
    "validate",
    "to_json",
    "from_json",
    "load",
    "save",
    "set_enabled",
    "set_param",
    "set_image_size",
    "PRESETS",
    "preset",
    "default_preset",
    "preset_names",
    "register_preset",
    "TRANSFORMS",
    "transform_names",
    "transform_spec",
    "build",
    "Augmenter",
    "augmenter",
    "AugmentedSample",
    "sample",
    "draw_seed",
    "box_loss_report",
]
