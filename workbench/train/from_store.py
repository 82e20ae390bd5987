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
from ..data.task_types import TaskType, task_type, type_info
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
    """Train on dataset ``name`` (or a snapshot / directory of it); returns the run's summary.

    Without ``snapshot`` the dataset (or directory) is frozen into one first (same content, same id), so
    the run records exactly which labels it learnt from and was tested on (``evaluate_run``, mining)."""
    from .runs import new_run_id
    from .trainer import train

    ds = ws.dataset(name)
    target = Path(run_dir) if run_dir is not None else ws.runs_dir / new_run_id(name)
    with ws.transaction():  # a refused run (too few examples) leaves no snapshot behind
        if snapshot is None:  # freeze what the run learns from, so its numbers can be checked later
            snapshot = ds.snapshot(message=f"training data of run {target.name}", directory=directory).id
        source = source_from_dataset(ds, snapshot=snapshot, directory=directory)
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


def _eval_classification(rec: Any, test: list[Any], names: list[str]) -> dict[str, Any]:
    from ..evaluate import classification_metrics

    by_id = {p.example_id: p.label for p in rec.prediction_records()}
    judged = [e for e in test if e.id in by_id]
    report = classification_metrics([e.label for e in judged], [by_id[e.id] for e in judged], names)
    return {**report.as_dict(), "top_confusions": report.top_confusions()}


def _eval_regions(masks: bool) -> Any:
    """COCO stats (boxes, and masks for a type whose regions have them) with per-class AP."""

    def run(rec: Any, test: list[Any], names: list[str]) -> dict[str, Any]:
        from ..data.formats.coco_convert import ground_truth
        from ..evaluate import coco_metrics

        rows = rec.predictions()
        out: dict[str, Any] = {}
        for iou_type, prefix in [("bbox", "")] + ([("segm", "mask_")] if masks else []):
            gt = ground_truth(test, names, segmentation=iou_type == "segm")
            res = coco_metrics(gt, rows, iou_type, per_class=True, gt_checked=True)  # gt: the store's; rows checked
            out.update(res.run_stats(prefix))
            out[prefix + "per_class"] = res.per_class
        return out

    return run


def _eval_anomaly(rec: Any, test: list[Any], names: list[str]) -> dict[str, Any]:
    """AUROC and the counts at the run's own test threshold, from the stored scores."""
    from ..data.records import ANOMALY_CLASSES
    from ..evaluate import at_threshold, auroc

    score = {p.example_id: p.score for p in rec.prediction_records() if p.score is not None}
    judged = [e for e in test if e.id in score and e.label in ANOMALY_CLASSES]
    truth, scores = [e.label for e in judged], [score[e.id] for e in judged]
    out: dict[str, Any] = {"auroc": auroc(truth, scores) if len(set(truth)) == 2 else None}
    threshold = rec.summary.test.get("threshold") if rec.summary is not None else None
    if threshold is not None and judged:
        out.update(at_threshold(truth, scores, threshold))
    return out


# How each dataset type scores a run's stored test predictions against ground truth.
EVALUATORS: dict[TaskType, Any] = {
    TaskType.CLASSIFICATION: _eval_classification,
    TaskType.DETECTION: _eval_regions(type_info(TaskType.DETECTION).masks),
    TaskType.SEGMENTATION: _eval_regions(type_info(TaskType.SEGMENTATION).masks),
    TaskType.ANOMALY: _eval_anomaly,
}


def evaluate_run(ws: Workspace, run: str | Path, *, live: bool = False) -> tuple[Any, dict[str, Any]]:
    """Detailed test metrics of a run, recomputed from its stored test predictions: per-class precision /
    recall / F1 and the confusion matrix, COCO stats with per-class AP (boxes, and masks for segmentation),
    or anomaly AUROC and counts at the run's threshold.

    The ground truth is the snapshot the run trained on (so the numbers match the run's own test metrics
    whatever was annotated since); ``live=True`` scores against today's labels instead. ``metrics["labels"]``
    says which was used: ``{"source": "snapshot" | "live", "snapshot_id", "directory", "note"?}`` (a run
    without a snapshot, or whose snapshot is gone, is scored live, with a note saying so).
    """
    from .runs import load_run

    rec = load_run(find_run(ws, run))
    params = rec.run_params
    assert params is not None  # load_run reads them
    ds = ws.dataset(params.dataset)
    sid, directory = params.snapshot_id, params.directory
    labels: dict[str, Any] = {"source": "snapshot", "snapshot_id": sid, "directory": directory}
    if live or not sid:
        labels.update(source="live", snapshot_id=None)
        if not live:
            labels["note"] = "the run records no snapshot: scored against today's labels"
    elif sid not in {s.id for s in ds.snapshots()}:
        labels.update(source="live", snapshot_id=None, note=f"snapshot {sid} of the run is gone: scored "
                      "against today's labels")
    source = source_from_dataset(ds, snapshot=labels["snapshot_id"], directory=directory, require_train=False)
    names = params.class_names or source.class_names
    metrics = EVALUATORS[task_type(source.dataset_type)](rec, source.split("test"), names)
    metrics["labels"] = labels
    return rec, metrics
