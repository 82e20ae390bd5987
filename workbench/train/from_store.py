"""Training straight from the store: a dataset, one of its directories, or a snapshot becomes a
:class:`TrainSource`, and runs land in the workspace's ``runs/`` folder.

What notebooks, dashboards and the CLI call; the engine itself (trainer.py) never sees the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..data.dataset import Dataset
from ..data.splits import MIN_TRAIN_EXAMPLES
from ..data.task_types import TaskType, type_info
from ..data.workspace import Workspace
from ..errors import NotFoundError, TooFewExamplesError
from .source import TrainSource

__all__ = ["source_from_dataset", "train_dataset", "resume_run", "find_run", "runs_of", "evaluate_run"]


def source_from_dataset(
    ds: Dataset, *, snapshot: str | None = None, directory: str | None = None, require_train: bool = True
) -> TrainSource:
    """The examples a run learns from: a snapshot (exactly as frozen), a directory, or the live dataset."""
    if snapshot is not None:
        snap = ds.load_snapshot(snapshot)
        examples, classes, sid = list(snap.examples), list(snap.classes), snap.id
        directory = snap.info.directory
    else:
        examples, classes, sid = ds.examples(directory=directory), ds.classes, None
    src = TrainSource(
        examples=examples,
        classes=classes,
        dataset_type=ds.type,
        load_bytes=ds.load_bytes,
        dataset=ds.name,
        snapshot_id=sid,
        directory=directory,
    )
    n_train = src.counts()["train"]
    if require_train and n_train < MIN_TRAIN_EXAMPLES:
        where = f"snapshot {sid} of " if sid else (f"directory '{directory}' of " if directory else "")
        raise TooFewExamplesError(
            f"{where}dataset '{ds.name}' has {n_train} annotated training examples; at least "
            f"{MIN_TRAIN_EXAMPLES} are needed to train (annotate or import more)"
        )
    return src


def train_dataset(
    ws: Workspace,
    name: str,
    config: Any,
    *,
    snapshot: str | None = None,
    directory: str | None = None,
    callbacks: Sequence[Any] = (),
    run_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Train on dataset ``name`` (or a snapshot / directory of it); returns the run's summary."""
    from .runs import new_run_id
    from .trainer import train

    ds = ws.dataset(name)
    source = source_from_dataset(ds, snapshot=snapshot, directory=directory)
    target = Path(run_dir) if run_dir is not None else ws.runs_dir / new_run_id(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    return train(config, source, target, callbacks)


def runs_of(ws: Workspace, dataset: str | None = None) -> list[Any]:
    from .runs import list_runs

    return list_runs(ws.runs_dir, dataset=dataset)


def find_run(ws: Workspace, run: str | Path) -> Path:
    """A run folder from an id, an id prefix or a path."""
    p = Path(run)
    if (p / "params.json").is_file():
        return p
    root = ws.runs_dir
    if root.is_dir():
        exact = root / str(run)
        if (exact / "params.json").is_file():
            return exact
        matches = sorted(
            d for d in root.iterdir() if d.name.startswith(str(run)) and (d / "params.json").is_file()
        )
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise NotFoundError(f"run '{run}' is ambiguous: {', '.join(m.name for m in matches[:5])}")
    raise NotFoundError(f"no run '{run}' in {root}")


def resume_run(ws: Workspace, run: str | Path, callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """Continue a killed or stopped run on the same data it started on."""
    from .runs import load_run
    from .trainer import resume

    path = find_run(ws, run)
    rec = load_run(path)
    src_info = rec.params.get("source", {})
    ds = ws.dataset(src_info.get("dataset", ""))
    source = source_from_dataset(
        ds, snapshot=src_info.get("snapshot_id"), directory=src_info.get("directory")
    )
    return resume(path, source, callbacks)


def evaluate_run(ws: Workspace, run: str | Path) -> tuple[Any, dict[str, Any]]:
    """Detailed test metrics of a run, recomputed from its stored test predictions against the ground
    truth it was trained on: per-class precision / recall / F1 and the confusion matrix, or COCO stats with
    per-class AP (boxes, and masks for segmentation). Anomaly runs report their stored test metrics."""
    from ..data.formats.coco_convert import ground_truth
    from ..evaluate import classification_metrics, coco_metrics
    from .runs import load_run

    rec = load_run(find_run(ws, run))
    params = rec.run_params
    assert params is not None  # load_run reads them
    source = source_from_dataset(ws.dataset(params.dataset), snapshot=params.snapshot_id,
                                 directory=params.directory, require_train=False)
    names = params.class_names or source.class_names
    rows = rec.predictions()
    test = source.split("test")
    info = type_info(source.dataset_type)
    if source.dataset_type == TaskType.CLASSIFICATION:
        by_id = {r["example_id"]: r["label"] for r in rows}
        truth = [e.label for e in test if e.id in by_id]
        report = classification_metrics(truth, [by_id[e.id] for e in test if e.id in by_id], names)
        return rec, {**report.as_dict(), "top_confusions": report.top_confusions()}
    if info.regions:
        out: dict[str, Any] = {}
        kinds = [("bbox", "")] + ([("segm", "mask_")] if info.masks else [])
        for iou_type, prefix in kinds:
            gt = ground_truth(test, names, segmentation=iou_type == "segm")
            res = coco_metrics(gt, rows, iou_type, per_class=True)
            out.update(res.run_stats(prefix))
            out[prefix + "per_class"] = res.per_class
        return rec, out
    return rec, dict(rec.summary.test if rec.summary else {})
