from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import workbench.augment
import workbench.evaluate

ROOT = Path(__file__).resolve().parents[2]

EVALUATE_API = {
    "coco_metrics",
    "CocoResult",
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
    "mine_run",
    "MinedExample",
    "MiningResult",
    "MiningSettings",
}
AUGMENT_API = {
    "validate",
    "to_json",
    "from_json",
    "load",
    "save",
    "set_enabled",
    "set_param",
    "set_image_size",
    "PRESETS",
    "preset",
    "default_preset",
    "preset_names",
    "register_preset",
    "TRANSFORMS",
    "transform_names",
    "transform_spec",
    "build",
    "Augmenter",
    "augmenter",
    "AugmentedSample",
    "sample",
    "draw_seed",
    "box_loss_report",
}


@pytest.mark.parametrize(
    "module,expected", [(workbench.evaluate, EVALUATE_API), (workbench.augment, AUGMENT_API)]
)
def test_public_api_is_pinned(module, expected):
    assert set(module.__all__) == expected
    for name in module.__all__:
        assert hasattr(module, name), name


def test_importing_evaluate_loads_no_heavy_library():
    heavy = ("torch", "sklearn", "pycocotools", "hotcoco", "faster_coco_eval", "albumentations", "plotly")
    code = f"import sys, workbench.evaluate, workbench.augment; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
