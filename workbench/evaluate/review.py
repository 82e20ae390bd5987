"""Mine a run's errors into the ``review`` directory, with the model's predictions as proposals.

The torch-free half of mining: given each split's examples and the prediction rows to judge them by
(:class:`JudgedSplit`), :func:`review_run` ranks them (:func:`.mining.rank_examples`), checks the training
labels when the train split is among them, mirrors the top ``count`` into a directory and stores the model's
predictions for them as proposals (``proposal=True``, author ``run:<run_id>``, scores kept) that the canvas
draws dashed for accept / reject. Mining again replaces those examples' proposals (it never stacks them);
ground truth is never touched. The ranked list goes to ``mined.json`` in the run folder (written
atomically).

Where the rows come from (given by the caller, the run's ``predictions.json``, the run's checkpoint, models
trained out of fold) is the training layer's business: ``mine_run`` (:mod:`workbench.train.mining`, public
as :func:`workbench.service.mine_run`) gathers them and calls :func:`review_run`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.dataset import Dataset
from ..data.records import SPLITS, Annotation, Example
from ..data.task_types import TaskType, type_info
from ..errors import NotFoundError, ValidationError
from ..runs.folder import RunRecord, load_run, write_json
from ..runs.records import RunParams, prediction_example_id
from .matching import Instance
from .mining import MinedExample, MiningSettings, anomaly_threshold, predicted_instances, rank_examples

__all__ = [
    "MiningResult",
    "JudgedSplit",
    "review_run",
    "proposals_for",
    "check_request",
    "load_record",
    "split_ids",
    "mining_splits",
    "MINED_FILE",
    "TRAIN_CHECKS",
]

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
# (mined example, its prediction rows, the example, class names, min score, author) -> proposal annotations
Proposer = Callable[[MinedExample, Sequence[Mapping[str, Any]], Example, list[str], float, str], list[Annotation]]


def _label_proposal(kind: str) -> Proposer:
    def make(mined: MinedExample, rows: Sequence[Mapping[str, Any]], ex: Example, class_names: list[str],
             min_score: float, author: str) -> list[Annotation]:
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


def _instance_proposals(masks: bool) -> Proposer:
    def make(mined: MinedExample, rows: Sequence[Mapping[str, Any]], ex: Example, class_names: list[str],
             min_score: float, author: str) -> list[Annotation]:
        found = predicted_instances(rows, class_names).get(ex.id, [])
        anns = [_instance_annotation(i, ex, masks, author) for i in found if i.score >= min_score]
        return [a for a in anns if a is not None]

    return make


# How each dataset type turns a mined example's predictions into proposal annotations.
PROPOSERS: dict[str, Proposer] = {
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
@dataclass(frozen=True)
class JudgedSplit:
    """One split's examples, the prediction rows they are judged by and where the rows came from
    (``given``, ``predictions.json``, ``model`` or ``out-of-fold``)."""

    examples: list[Example]
    rows: Sequence[Mapping[str, Any]]
    origin: str


def load_record(run: RunRecord | str | Path) -> RunRecord:
    """``run`` as a :class:`RunRecord` (a record is returned as it is, a folder is loaded)."""
    return run if isinstance(run, RunRecord) else load_run(Path(run))


def split_ids(dataset: Dataset, params: RunParams, split: str, notes: list[str]) -> list[int]:
    """Ids of the examples of ``split`` the run was trained with (its snapshot, directory or the dataset);
    a note says when the snapshot or directory is gone."""
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


def check_request(
    dataset: Dataset, record: RunRecord, count: int, splits: Sequence[str], check_train: str = "off"
) -> RunParams:
    """The run's parameters, once the request is valid for ``dataset`` (a :class:`ValidationError` naming
    the field otherwise): ``count`` >= 1, known ``splits`` and ``check_train``, the run's dataset, type and
    classes."""
    params = record.run_params or RunParams.from_json(record.params, run_id=record.run_id)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValidationError(f"count must be a positive integer, got {count!r}", field="count")
    bad = [s for s in splits if s not in SPLITS]
    if bad or not splits:
        raise ValidationError(f"unknown split(s) {bad}; valid: {', '.join(SPLITS)}", field="splits")
    if check_train not in TRAIN_CHECKS:
        raise ValidationError(f"unknown check_train {check_train!r}; valid: {', '.join(TRAIN_CHECKS)}",
                              field="check_train")
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


def mining_splits(splits: Sequence[str], check_train: str) -> list[str]:
    """The splits to gather predictions for: ``splits``, plus ``train`` when its labels are checked."""
    return list(splits) + (["train"] if check_train != "off" and "train" not in splits else [])


# ---------------------------------------------------------------------------------------------- ranking
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


def _anomaly_threshold_of(judged: Mapping[str, JudgedSplit]) -> float:
    judged_rows, truth = [], []
    for part in judged.values():
        labels = {ex.id: ex.label for ex in part.examples if ex.label is not None}
        for r in part.rows:
            rid = prediction_example_id(r)
            if rid is not None and rid in labels:
                judged_rows.append(r)
                truth.append(labels[rid])
    return anomaly_threshold(judged_rows, truth)


def _train_label_errors(
    examples: Sequence[Example],
    rows: Sequence[Mapping[str, Any]],
    dtype: str,
    class_names: Sequence[str],
    *,
    iou: float,
    threshold: float | None,
    settings: MiningSettings,
) -> list[MinedExample]:
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


def _late_examples_note(params: RunParams, dtype: str, split: str, part: JudgedSplit) -> str | None:
    """A note when ``split`` has more examples than the run trained with and its rows are stored ones:
    the newer examples have no predictions, so (detection / segmentation) they count as finding nothing."""
    counts = params.source.get("counts")
    expected = counts.get(split) if isinstance(counts, dict) else None
    if not type_info(dtype).regions or not isinstance(expected, int) or part.origin == "model":
        return None
    if len(part.examples) <= expected:
        return None
    return (f"{len(part.examples) - expected} {split} example(s) came after the run; with no stored "
            "predictions they count as having no detections")


def _rank(
    record: RunRecord,
    judged: Mapping[str, JudgedSplit],
    splits: Sequence[str],
    dtype: str,
    class_names: Sequence[str],
    *,
    iou: float,
    threshold: float | None,
    settings: MiningSettings,
) -> tuple[list[MinedExample], list[MinedExample]]:
    """(every judged example ranked, most instructive first; the training examples with doubted labels)."""
    ranked: list[MinedExample] = []
    train_errors: list[MinedExample] = []
    for split, part in judged.items():
        try:
            if split == "train" and split not in splits:
                train_errors = _train_label_errors(part.examples, part.rows, dtype, class_names, iou=iou,
                                                   threshold=threshold, settings=settings)
            else:
                ranked += rank_examples(part.examples, part.rows, dtype, class_names, iou=iou,
                                        threshold=threshold, settings=settings)
        except ValidationError as e:
            where = str(record.path / "predictions.json") if part.origin == "predictions.json" else None
            raise e.located(file=where or f"{split} predictions of run {record.run_id}") from None
    ranked += train_errors
    ranked.sort(key=lambda m: (-round(m.score, 9), m.example_id))
    return ranked, train_errors


# ---------------------------------------------------------------------------------------------- writing
def _write_review(
    dataset: Dataset,
    record: RunRecord,
    directory: str,
    selected: Sequence[MinedExample],
    judged: Mapping[str, JudgedSplit],
    write_proposals: bool,
    settings: MiningSettings,
    class_names: Sequence[str],
) -> tuple[int, int, int]:
    """Mirror ``selected`` into ``directory`` and replace their proposals, in one transaction; returns
    (proposals written, examples added to the directory, proposals of unknown classes dropped)."""
    author = f"run:{record.run_id}"
    known = {c.name for c in dataset.classes}
    by_id = {ex.id: (split, ex) for split, part in judged.items() for ex in part.examples}
    rows_of: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for split, part in judged.items():
        for r in part.rows:
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


def review_run(
    dataset: Dataset,
    record: RunRecord,
    params: RunParams,
    judged: Mapping[str, JudgedSplit],
    *,
    count: int = 40,
    directory: str = "review",
    splits: Sequence[str] = ("test", "val"),
    write_proposals: bool = True,
    iou: float = 0.5,
    settings: MiningSettings | None = None,
    notes: Sequence[str] = (),
) -> MiningResult:
    """Rank the ``judged`` examples of ``record``'s run, send the top ``count`` to ``directory`` with the
    model's predictions as proposals, write ``mined.json``; returns the :class:`MiningResult`.

    ``params`` are the run's (:func:`check_request`). A ``train`` entry of ``judged`` that is not among
    ``splits`` is the training label check: its doubted labels rank with the errors and appear in
    ``label_errors``. The examples with a reason (an error, an unsure right answer, a doubted label) come
    first, in rank order; when they are fewer than ``count`` the most uncertain of the rest fill the count
    (reason ``most_uncertain``). The directory and all proposals are written in one transaction.
    ``notes`` (what gathering the rows found) lead the result's notes.
    """
    settings = settings or MiningSettings()
    dtype = dataset.type
    class_names = params.class_names
    notes = list(notes)
    notes += [n for split, part in judged.items() if (n := _late_examples_note(params, dtype, split, part))]
    summary = record.summary
    test_metrics: dict[str, Any] = dict(summary.test) if summary else {}
    threshold = test_metrics.get("threshold", summary.val.get("threshold") if summary else None)
    if dtype == TaskType.ANOMALY and threshold is None and judged:
        threshold = _anomaly_threshold_of(judged)

    ranked, train_errors = _rank(record, judged, splits, dtype, class_names, iou=iou, threshold=threshold,
                                 settings=settings)
    selected, filled = _select(ranked, count)
    if len(selected) < count:
        notes.append(f"only {len(selected)} example(s) could be judged; all of them were selected")
    label_errors = sorted((m for m in ranked if m.likely_label_error),
                          key=lambda m: (-round(m.label_error_score, 9), m.example_id))
    written, added, dropped = _write_review(dataset, record, directory, selected, judged, write_proposals,
                                            settings, class_names)
    if dropped:
        notes.append(f"{dropped} proposal(s) of classes the dataset no longer has were left out")

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
        splits={s: len(part.examples) for s, part in judged.items()},
        sources={s: part.origin for s, part in judged.items()},
        notes=notes,
        path=record.path / MINED_FILE,
        by_reason=by_reason,
        filled=filled,
        train_label_errors=len(train_errors),
    )
    write_json(
        record.path / MINED_FILE,
        {
            **result.to_dict(),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "settings": {**settings.__dict__, "iou": iou, "threshold": threshold, "count": count},
        },
    )
    return result
