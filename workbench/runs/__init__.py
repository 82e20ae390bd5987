"""The run folder (``params.json``, ``history.jsonl``, ``metrics.json``, ``predictions.json``...) as typed
records, readable without torch: :mod:`.folder` finds and reads folders, :mod:`.records` types their files."""

from __future__ import annotations

from .folder import RUN_STATES, RunPaths, RunRecord, compare_runs, list_runs, load_run
from .records import EpochRecord, Prediction, RunParams, RunSummary

__all__ = [
    "RUN_STATES",
    "RunPaths",
    "RunRecord",
    "compare_runs",
    "list_runs",
    "load_run",
    "EpochRecord",
    "Prediction",
    "RunParams",
    "RunSummary",
]
