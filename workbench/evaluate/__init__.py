"""Evaluation metrics: COCO mAP (equal to pycocotools), classification, anomaly detection, error mining.

No torch here (nothing in this package imports the training layer: ``mine_run``, which predicts with a
run's model, is :func:`workbench.service.mine_run`). Backends (hotcoco, faster-coco-eval, pycocotools) and scikit-learn load on first use.
"""

from __future__ import annotations

from .anomaly import ThresholdChoice, at_threshold, auroc, best_threshold, pixel_auroc
from .classification import (
    ClassificationReport,
    accuracy,
    classification_metrics,
    confusion_matrix,
    top_confusions,
    top_k_accuracy,
)
from .coco import STAT_KEYS, CocoResult, coco_metrics
from .coco_backends import BACKENDS, register_backend
from .coco_columns import DetectionColumns
from .mined import MinedExample, MiningSettings
from .mining import rank_examples
from .review import MiningResult

__all__ = [
    "coco_metrics",
    "CocoResult",
    "DetectionColumns",
    "STAT_KEYS",
    "BACKENDS",
    "register_backend",
    "classification_metrics",
    "ClassificationReport",
    "confusion_matrix",
    "top_confusions",
    "accuracy",
    "top_k_accuracy",
    "auroc",
    "best_threshold",
    "at_threshold",
    "pixel_auroc",
    "ThresholdChoice",
    "rank_examples",
    "MinedExample",
    "MiningResult",
    "MiningSettings",
]
