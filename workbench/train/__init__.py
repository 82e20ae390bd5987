"""The training engine: plain records in, a run folder out.

``Trainer(config, source, run_dir, callbacks).fit()`` trains one model on a :class:`TrainSource` (examples,
classes, dataset type and a ``load_bytes`` function: no store needed); ``resume(run_dir, source)`` goes on
with a killed or stopped run; ``list_runs`` / ``load_run`` / ``compare_runs`` read run folders.

Names load lazily: ``import workbench.train`` costs nothing, and the run-record helpers never import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "TrainConfig",
    "TrainSource",
    "source_from_batch",
    "Trainer",
    "train",
    "resume",
    "Callback",
    "RecordingCallback",
    "LoggingCallback",
    "build_model",
    "model_names",
    "load_model",
    "list_runs",
    "load_run",
    "compare_runs",
    "Predictor",
    "export_onnx",
    "NonFiniteLossError",
    "CheckpointError",
    "TrainingStateError",
]

_WHERE = {
    "TrainConfig": "config",
    "TrainSource": "source",
    "source_from_batch": "source",
    "Trainer": "trainer",
    "train": "trainer",
    "resume": "trainer",
    "Callback": "callbacks",
    "RecordingCallback": "callbacks",
    "LoggingCallback": "callbacks",
    "build_model": "models",
    "model_names": "models",
    "load_model": "checkpoint",
    "list_runs": "runs",
    "load_run": "runs",
    "compare_runs": "runs",
    "Predictor": "predict",
    "export_onnx": "export",
    "NonFiniteLossError": "errors",
    "CheckpointError": "errors",
    "TrainingStateError": "errors",
}


def __getattr__(name: str) -> Any:
    try:
        module = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module 'workbench.train' has no attribute {name!r}") from None
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
