"""Run records: one folder per training run, readable without torch.

::

    <runs_root>/<run_id>/
        params.json       config, dataset, snapshot, directory, classes, counts, data fingerprint
        versions.json     python, torch, torchvision, albumentations, workbench, numpy, platform
        status.json       state (running | finished | early_stopped | stopped | failed), error, times
        history.jsonl     one JSON object per finished epoch
        metrics.json      final test metrics (and the val metrics of the best epoch)
        predictions.json  test-split predictions (COCO results for detection / segmentation)
        checkpoints/last.pt, checkpoints/best.pt

Every JSON file is written atomically (temp file, fsync, ``os.replace``), so a reader never sees half of one.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import NotFoundError, ValidationError
from ..fsutil import atomic_write_text
from .records import RUN_STATES, EpochRecord, Prediction, RunParams, RunSummary

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



@dataclass(frozen=True)
class RunPaths:
    """The files of one run folder."""

    root: Path

    @property
    def run_id(self) -> str:
        return self.root.name

    params = property(lambda self: self.root / "params.json")
    versions = property(lambda self: self.root / "versions.json")
    status = property(lambda self: self.root / "status.json")
    history = property(lambda self: self.root / "history.jsonl")
    metrics = property(lambda self: self.root / "metrics.json")
    predictions = property(lambda self: self.root / "predictions.json")
    checkpoints = property(lambda self: self.root / "checkpoints")
    last = property(lambda self: self.root / "checkpoints" / "last.pt")
    best = property(lambda self: self.root / "checkpoints" / "best.pt")


def new_run_id(prefix: str = "") -> str:
    """A sortable, unique run id: ``[prefix-]YYYYmmdd-HHMMSS-xxxxxx``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    rid = f"{stamp}-{secrets.token_hex(3)}"
    return f"{prefix}-{rid}" if prefix else rid


def jsonable(value: Any) -> Any:
    """``value`` with numpy / torch scalars as Python numbers, tuples as lists, NaN and inf as None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if hasattr(value, "tolist") and callable(value.tolist):
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _atomic_write(path: Path, text: str) -> None:
    atomic_write_text(path, text)


def write_json(path: str | Path, obj: Any) -> None:
    """Write strict JSON atomically (non-finite floats become null)."""
    _atomic_write(Path(path), json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n")


def write_jsonl(path: str | Path, rows: Iterable[Any]) -> None:
    """Write JSON lines atomically (the whole file is replaced)."""
    _atomic_write(Path(path), "".join(json.dumps(jsonable(r), allow_nan=False) + "\n" for r in rows))


def read_json(path: str | Path, default: Any = None) -> Any:
    p = Path(path)
    if not p.is_file():
        return default
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValidationError(f"not valid JSON ({e})", file=str(p)) from None


def read_jsonl(path: str | Path) -> list[Any]:
    p = Path(path)
    if not p.is_file():
        return []
    rows = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValidationError(f"line {n} is not valid JSON ({e})", file=str(p)) from None
    return rows


def collect_versions() -> dict[str, str | None]:
    """Versions of Python and the libraries a run depends on."""
    import platform
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in (
        "workbench",
        "torch",
        "torchvision",
        "albumentations",
        "numpy",
        "pycocotools",
        "faster-coco-eval",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    if out["workbench"] is None:
        from .._version import __version__

        out["workbench"] = __version__
    return out


@dataclass
class RunRecord:
    """What a run folder holds (checkpoints are named, not loaded).

    The typed records (:attr:`run_params`, :attr:`epochs`, :attr:`summary`, :meth:`prediction_records`)
    are what readers take; ``params``, ``history`` and ``metrics`` are their JSON forms (as written, with
    old stat names read as the current ones)."""

    run_id: str
    path: Path
    params: dict[str, Any]
    versions: dict[str, Any]
    status: dict[str, Any]
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    has_predictions: bool = False
    checkpoints: dict[str, Path] = field(default_factory=dict)
    run_params: RunParams | None = None
    epochs: list[EpochRecord] = field(default_factory=list)
    summary: RunSummary | None = None

    @property
    def dataset(self) -> str:
        return str(self.params.get("source", {}).get("dataset", ""))

    @property
    def state(self) -> str:
        return str(self.status.get("state", "unknown"))

    def predictions(self) -> Any:
        return read_json(RunPaths(self.path).predictions, default=[])

    def prediction_records(self) -> list[Prediction]:
        """``predictions.json`` as :class:`Prediction` records (checked; an error names file and row)."""
        file = RunPaths(self.path).predictions
        rows = read_json(file, default=[])
        if not isinstance(rows, list):
            raise ValidationError("predictions must be a list", file=str(file))
        return [Prediction.from_json(r, file=str(file), index=i) for i, r in enumerate(rows)]


def load_run(run_dir: str | Path) -> RunRecord:
    """Read a run folder, checking its records; ``NotFoundError`` when it is not one, ``ValidationError``
    (naming the file and the record) when a record is malformed."""
    paths = RunPaths(Path(run_dir))
    if not paths.params.is_file():
        raise NotFoundError(f"{paths.root}: not a run folder (no params.json)")
    params = RunParams.from_json(read_json(paths.params, {}), file=str(paths.params), run_id=paths.run_id)
    epochs = [EpochRecord.from_json(row, file=str(paths.history), line=n)
              for n, row in enumerate(read_jsonl(paths.history), 1)]
    raw_metrics = read_json(paths.metrics, {})
    summary = (RunSummary.from_json(raw_metrics, file=str(paths.metrics), run_id=paths.run_id)
               if raw_metrics else None)
    return RunRecord(
        run_id=paths.run_id,
        path=paths.root,
        params=params.to_json(),
        versions=read_json(paths.versions, {}),
        status=read_json(paths.status, {}),
        history=[e.to_json() for e in epochs],
        metrics=summary.to_json() if summary is not None else {},
        has_predictions=paths.predictions.is_file(),
        checkpoints={n: p for n, p in (("last", paths.last), ("best", paths.best)) if p.is_file()},
        run_params=params,
        epochs=epochs,
        summary=summary,
    )


def list_runs(root: str | Path, dataset: str | None = None) -> list[RunRecord]:
    """The runs under ``root`` (newest first), optionally only those trained on ``dataset``."""
    r = Path(root)
    if not r.is_dir():
        return []
    runs = [load_run(d) for d in r.iterdir() if d.is_dir() and (d / "params.json").is_file()]
    if dataset is not None:
        runs = [run for run in runs if run.dataset == dataset]
    return sorted(runs, key=lambda run: (str(run.params.get("created_at", "")), run.run_id), reverse=True)


def compare_runs(runs: Sequence[RunRecord | str | Path]) -> list[dict[str, Any]]:
    """One flat row per run for a table: what was trained on what, how long, and how well."""
    rows = []
    for item in runs:
        run = item if isinstance(item, RunRecord) else load_run(item)
        params = run.run_params or RunParams.from_json(run.params, run_id=run.run_id)
        summary = run.summary
        row: dict[str, Any] = {
            "run_id": run.run_id,
            "state": run.state,
            "dataset": params.dataset,
            "snapshot": params.snapshot_id,
            "directory": params.directory,
            "type": params.dataset_type.value if params.dataset_type else None,
            "model": params.config.get("model"),
            "image_size": params.config.get("image_size"),
            "epochs": len(run.history),
            "best_epoch": summary.best_epoch if summary else run.status.get("best_epoch"),
            "monitor": summary.monitor if summary and summary.monitor else params.extra.get("monitor"),
            "train_time_s": round(sum(float(e.timing.get("epoch_time", 0.0)) for e in run.epochs), 2),
        }
        for key, value in (summary.test if summary else {}).items():
            if isinstance(value, (int, float)) or value is None:
                row[f"test_{key}"] = value
        rows.append(row)
    return rows
