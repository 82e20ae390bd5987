"""Errors the training engine raises (all subclasses of :mod:`workbench.errors` types)."""

from __future__ import annotations

from ..errors import ValidationError, WorkbenchError

__all__ = ["NonFiniteLossError", "CheckpointError", "TrainingStateError"]


class NonFiniteLossError(WorkbenchError, ArithmeticError):
    """The loss became NaN or infinite; the run stopped and its last good checkpoint was kept."""

    def __init__(self, message: str, *, epoch: int, step: int, loss: float, checkpoint: str | None) -> None:
        self.epoch = epoch
        self.step = step
        self.loss = loss
        self.checkpoint = checkpoint
        super().__init__(message)


class CheckpointError(ValidationError):
    """A checkpoint file is missing, corrupt, or holds something other than plain tensors and values."""


class TrainingStateError(WorkbenchError):
    """A run cannot go on as asked (nothing to resume, a finished run, data that changed since)."""
