"""``mine_run``: gather a run's predictions per split, then mine them (:mod:`workbench.evaluate.review`).

Predictions per split come from, in order: ``predictions=`` given by the caller; the run's
``predictions.json`` (test); the run's checkpoint applied to the split (:func:`.predict_rows.predict_examples`,
when ``predict_missing``). The training split's labels are checked (``check_train``) on the run's model's
predictions or on out-of-fold ones (:mod:`.out_of_fold`). The examples judged are those of the split the run
was trained with (its snapshot, else its directory, else the live dataset), with their current annotations.
Ranking, selection and writing the review directory are the evaluation layer's (torch-free); this module
adds the model calls, which load torch only when a split needs predicting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..data.dataset import Dataset
from ..data.records import ClassDef
from ..evaluate.mined import MiningSettings
from ..evaluate.review import (
    JudgedSplit,
    MiningResult,
    check_request,
    load_record,
    mining_splits,
    review_run,
    split_ids,
)
from ..progress import ProgressFn
from ..runs.folder import RunRecord
from ..runs.records import RunParams, prediction_example_id
from .source import usable_for_training

__all__ = ["mine_run"]

Rows = Sequence[Mapping[str, Any]]


def _given_rows(record: RunRecord, split: str, predictions: Mapping[str, Rows] | None) -> tuple[Rows, str | None]:
    """The rows the caller gave for ``split``, else the run's stored test predictions, else none."""
    if predictions is not None and split in predictions:
        return list(predictions[split]), "given"
    if split == "test" and record.has_predictions:
        return list(record.predictions()), "predictions.json"
    return [], None


def _predicted_split(
    dataset: Dataset,
    record: RunRecord,
    split: str,
    ids: Sequence[int],
    predictions: Mapping[str, Rows] | None,
    *,
    predict_missing: bool,
    device: str,
    notes: list[str],
    progress: ProgressFn | None,
) -> JudgedSplit | None:
    """One split's examples and rows (given, stored or made by the run's model); None, with a note, when
    there are none to judge it by."""
    rows, origin = _given_rows(record, split, predictions)
    row_ids = {i for i in (prediction_example_id(r) for r in rows) if i is not None}
    wanted = sorted(set(ids) | (row_ids if split != "train" else set()))
    examples = [ex for ex in dataset.examples(ids=wanted) if usable_for_training(ex, dataset.type)]
    if origin is not None:
        return JudgedSplit(examples, rows, origin)
    if not (predict_missing and record.checkpoints):
        why = "stored, and no checkpoint to make them" if predict_missing else "stored"
        what = "training labels were not checked" if split == "train" else f"{split} was not mined"
        notes.append(f"no {split} predictions {why}; {what}")
        return None
    from .predict_rows import predict_examples

    summary = record.summary
    test_metrics: dict[str, Any] = dict(summary.test) if summary else {}
    made = predict_examples(record, examples, dataset.load_bytes, device=device, metrics=test_metrics,
                            progress=progress)
    return JudgedSplit(examples, made, "model")


def _out_of_fold_split(
    dataset: Dataset, record: RunRecord, params: RunParams, ids: Sequence[int], folds: int, device: str,
    notes: list[str],
) -> JudgedSplit:
    """The training examples with out-of-fold rows, for the label check."""
    from .out_of_fold import out_of_fold_rows

    dtype = dataset.type
    train = [ex for ex in dataset.examples(ids=ids) if usable_for_training(ex, dtype)]
    val_ids = split_ids(dataset, params, "val", notes)
    val = [ex for ex in dataset.examples(ids=val_ids) if usable_for_training(ex, dtype)]
    colors = {c.name: c.color for c in dataset.classes}
    classes = [ClassDef(name, colors.get(name) or "#808080") for name in params.class_names]
    rows = out_of_fold_rows(record, train, val, classes, dataset.load_bytes, folds=folds, device=device)
    return JudgedSplit(train, rows, "out-of-fold")


def mine_run(
    dataset: Dataset,
    run: Any,
    *,
    count: int = 40,
    directory: str = "review",
    splits: Sequence[str] = ("test", "val"),
    write_proposals: bool = True,
    predictions: Mapping[str, Rows] | None = None,
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
    ``check_train`` checks the training split's labels too (:mod:`workbench.evaluate.label_check`):
    ``"model"`` from the run's best checkpoint's predictions (or ``predictions["train"]``; fast, but the
    model saw those labels), ``"folds"`` from out-of-fold predictions (``folds`` models trained with the
    run's settings, each without the examples it predicts; :mod:`.out_of_fold`), ``"off"`` not at all.
    Doubted labels rank with the errors and appear in ``label_errors``. The directory and all proposals are
    written in one transaction. Returns a :class:`~workbench.evaluate.review.MiningResult`; ``mined.json``
    in the run folder holds the same.
    """
    record = load_record(run)
    params = check_request(dataset, record, count, splits, check_train)
    notes: list[str] = []
    judged: dict[str, JudgedSplit] = {}
    seen: set[int] = set()
    for split in mining_splits(splits, check_train):
        ids = [i for i in split_ids(dataset, params, split, notes) if i not in seen]
        if split == "train" and check_train == "folds" and "train" not in splits:
            part: JudgedSplit | None = _out_of_fold_split(dataset, record, params, ids, folds, device, notes)
        else:
            part = _predicted_split(dataset, record, split, ids, predictions, predict_missing=predict_missing,
                                    device=device, notes=notes, progress=progress)
        if part is None:
            continue
        part = JudgedSplit([ex for ex in part.examples if ex.id not in seen], part.rows, part.origin)
        judged[split] = part
        seen.update(ex.id for ex in part.examples)
    return review_run(dataset, record, params, judged, count=count, directory=directory, splits=splits,
                      write_proposals=write_proposals, iou=iou, settings=settings, notes=notes)
