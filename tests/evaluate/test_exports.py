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


def test_every_evaluate_module_imports_without_torch():
    """All of workbench.evaluate (not just the package root) loads no torch: prediction and the out-of-fold
    fold models live in the training layer (workbench.train.predict_rows / mining / out_of_fold)."""
    code = (
        "import importlib, pkgutil, sys, workbench.evaluate as ev\n"
        "names = [m.name for m in pkgutil.iter_modules(ev.__path__, 'workbench.evaluate.')]\n"
        "for n in names: importlib.import_module(n)\n"
        "print(len(names), sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'torchvision'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    count, loaded = out.stdout.strip().split(" ", 1)
    assert int(count) >= 10 and loaded == "[]", out.stdout


def test_no_evaluate_module_names_torch_anywhere():
    """No import of torch or of the training layer in workbench/evaluate, function-local ones included."""
    import ast

    found = []
    for path in sorted((ROOT / "workbench" / "evaluate").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            else:
                continue
            for name in names:
                if name.split(".")[0] in {"torch", "torchvision"} or name.startswith(("..train", "workbench.train")):
                    found.append(f"{path.name}:{node.lineno} {name}")
    assert found == []
