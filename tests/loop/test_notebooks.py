"""Notebooks as fixtures: parameters cells, no committed outputs, templates in sync with their source."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import papermill
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = (sorted((ROOT / "workbench" / "notebooks").glob("*.ipynb")) + sorted((ROOT / "workbench" / "templates").glob("*/*.ipynb"))
             + sorted((ROOT / "workbench" / "dashboards").glob("*.ipynb")))

EXPECTED = {
    "00_quickstart": {"workspace", "dataset", "sample", "sample_count", "seed"},
    "01_annotate": {"workspace", "out_dir", "dataset", "dataset_type", "sample", "sample_count", "seed",
                    "augment_preset"},
    "02_train": {"workspace", "out_dir", "dataset", "snapshot", "model", "epochs", "batch_size", "lr", "schedule",
                 "seed", "image_size", "augment_preset", "weights", "freeze_backbone", "backbone_lr_scale"},
    "03_evaluate": {"workspace", "out_dir", "dataset", "run", "mine_count"},
    "annotate": {"workspace", "dataset", "user"},
    "review": {"workspace", "user"},
}


def test_every_notebook_is_found():
    assert len(NOTEBOOKS) == 4 + 4 * 3 + 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_parameters_cell(path):
    nb = json.loads(path.read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    assert set(papermill.inspect_notebook(str(path))) == EXPECTED[path.stem]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
    assert "widgets" not in nb["metadata"]


def test_notebooks_match_their_source():
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_notebooks.py"), "--check"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout


@pytest.mark.parametrize("dataset_type", ["classification", "detection", "segmentation", "anomaly"])
def test_a_template_trains_its_types_default_model(dataset_type):
    """A project made by ``workbench new`` trains what ``workbench train`` would: the registry's default model
    for the type (the anomaly template named ``conv-ae`` after ``patchcore-valid`` became the default)."""
    from workbench.train.models import default_model

    params = papermill.inspect_notebook(str(ROOT / "workbench" / "templates" / dataset_type / "02_train.ipynb"))
    assert params["model"]["default"].strip("'\"") == default_model(dataset_type)
