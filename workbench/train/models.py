"""The model registry: named builders per dataset type.

``build_model(name, num_classes, image_size=...)`` returns a ``torch.nn.Module`` that carries its own
recipe in ``model.workbench_config`` (name, classes, image size), so a checkpoint can rebuild it with
:func:`rebuild_model`. Weights are never downloaded: ``weights=`` names a local ``state_dict`` file,
read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.task_types import TaskType
from ..errors import UnknownNameError, ValidationError

__all__ = [
    "ModelSpec",
    "MODELS",
    "register_model",
    "model_names",
    "model_spec",
    "default_model",
    "build_model",
    "rebuild_model",
    "load_weights",
]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    dataset_type: str
    builder: Callable[[int, int], Any]  # (num_classes, image_size) -> nn.Module
    default_image_size: int
    description: str
    min_image_size: int = 8
    # the augmentation preset a run of this model uses when it names none (None: the dataset type's
    # default); a feature memory stores exactly what it sees, so it takes the test-time view ("none")
    augment: str | None = None


def _lazy(module: str, attr: str) -> Callable[[int, int], Any]:
    def build(num_classes: int, image_size: int) -> Any:
        import importlib

        return getattr(importlib.import_module(f"workbench.train.{module}"), attr)(num_classes, image_size)

    build.__name__ = attr
    return build


MODELS: dict[str, ModelSpec] = {}
DEFAULTS: dict[str, str] = {
    TaskType.CLASSIFICATION: "small-cnn",
    TaskType.DETECTION: "tiny-frcnn",
    TaskType.SEGMENTATION: "tiny-maskrcnn",
    TaskType.ANOMALY: "patchcore-valid",
}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a builder to the registry (replacing one of the same name)."""
    MODELS[spec.name] = spec
    return spec


for _spec in (
    ModelSpec(
        "small-cnn",
        "classification",
        _lazy("classifiers", "small_cnn"),
        32,
        "small CNN for tiny images (8-64 px), trains in seconds on CPU",
    ),
    ModelSpec(
        "resnet18",
        "classification",
        _lazy("classifiers", "resnet18"),
        64,
        "torchvision ResNet-18 (random init unless weights= is given)",
        min_image_size=32,
    ),
    ModelSpec(
        "mobilenet_v3_small",
        "classification",
        _lazy("classifiers", "mobilenet_v3_small"),
        64,
        "torchvision MobileNetV3-Small (random init unless weights= is given)",
        min_image_size=32,
    ),
    ModelSpec(
        "tiny-frcnn",
        "detection",
        _lazy("detectors", "tiny_frcnn"),
        128,
        "Faster R-CNN over a tiny stride-8 backbone; the CPU-friendly default",
        min_image_size=32,
    ),
    ModelSpec(
        "fasterrcnn_mobilenet_v3_large_320_fpn",
        "detection",
        _lazy("detectors", "fasterrcnn_mobilenet_v3_large_320_fpn"),
        320,
        "torchvision Faster R-CNN MobileNetV3-FPN; wants pretrained weights and >= 320 px",
        min_image_size=64,
    ),
    ModelSpec(
        "ssdlite320",
        "detection",
        _lazy("detectors", "ssdlite320"),
        320,
        "torchvision SSDlite MobileNetV3 (input resized to 320 px)",
        min_image_size=64,
    ),
    ModelSpec(
        "tiny-maskrcnn",
        "segmentation",
        _lazy("detectors", "tiny_maskrcnn"),
        128,
        "Mask R-CNN over the tiny stride-8 backbone",
        min_image_size=32,
    ),
    ModelSpec(
        "patchcore",
        "anomaly",
        _lazy("patchcore", "patchcore"),
        128,
        "PatchCore-style memory of ResNet-18 patch features from good images; nearest-patch distance "
        "map (random init unless weights= gives a torchvision resnet18 state_dict)",
        min_image_size=32,
    ),
    ModelSpec(
        "patchcore-cal",
        "anomaly",
        _lazy("patchcore", "patchcore_calibrated"),
        128,
        "patchcore whose patch distances are z-scored per ring of distance to the image border, learnt "
        "from held-out good images, 25% coreset (fewer false alarms at the borders of unseen crops)",
        min_image_size=32,
    ),
    ModelSpec(
        "patchcore-cutpaste",
        "anomaly",
        _lazy("patchcore", "patchcore_cutpaste"),
        128,
        "patchcore over a ResNet-18 stem + layer1-2 trained here by CutPaste (self-supervised, good images "
        "only, 150 steps; minutes on a CPU)",
        min_image_size=32,
    ),
    ModelSpec(
        "patchcore-valid",
        "anomaly",
        _lazy("patchcore_valid", "patchcore_valid"),
        128,
        "patchcore over unpadded ResNet-18 stem + layer1 features (a feature depends on its pixels only, "
        "not on where they sit), two tiers with border-ring calibration; trained on the un-augmented images",
        min_image_size=64,
        augment="none",
    ),
    ModelSpec(
        "conv-ae",
        "anomaly",
        _lazy("autoencoder", "conv_ae"),
        64,
        "conv autoencoder on good images; score = top-k pixel reconstruction error",
        min_image_size=16,
    ),
):
    register_model(_spec)


def model_names(dataset_type: str | None = None) -> list[str]:
    """Registered model names, optionally only those for one dataset type."""
    return sorted(n for n, s in MODELS.items() if dataset_type is None or s.dataset_type == dataset_type)


def model_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownNameError("model", name, list(MODELS)) from None


def default_model(dataset_type: str) -> str:
    try:
        return DEFAULTS[dataset_type]
    except KeyError:
        raise UnknownNameError("dataset type", dataset_type, list(DEFAULTS)) from None


def build_model(
    name: str, num_classes: int, *, image_size: int | None = None, weights: str | Path | None = None
) -> Any:
    """Build a registered model with random weights, or with ``weights`` loaded from a local file.

    ``num_classes`` counts the dataset's classes (detectors add the background class themselves).
    """
    spec = model_spec(name)
    size = spec.default_image_size if image_size is None else int(image_size)
    if size < spec.min_image_size:
        raise ValidationError(
            f"model {name} needs images of at least {spec.min_image_size} px, got {size}", field="image_size"
        )
    if int(num_classes) < 1:
        raise ValidationError(f"num_classes must be at least 1, got {num_classes}", field="num_classes")
    model = spec.builder(int(num_classes), size)
    model.workbench_config = {
        "name": name,
        "dataset_type": spec.dataset_type,
        "num_classes": int(num_classes),
        "image_size": size,
    }
    if weights is not None:
        load_weights(model, weights)
    return model


def rebuild_model(config: dict[str, Any]) -> Any:
    """A fresh model from a ``workbench_config`` dict (as stored in a checkpoint)."""
    try:
        return build_model(config["name"], config["num_classes"], image_size=config["image_size"])
    except KeyError as e:
        raise ValidationError(f"model config lacks {e}", field="model_config") from None


def load_weights(model: Any, path: str | Path) -> dict[str, list[str]]:
    """Load a local ``state_dict`` into ``model`` (or into its inner torchvision ``net``).

    The file's keys are checked against the model (:func:`workbench.train.transfer.check_state_dict`): a
    model with a registered backbone must find all of it in the file; a tensor of the file without a
    place in that backbone, or of another shape there, is an error naming the file and the keys. Head
    tensors whose shape does not fit (a classifier for another number of classes) are skipped.
    Returns ``{"loaded": [...], "skipped": [...], "head_new": [...]}`` (``head_new``: the model's tensors
    left at their fresh values). Raises ``ValidationError`` naming the file when the weights do not fit
    or the file is not a plain state dict.
    """
    import pickle

    import torch

    from .transfer import check_state_dict

    p = Path(path)
    if not p.is_file():
        raise ValidationError("weights file not found", file=str(p), field="weights")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as e:
        raise ValidationError(f"not a loadable state_dict ({e})", file=str(p), field="weights") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # a workbench checkpoint
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValidationError("file does not hold a state_dict of tensors", file=str(p), field="weights")
    candidates = [(model, "")] + ([(model.net, "net.")] if hasattr(model, "net") else [])
    best, prefix, best_hits = model, "", -1
    for target, pre in candidates:
        own = target.state_dict()
        hits = sum(1 for k, v in state.items() if k in own and own[k].shape == v.shape)
        if hits > best_hits:
            best, prefix, best_hits = target, pre, hits
    own = best.state_dict()
    name = getattr(model, "workbench_config", {}).get("name")
    report = check_state_dict(state, own, file=p, model_name=name, prefix=prefix)
    best.load_state_dict({k: state[k] for k in report.loaded}, strict=False)
    model.workbench_weights = report
    return report.to_dict()
