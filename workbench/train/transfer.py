"""Transfer learning: which parameters are a model's backbone, freezing it, its own learning rate, and the
check of a weights file against the model.

Each architecture says which of its parameters form the backbone (the part a pretrained file brings) in
the :data:`BACKBONES` registry: state-dict name prefixes it includes and excludes (the classifier head,
the detector's RPN and box / mask heads are not backbone). ``TrainConfig.freeze_backbone = N`` keeps the
backbone frozen (no gradient, BatchNorm layers in eval mode, so their running statistics stay the file's)
for the first ``N`` epochs, then trains it; ``backbone_lr_scale = F`` gives the backbone its own
optimizer parameter group at ``lr * F`` (the head keeps ``lr``; the head's group comes first, so a run's
``lr`` column is still the head's). Whether epoch ``e`` is frozen depends on ``e`` alone, so a resumed run
freezes and unfreezes exactly as an uninterrupted one.

:func:`check_state_dict` compares a file's tensors with a model: a registered backbone must come whole
(every tensor present, each of its shape), and a tensor of the file that fits nowhere in the model under a
backbone prefix is an error naming the file and the keys; head tensors of another shape (another number of
classes) stay new and are counted. Models without a registered backbone load what fits (as before) and
say what did not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ValidationError

__all__ = [
    "BackboneSpec",
    "BACKBONES",
    "register_backbone",
    "backbone_spec",
    "TransferPlan",
    "WeightsReport",
    "check_state_dict",
]

SHOWN_KEYS = 6  # keys quoted per kind in an error message (the rest are counted)


@dataclass(frozen=True)
class BackboneSpec:
    """The backbone of one architecture: state-dict names starting with one of ``include`` and none of
    ``exclude`` (names as ``model.state_dict()`` spells them, e.g. ``net.features.0.weight``)."""

    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if not self.include or not all(isinstance(p, str) and p for p in self.include):
            raise ValueError("a backbone needs at least one non-empty name prefix")

    def contains(self, name: str) -> bool:
        """Whether the parameter / buffer / module ``name`` belongs to the backbone."""
        dotted = name + "."  # a module name ("net.features") matches the prefix of its tensors
        return any(dotted.startswith(p) or name.startswith(p) for p in self.include) and not any(
            dotted.startswith(p) or name.startswith(p) for p in self.exclude
        )


BACKBONES: dict[str, BackboneSpec] = {}


def register_backbone(model_name: str, spec: BackboneSpec) -> BackboneSpec:
    """Say which parameters of model ``model_name`` (a name of the model registry) are its backbone."""
    BACKBONES[model_name] = spec
    return spec


def backbone_spec(model_name: str) -> BackboneSpec | None:
    """The registered backbone of ``model_name``, None when it declares none."""
    return BACKBONES.get(model_name)


for _name, _spec in {
    # classifiers wrap their network in Normalized (``net.``): the feature layers are the backbone
    "small-cnn": BackboneSpec(("net.features.",), description="the conv blocks (net.features)"),
    "resnet18": BackboneSpec(("net.",), ("net.fc.",), "everything but the classifier (net.fc)"),
    "mobilenet_v3_small": BackboneSpec(("net.features.",), description="the feature layers (net.features)"),
    # R-CNN detectors / segmenters: the feature extractor; RPN and RoI heads stay trainable
    "tiny-frcnn": BackboneSpec(("backbone.",), description="the stride-8 conv backbone"),
    "tiny-maskrcnn": BackboneSpec(("backbone.",), description="the stride-8 conv backbone"),
    "fasterrcnn_mobilenet_v3_large_320_fpn": BackboneSpec(
        ("backbone.body.",), description="the MobileNetV3 body (the FPN trains)"
    ),
    "ssdlite320": BackboneSpec(("backbone.features.",), description="the MobileNetV3 features"),
}.items():
    register_backbone(_name, _spec)


def _shown(keys: Iterable[str]) -> str:
    keys = sorted(keys)
    quoted = ", ".join(repr(k[:120]) for k in keys[:SHOWN_KEYS])
    return quoted + (f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else "")


@dataclass(frozen=True)
class WeightsReport:
    """What loading a weights file did: ``loaded`` tensors, ``head_new`` (model tensors outside the
    backbone that kept their fresh values: absent from the file or of another shape), ``skipped`` (file
    tensors not used)."""

    file: str
    target: str  # "" (the model) or "net" (its inner torchvision network)
    loaded: list[str] = field(default_factory=list)
    head_new: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    strict_backbone: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"loaded": self.loaded, "skipped": self.skipped, "head_new": self.head_new}

    def summary(self) -> dict[str, Any]:
        """Counts and the names of what did not load (for ``params.json`` and the CLI)."""
        return {
            "file": self.file,
            "loaded": len(self.loaded),
            "head_new": sorted(self.head_new)[:50],
            "skipped": sorted(self.skipped)[:50],
            "backbone_checked": self.strict_backbone,
        }


def check_state_dict(
    state: Mapping[str, Any], own: Mapping[str, Any], *, file: str | Path, model_name: str | None,
    prefix: str = "",
) -> WeightsReport:
    """Which of ``state``'s tensors load into a module whose ``state_dict()`` is ``own``.

    ``prefix`` ("" or "net.") turns ``own``'s names into the model's full names, which the backbone
    registry speaks. With a registered backbone: every backbone tensor must be in the file with its
    shape, and no file tensor may land under the backbone without a place in the model; otherwise a
    ``ValidationError`` names the file and the missing / unexpected / misshapen keys. Without one: what
    fits loads, and nothing fitting at all is the error.
    """
    spec = backbone_spec(model_name) if model_name else None
    fits = {k for k, v in state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    unexpected = {k for k in state if k not in own}
    misshapen = {k for k in state if k in own and k not in fits}
    missing = {k for k in own if k not in state}
    where = str(file)
    if spec is not None:
        bad_missing = {k for k in missing if spec.contains(prefix + k)}
        bad_unexpected = {k for k in unexpected if spec.contains(prefix + k)}
        bad_shape = {k for k in misshapen if spec.contains(prefix + k)}
        if bad_missing or bad_unexpected or bad_shape or not fits:
            parts = []
            if bad_missing:
                parts.append(f"missing backbone keys ({len(bad_missing)}): {_shown(bad_missing)}")
            if bad_unexpected:
                parts.append(f"unexpected keys ({len(bad_unexpected)}): {_shown(bad_unexpected)}")
            if bad_shape:
                parts.append(
                    f"keys of another shape ({len(bad_shape)}): "
                    + ", ".join(
                        f"{k[:120]!r} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
                        for k in sorted(bad_shape)[:SHOWN_KEYS]
                    )
                )
            other = unexpected - bad_unexpected
            if other:
                parts.append(f"other keys of the file with no place in the model ({len(other)}): {_shown(other)}")
            if not fits:
                parts.insert(0, f"no tensor in the file matches the model (the file has {_shown(state)})")
            if prefix:
                parts.append(f"keys read as the inner network's ({prefix.rstrip('.')}) names")
            raise ValidationError(
                f"the weights do not fit model {model_name} ({spec.description or 'its backbone'}): "
                + "; ".join(parts),
                file=where,
                field="weights",
            )
    elif not fits:
        raise ValidationError(
            f"no tensor in the file matches the model {model_name or ''}".rstrip()
            + f" (unexpected keys: {_shown(unexpected | misshapen)}; the model has {_shown(own)})",
            file=where,
            field="weights",
        )
    return WeightsReport(
        file=where,
        target=prefix.rstrip("."),
        loaded=sorted(fits),
        head_new=sorted(missing | misshapen),
        skipped=sorted(unexpected | misshapen),
        strict_backbone=spec is not None,
    )


# ---------------------------------------------------------------------------------------------- the plan
@dataclass
class TransferPlan:
    """How one run treats its backbone: frozen for epochs ``1..freeze_epochs``, trained at
    ``lr * lr_scale`` afterwards (or throughout, with no freezing)."""

    model_name: str
    freeze_epochs: int = 0
    lr_scale: float = 1.0
    spec: BackboneSpec | None = None
    backbone_names: list[str] = field(default_factory=list)
    head_names: list[str] = field(default_factory=list)
    frozen: bool = False

    @classmethod
    def for_model(cls, model: Any, model_name: str, freeze_epochs: int, lr_scale: float) -> TransferPlan:
        """The plan for ``model``; asking to freeze or scale a model without a registered backbone is a
        ``ValidationError`` that lists the models that have one."""
        spec = backbone_spec(model_name)
        if spec is None and (freeze_epochs > 0 or lr_scale != 1.0):
            flag = "freeze_backbone" if freeze_epochs > 0 else "backbone_lr_scale"
            raise ValidationError(
                f"model {model_name} declares no backbone to freeze or scale; models that do: "
                + ", ".join(sorted(BACKBONES)),
                field=flag,
            )
        plan = cls(model_name, int(freeze_epochs), float(lr_scale), spec)
        if spec is not None:
            for name, _ in model.named_parameters():
                (plan.backbone_names if spec.contains(name) else plan.head_names).append(name)
            if not plan.backbone_names and plan.active:
                raise ValidationError(
                    f"model {model_name}: no parameter matches its backbone ({', '.join(spec.include)})",
                    field="freeze_backbone" if freeze_epochs > 0 else "backbone_lr_scale",
                )
        return plan

    @property
    def active(self) -> bool:
        """Whether the backbone is treated apart at all (else the optimizer sees one group, as before)."""
        return self.spec is not None and (self.freeze_epochs > 0 or self.lr_scale != 1.0)

    def frozen_at(self, epoch: int) -> bool:
        """Whether the backbone is frozen during (1-based) ``epoch``."""
        return self.active and epoch <= self.freeze_epochs

    def param_groups(self, model: Any, lr: float) -> Any:
        """What the optimizer gets: two named groups (head at ``lr`` first, backbone at ``lr * scale``)
        when active, else ``model.parameters()``. Frozen parameters stay in their group (no gradient, no
        step), so the optimizer's state keeps one layout from the first epoch to the last."""
        if not self.active:
            return model.parameters()
        params = dict(model.named_parameters())
        return [
            {"params": [params[n] for n in self.head_names], "lr": lr, "name": "head"},
            {"params": [params[n] for n in self.backbone_names], "lr": lr * self.lr_scale, "name": "backbone"},
        ]

    def set_frozen(self, model: Any, frozen: bool) -> bool:
        """Freeze (no gradients) or unfreeze the backbone's parameters; True when that changed anything."""
        if not self.active or frozen == self.frozen:
            return False
        params = dict(model.named_parameters())
        for n in self.backbone_names:
            params[n].requires_grad_(not frozen)
            if frozen:
                params[n].grad = None
        self.frozen = frozen
        return True

    def batchnorm_eval(self, model: Any) -> int:
        """While frozen, put the backbone's BatchNorm layers in eval mode (after ``model.train()``), so
        their running statistics are not moved by the new data; returns how many."""
        if not (self.active and self.frozen and self.spec is not None):
            return 0
        from torch import nn

        n = 0
        for name, module in model.named_modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and self.spec.contains(name):
                module.eval()
                n += 1
        return n

    def describe(self) -> dict[str, Any]:
        """For ``params.json`` (``resolved.transfer``), every checkpoint and the CLI."""
        out: dict[str, Any] = {
            "freeze_backbone": self.freeze_epochs,
            "backbone_lr_scale": self.lr_scale,
            "backbone": None if self.spec is None else {
                "include": list(self.spec.include),
                "exclude": list(self.spec.exclude),
                "description": self.spec.description,
                "parameters": len(self.backbone_names),
                "head_parameters": len(self.head_names),
            },
        }
        return out
