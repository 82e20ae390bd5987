"""Augmentation pipeline configs: plain JSON-able data, validated, changed by returning new copies.

A config looks like::

    {"version": 1,
     "image_size": [H, W] or null,          # final resize, the same for training and evaluation
     "min_visibility": 0.25,                # optional: drop a box when less of it stays in the image
     "transforms": [{"name": "HorizontalFlip", "enabled": true, "params": {"p": 0.5}}, ...]}

Transforms run in list order, then the resize. ``validate`` returns the normalized form: every entry has
``enabled`` and its full ``params`` (defaults filled in), ranges are ``[low, high]`` lists. Nothing here
imports albumentations.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from .specs import check_params, transform_spec

__all__ = [
    "CONFIG_VERSION",
    "DEFAULT_MIN_VISIBILITY",
    "validate",
    "to_json",
    "from_json",
    "load",
    "save",
    "set_enabled",
    "set_param",
    "set_image_size",
    "enabled_transforms",
]

CONFIG_VERSION = 1
DEFAULT_MIN_VISIBILITY = 0.25
MAX_IMAGE_SIDE = 8192
_TOP_KEYS = ("version", "image_size", "min_visibility", "transforms")
_ENTRY_KEYS = ("name", "enabled", "params")


def validate(config: Any, *, file: str | None = None) -> dict[str, Any]:
    """Check ``config`` and return its normalized copy (the input is never changed).

    Raises ``ValidationError`` naming the field (``transforms[2].params.p``) and the transform index, or
    ``UnknownNameError`` (listing the valid names) for a transform that does not exist.
    """
    if not isinstance(config, dict):
        raise ValidationError(f"a pipeline config must be an object, got {type(config).__name__}", file=file)
    extra = sorted(set(config) - set(_TOP_KEYS))
    if extra:
        raise ValidationError(
            f"unknown key(s) {', '.join(extra)}; valid: {', '.join(_TOP_KEYS)}", file=file, field=extra[0]
        )
    version = config.get("version", CONFIG_VERSION)
    if version != CONFIG_VERSION:
        raise ValidationError(
            f"unsupported config version {version!r}; this Workbench reads version {CONFIG_VERSION}",
            file=file,
            field="version",
        )
    out: dict[str, Any] = {
        "version": CONFIG_VERSION,
        "image_size": _image_size(config.get("image_size"), file),
        "min_visibility": _min_visibility(config.get("min_visibility", DEFAULT_MIN_VISIBILITY), file),
        "transforms": [],
    }
    transforms = config.get("transforms", [])
    if not isinstance(transforms, list):
        raise ValidationError("transforms must be a list", file=file, field="transforms")
    for i, entry in enumerate(transforms):
        out["transforms"].append(_entry(entry, i, file))
    return out


def _image_size(value: Any, file: str | None) -> list[int] | None:
    if value is None:
        return None
    ok = (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_IMAGE_SIDE for v in value)
    )
    if not ok:
        raise ValidationError(
            f"image_size must be null or [height, width] with integers 1..{MAX_IMAGE_SIDE}, got {value!r}",
            file=file,
            field="image_size",
        )
    return [int(value[0]), int(value[1])]


def _min_visibility(value: Any, file: str | None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValidationError(
            f"min_visibility must be a number in [0, 1], got {value!r}", file=file, field="min_visibility"
        )
    return float(value)


def _entry(entry: Any, i: int, file: str | None) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise ValidationError(
            f"a transform entry must be an object, got {type(entry).__name__}",
            file=file,
            record=f"transform {i}",
            field=f"transforms[{i}]",
        )
    extra = sorted(set(entry) - set(_ENTRY_KEYS))
    if extra:
        raise ValidationError(
            f"unknown key(s) {', '.join(extra)}; valid: {', '.join(_ENTRY_KEYS)}",
            file=file,
            record=f"transform {i}",
            field=f"transforms[{i}].{extra[0]}",
        )
    if "name" not in entry:
        raise ValidationError(
            "transform entry has no name", file=file, record=f"transform {i}", field=f"transforms[{i}].name"
        )
    spec = transform_spec(entry["name"])
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ValidationError(
            f"enabled must be true or false, got {enabled!r}",
            file=file,
            record=f"transform {i} ({spec.name})",
            field=f"transforms[{i}].enabled",
        )
    try:
        params = check_params(spec, entry.get("params", {}), index=i)
    except ValidationError as exc:
        raise exc.located(file=file) from None
    return {"name": spec.name, "enabled": enabled, "params": params}


def enabled_transforms(config: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """``(index, entry)`` for each enabled transform of a validated config, in order."""
    return [(i, t) for i, t in enumerate(config["transforms"]) if t["enabled"]]


def to_json(config: dict[str, Any], *, indent: int | None = 2) -> str:
    """The config as JSON text (validated first, keys in a stable order)."""
    return json.dumps(validate(config), indent=indent)


def from_json(text: str, *, file: str | None = None) -> dict[str, Any]:
    """Parse and validate a config written by ``to_json`` (or by hand)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"not valid JSON: {exc}", file=file) from None
    return validate(data, file=file)


def load(path: str | Path) -> dict[str, Any]:
    """Read a config file; errors name the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot read pipeline config: {exc.strerror}", file=str(p)) from None
    return from_json(text, file=str(p))


def save(config: dict[str, Any], path: str | Path) -> None:
    """Write a config file (validated)."""
    Path(path).write_text(to_json(config) + "\n", encoding="utf-8")


def _positions(config: dict[str, Any], name: str | int) -> list[int]:
    """Indices the selector ``name`` picks: an int is one index, a str every entry with that name."""
    n = len(config["transforms"])
    if isinstance(name, int) and not isinstance(name, bool):
        if not 0 <= name < n:
            raise ValidationError(f"no transform at index {name} (the pipeline has {n})", field="transforms")
        return [name]
    transform_spec(str(name))  # unknown name -> UnknownNameError listing the valid ones
    return [i for i, t in enumerate(config["transforms"]) if t["name"] == name]


def set_enabled(config: dict[str, Any], name: str | int, enabled: bool) -> dict[str, Any]:
    """A new config with transform ``name`` (a name: every entry of it; an int: that index) switched.

    Enabling a transform the pipeline does not have appends it with its default parameters.
    """
    if not isinstance(enabled, bool):
        raise ValidationError(f"enabled must be true or false, got {enabled!r}", field="enabled")
    new = validate(config)
    positions = _positions(new, name)
    if not positions:
        if enabled:
            spec = transform_spec(str(name))
            new["transforms"].append({"name": spec.name, "enabled": True, "params": dict(spec.defaults)})
        return new
    for i in positions:
        new["transforms"][i]["enabled"] = enabled
    return new


def set_param(config: dict[str, Any], name: str | int, param: str, value: Any) -> dict[str, Any]:
    """A new config with ``param`` of transform ``name`` (every entry of that name, or one index) set."""
    new = validate(config)
    positions = _positions(new, name)
    if not positions:
        raise ValidationError(
            f"the pipeline has no {name}; add it with set_enabled(config, {name!r}, True) first",
            field="transforms",
        )
    for i in positions:
        entry = new["transforms"][i]
        params = dict(entry["params"])
        params[param] = copy.deepcopy(value)
        entry["params"] = check_params(transform_spec(entry["name"]), params, index=i)
    return new


def set_image_size(config: dict[str, Any], image_size: tuple[int, int] | list[int] | None) -> dict[str, Any]:
    """A new config with the final resize set to ``[height, width]`` (or none)."""
    new = validate(config)
    new["image_size"] = None if image_size is None else list(image_size)
    return validate(new)
