"""Run a finished run's model on any examples and get prediction rows in ``predictions.json``'s format.

Error mining uses it for the validation split (a run only keeps test predictions). The images go through
the same evaluation pipeline the trainer scored val and test with (the run's resolved augmentation config in
evaluation mode, its image size), so the rows equal what the trainer would have written for them.
Loads torch on call, not on import.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..data.records import Example
from ..errors import ValidationError
from ..progress import ProgressFn, Stage

__all__ = ["predict_examples"]


def predict_examples(
    run: Any,
    examples: Sequence[Example],
    load_bytes: Callable[[str], bytes],
    *,
    device: str = "auto",
    batch_size: int | None = None,
    metrics: dict[str, Any] | None = None,
    progress: ProgressFn | None = None,
) -> list[dict[str, Any]]:
    """Prediction rows of ``run``'s best (else last) checkpoint for ``examples`` (a run folder or RunRecord).

    ``metrics`` feeds the dataset type's result rows (the anomaly threshold); default: the run's test
    metrics. ``progress`` hears of each batch predicted (:mod:`workbench.progress`).
    """
    from ..augment import Augmenter
    from ..runs import RunRecord, load_run
    from .checkpoint import load_model
    from .config import resolve_device
    from .data import VisionDataset, make_loader
    from .progress import CountedLoader
    from .tasks import get_task

    record = run if isinstance(run, RunRecord) else load_run(Path(run))
    if not examples:
        return []
    params = record.params
    source = params.get("source", {})
    resolved = params.get("resolved", {})
    dataset_type = source.get("dataset_type")
    class_names = [c["name"] for c in source.get("classes", [])]
    if not dataset_type or not class_names or "augment" not in resolved or "image_size" not in resolved:
        raise ValidationError(
            "run record lacks the dataset type, classes or resolved pipeline",
            file=str(record.path / "params.json"),
            field="source",
        )
    dev = resolve_device(device)
    model, _ = load_model(record.path, map_location=dev)
    model.to(dev)
    task = get_task(dataset_type)
    data = VisionDataset(
        list(examples),
        dataset_type=dataset_type,
        class_names=class_names,
        load_bytes=load_bytes,
        image_size=int(resolved["image_size"]),
        augmenter=Augmenter(resolved["augment"], dataset_type, for_training=False),
        seed=int(params.get("config", {}).get("seed", 0)),
    )
    size = batch_size or int(params.get("config", {}).get("batch_size", 16))
    loader = make_loader(data, batch_size=size, shuffle=False)
    loader.sampler.set_epoch(0)  # type: ignore[attr-defined]  # an EpochSampler
    stage = Stage(progress, "predict", f"{len(examples)} examples", len(loader), "batches")
    preds = task.predict(model, CountedLoader(loader, stage), dev)
    stage.close()
    used = metrics if metrics is not None else dict(record.metrics.get("test") or {})
    return task.results(preds, list(examples), class_names, used)

