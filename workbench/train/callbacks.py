"""How a training run reports: callbacks, the overfitting detector and early stopping.

A widget subscribes with a :class:`Callback`, a notebook logs, the CLI draws a progress bar; the trainer
itself never prints. Events arrive in this order::

    on_fit_start(info)
      on_epoch_start(epoch)
        on_step(step, loss, data_time, step_time)   # every optimizer step
        on_progress(Progress("validate", "epoch E/N", done, total, "batches"))  # val loss + predictions
      on_epoch_end(record)                          # an EpochRecord (runs.records)
      on_overfit(start_epoch, end_epoch)           # when a new overfitting stretch is found
    on_progress(Progress("test", "scoring ... weights", done, total, "batches"))  # the test split
    on_fit_end(summary)                             # a RunSummary (runs.records)

``on_progress`` gets :class:`workbench.progress.Progress` records, the last of a stage with ``final``;
a callback without the method (duck-typed) is left out of them.

Any callback's ``should_stop()`` returning True (or ``Trainer.request_stop()``) ends the run cleanly
after the current step.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..progress import Progress
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

    def on_progress(self, event: Progress) -> None: ...

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

    def on_progress(self, event: Progress) -> None:
        for cb in self.callbacks:
            hear = getattr(cb, "on_progress", None)
            if hear is not None:
                hear(event)

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

    def on_progress(self, event: Progress) -> None:
        self.events.append(("progress", event))

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


def _noise(logs: Sequence[float]) -> float:
    """Robust noise level of a series: the median absolute second difference (blind to a steady trend),
    scaled to the sigma of Gaussian noise."""
    steps = sorted(abs(c - 2 * b + a) for a, b, c in zip(logs, logs[1:], logs[2:], strict=False))
    mid = len(steps) // 2
    median = steps[mid] if len(steps) % 2 else (steps[mid - 1] + steps[mid]) / 2
    return 1.4826 * median / math.sqrt(6)


def find_overfit_ranges(
    train_losses: Sequence[float | None],
    val_losses: Sequence[float | None],
    *,
    patience: int,
    min_delta: float = 0.0,
    first_epoch: int = 1,
    margin: float = 0.1,
    noise_k: float = 5.0,
    smoothing: float = 0.5,
    min_epochs: int = 5,
    max_ratio: float = 3.0,
) -> list[tuple[int, int]]:
    """Stretches of epochs where the smoothed val loss stayed above its best while the train loss improved.

    Both losses are smoothed with an exponential moving average (weight ``smoothing`` on the newest epoch;
    the val loss in log space, so a rise is relative). Epoch ``e`` (numbered from ``first_epoch``) is
    *overfitting* when its smoothed val loss is above the best smoothed val loss so far by more than
    ``gap = max(log(1 + margin), min(noise_k * noise, log(max_ratio)))`` (``noise``: the val loss's own
    epoch-to-epoch noise, a robust sigma of its log second differences, so a noisy plateau does not fire;
    ``max_ratio``: a val loss at three times its best is a rise whatever the noise) and the smoothed train loss is below its
    value at that best epoch by more than ``min_delta``. Nothing is flagged before ``min_epochs`` usable
    epochs. A run of at least ``patience`` overfitting epochs in a row is reported as
    ``(start_epoch, end_epoch)``, both inclusive. Missing, non-finite or non-positive losses break a run
    (the averages skip them).
    """
    if patience < 1:
        raise ValueError("patience must be at least 1")
    if len(train_losses) != len(val_losses):
        raise ValueError("train_losses and val_losses must have the same length")
    if not 0.0 < smoothing <= 1.0:
        raise ValueError("smoothing must be within (0, 1]")
    ranges: list[tuple[int, int]] = []
    start: int | None = None
    logs: list[float] = []
    s_train = s_val = best_val = train_at_best = 0.0
    for i in range(len(train_losses) + 1):
        flagged = False
        t, v = (train_losses[i], val_losses[i]) if i < len(train_losses) else (None, None)
        if _finite(t) and _finite(v) and v > 0:  # type: ignore[operator]
            lv = math.log(v)  # type: ignore[arg-type]
            if not logs:
                s_train, s_val = float(t), lv  # type: ignore[arg-type]
                best_val, train_at_best = s_val, s_train
            else:
                s_train = smoothing * float(t) + (1 - smoothing) * s_train  # type: ignore[arg-type]
                s_val = smoothing * lv + (1 - smoothing) * s_val
            logs.append(lv)
            if s_val < best_val:
                best_val, train_at_best = s_val, s_train
            elif len(logs) >= min_epochs:
                gap = max(math.log1p(margin), min(noise_k * _noise(logs), math.log(max_ratio)))
                flagged = s_val > best_val + gap and s_train < train_at_best - min_delta
        if flagged:
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

    ``mode`` is ``max`` or ``min``; an epoch improves when it beats the best by more than ``min_delta``,
    or when it ties the best exactly (accuracy often does) with a lower ``val_loss`` (given to ``update``).
    ``should_stop`` turns True after ``patience`` epochs without improvement (never when patience is None).
    """

    mode: str = "max"
    patience: int | None = 10
    min_delta: float = 0.0
    best_value: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    best_val_loss: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode must be max or min, got {self.mode!r}")

    def update(self, epoch: int, value: float | None, val_loss: float | None = None) -> bool:
        if value is None or not math.isfinite(value):
            self.bad_epochs += 1
            return False
        better = self.best_value is None or (
            value > self.best_value + self.min_delta
            if self.mode == "max"
            else value < self.best_value - self.min_delta
        )
        tie_won = (
            not better
            and value == self.best_value
            and _finite(val_loss)
            and (self.best_val_loss is None or val_loss < self.best_val_loss)  # type: ignore[operator]
        )
        if better or tie_won:
            self.best_value, self.best_epoch, self.bad_epochs = float(value), int(epoch), 0
            self.best_val_loss = float(val_loss) if _finite(val_loss) else None  # type: ignore[arg-type]
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
            "best_val_loss": self.best_val_loss,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)
