"""How a training run reports: callbacks, the overfitting detector and early stopping.

A widget subscribes with a :class:`Callback`, a notebook logs, the CLI draws a progress bar; the trainer
itself never prints. Events arrive in this order::

    on_fit_start(info)
      on_epoch_start(epoch)
        on_step(step, loss, data_time, step_time)   # every optimizer step
      on_epoch_end(record)                          # an EpochRecord (runs.records)
      on_overfit(start_epoch, end_epoch)           # when a new overfitting stretch is found
    on_fit_end(summary)                             # a RunSummary (runs.records)

Any callback's ``should_stop()`` returning True (or ``Trainer.request_stop()``) ends the run cleanly
after the current step.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..runs.records import EpochRecord, RunSummary

__all__ = [
    "Callback",
    "CallbackList",
    "RecordingCallback",
    "LoggingCallback",
    "find_overfit_ranges",
    "EarlyStopping",
]


class Callback:
    """Base class: override the events you want. ``trainer`` is set before ``on_fit_start``."""

    trainer: Any = None

    def on_fit_start(self, info: dict[str, Any]) -> None: ...

    def on_epoch_start(self, epoch: int) -> None: ...

    def on_step(self, step: int, loss: float, data_time: float, step_time: float) -> None: ...

    def on_epoch_end(self, record: EpochRecord) -> None: ...

    def on_overfit(self, start_epoch: int, end_epoch: int) -> None: ...

    def on_fit_end(self, summary: RunSummary) -> None: ...

    def should_stop(self) -> bool:
        return False


class CallbackList(Callback):
    """Fans every event out to several callbacks, in order."""

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        self.callbacks = list(callbacks)

    def bind(self, trainer: Any) -> None:
        for cb in self.callbacks:
            cb.trainer = trainer

    def on_fit_start(self, info: dict[str, Any]) -> None:
        for cb in self.callbacks:
            cb.on_fit_start(info)

    def on_epoch_start(self, epoch: int) -> None:
        for cb in self.callbacks:
            cb.on_epoch_start(epoch)

    def on_step(self, step: int, loss: float, data_time: float, step_time: float) -> None:
        for cb in self.callbacks:
            cb.on_step(step, loss, data_time, step_time)

    def on_epoch_end(self, record: EpochRecord) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(record)

    def on_overfit(self, start_epoch: int, end_epoch: int) -> None:
        for cb in self.callbacks:
            cb.on_overfit(start_epoch, end_epoch)

    def on_fit_end(self, summary: RunSummary) -> None:
        for cb in self.callbacks:
            cb.on_fit_end(summary)

    def should_stop(self) -> bool:
        return any(cb.should_stop() for cb in self.callbacks)


class RecordingCallback(Callback):
    """Keeps every event as ``(name, payload)`` in ``events``; handy for tests and simple UIs."""

    def __init__(self, stop_after_steps: int | None = None) -> None:
        self.events: list[tuple[str, Any]] = []
        self.stop_after_steps = stop_after_steps
        self.steps = 0

    def on_fit_start(self, info: dict[str, Any]) -> None:
        self.events.append(("fit_start", info))

    def on_epoch_start(self, epoch: int) -> None:
        self.events.append(("epoch_start", epoch))

    def on_step(self, step: int, loss: float, data_time: float, step_time: float) -> None:
        self.steps += 1
        self.events.append(
            ("step", {"step": step, "loss": loss, "data_time": data_time, "step_time": step_time})
        )

    def on_epoch_end(self, record: EpochRecord) -> None:
        self.events.append(("epoch_end", record))

    def on_overfit(self, start_epoch: int, end_epoch: int) -> None:
        self.events.append(("overfit", (start_epoch, end_epoch)))

    def on_fit_end(self, summary: RunSummary) -> None:
        self.events.append(("fit_end", summary))

    def should_stop(self) -> bool:
        return self.stop_after_steps is not None and self.steps >= self.stop_after_steps

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


class LoggingCallback(Callback):
    """Writes one line per epoch (and fit start / end, overfitting) to a ``logging`` logger."""

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.INFO) -> None:
        self.logger = logger or logging.getLogger("workbench.train")
        self.level = level

    def on_fit_start(self, info: dict[str, Any]) -> None:
        self.logger.log(
            self.level,
            "training %s on %s examples (%s)",
            info.get("model"),
            info.get("counts"),
            info.get("device"),
        )

    def on_epoch_end(self, record: EpochRecord) -> None:
        parts = [
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in record.items()
            if k in ("epoch", "train_loss", "val_loss", "lr") or k == record.get("monitor")
        ]
        self.logger.log(self.level, "epoch %s", " ".join(parts))

    def on_overfit(self, start_epoch: int, end_epoch: int) -> None:
        self.logger.warning(
            "overfitting: val loss rising while train loss falls, epochs %d-%d", start_epoch, end_epoch
        )

    def on_fit_end(self, summary: RunSummary) -> None:
        self.logger.log(
            self.level, "finished (%s); best epoch %s", summary.get("status"), summary.get("best_epoch")
        )


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def find_overfit_ranges(
    train_losses: Sequence[float | None],
    val_losses: Sequence[float | None],
    *,
    patience: int,
    min_delta: float = 0.0,
    first_epoch: int = 1,
) -> list[tuple[int, int]]:
    """Stretches of epochs where the val loss rose while the train loss fell, each for ``patience``+ epochs.

    Epoch ``e`` (numbered from ``first_epoch``) is *diverging* when, against epoch ``e - 1``, the val loss
    went up by more than ``min_delta`` and the train loss went down by more than ``min_delta``. A run of
    at least ``patience`` diverging epochs in a row is reported as ``(start_epoch, end_epoch)``, both
    inclusive. Missing or non-finite losses break a run.
    """
    if patience < 1:
        raise ValueError("patience must be at least 1")
    if len(train_losses) != len(val_losses):
        raise ValueError("train_losses and val_losses must have the same length")
    ranges: list[tuple[int, int]] = []
    start: int | None = None
    for i in range(1, len(train_losses) + 1):
        diverging = False
        if i < len(train_losses):
            t0, t1, v0, v1 = train_losses[i - 1], train_losses[i], val_losses[i - 1], val_losses[i]
            if all(_finite(x) for x in (t0, t1, v0, v1)):
                diverging = v1 > v0 + min_delta and t1 < t0 - min_delta  # type: ignore[operator]
        if diverging:
            if start is None:
                start = i
        else:
            if start is not None and i - start >= patience:
                ranges.append((start + first_epoch, i - 1 + first_epoch))
            start = None
    return ranges


@dataclass
class EarlyStopping:
    """Tracks the monitored metric; ``update`` says whether this epoch is the new best.

    ``mode`` is ``max`` or ``min``; an epoch improves when it beats the best by more than ``min_delta``.
    ``should_stop`` turns True after ``patience`` epochs without improvement (never when patience is None).
    """

    mode: str = "max"
    patience: int | None = 10
    min_delta: float = 0.0
    best_value: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode must be max or min, got {self.mode!r}")

    def update(self, epoch: int, value: float | None) -> bool:
        if value is None or not math.isfinite(value):
            self.bad_epochs += 1
            return False
        better = self.best_value is None or (
            value > self.best_value + self.min_delta
            if self.mode == "max"
            else value < self.best_value - self.min_delta
        )
        if better:
            self.best_value, self.best_epoch, self.bad_epochs = float(value), int(epoch), 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "patience": self.patience,
            "min_delta": self.min_delta,
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)
