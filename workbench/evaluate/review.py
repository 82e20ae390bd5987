"""Mine a run's errors into the ``review`` directory, with the model's predictions as proposals.

``mine_run(dataset, run)`` ranks the test and val examples the run predicted (:func:`.mining.rank_examples`),
mirrors the top ``count`` into a directory, and stores the model's predictions for them as proposals
(``proposal=True``, author ``run:<run_id>``, scores kept) that the canvas draws dashed for accept / reject.
Mining again replaces those examples' proposals (it never stacks them); ground truth is never touched.
The ranked list goes to ``mined.json`` in the run folder (written atomically).

Predictions per split come from, in order: ``predictions=`` given by the caller; the run's
``predictions.json`` (test); the run's checkpoint applied to the split (:func:`.predict.predict_examples`,
when ``predict_missing``). The examples judged are those of the split the run was trained with (its
snapshot, else its directory, else the live dataset), with their current annotations.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.dataset import Dataset
from ..data.records import SPLITS, Annotation, ClassDef, Example
from ..data.task_types import TaskType, type_info
from ..errors import NotFoundError, ValidationError
from ..progress import ProgressFn
from ..runs.folder import RunRecord, load_run, write_json
from ..runs.records import RunParams, prediction_example_id
from .matching import Instance
from .mining import MinedExample, MiningSettings, anomaly_threshold, predicted_instances, rank_examples

__all__ = ["MiningResult", "mine_run", "proposals_for", "MINED_FILE", "TRAIN_CHECKS"]

MINED_FILE = "mined.json"
# How mine_run checks training labels: not at all, from the run's model, from out-of-fold models.
TRAIN_CHECKS = ("off", "model", "folds")


@dataclass
class MiningResult:
    """What :func:`mine_run` did: the ranked examples, those sent to review, flagged label errors."""

    run_id: str
    dataset: str
    dataset_type: str
    directory: str
    selected: list[MinedExample]
    ranked: list[MinedExample]
    label_errors: list[MinedExample]
    proposals: int = 0
    added_to_directory: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    path: Path | None = None
    by_reason: dict[str, int] = field(default_factory=dict)
    filled: int = 0
    train_label_errors: int = 0

    @property
    def selected_ids(self) -> list[int]:
        return [m.example_id for m in self.selected]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "dataset": self.dataset,
            "dataset_type": self.dataset_type,
            "directory": self.directory,
            "selected": self.selected_ids,
            "examples": [m.to_dict() for m in self.selected],
            "label_errors": [m.to_dict() for m in self.label_errors],
            "ranked": [m.to_dict() for m in self.ranked],
            "proposals": self.proposals,
            "added_to_directory": self.added_to_directory,
            "splits": dict(self.splits),
            "sources": dict(self.sources),
            "notes": list(self.notes),
            "by_reason": dict(self.by_reason),
            "filled": self.filled,
            "train_label_errors": self.train_label_errors,
            "path": None if self.path is None else str(self.path),
        }


# ---------------------------------------------------------------------------------------------- proposals
def _label_proposal(kind: str):
    def make(mined, rows, ex, class_names, min_score, author):
        predicted = mined.details.get("predicted")
        if predicted is None:
            return []
        score = mined.details.get("probability") if kind == "label" else None
        return [Annotation(kind, predicted, score=score, proposal=True, author=author)]

    return make


def _instance_annotation(inst: Instance, ex: Example, masks: bool, author: str) -> Annotation | None:
    """One predicted instance as a proposal: its mask or polygon (segmentation) else its box clipped to
    the image; None when nothing valid is left (an empty mask, a box outside the image)."""
    common: dict[str, Any] = {"score": inst.score, "proposal": True, "author": author}
    try:
        if masks and inst.rle is not None and list(inst.rle["size"]) == [ex.height, ex.width]:
            if sum(inst.rle["counts"][1::2]) > 0:
                return Annotation("mask", inst.label, mask=inst.rle, **common)
        elif masks and inst.polygons is not None:
            ann = Annotation("polygon", inst.label, polygons=inst.polygons, **common)
            ann.check_inside(ex.width, ex.height)
            return ann
        return Annotation("box", inst.label, bbox=inst.bbox, **common).clipped(ex.width, ex.height)
    except ValidationError:
        return None


def _instance_proposals(masks: bool):
    def make(mined, rows, ex, class_names, min_score, author):
        found = predicted_instances(rows, class_names).get(ex.id, [])
        anns = [_instance_annotation(i, ex, masks, author) for i in found if i.score >= min_score]
        return [a for a in anns if a is not None]

    return make


# How each dataset type turns a mined example's predictions into proposal annotations.
PROPOSERS: dict[str, Any] = {
    TaskType.CLASSIFICATION: _label_proposal("label"),
    TaskType.ANOMALY: _label_proposal("anomaly"),
    TaskType.DETECTION: _instance_proposals(False),
    TaskType.SEGMENTATION: _instance_proposals(True),
}


def proposals_for(
    mined: MinedExample,
    rows: Sequence[Mapping[str, Any]],
    example: Example,
    dataset_type: str,
    class_names: Sequence[str],
    *,
    author: str,
    min_score: float = 0.5,
) -> list[Annotation]:
    """The model's predictions for one mined example as proposal annotations (boxes from ``min_score``).

    ``rows`` are prediction rows (only the example's own are used; passing just those is faster).
    """
    return PROPOSERS[dataset_type](mined, rows, example, list(class_names), min_score, author)


# ---------------------------------------------------------------------------------------------- helpers
def _record(run: RunRecord | str | Path) -> RunRecord:
    return run if isinstance(run, RunRecord) else load_run(Path(run))


def _split_ids(dataset: Dataset, params: RunParams, split: str, notes: list[str]) -> list[int]:
    """Ids of the examples of ``split`` the run was trained with (its snapshot, directory or the dataset)."""
    sid, directory = params.snapshot_id, params.directory
    if sid:
        try:
            return sorted(e.id for e in dataset.load_snapshot(sid).examples if e.split == split)
        except NotFoundError:
            notes.append(f"snapshot {sid} of the run is gone; judging the live {split} split")
    try:
        return dataset.example_ids(split=split, directory=directory)
    except NotFoundError:
        notes.append(f"directory '{directory}' of the run is gone; judging the whole {split} split")
        return dataset.example_ids(split=split)


def _check(dataset: Dataset, record: RunRecord, count: int, splits: Sequence[str]) -> RunParams:
    params = record.run_params or RunParams.from_json(record.params, run_id=record.run_id)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValidationError(f"count must be a positive integer, got {count!r}", field="count")
    bad = [s for s in splits if s not in SPLITS]
    if bad or not splits:
        raise ValidationError(f"unknown split(s) {bad}; valid: {', '.join(SPLITS)}", field="splits")
    params_file = str(record.path / "params.json")
    if params.dataset and params.dataset != dataset.name:
        raise ValidationError(
            f"run {record.run_id} was trained on dataset '{params.dataset}', not '{dataset.name}'",
            file=params_file,
            field="source.dataset",
        )
    if (params.dataset_type or dataset.type) != dataset.type:
        raise ValidationError(
            f"run {record.run_id} is a {params.dataset_type} run; dataset '{dataset.name}' "
            f"is {dataset.type}",
            file=params_file,
            field="source.dataset_type",
        )
    if not params.class_names:
        raise ValidationError("run record names no classes", file=params_file, field="source.classes")
    return params


# ---------------------------------------------------------------------------------------------- mine_run
def _uncertainty(m: MinedExample) -> float:
    """How unsure the model was about an example it got right (fills the count): the ranking score for
    classification / anomaly (1 - margin, 1 - confidence); detection / segmentation: 1 - the mean IoU of
    its matched boxes (1 for an image with nothing matched)."""
    if "mean_iou" in m.details or "ground_truth" in m.details:
        iou = m.details.get("mean_iou")
        return 1.0 - float(iou) if iou is not None else 1.0
    return m.score


def _select(ranked: Sequence[MinedExample], count: int) -> tuple[list[MinedExample], int]:
    """The top ``count``: examples with a reason (ranked), then the most uncertain of the rest, marked
    ``most_uncertain``. Returns the selection and how many came from the filler."""
    selected = [m for m in ranked if m.reasons][:count]
    rest = sorted((m for m in ranked if not m.reasons), key=lambda m: (-round(_uncertainty(m), 9), m.example_id))
    filler = rest[: count - len(selected)]
    for m in filler:
        m.reasons = ["most_uncertain"]
        m.details["uncertainty"] = round(_uncertainty(m), 6)
    return selected + filler, len(filler)


def _predictions_for(
    dataset, record, split, ids, predictions, predict_missing, device, test_metrics, notes, dtype, progress=None
):
    """(examples, rows, where the rows came from) of one split; rows None when there are none to judge."""
    from ..train.source import usable_for_training

    rows: Sequence[Mapping[str, Any]] = []
    origin = None
    if predictions is not None and split in predictions:
        rows, origin = list(predictions[split]), "given"
    elif split == "test" and record.has_predictions:
        rows, origin = list(record.predictions()), "predictions.json"
    row_ids = {i for i in (prediction_example_id(r) for r in rows) if i is not None}
    wanted = sorted(set(ids) | (row_ids if split != "train" else set()))
    examples = [ex for ex in dataset.examples(ids=wanted) if usable_for_training(ex, dtype)]
    if origin is None:
        if not (predict_missing and record.checkpoints):
            why = "stored, and no checkpoint to make them" if predict_missing else "stored"
            what = "training labels were not checked" if split == "train" else f"{split} was not mined"
            notes.append(f"no {split} predictions {why}; {what}")
            return examples, None, None
        from .predict import predict_examples

        rows = predict_examples(record, examples, dataset.load_bytes, device=device, metrics=test_metrics,
                                progress=progress)
        origin = "model"
    return examples, rows, origin


def _out_of_fold(dataset, record, params, ids, folds, device, notes):
    """(train examples, out-of-fold rows, "out-of-fold") for the label check."""
    from ..train.source import usable_for_training
    from .out_of_fold import out_of_fold_rows

    dtype = dataset.type
    train = [ex for ex in dataset.examples(ids=ids) if usable_for_training(ex, dtype)]
    val_ids = _split_ids(dataset, params, "val", notes)
    val = [ex for ex in dataset.examples(ids=val_ids) if usable_for_training(ex, dtype)]
    colors = {c.name: c.color for c in dataset.classes}
    classes = [ClassDef(name, colors.get(name) or "#808080") for name in params.class_names]
    rows = out_of_fold_rows(record, train, val, classes, dataset.load_bytes, folds=folds, device=device)
    return train, rows, "out-of-fold"


def _anomaly_threshold_of(rows_by_split, examples_by_split) -> float:
    judged_rows, truth = [], []
    for split, rows in rows_by_split.items():
        labels = {ex.id: ex.label for ex in examples_by_split[split] if ex.label is not None}
        for r in rows:
            rid = prediction_example_id(r)
            if rid is not None and rid in labels:
                judged_rows.append(r)
                truth.append(labels[rid])
    return anomaly_threshold(judged_rows, truth)


def _train_label_errors(examples, rows, dtype, class_names, *, iou, threshold, settings) -> list[MinedExample]:
    """Training examples whose label the model doubts: confident learning for classification, else the
    examples of the type's ranking flagged ``likely_label_error`` (only that reason kept)."""
    if dtype == TaskType.CLASSIFICATION:
        from .label_check import label_issues_of

        return label_issues_of(examples, rows, class_names)
    ranked = rank_examples(examples, rows, dtype, class_names, iou=iou, threshold=threshold, settings=settings)
    flagged = [m for m in ranked if m.likely_label_error]
    for m in flagged:
        m.reasons = ["likely_label_error"]
        m.score = 1.0 + m.label_error_score
    return flagged


def _write_review(dataset, record, directory, selected, by_id, rows_by_split, write_proposals, settings,
                  class_names) -> tuple[int, int, int]:
    """Mirror ``selected`` into ``directory`` and replace their proposals, in one transaction; returns
    (proposals written, examples added to the directory, proposals of unknown classes dropped)."""
    author = f"run:{record.run_id}"
    known = {c.name for c in dataset.classes}
    rows_of: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for split, rows in rows_by_split.items():
        for r in rows:
            rid = prediction_example_id(r)
            if rid is not None:
                rows_of.setdefault((split, rid), []).append(r)
    written = added = dropped = 0
    with dataset.workspace.transaction():
        added = dataset.mirror(directory, [m.example_id for m in selected]) if selected else 0
        if write_proposals:
            for m in selected:
                split, ex = by_id[m.example_id]
                anns = proposals_for(m, rows_of.get((split, ex.id), []), ex, dataset.type, class_names,
                                     author=author, min_score=settings.min_score)
                keep = [a for a in anns if a.label in known]
                dropped += len(anns) - len(keep)
                dataset.replace_annotations(m.example_id, keep, author=author, proposals=True)
                written += len(keep)
    return written, added, dropped


def mine_run(
    dataset: Dataset,
    run: Any,
    *,
    count: int = 40,
    directory: str = "review",
    splits: Sequence[str] = ("test", "val"),
    write_proposals: bool = True,
    predictions: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    predict_missing: bool = True,
    iou: float = 0.5,
    settings: MiningSettings | None = None,
    device: str = "auto",
    check_train: str = "model",
    folds: int = 2,
    progress: ProgressFn | None = None,
) -> MiningResult:
    """Rank ``run``'s test / val examples, send the top ``count`` to ``directory``, propose its predictions.

    ``run`` is a run folder or a ``RunRecord``. The examples with a reason (an error, an unsure right
    answer, a doubted label) come first, in rank order; when they are fewer than ``count`` the most
    uncertain of the rest fill the count (reason ``most_uncertain``); ``result.by_reason`` counts the
    selection by headline reason and a note says when fewer than ``count`` could be judged at all.
    ``progress`` hears of the predictions made for splits without stored ones (:mod:`workbench.progress`).
    ``check_train`` checks the training split's labels too (:mod:`.label_check`): ``"model"`` from the run's
    best checkpoint's predictions (or ``predictions["train"]``; fast, but the model saw those labels),
    ``"folds"`` from out-of-fold predictions (``folds`` models trained with the run's settings, each
    without the examples it predicts; :mod:`.out_of_fold`), ``"off"`` not at all. Doubted labels rank with
    the errors and appear in ``label_errors``. The directory and all proposals are written in one transaction. Returns a
    :class:`MiningResult`; ``mined.json`` in the run folder holds the same.
    """
    record = _record(run)
    params = _check(dataset, record, count, splits)
    settings = settings or MiningSettings()
    dtype = dataset.type
    class_names = params.class_names
    summary = record.summary
    test_metrics: dict[str, Any] = dict(summary.test) if summary else {}
    threshold = test_metrics.get("threshold", summary.val.get("threshold") if summary else None)
    notes: list[str] = []
    rows_by_split: dict[str, Sequence[Mapping[str, Any]]] = {}
    sources: dict[str, str] = {}
    examples_by_split: dict[str, list[Example]] = {}
    seen: set[int] = set()
    if check_train not in TRAIN_CHECKS:
        raise ValidationError(f"unknown check_train {check_train!r}; valid: {', '.join(TRAIN_CHECKS)}",
                              field="check_train")
    all_splits = list(splits) + (["train"] if check_train != "off" and "train" not in splits else [])
    for split in all_splits:
        ids = [i for i in _split_ids(dataset, params, split, notes) if i not in seen]
        if split == "train" and check_train == "folds" and "train" not in splits:
            examples, rows, origin = _out_of_fold(dataset, record, params, ids, folds, device, notes)
        else:
            examples, rows, origin = _predictions_for(dataset, record, split, ids, predictions,
                                                      predict_missing, device, test_metrics, notes, dtype,
                                                      progress)
        if rows is None or origin is None:
            continue
        examples = [ex for ex in examples if ex.id not in seen]
        counts = params.source.get("counts")
        expected = counts.get(split) if isinstance(counts, dict) else None
        if type_info(dtype).regions and isinstance(expected, int) and len(examples) > expected \
                and origin != "model":
            notes.append(
                f"{len(examples) - expected} {split} example(s) came after the run; with no stored "
                "predictions they count as having no detections"
            )
        rows_by_split[split], examples_by_split[split], sources[split] = rows, examples, origin
        seen.update(ex.id for ex in examples)

    if dtype == TaskType.ANOMALY and threshold is None and rows_by_split:
        threshold = _anomaly_threshold_of(rows_by_split, examples_by_split)

    ranked: list[MinedExample] = []
    train_errors: list[MinedExample] = []
    for split, rows in rows_by_split.items():
        try:
            if split == "train" and split not in splits:
                train_errors = _train_label_errors(examples_by_split[split], rows, dtype, class_names, iou=iou,
                                                   threshold=threshold, settings=settings)
            else:
                ranked += rank_examples(examples_by_split[split], rows, dtype, class_names, iou=iou,
                                        threshold=threshold, settings=settings)
        except ValidationError as e:
            where = str(record.path / "predictions.json") if sources[split] == "predictions.json" else None
            raise e.located(file=where or f"{split} predictions of run {record.run_id}") from None
    ranked += train_errors
    ranked.sort(key=lambda m: (-round(m.score, 9), m.example_id))
    selected, filled = _select(ranked, count)
    if len(selected) < count:
        notes.append(f"only {len(selected)} example(s) could be judged; all of them were selected")
    label_errors = [m for m in ranked if m.likely_label_error]
    label_errors.sort(key=lambda m: (-round(m.label_error_score, 9), m.example_id))

    by_id = {ex.id: (split, ex) for split, exs in examples_by_split.items() for ex in exs}
    written, added, dropped = _write_review(dataset, record, directory, selected, by_id, rows_by_split,
                                            write_proposals, settings, class_names)
    if dropped:
        notes.append(f"{dropped} proposal(s) of classes the dataset no longer has were left out")

    path = record.path / MINED_FILE
    by_reason: dict[str, int] = {}
    for m in selected:
        by_reason[m.reason] = by_reason.get(m.reason, 0) + 1
    result = MiningResult(
        run_id=record.run_id,
        dataset=dataset.name,
        dataset_type=dtype,
        directory=directory,
        selected=selected,
        ranked=ranked,
        label_errors=label_errors,
        proposals=written,
        added_to_directory=added,
        splits={s: len(v) for s, v in examples_by_split.items()},
        sources=sources,
        notes=notes,
        path=path,
        by_reason=by_reason,
        filled=filled,
        train_label_errors=len(train_errors),
    )
    write_json(
        path,
        {
            **result.to_dict(),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "settings": {**settings.__dict__, "iou": iou, "threshold": threshold, "count": count},
        },
    )
    return result
