"""Run folders: moved to :mod:`workbench.runs` (torch-free, below training); kept here for old imports."""

from __future__ import annotations

from ..runs.folder import (
    RUN_STATES,
    RunPaths,
    RunRecord,
    collect_versions,
    compare_runs,
    jsonable,
    list_runs,
    load_run,
    new_run_id,
    read_json,
    read_jsonl,
    write_json,
    write_jsonl,
)

__all__ = [
    "RunPaths",
    "RunRecord",
    "new_run_id",
    "write_json",
    "read_json",
    "write_jsonl",
    "read_jsonl",
    "jsonable",
    "collect_versions",
    "list_runs",
    "load_run",
    "compare_runs",
    "RUN_STATES",
]
