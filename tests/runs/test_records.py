"""Typed run records: run folders written by the version before them (main at cc0ec53, see PROVENANCE) load
into them, round-trip, and bad files fail with the file, the record and the field named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from workbench.errors import ValidationError
from workbench.runs import EpochRecord, Prediction, RunParams, RunSummary, compare_runs, load_run
from workbench.runs.records import TIMING_KEYS

FIXTURES = Path(__file__).parent / "fixtures"
RUNS = ["main-classification", "main-segmentation"]


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("name", RUNS)
def test_a_folder_written_by_the_previous_version_loads_typed(name):
    run = load_run(FIXTURES / name)
    params, summary = run.run_params, run.summary
    assert isinstance(params, RunParams) and isinstance(summary, RunSummary)
    assert params.run_id == name and params.dataset in ("digits", "shapes")
    assert params.dataset_type in ("classification", "segmentation")
    assert params.class_names and params.monitor == summary.monitor
    assert [e.epoch for e in run.epochs] == list(range(1, len(run.epochs) + 1)) and run.epochs
    for e in run.epochs:
        assert isinstance(e, EpochRecord) and e.monitor == params.monitor and e.metric_name == params.monitor
        assert set(e.timing) <= set(TIMING_KEYS) and "images" not in e.metrics
    assert summary.status == run.state == "finished" and summary.best_epoch in [e.epoch for e in run.epochs]
    preds = run.prediction_records()
    raw = json.loads((FIXTURES / name / "predictions.json").read_text())
    assert len(preds) == len(raw) > 0
    assert [p.to_json() for p in preds] == raw  # predictions round-trip byte for byte (as JSON)
    assert run.checkpoints == {}  # the fixture leaves the .pt files out


def test_classification_rows_round_trip_exactly():
    folder = FIXTURES / "main-classification"
    for row in _rows(folder / "history.jsonl"):
        assert EpochRecord.from_json(row).to_json() == row
        assert list(EpochRecord.from_json(row).to_json()) == list(row)  # the same field order
    metrics = json.loads((folder / "metrics.json").read_text())
    assert RunSummary.from_json(metrics).to_json() == metrics
    params = json.loads((folder / "params.json").read_text())
    assert RunParams.from_json(params).to_json() == params
    rows = compare_runs([folder])
    assert rows[0]["test_accuracy"] == metrics["test"]["accuracy"] and rows[0]["type"] == "classification"


def test_old_stat_names_are_read_as_the_current_ones():
    run = load_run(FIXTURES / "main-segmentation")
    old = json.loads((FIXTURES / "main-segmentation" / "metrics.json").read_text())["test"]
    assert "ARs" in old and "AR_small" not in old  # the previous version's name
    test = run.summary.test
    assert test["AR_small"] == old["ARs"] and test["mask_AR_small"] == old["mask_ARs"] and "ARs" not in test
    assert test["mAP_small"] == old["mAP_small"] and test["mask_per_class"] == old["mask_per_class"]
    assert "mask_AR_medium" in run.epochs[0].metrics and "mask_ARm" not in run.epochs[0].metrics
    assert compare_runs([run])[0]["test_AR_small"] == old["ARs"]


def test_a_row_without_monitor_never_makes_a_timing_its_metric():
    from workbench.widgets.curves import metric_of

    row = {"epoch": 3, "train_loss": 0.5, "val_loss": None, "lr": 0.01, "images": 84, "steps": 3,
           "data_time": 0.05, "epoch_time": 0.4}
    rec = EpochRecord.from_json(row)
    assert rec.metric_name is None and rec.metrics == {} and rec.timing["images"] == 84
    assert metric_of(row) == ("", None) and metric_of(rec) == ("", None)
    with_acc = {**row, "accuracy": 0.75}
    assert EpochRecord.from_json(with_acc).metric_name == "accuracy" and metric_of(with_acc) == ("accuracy", 0.75)


def test_curves_of_a_run_folder():
    from workbench.widgets.curves import TrainingCurves

    run = load_run(FIXTURES / "main-classification")
    curves = TrainingCurves.from_run(run)
    assert curves.state.metric == "accuracy" and curves.state.best_epoch == run.summary.best_epoch
    assert curves.state.metric_values() == [e.metrics["accuracy"] for e in run.epochs]


def test_predictions_of_both_shapes_name_their_example():
    coco = Prediction.from_json({"image_id": 4, "category_id": 2, "bbox": [1, 2, 3, 4], "score": 0.5})
    row = Prediction.from_json({"example_id": 4, "label": "cat", "truth": "dog", "probabilities": {"cat": 1}})
    assert coco.example_id == row.example_id == 4 and coco.is_detection and not row.is_detection
    assert coco.bbox == (1.0, 2.0, 3.0, 4.0)


@pytest.mark.parametrize(
    "file, content, field",
    [
        ("history.jsonl", '{"epoch": 1, "train_loss": 0.5}\n{"epoch": "two", "train_loss": 0.4}\n', "epoch"),
        ("history.jsonl", '{"epoch": 1, "train_loss": "low"}\n', "train_loss"),
        ("history.jsonl", '{"epoch": 1, "mode": "sideways"}\n', "mode"),
        ("metrics.json", '{"run_id": "r", "status": "exploded"}', "status"),
        ("metrics.json", '{"run_id": "r", "status": "finished", "overfit_ranges": [[1]]}', "overfit_ranges[0]"),
        ("params.json", '{"run_id": "r", "source": {"dataset_type": "keypoints"}}', "source.dataset_type"),
        ("params.json", '{"run_id": "r", "config": [1, 2]}', "config"),
    ],
)
def test_a_malformed_record_names_file_record_and_field(tmp_path, file, content, field):
    folder = tmp_path / "run"
    shutil.copytree(FIXTURES / "main-classification", folder)
    (folder / file).write_text(content)
    with pytest.raises(ValidationError) as e:
        load_run(folder)
    assert e.value.field == field and e.value.file == str(folder / file)
    if file == "history.jsonl" and "two" in content:
        assert e.value.record == "line 2"


@pytest.mark.parametrize(
    "row, field",
    [
        ({"image_id": 1, "category_id": 1, "bbox": [1, 2, 3], "score": 0.5}, "bbox"),
        ({"image_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}, "category_id"),
        ({"example_id": "7", "label": "a"}, "example_id"),
        ({"label": "a"}, "example_id"),
        ({"example_id": 1, "probabilities": {"a": "high"}}, "probabilities.a"),
    ],
)
def test_a_malformed_prediction_names_its_row(tmp_path, row, field):
    folder = tmp_path / "run"
    shutil.copytree(FIXTURES / "main-classification", folder)
    (folder / "predictions.json").write_text(json.dumps([{"example_id": 1, "label": "a"}, row]))
    with pytest.raises(ValidationError) as e:
        load_run(folder).prediction_records()
    assert e.value.field == field and e.value.record == "prediction 1"
    assert e.value.file == str(folder / "predictions.json")


def test_the_run_records_and_the_coco_conversion_load_without_torch():
    import subprocess
    import sys

    code = (
        "import sys, json\n"
        "import workbench.runs, workbench.data.formats.coco_convert, workbench.data.task_types, workbench.evaluate\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'torchvision', 'plotly', 'ipywidgets', 'albumentations', 'cv2') or m.startswith('workbench.train'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout) == []
