"""Training as :class:`~workbench.progress.Progress` events: a callback for notebooks and scripts.

``train_dataset(..., callbacks=[ProgressCallback()])`` writes a bar (terminal) or a line every few seconds
(a log, a papermill kernel, whose stderr ``workbench loop`` streams) for the steps of each epoch, and one
line per epoch with its losses and monitored metric. Give ``progress`` to send the events elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..progress import Progress, ProgressFn, ProgressPrinter, Stage
from .callbacks import Callback

if TYPE_CHECKING:
    from ..runs.records import EpochRecord

__all__ = ["ProgressCallback", "CountedLoader"]


class ProgressCallback(Callback):
    """Turns the trainer's step and epoch events into ``Progress("train", "epoch E/N", step, steps)``."""

    def __init__(self, progress: ProgressFn | None = None) -> None:
        self.progress: ProgressFn = progress if progress is not None else ProgressPrinter()
        self.epochs: int | None = None
        self.steps: int | None = None
        self.epoch = 0
        self.step = 0
        self.last_loss: float | None = None

    def _stage(self) -> str:
        return f"epoch {self.epoch}/{self.epochs}" if self.epochs else f"epoch {self.epoch}"

    def on_fit_start(self, info: dict[str, Any]) -> None:
        self.epochs = info.get("epochs")
        self.steps = info.get("steps_per_epoch")

    def on_epoch_start(self, epoch: int) -> None:
        self.epoch, self.step = epoch, 0
        self.progress(Progress("train", self._stage(), 0, self.steps, "steps"))

    def on_step(self, step: int, loss: float, data_time: float, step_time: float) -> None:
        self.step += 1
        self.last_loss = loss
        self.progress(Progress("train", self._stage(), self.step, self.steps, "steps", f"loss {loss:.4f}"))

    def on_progress(self, event: Progress) -> None:
        """Validation and test scoring (the trainer's own records), passed on as they are."""
        self.progress(event)

    def on_epoch_end(self, record: EpochRecord) -> None:
        parts = [f"{k} {v:.4f}" for k, v in (("train_loss", record.train_loss), ("val_loss", record.val_loss))
                 if v is not None]
        name, value = record.metric_name, record.metric()
        if name and name not in ("train_loss", "val_loss") and value is not None:
            parts.append(f"{name} {value:.4f}")
        if record.best:
            parts.append("(best)")
        self.progress(Progress("train", self._stage(), self.step, self.steps, "steps", "  ".join(parts), final=True))


class CountedLoader:
    """A loader that reports each batch it hands out to ``stage`` (the tasks iterate it and read
    ``dataset``, as they do a DataLoader)."""

    def __init__(self, loader: Any, stage: Stage, detail: str = "") -> None:
        self.loader, self.stage, self.detail = loader, stage, detail
        self.dataset = loader.dataset

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Any:
        for batch in self.loader:
            yield batch
            self.stage.advance(1, self.detail)
