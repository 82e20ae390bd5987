"""What differs between dataset types during training: losses, predictions, metrics, result files.

One :class:`Task` per dataset type, in a registry (``TASKS``); the trainer calls the same methods for all.
Predictions are kept per example in the example's original pixel coordinates, so metrics compare against
the stored ground truth, not the resized training view.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.formats.coco_convert import detection_json, ground_truth
from ..data.records import ANOMALY_CLASSES, Example
from ..data.task_types import TaskType, task_type
from .masks import mask_to_coco_rle

__all__ = ["Task", "TASKS", "get_task", "frozen_batchnorm", "to_device"]


def to_device(batch: Any, device: str) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


@contextlib.contextmanager
def frozen_batchnorm(model: nn.Module) -> Iterator[None]:
    """Train mode (so detectors return losses) with BatchNorm layers in eval mode (running stats kept)."""
    was_training = model.training
    model.train()
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.eval()
    try:
        yield
    finally:
        model.train(was_training)


class Task:
    """Base: classification-like behaviour (stacked batches, cross-entropy)."""

    dataset_type: str = ""
    monitor = "val_loss"
    mode = "max"

    def train_examples(self, examples: Sequence[Example]) -> list[Example]:
        return list(examples)

    def monitor_for(self, val_examples: Sequence[Example]) -> tuple[str, str]:
        """The metric to monitor and ``max``/``min``; falls back to val loss when val cannot score."""
        if not val_examples:
            return "train_loss", "min"
        return self.monitor, self.mode

    def batch_size(self, batch: Any) -> int:
        return len(batch[0])

    def loss(self, model: nn.Module, batch: Any, device: str) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def val_loss(self, model: nn.Module, loader: Any, device: str) -> float | None:
        model.eval()
        total, n = 0.0, 0
        for batch in loader:
            size = self.batch_size(batch)
            total += float(self.loss(model, batch, device)) * size
            n += size
        return total / n if n else None

    def end_train_epoch(self, model: nn.Module) -> Any:
        """Called after each training epoch's steps (a feature-memory model fits its memory here)."""
        return None

    def predict(self, model: nn.Module, loader: Any, device: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def evaluate(
        self,
        predictions: list[dict[str, Any]],
        examples: Sequence[Example],
        class_names: Sequence[str],
        reference: dict[str, Any] | None = None,
        detailed: bool = False,
    ) -> dict[str, Any]:
        """Metrics of ``predictions``; ``reference`` is the best val record (for choices made on val),
        ``detailed`` adds per-class numbers and the like (the final test report)."""
        raise NotImplementedError

    def results(
        self,
        predictions: list[dict[str, Any]],
        examples: Sequence[Example],
        class_names: Sequence[str],
        metrics: dict[str, Any],
    ) -> list[dict[str, Any]]:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------- classification
class ClassificationTask(Task):
    dataset_type = TaskType.CLASSIFICATION
    monitor = "accuracy"

    def loss(self, model, batch, device):
        x, y = to_device(batch, device)
        return nn.functional.cross_entropy(model(x), y)

    @torch.no_grad()
    def predict(self, model, loader, device):
        model.eval()
        out: list[dict[str, Any]] = []
        examples = loader.dataset.examples
        for x, _ in loader:
            probs = torch.softmax(model(x.to(device)), dim=1).cpu().numpy()
            for p in probs:
                out.append({"example_id": examples[len(out)].id, "probabilities": p})
        return out

    def evaluate(self, predictions, examples, class_names, reference=None, detailed=False):
        from ..evaluate import classification_metrics

        truth = [ex.label for ex in examples]
        predicted = [class_names[int(np.argmax(p["probabilities"]))] for p in predictions]
        report = classification_metrics(truth, predicted, list(class_names))
        out: dict[str, Any] = {"accuracy": report.accuracy, "macro_f1": report.macro_f1}
        if detailed:
            out.update({k: v for k, v in report.as_dict().items() if k not in out})
            out["top_confusions"] = report.top_confusions()
        return out

    def results(self, predictions, examples, class_names, metrics):
        rows = []
        for ex, p in zip(examples, predictions, strict=True):
            probs = p["probabilities"]
            rows.append(
                {
                    "example_id": ex.id,
                    "file_name": ex.file_name,
                    "label": class_names[int(np.argmax(probs))],
                    "truth": ex.label,
                    "probabilities": {c: round(float(v), 6) for c, v in zip(class_names, probs, strict=True)},
                }
            )
        return rows


# ---------------------------------------------------------------------------------------------- detection
class DetectionTask(Task):
    dataset_type = TaskType.DETECTION
    monitor = "mAP"
    masks = False

    def loss(self, model, batch, device):
        images, targets = to_device(batch, device)
        losses = model(list(images), list(targets))
        return sum(losses.values())

    @torch.no_grad()
    def val_loss(self, model, loader, device):
        with frozen_batchnorm(model):
            total, n = 0.0, 0
            for batch in loader:
                size = self.batch_size(batch)
                total += float(self.loss(model, batch, device)) * size
                n += size
        return total / n if n else None

    @torch.no_grad()
    def predict(self, model, loader, device):
        model.eval()
        out: list[dict[str, Any]] = []
        examples = loader.dataset.examples
        size = loader.dataset.image_size
        for images, _ in loader:
            for det in model([im.to(device) for im in images]):
                ex = examples[len(out)]
                sx, sy = ex.width / size, ex.height / size
                b = det["boxes"].cpu().numpy().astype(np.float64)
                b[:, [0, 2]] *= sx
                b[:, [1, 3]] *= sy
                pred = {
                    "example_id": ex.id,
                    "boxes": np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)
                    if len(b)
                    else np.zeros((0, 4)),
                    "scores": det["scores"].cpu().numpy().astype(np.float64),
                    "labels": det["labels"].cpu().numpy().astype(np.int64) - 1,
                }
                if self.masks:
                    pred["masks"] = self._masks(det, ex)
                out.append(pred)
        return out

    @staticmethod
    def _masks(det: dict[str, torch.Tensor], ex: Example) -> list[dict[str, Any]]:
        m = det.get("masks")
        if m is None or len(m) == 0:
            return []
        full = (
            nn.functional.interpolate(
                m.float().cpu(), size=(ex.height, ex.width), mode="bilinear", align_corners=False
            )[:, 0]
            > 0.5
        )
        return [mask_to_coco_rle(x) for x in full.numpy().astype(np.uint8)]

    def results(self, predictions, examples, class_names, metrics):
        return [
            detection_json(
                p["example_id"],
                p["labels"][k],
                p["boxes"][k],
                p["scores"][k],
                p["masks"][k] if self.masks else None,
            )
            for p in predictions
            for k in range(len(p["scores"]))
        ]

    def columns(self, predictions: list[dict[str, Any]]) -> Any:
        """The predictions as ``DetectionColumns`` (no dict per detection), rounded as ``results`` rounds
        them (boxes to 1/1000 px, scores to 6 places), so the numbers equal those of the written rows."""
        from ..evaluate import DetectionColumns
        from ..evaluate.coco_columns import round_like_python

        ids, counts, labels, scores, boxes, masks = [], [], [], [], [], []
        for p in predictions:
            ids.append(p["example_id"])
            counts.append(len(p["scores"]))
            labels.append(p["labels"])
            scores.append(p["scores"])
            boxes.append(np.asarray(p["boxes"], dtype=np.float64).reshape(-1, 4))
            if self.masks:
                masks.extend(p["masks"])
        n = sum(counts)
        return DetectionColumns(
            image_id=np.repeat(np.array(ids, dtype=np.int64), counts),
            category_id=(np.concatenate(labels).astype(np.int64) if n else np.zeros(0, np.int64)) + 1,
            score=round_like_python(np.concatenate(scores) if n else np.zeros(0), 6),
            bbox=round_like_python(np.concatenate(boxes) if n else np.zeros((0, 4)), 3),
            segmentation=masks if self.masks else None,
        )

    def evaluate(self, predictions, examples, class_names, reference=None, detailed=False):
        from ..evaluate import coco_metrics

        gt = ground_truth(examples, class_names, segmentation=self.masks)
        dt = self.columns(predictions)
        out: dict[str, Any] = {}
        for iou_type, prefix in (("bbox", ""), ("segm", "mask_"))[: 2 if self.masks else 1]:
            # the ground truth comes from the store, checked when it was written: only detections are checked
            result = coco_metrics(gt, dt, iou_type, per_class=detailed, gt_checked=True)
            out.update(result.run_stats(prefix))
            if detailed:
                out[prefix + "per_class"] = result.per_class
        out["detections"] = len(dt)
        return out


class SegmentationTask(DetectionTask):
    dataset_type = TaskType.SEGMENTATION
    monitor = "mask_mAP"
    masks = True


# ---------------------------------------------------------------------------------------------- anomaly
class AnomalyTask(Task):
    """Train on good images only; val loss is the reconstruction error of good val images."""

    dataset_type = TaskType.ANOMALY
    monitor = "auroc"

    def train_examples(self, examples):
        return [ex for ex in examples if ex.label == ANOMALY_CLASSES[0]]

    def monitor_for(self, val_examples):
        labels = {ex.label for ex in val_examples}
        if set(ANOMALY_CLASSES) <= labels:
            return "auroc", "max"
        return ("val_loss", "min") if ANOMALY_CLASSES[0] in labels else ("train_loss", "min")

    def loss(self, model, batch, device):
        x, _ = to_device(batch, device)
        inner = getattr(model, "module", model)  # a DDP wrapper's model
        if hasattr(inner, "observe"):  # a feature-memory model: collect, no gradient (a loss of 0)
            inner.observe(x)
            return torch.zeros((), device=x.device)
        return nn.functional.mse_loss(model(x), x)

    def end_train_epoch(self, model):
        """A feature-memory model builds its memory bank from what the epoch collected."""
        inner = getattr(model, "module", model)
        return inner.finalize() if hasattr(inner, "finalize") else None

    @torch.no_grad()
    def val_loss(self, model, loader, device):
        """Reconstruction error of the good val images; for a feature-memory model their mean score."""
        model.eval()
        total, n = 0.0, 0
        embedding = hasattr(model, "observe")
        for x, y in loader:
            good = x[y == 0].to(device)
            if len(good):
                value = model(good)[0].mean() if embedding else nn.functional.mse_loss(model(good), good)
                total += float(value) * len(good)
                n += len(good)
        return total / n if n else None

    @torch.no_grad()
    def predict(self, model, loader, device):
        """One score per example; a feature-memory model adds its anomaly map at the input size."""
        from .autoencoder import anomaly_scores

        model.eval()
        out: list[dict[str, Any]] = []
        examples = loader.dataset.examples
        embedding = hasattr(model, "observe")
        for x, _ in loader:
            if embedding:
                scores, maps = model(x.to(device))
                for s, m in zip(scores.cpu().numpy(), maps.cpu().numpy(), strict=True):
                    out.append({"example_id": examples[len(out)].id, "score": float(s), "map": m})
                continue
            for s in anomaly_scores(model, x.to(device)).cpu().numpy():
                out.append({"example_id": examples[len(out)].id, "score": float(s)})
        return out

    def evaluate(self, predictions, examples, class_names, reference=None, detailed=False):
        """AUROC, and F1 / precision / recall at a threshold: the best-F1 one on val, the val one on test."""
        from ..evaluate import at_threshold, auroc, best_threshold

        truth = [int(ex.label == ANOMALY_CLASSES[1]) for ex in examples]
        scores = [p["score"] for p in predictions]
        both = len(set(truth)) == 2
        out: dict[str, Any] = {"auroc": auroc(truth, scores) if both else None}
        threshold = None if reference is None else reference.get("threshold")
        if threshold is None and both:
            threshold = best_threshold(truth, scores).threshold
        if threshold is not None and truth:
            at = at_threshold(truth, scores, threshold)
            out.update({k: at[k] for k in ("threshold", "f1", "precision", "recall", "accuracy")})
            if detailed:
                out.update({k: at[k] for k in ("tp", "fp", "fn", "tn")})
        if detailed and both and predictions and all("map" in p for p in predictions):
            from ..evaluate import pixel_auroc
            from .anomaly_maps import has_regions, resize_map, truth_mask

            if has_regions(examples):
                out["pixel_auroc"] = pixel_auroc(
                    [truth_mask(ex) for ex in examples],
                    [resize_map(p["map"], ex.height, ex.width) for ex, p in zip(examples, predictions, strict=True)],
                )
        return out

    def results(self, predictions, examples, class_names, metrics):
        """Rows with score and label; a map-producing model adds ``map`` and, above the threshold,
        ``region`` (see :mod:`workbench.train.anomaly_maps`)."""
        from .anomaly_maps import compact_map, map_region, resize_map

        thr = metrics.get("threshold")
        rows = []
        for ex, p in zip(examples, predictions, strict=True):
            row = {
                "example_id": ex.id,
                "file_name": ex.file_name,
                "score": round(p["score"], 8),
                "label": None if thr is None else ANOMALY_CLASSES[int(p["score"] >= thr)],
                "truth": ex.label,
            }
            if "map" in p:
                row["map"] = compact_map(p["map"])
                if thr is not None and p["score"] >= thr:
                    row["region"] = map_region(resize_map(p["map"], ex.height, ex.width), thr)
            rows.append(row)
        return rows


TASKS: dict[str, Task] = {
    t.dataset_type: t for t in (ClassificationTask(), DetectionTask(), SegmentationTask(), AnomalyTask())
}


def get_task(dataset_type: str) -> Task:
    return TASKS[task_type(dataset_type)]
