"""The transforms a pipeline config may name, with the schema of their parameters.

This is the registry the config validator, the preset table and the augmentation panel's sliders read. It
imports nothing heavy: albumentations is only imported when a pipeline is built (``pipeline.build``).

Every range parameter is written ``[low, high]`` in a config (JSON has no tuples); ``build`` hands
albumentations tuples. Bounds are ours and stricter than albumentations' own checks, which accept some
values silently (a negative ``Affine`` scale, an even blur kernel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import UnknownNameError, ValidationError

__all__ = [
    "ParamSpec",
    "TransformSpec",
    "TRANSFORMS",
    "transform_spec",
    "transform_names",
    "GROUPS",
]

GROUPS = ("geometric", "photometric", "noise", "blur", "occlusion")
PARAM_KINDS = ("prob", "number", "range", "int_range", "bool", "choice")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its kind, default and bounds.

    ``kind`` is ``prob`` (a number in [0, 1]), ``number`` (in [lo, hi]), ``range`` (``[low, high]`` numbers
    in [lo, hi], low <= high), ``int_range`` (the same with integers; ``odd`` asks for odd ones), ``bool`` or
    ``choice`` (one of ``choices``).
    """

    kind: str
    default: Any
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    odd: bool = False
    doc: str = ""

    def __post_init__(self) -> None:
        if self.kind not in PARAM_KINDS:  # programming error in the table below
            raise ValueError(f"unknown parameter kind {self.kind!r}")

    def check(self, value: Any) -> Any:
        """Return ``value`` normalized (ranges as lists, ints as ints) or raise ``ValueError`` saying why."""
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"expected true or false, got {value!r}")
            return value
        if self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"expected one of {', '.join(self.choices)}, got {value!r}")
            return value
        if self.kind in ("prob", "number"):
            v = _number(value)
            lo, hi = (0.0, 1.0) if self.kind == "prob" else (self.lo, self.hi)
            self._bounds(v, lo, hi)
            return v
        # range / int_range
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ValueError(f"expected [low, high], got {value!r}")
        integer = self.kind == "int_range"
        low, high = (_integer(x) if integer else _number(x) for x in value)
        if low > high:
            raise ValueError(f"low {low} is above high {high}")
        for v in (low, high):
            self._bounds(v, self.lo, self.hi)
            if self.odd and v % 2 == 0:
                raise ValueError(f"expected odd integers, got {v}")
        return [low, high]

    @staticmethod
    def _bounds(v: float, lo: float | None, hi: float | None) -> None:
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ValueError(f"{v} is outside [{lo}, {hi}]")


def _number(x: Any) -> float | int:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise ValueError(f"expected a number, got {x!r}")
    if not math.isfinite(x):
        raise ValueError(f"expected a finite number, got {x!r}")
    return x


def _integer(x: Any) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not float(x).is_integer():
        raise ValueError(f"expected an integer, got {x!r}")
    return int(x)


@dataclass(frozen=True)
class TransformSpec:
    """A transform a config may name.

    ``geometric``: it moves pixels, so boxes and masks move with it. ``affects_boxes``: it can drop or clip
    boxes (every geometric transform, and occlusion that can cover a box).
    """

    name: str
    group: str
    params: dict[str, ParamSpec]
    doc: str
    geometric: bool = False
    affects_boxes: bool = False
    defaults: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"unknown group {self.group!r}")
        object.__setattr__(self, "defaults", {k: s.default for k, s in self.params.items()})


def _p(default: float) -> ParamSpec:
    return ParamSpec("prob", default, doc="probability that the transform fires on a draw")


_ROTATE_METHOD = ParamSpec(
    "choice",
    "largest_box",
    choices=("largest_box", "ellipse"),
    doc="how a rotated box is recomputed: the corners' hull (never cuts the object) or an inscribed ellipse",
)

_SPECS = [
    TransformSpec(
        "HorizontalFlip",
        "geometric",
        {"p": _p(0.5)},
        "Mirror left-right.",
        geometric=True,
        affects_boxes=True,
    ),
    TransformSpec(
        "VerticalFlip",
        "geometric",
        {"p": _p(0.5)},
        "Mirror top-bottom (only for views with no 'up': aerial, microscopy).",
        geometric=True,
        affects_boxes=True,
    ),
    TransformSpec(
        "RandomRotate90",
        "geometric",
        {"p": _p(0.5)},
        "Rotate by a multiple of 90 degrees (only for views with no 'up').",
        geometric=True,
        affects_boxes=True,
    ),
    TransformSpec(
        "Rotate",
        "geometric",
        {
            "limit": ParamSpec("range", [-15, 15], -180, 180, doc="rotation angle range, degrees"),
            "rotate_method": _ROTATE_METHOD,
            "p": _p(0.5),
        },
        "Rotate about the centre; the corners fill with black.",
        geometric=True,
        affects_boxes=True,
    ),
    TransformSpec(
        "Affine",
        "geometric",
        {
            "scale": ParamSpec("range", [0.9, 1.1], 0.05, 10, doc="zoom factor range"),
            "translate_percent": ParamSpec("range", [-0.0625, 0.0625], -1, 1, doc="shift, fraction of size"),
            "rotate": ParamSpec("range", [-10, 10], -180, 180, doc="rotation angle range, degrees"),
            "shear": ParamSpec("range", [-5, 5], -45, 45, doc="shear angle range, degrees"),
            "rotate_method": _ROTATE_METHOD,
            "p": _p(0.5),
        },
        "Shift, scale, rotate and shear in one warp.",
        geometric=True,
        affects_boxes=True,
    ),
    TransformSpec(
        "RandomBrightnessContrast",
        "photometric",
        {
            "brightness_limit": ParamSpec(
                "range", [-0.2, 0.2], -1, 1, doc="brightness shift, fraction of max"
            ),
            "contrast_limit": ParamSpec("range", [-0.2, 0.2], -1, 1, doc="contrast change, fraction"),
            "p": _p(0.5),
        },
        "Random brightness and contrast.",
    ),
    TransformSpec(
        "RandomGamma",
        "photometric",
        {"gamma_limit": ParamSpec("range", [80, 120], 1, 500, doc="gamma range, percent"), "p": _p(0.5)},
        "Random gamma curve.",
    ),
    TransformSpec(
        "HueSaturationValue",
        "photometric",
        {
            "hue_shift_limit": ParamSpec("range", [-10, 10], -180, 180, doc="hue shift"),
            "sat_shift_limit": ParamSpec("range", [-20, 20], -255, 255, doc="saturation shift"),
            "val_shift_limit": ParamSpec("range", [-15, 15], -255, 255, doc="value shift"),
            "p": _p(0.5),
        },
        "Random hue, saturation and value shifts.",
    ),
    TransformSpec(
        "GaussNoise",
        "noise",
        {
            "std_range": ParamSpec("range", [0.02, 0.08], 0, 1, doc="noise std, fraction of the max value"),
            "per_channel": ParamSpec("bool", True, doc="independent noise per channel"),
            "p": _p(0.3),
        },
        "Additive Gaussian sensor noise.",
    ),
    TransformSpec(
        "GaussianBlur",
        "blur",
        {
            "blur_limit": ParamSpec("int_range", [3, 5], 3, 31, odd=True, doc="kernel size range (odd)"),
            "sigma_limit": ParamSpec("range", [0.2, 1.5], 0, 10, doc="Gaussian sigma range"),
            "p": _p(0.2),
        },
        "Out-of-focus blur.",
    ),
    TransformSpec(
        "MotionBlur",
        "blur",
        {
            "blur_limit": ParamSpec("int_range", [3, 7], 3, 31, odd=True, doc="kernel size range (odd)"),
            "p": _p(0.2),
        },
        "Blur along a random line, as from camera shake.",
    ),
    TransformSpec(
        "CoarseDropout",
        "occlusion",
        {
            "num_holes_range": ParamSpec("int_range", [1, 4], 1, 100, doc="number of holes"),
            "hole_height_range": ParamSpec("range", [0.05, 0.15], 0.001, 1, doc="hole height, fraction"),
            "hole_width_range": ParamSpec("range", [0.05, 0.15], 0.001, 1, doc="hole width, fraction"),
            "fill": ParamSpec("number", 0, 0, 255, doc="hole colour (grey level)"),
            "p": _p(0.3),
        },
        "Black out rectangles (occlusion); drops boxes mostly covered by a hole.",
        affects_boxes=True,
    ),
]

TRANSFORMS: dict[str, TransformSpec] = {s.name: s for s in _SPECS}


def transform_names() -> list[str]:
    """The names a config may use, in table order."""
    return list(TRANSFORMS)


def transform_spec(name: str) -> TransformSpec:
    """The spec of ``name``; an unknown name raises ``UnknownNameError`` listing the valid ones."""
    try:
        return TRANSFORMS[name]
    except (KeyError, TypeError):
        raise UnknownNameError("transform", str(name), list(TRANSFORMS)) from None


def check_params(spec: TransformSpec, params: Any, *, index: int) -> dict[str, Any]:
    """Validate and complete ``params`` for ``spec``; errors name the transform index and the parameter."""
    where = f"transform {index} ({spec.name})"
    if not isinstance(params, dict):
        raise ValidationError(
            f"params must be an object, got {type(params).__name__}",
            record=where,
            field=f"transforms[{index}].params",
        )
    out = dict(spec.defaults)
    for key, value in params.items():
        pspec = spec.params.get(key)
        if pspec is None:
            raise ValidationError(
                f"unknown parameter '{key}' for {spec.name}; valid: {', '.join(spec.params)}",
                record=where,
                field=f"transforms[{index}].params.{key}",
            )
        try:
            out[key] = pspec.check(value)
        except ValueError as exc:
            raise ValidationError(
                f"bad value for {spec.name}.{key}: {exc}",
                record=where,
                field=f"transforms[{index}].params.{key}",
            ) from None
    return out
