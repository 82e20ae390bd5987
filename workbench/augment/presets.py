"""Named augmentation presets, one registry, a default per dataset type.

``preset(name)`` returns a fresh, validated config (change it with ``config.set_param`` / ``set_enabled``).
Defaults per type:

- classification: flips, a mild affine, colour jitter, light noise/blur, small occlusion; resized to 224x224.
- detection / segmentation: flips, a mild affine (small rotation so boxes stay tight), colour jitter, light
  noise; occlusion is in the list but off (it can hide whole objects). No resize: torchvision detectors
  resize internally.
- anomaly: deliberately mild (flip, a very small affine, brightness/contrast). No noise, blur or occlusion,
  which would look like the very defects the model must learn are absent from good images. Resized to
  256x256.

Vertical flips are present but off everywhere: most photos have an "up". Only ``anomaly-default`` and
``none`` are offered for anomaly datasets (``preset_names("anomaly")``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..data.records import TASK_TYPES
from ..data.task_types import TaskType, type_info
from ..errors import AlreadyExistsError, UnknownNameError, ValidationError
from .config import validate

__all__ = ["Preset", "PRESETS", "preset", "default_preset", "register_preset", "preset_names"]


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    dataset_types: tuple[str, ...]
    config: dict[str, Any]


PRESETS: dict[str, Preset] = {}


def register_preset(
    name: str,
    config: dict[str, Any],
    *,
    description: str = "",
    dataset_types: Iterable[str] = TASK_TYPES,
    replace: bool = False,
) -> Preset:
    """Add a preset to the registry (validated). An existing name needs ``replace=True``."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("a preset needs a non-empty name", field="name")
    if name in PRESETS and not replace:
        raise AlreadyExistsError(f"preset '{name}' already exists; pass replace=True to overwrite it")
    types = tuple(dataset_types)
    for t in types:
        if t not in TASK_TYPES:
            raise UnknownNameError("dataset type", t, TASK_TYPES)
    p = Preset(name, description, types, validate(config))
    PRESETS[name] = p
    return p


def preset(name: str) -> dict[str, Any]:
    """A fresh copy of preset ``name``'s config; unknown names raise ``UnknownNameError``."""
    try:
        return copy.deepcopy(PRESETS[name].config)
    except (KeyError, TypeError):
        raise UnknownNameError("augmentation preset", str(name), list(PRESETS)) from None


def preset_names(dataset_type: str | None = None) -> list[str]:
    """Preset names, optionally only those meant for ``dataset_type``."""
    if dataset_type is not None and dataset_type not in TASK_TYPES:
        raise UnknownNameError("dataset type", dataset_type, TASK_TYPES)
    return [n for n, p in PRESETS.items() if dataset_type is None or dataset_type in p.dataset_types]


_DEFAULTS: dict[str, str] = {
    TaskType.CLASSIFICATION: "classification-default",
    TaskType.DETECTION: "detection-default",
    TaskType.SEGMENTATION: "segmentation-default",
    TaskType.ANOMALY: "anomaly-default",
}


def default_preset(dataset_type: str) -> str:
    """The name of the default preset for a dataset type."""
    try:
        return _DEFAULTS[dataset_type]
    except (KeyError, TypeError):
        raise UnknownNameError("dataset type", str(dataset_type), TASK_TYPES) from None


def _t(name: str, enabled: bool = True, **params: Any) -> dict[str, Any]:
    return {"name": name, "enabled": enabled, "params": params}


def _cfg(transforms: list[dict[str, Any]], image_size: list[int] | None = None) -> dict[str, Any]:
    return {"version": 1, "image_size": image_size, "transforms": transforms}


_FLIPS = [_t("HorizontalFlip", p=0.5), _t("VerticalFlip", False, p=0.5)]
_COLOUR = [
    _t("RandomBrightnessContrast", brightness_limit=[-0.2, 0.2], contrast_limit=[-0.2, 0.2], p=0.5),
    _t(
        "HueSaturationValue",
        hue_shift_limit=[-10, 10],
        sat_shift_limit=[-20, 20],
        val_shift_limit=[-15, 15],
        p=0.3,
    ),
    _t("RandomGamma", False, gamma_limit=[80, 120], p=0.3),
]
_BOX_AFFINE = _t(
    "Affine", scale=[0.9, 1.1], translate_percent=[-0.05, 0.05], rotate=[-5, 5], shear=[-2, 2], p=0.5
)

register_preset(
    "none", _cfg([]), description="No augmentation (only the resize, if any).", dataset_types=TASK_TYPES
)
register_preset(
    "classification-default",
    _cfg(
        [
            *_FLIPS,
            _t(
                "Affine",
                scale=[0.85, 1.15],
                translate_percent=[-0.1, 0.1],
                rotate=[-15, 15],
                shear=[-5, 5],
                p=0.5,
            ),
            *_COLOUR,
            _t("GaussNoise", std_range=[0.02, 0.06], p=0.2),
            _t("GaussianBlur", blur_limit=[3, 5], sigma_limit=[0.2, 1.2], p=0.1),
            _t(
                "CoarseDropout",
                num_holes_range=[1, 3],
                hole_height_range=[0.05, 0.15],
                hole_width_range=[0.05, 0.15],
                p=0.2,
            ),
        ],
        [224, 224],
    ),
    description="Flips, affine, colour jitter, light noise/blur, small occlusions; 224x224.",
    dataset_types=("classification",),
)
for _type in [t.value for t in TaskType if type_info(t).regions]:  # detection, segmentation
    register_preset(
        f"{_type}-default",
        _cfg(
            [
                *_FLIPS,
                _BOX_AFFINE,
                *_COLOUR,
                _t("GaussNoise", std_range=[0.02, 0.05], p=0.1),
                _t("MotionBlur", False, blur_limit=[3, 5], p=0.1),
                _t(
                    "CoarseDropout",
                    False,
                    num_holes_range=[1, 2],
                    hole_height_range=[0.05, 0.1],
                    hole_width_range=[0.05, 0.1],
                    p=0.2,
                ),
            ]
        ),
        description="Flips, a mild affine, colour jitter, light noise; occlusion available but off.",
        dataset_types=(_type,),
    )
register_preset(
    "anomaly-default",
    _cfg(
        [
            _t("HorizontalFlip", p=0.5),
            _t(
                "Affine",
                scale=[0.97, 1.03],
                translate_percent=[-0.02, 0.02],
                rotate=[-3, 3],
                shear=[0, 0],
                p=0.5,
            ),
            _t("RandomBrightnessContrast", brightness_limit=[-0.1, 0.1], contrast_limit=[-0.1, 0.1], p=0.5),
        ],
        [256, 256],
    ),
    description="Mild: nothing that could look like a defect (no noise, blur or occlusion); 256x256.",
    dataset_types=("anomaly",),
)
register_preset(
    "geometric",
    _cfg(
        [
            *_FLIPS,
            _t("Rotate", False, limit=[-15, 15], p=0.5),
            _t(
                "Affine",
                scale=[0.9, 1.1],
                translate_percent=[-0.0625, 0.0625],
                rotate=[-10, 10],
                shear=[-5, 5],
                p=0.5,
            ),
        ]
    ),
    description="Geometry only: flips, rotation, shift/scale/rotate/shear.",
    dataset_types=("classification", "detection", "segmentation"),
)
register_preset(
    "photometric",
    _cfg(
        [
            *_COLOUR,
            _t("GaussNoise", std_range=[0.02, 0.08], p=0.3),
            _t("GaussianBlur", blur_limit=[3, 5], sigma_limit=[0.2, 1.5], p=0.2),
            _t("MotionBlur", False, blur_limit=[3, 7], p=0.2),
        ]
    ),
    description="Colour, noise and blur only: boxes and masks never move.",
    dataset_types=("classification", "detection", "segmentation"),
)
register_preset(
    "no-flip",
    _cfg(
        [
            _t("HorizontalFlip", False, p=0.5),
            _t("VerticalFlip", False, p=0.5),
            _t("Affine", scale=[0.9, 1.1], translate_percent=[-0.08, 0.08], rotate=[-10, 10], shear=[-5, 5],
               p=0.5),
            _t("RandomBrightnessContrast", brightness_limit=[-0.15, 0.15], contrast_limit=[-0.15, 0.15], p=0.3),
        ]
    ),
    description="For data whose mirror image means something else (digits, text, left/right parts): small "
    "shifts, rotations and contrast, no flips.",
    dataset_types=("classification", "detection", "segmentation"),
)
