"""Turn the parameters albumentations sampled for one transform into a small JSON-able dict for captions.

albumentations 2 records, per applied transform, everything it used (``Compose(save_applied_params=True)``
puts ``(class name, params)`` pairs in ``result["applied_transforms"]``): image shapes, 3x3 matrices, whole
noise maps. A preview caption wants the few numbers a person reads: the angle, the zoom, the gamma. One
summarizer per transform (a registry); anything without one keeps its scalar values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["summarize", "caption", "SUMMARIZERS"]

# Keys that are bookkeeping, not sampled choices.
_SKIP = {
    "shape",
    "interpolation",
    "mask_interpolation",
    "fill",
    "fill_mask",
    "output_shape",
    "matrix",
    "bbox_matrix",
    "seed",
    "noise_map",
    "kernel",
    "x_min",
    "x_max",
    "y_min",
    "y_max",
}


def _round(x: Any, nd: int = 3) -> float:
    return float(round(float(x), nd))


def _generic(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key in _SKIP:
            continue
        if isinstance(value, (bool, np.bool_)):
            out[key] = bool(value)
        elif isinstance(value, (int, np.integer)):
            out[key] = int(value)
        elif isinstance(value, (float, np.floating)):
            out[key] = _round(value)
        elif isinstance(value, dict) and all(isinstance(v, (int, float, np.number)) for v in value.values()):
            out[key] = {k: _round(v) for k, v in value.items()}
    return out


def _angle(m: np.ndarray) -> float:
    # albumentations' rotation block is [[cos, sin], [-sin, cos]] for an angle in degrees
    a = math.degrees(math.atan2(m[0, 1], m[0, 0]))
    return _round(a if a <= 180 else a - 360, 2)


def _rotate(params: dict[str, Any]) -> dict[str, Any]:
    return {"angle": _angle(np.asarray(params["matrix"]))}


def _affine(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"rotate": _round(params["rotate"], 2)}
    scale = params["scale"]
    out["scale"] = {"x": _round(scale["x"]), "y": _round(scale["y"])}
    m = np.asarray(params.get("bbox_matrix", params["matrix"]), dtype=float)
    h, w = params["shape"][:2]
    c = np.array([w / 2, h / 2])
    a = m[:2, :2]
    # m = shift(c) @ translate @ shear @ rotate @ scale @ shift(-c): recover translate and shear
    t = m[:2, 2] - c + a @ c
    out["translate_px"] = {"x": _round(t[0], 1), "y": _round(t[1], 1)}
    r = math.radians(params["rotate"] % 360)
    rot = np.array([[math.cos(r), math.sin(r)], [-math.sin(r), math.cos(r)]])
    sc = np.diag([scale["x"], scale["y"]])
    sh = a @ np.linalg.inv(rot @ sc)
    # albumentations builds the shear block from the negated sampled angles
    out["shear"] = {
        "x": _round(-math.degrees(math.atan(sh[0, 1])), 2) + 0.0,
        "y": _round(-math.degrees(math.atan(sh[1, 0])), 2) + 0.0,
    }
    return out


def _noise(params: dict[str, Any]) -> dict[str, Any]:
    noise = params.get("noise_map")
    return {} if noise is None else {"std": _round(float(np.std(noise)), 2)}


def _kernel(params: dict[str, Any]) -> dict[str, Any]:
    k = params.get("kernel")
    return {} if k is None else {"ksize": int(np.asarray(k).shape[0])}


def _rotate90(params: dict[str, Any]) -> dict[str, Any]:
    return {"turns": int(params.get("factor", 0))}


def _dropout(params: dict[str, Any]) -> dict[str, Any]:
    holes = np.asarray(params.get("holes", np.zeros((0, 4))))
    return {"holes": int(holes.shape[0])}


def _brightness(params: dict[str, Any]) -> dict[str, Any]:
    return {"contrast": _round(params["alpha"]), "brightness": _round(params["beta"], 1)}


SUMMARIZERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "Rotate": _rotate,
    "Affine": _affine,
    "GaussNoise": _noise,
    "GaussianBlur": _kernel,
    "MotionBlur": _kernel,
    "RandomRotate90": _rotate90,
    "CoarseDropout": _dropout,
    "RandomBrightnessContrast": _brightness,
}


def summarize(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The readable parameters of one applied transform (JSON-able: numbers, bools, small dicts)."""
    fn = SUMMARIZERS.get(name, _generic)
    try:
        return fn(params)
    except (KeyError, TypeError, ValueError, np.linalg.LinAlgError):
        # a parameter layout we do not know (another albumentations version): fall back to the scalars
        return _generic(params)


def caption(applied: list[dict[str, Any]]) -> str:
    """One line: ``HorizontalFlip · Affine(rotate=-3.1, ...)``; ``no change`` when nothing fired."""
    parts = []
    for a in applied:
        if a["name"] == "Resize":
            continue
        args = ", ".join(f"{k}={_fmt(v)}" for k, v in a["params"].items())
        parts.append(f"{a['name']}({args})" if args else a["name"])
    return " · ".join(parts) if parts else "no change"


def _fmt(v: Any) -> str:
    if isinstance(v, dict):
        return "(" + ", ".join(f"{k}={_fmt(x)}" for k, x in v.items()) + ")"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)
