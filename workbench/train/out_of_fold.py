"""Out-of-fold predictions for the training split: each example predicted by a model that never saw it.

The training examples are dealt into ``folds`` folds (by example id, round robin); for each fold a model
is trained with the run's own settings on the other folds (the run's val split picks its best epoch) and
predicts the fold, which it treats as its test split. The rows are those a run writes to
``predictions.json``, so the label check (:mod:`.label_check`) reads them like any others. Costs about
``folds - 1`` times the run's training; the fold runs go to a temporary folder that is removed.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..data.records import ClassDef, Example
from ..errors import ValidationError

__all__ = ["out_of_fold_rows"]


def out_of_fold_rows(
    record: Any,
    train: Sequence[Example],
    val: Sequence[Example],
    classes: Sequence[ClassDef],
    load_bytes: Callable[[str], bytes],
    *,
    folds: int = 2,
    device: str = "auto",
) -> list[dict[str, Any]]:
    """Prediction rows for every example of ``train``, each from a model trained without it."""
    from ..runs.folder import read_json
    from ..runs.records import RunParams
    from .config import TrainConfig
    from .source import TrainSource
    from .trainer import Trainer

    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValidationError(f"folds must be an integer >= 2, got {folds!r}", field="folds")
    params = record.run_params or RunParams.from_json(record.params, run_id=record.run_id)
    config = dict(params.config)
    if not config:
        raise ValidationError("run record has no training settings", file=str(record.path / "params.json"),
                              field="config")
    config["device"] = device
    ordered = sorted(train, key=lambda e: e.id)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="workbench-folds-") as tmp:
        for k in range(folds):
            held = {e.id for e in ordered[k::folds]}
            examples = [dataclasses.replace(e, split="test" if e.id in held else "train") for e in ordered]
            examples += [dataclasses.replace(e, split="val") for e in val]
            fold_source = TrainSource(
                examples=examples,
                classes=list(classes),
                dataset_type=str(params.dataset_type or ""),  # a plain str: checkpoints hold plain values
                load_bytes=load_bytes,
                dataset=params.dataset,
            )
            run_dir = Path(tmp) / f"fold-{k}"
            Trainer(TrainConfig.from_dict(config), fold_source, run_dir).fit()
            rows += list(read_json(run_dir / "predictions.json", default=[]))
    return rows
