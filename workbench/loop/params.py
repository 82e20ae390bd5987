"""Loop parameters: defaults, the --quick overlay, YAML files, validated against the notebooks' own
``parameters`` cells (papermill's inspection), so an unknown key is an error that lists the valid ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ValidationError

__all__ = ["DEFAULTS", "QUICK", "load_params", "notebooks_dir", "STEPS"]

STEPS = ("01_annotate", "02_train", "03_evaluate")

# The whole loop on the built-in sample data. Seconds-to-minutes on a 2-core CPU.
DEFAULTS: dict[str, Any] = {
    "dataset": "digits",
    "dataset_type": "classification",
    "sample": "digits",
    "sample_count": 0,  # 0: the sample's own size (all 1,797 digits)
    "seed": 0,
    "model": "small-cnn",
    "epochs": 12,
    "batch_size": 64,
    "lr": 0.002,
    "image_size": 0,  # 0: the model's default
    "augment_preset": "no-flip",  # digits: a mirrored 2 is no 2 ("": the dataset type's default preset)
    "mine_count": 40,
}

# Small and fast, per dataset type: for tests and first contact (seconds to a minute of training on CPU).
QUICK: dict[str, dict[str, Any]] = {
    "classification": {"sample_count": 500, "epochs": 5, "batch_size": 32},
    "detection": {"sample_count": 60, "epochs": 2, "batch_size": 8},
    "segmentation": {"sample_count": 40, "epochs": 1, "batch_size": 4},
    "anomaly": {"sample_count": 80, "epochs": 2, "batch_size": 16},
}


def notebooks_dir() -> Path:
    """The project's own notebooks (next to the package in a checkout / editable install)."""
    here = Path(__file__).resolve().parent.parent
    for cand in (here.parent / "notebooks", here / "notebooks"):
        if (cand / f"{STEPS[0]}.ipynb").is_file():
            return cand
    raise ValidationError(f"the Workbench notebooks are not next to the package ({here.parent / 'notebooks'})")


def load_params(path: str | Path | None = None, *, quick: bool = False,
                overrides: dict[str, Any] | None = None, valid: set[str] | None = None) -> dict[str, Any]:
    """DEFAULTS, then the YAML file, then QUICK for the dataset type (when asked), then ``overrides``."""
    import yaml

    params = dict(DEFAULTS)
    if path is not None:
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except FileNotFoundError:
            raise ValidationError("parameter file not found", file=str(p)) from None
        except yaml.YAMLError as e:
            raise ValidationError(f"not valid YAML: {' '.join(str(e).split())}", file=str(p)) from None
        if not isinstance(data, dict):
            raise ValidationError("a parameter file must be a mapping of name: value", file=str(p))
        allowed = valid if valid is not None else set(DEFAULTS)
        for k, v in data.items():
            if k not in allowed:
                raise ValidationError(f"unknown parameter; valid: {', '.join(sorted(allowed))}", file=str(p),
                                      field=str(k))
            default = params.get(k)
            if default is not None and not isinstance(v, type(default)) and not (
                    isinstance(default, float) and isinstance(v, int)):
                raise ValidationError(f"expected {type(default).__name__}, got {v!r}", file=str(p), field=str(k))
        params.update(data)
    if quick:
        params.update(QUICK.get(str(params.get("dataset_type")), QUICK["classification"]))
    params.update(overrides or {})
    return params
