"""Training settings (``TrainConfig``) and the optimizer / learning-rate schedule registries."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..errors import UnknownNameError, ValidationError

__all__ = [
    "TrainConfig",
    "OPTIMIZERS",
    "SCHEDULES",
    "PER_STEP_SCHEDULES",
    "DEVICES",
    "register_optimizer",
    "register_schedule",
    "build_optimizer",
    "build_schedule",
    "steps_per_batch",
    "resolve_device",
]

DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    """Everything that decides a training run; stored in ``params.json`` and in every checkpoint.

    ``model`` None picks the dataset type's default; ``image_size`` None takes the augmentation config's
    size when ``augment`` is a config dict that sets one, else the model's default. ``augment`` is a preset
    name, a pipeline config dict, or None for the type's default preset. ``monitor`` (None: the type's
    headline metric) drives early stopping, the best checkpoint and the plateau schedule. ``patience``
    None turns early stopping off. ``max_steps_per_epoch`` caps an epoch (quick tests, benchmarks).

    ``batch_size`` is per process. Under ``torchrun`` every process trains on ``batch_size`` images a
    step, so a step sees ``batch_size x WORLD_SIZE`` (the global batch) and an epoch has about
    1 / WORLD_SIZE as many steps; ``config.batch_size`` keeps the per-process number, and the run record
    adds both under ``resolved.distributed`` (``batch_size_per_process``, ``global_batch_size``, with
    ``processes`` and ``backend``) in ``params.json`` and every checkpoint. To learn like a one-process
    run at batch ``B``, use ``B / WORLD_SIZE`` (see :mod:`workbench.train.distributed`). Validation and
    test scoring run on rank 0 alone, ``batch_size`` images at a time.
    """

    model: str | None = None
    epochs: int = 20
    batch_size: int = 16
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    schedule: str = "plateau"
    seed: int = 0
    device: str = "auto"
    image_size: int | None = None
    augment: str | dict[str, Any] | None = None
    monitor: str | None = None
    patience: int | None = 10
    min_delta: float = 0.0
    overfit_patience: int = 3
    num_workers: int = 0
    max_steps_per_epoch: int | None = None
    grad_clip: float | None = None
    weights: str | None = None
    freeze_backbone: int = 0  # epochs with the backbone frozen (workbench.train.transfer)
    backbone_lr_scale: float = 1.0  # the backbone's learning rate is lr x this
    deterministic: bool = True
    threads: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> TrainConfig:
        def positive_int(name: str, allow_none: bool = False, minimum: int = 1) -> None:
            v = getattr(self, name)
            if v is None and allow_none:
                return
            if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
                raise ValidationError(f"{name} must be an integer >= {minimum}, got {v!r}", field=name)

        def number(name: str, lo: float, allow_none: bool = False, strict: bool = False) -> None:
            v = getattr(self, name)
            if v is None and allow_none:
                return
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float))
                or not math.isfinite(v)
                or v < lo
                or (strict and v == lo)
            ):
                raise ValidationError(
                    f"{name} must be a number {'>' if strict else '>='} {lo}, got {v!r}", field=name
                )

        positive_int("epochs")
        positive_int("batch_size")
        positive_int("seed", minimum=0)
        positive_int("image_size", allow_none=True, minimum=8)
        positive_int("patience", allow_none=True)
        positive_int("overfit_patience")
        positive_int("num_workers", minimum=0)
        positive_int("max_steps_per_epoch", allow_none=True)
        positive_int("threads", allow_none=True)
        positive_int("freeze_backbone", minimum=0)
        number("lr", 0.0, strict=True)
        number("weight_decay", 0.0)
        number("momentum", 0.0)
        number("min_delta", 0.0)
        number("grad_clip", 0.0, allow_none=True, strict=True)
        number("backbone_lr_scale", 0.0, strict=True)
        if self.optimizer not in OPTIMIZERS:
            raise UnknownNameError("optimizer", str(self.optimizer), list(OPTIMIZERS))
        if self.schedule not in SCHEDULES:
            raise UnknownNameError("learning-rate schedule", str(self.schedule), list(SCHEDULES))
        if self.device not in DEVICES:
            raise UnknownNameError("device", str(self.device), DEVICES)
        if self.model is not None:
            from .models import model_spec

            model_spec(self.model)  # UnknownNameError listing the valid models
        if self.augment is not None and not isinstance(self.augment, (str, dict)):
            raise ValidationError("augment must be a preset name, a config dict or None", field="augment")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValidationError(f"unknown training setting(s) {', '.join(unknown)}", field=unknown[0])
        return cls(**data)


# ------------------------------------------------------------------------------------------ optimizers
OptimizerBuilder = Callable[[Any, TrainConfig], Any]


def _adam(params: Any, cfg: TrainConfig) -> Any:
    import torch

    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _adamw(params: Any, cfg: TrainConfig) -> Any:
    import torch

    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _sgd(params: Any, cfg: TrainConfig) -> Any:
    import torch

    return torch.optim.SGD(
        params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.momentum > 0
    )


OPTIMIZERS: dict[str, OptimizerBuilder] = {"adam": _adam, "adamw": _adamw, "sgd": _sgd}


def register_optimizer(name: str, builder: OptimizerBuilder) -> None:
    """Add an optimizer: ``builder(parameters, config) -> torch.optim.Optimizer``."""
    OPTIMIZERS[name] = builder


def build_optimizer(params: Any, cfg: TrainConfig) -> Any:
    try:
        builder = OPTIMIZERS[cfg.optimizer]
    except KeyError:
        raise UnknownNameError("optimizer", cfg.optimizer, list(OPTIMIZERS)) from None
    params = list(params)
    if params and isinstance(params[0], dict):  # parameter groups (transfer.TransferPlan.param_groups)
        return builder(params, cfg)
    return builder([p for p in params if p.requires_grad], cfg)


# ------------------------------------------------------------------------------------------ schedules
ScheduleBuilder = Callable[
    [Any, TrainConfig, str], Any
]  # (optimizer, config, monitor mode) -> scheduler|None


def _plateau(optimizer: Any, cfg: TrainConfig, mode: str) -> Any:
    import torch

    wait = max(1, (cfg.patience or 6) // 3)
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode="min" if mode == "min" else "max",
        factor=0.5,
        patience=wait,
        threshold=cfg.min_delta,
        threshold_mode="abs",
    )


def _cosine(optimizer: Any, cfg: TrainConfig, mode: str) -> Any:
    import torch

    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)


def _none(optimizer: Any, cfg: TrainConfig, mode: str) -> Any:
    return None


def _onecycle(optimizer: Any, cfg: TrainConfig, mode: str, total_steps: int) -> Any:
    """Leslie Smith's one-cycle policy (torch's ``OneCycleLR``): from lr/25 up to ``lr`` over the first 30%
    of the steps, then cosine down to lr/10^4; stepped after every batch."""
    import torch

    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=max(2, total_steps),
        pct_start=0.3, anneal_strategy="cos", cycle_momentum=False,
    )


def _warmup_cosine(optimizer: Any, cfg: TrainConfig, mode: str, total_steps: int) -> Any:
    """Linear warm-up from 1% of ``lr`` over the first 5% of the steps (at least one, at most 500), then
    cosine down to 1% of ``lr`` at the last step; stepped after every batch."""
    import torch

    total = max(2, total_steps)
    warm = min(500, max(1, total // 20))

    def factor(step: int) -> float:
        if step < warm:
            return 0.01 + 0.99 * step / warm
        t = min(1.0, (step - warm) / max(1, total - warm))
        return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * t))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


PerStepBuilder = Callable[[Any, TrainConfig, str, int], Any]  # (optimizer, config, mode, total steps)


def _one_step_per_epoch(builder: PerStepBuilder) -> ScheduleBuilder:
    """A per-batch schedule called as a per-epoch one: it spans ``epochs`` steps."""
    return lambda optimizer, cfg, mode: builder(optimizer, cfg, mode, cfg.epochs)


SCHEDULES: dict[str, ScheduleBuilder] = {"plateau": _plateau, "cosine": _cosine, "none": _none}
# Schedules stepped after every batch: their builders take the run's total optimizer steps (epochs x steps per
# epoch) and the trainer steps them per batch; SCHEDULES lists them too (every name a config may give).
PER_STEP_SCHEDULES: dict[str, PerStepBuilder] = {"onecycle": _onecycle, "warmup-cosine": _warmup_cosine}
SCHEDULES.update({name: _one_step_per_epoch(b) for name, b in PER_STEP_SCHEDULES.items()})


def register_schedule(name: str, builder: Any, *, per_step: bool = False) -> None:
    """Add a schedule: ``builder(optimizer, config, mode) -> scheduler or None``, stepped once per epoch (a
    ``ReduceLROnPlateau`` gets the monitored value); with ``per_step`` ``builder(optimizer, config, mode,
    total_steps)``, stepped after every batch."""
    if per_step:
        PER_STEP_SCHEDULES[name] = builder
        SCHEDULES[name] = _one_step_per_epoch(builder)
    else:
        PER_STEP_SCHEDULES.pop(name, None)
        SCHEDULES[name] = builder


def steps_per_batch(name: str) -> bool:
    """Whether the schedule ``name`` is stepped after every batch (else once per epoch)."""
    return name in PER_STEP_SCHEDULES


def build_schedule(optimizer: Any, cfg: TrainConfig, mode: str, steps_per_epoch: int = 1) -> Any:
    """The scheduler of ``cfg.schedule`` (None for ``none``); a per-batch one spans ``cfg.epochs x
    steps_per_epoch`` optimizer steps (capped by ``max_steps_per_epoch``)."""
    if cfg.schedule in PER_STEP_SCHEDULES:
        steps = max(1, int(steps_per_epoch))
        if cfg.max_steps_per_epoch is not None:
            steps = min(steps, cfg.max_steps_per_epoch)
        return PER_STEP_SCHEDULES[cfg.schedule](optimizer, cfg, mode, cfg.epochs * steps)
    try:
        builder = SCHEDULES[cfg.schedule]
    except KeyError:
        raise UnknownNameError("learning-rate schedule", cfg.schedule, list(SCHEDULES)) from None
    return builder(optimizer, cfg, mode)


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; asking for ``cuda`` without one is an error."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValidationError("device 'cuda' was asked for but no CUDA GPU is available", field="device")
    if name not in DEVICES:
        raise UnknownNameError("device", name, DEVICES)
    return name
