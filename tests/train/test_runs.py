"""Run folders: atomic strict JSON, listing, loading and comparing runs (no torch needed)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from workbench.errors import NotFoundError, ValidationError
from workbench.train.runs import (
    RunPaths,
    compare_runs,
    jsonable,
    list_runs,
    load_run,
    new_run_id,
    read_json,
    read_jsonl,
    write_json,
    write_jsonl,
)


def _fake_run(root, run_id, dataset, created, acc, state="finished"):
    paths = RunPaths(root / run_id)
    write_json(
        paths.params,
        {
            "run_id": run_id,
            "created_at": created,
            "config": {"model": "small-cnn", "image_size": 16},
            "source": {"dataset": dataset, "dataset_type": "classification", "snapshot_id": "s1"},
        },
    )
    write_json(paths.status, {"state": state})
    write_jsonl(paths.history, [{"epoch": 1, "epoch_time": 1.5}, {"epoch": 2, "epoch_time": 2.0}])
    write_json(
        paths.metrics, {"best_epoch": 2, "monitor": "accuracy", "test": {"accuracy": acc, "confusion": [[1]]}}
    )
    return paths


def test_jsonable_and_strict_json(tmp_path):
    value = {
        "a": np.float32(0.5),
        "b": np.int64(3),
        "c": (1, 2),
        "d": float("nan"),
        "e": np.array([1.0, np.inf]),
        "f": tmp_path,
    }
    assert jsonable(value) == {"a": 0.5, "b": 3, "c": [1, 2], "d": None, "e": [1.0, None], "f": str(tmp_path)}
    write_json(tmp_path / "x.json", value)
    text = (tmp_path / "x.json").read_text()
    assert "NaN" not in text and json.loads(text)["d"] is None
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_jsonl_round_trip_and_errors(tmp_path):
    write_jsonl(tmp_path / "h.jsonl", [{"epoch": 1, "loss": math.inf}, {"epoch": 2}])
    assert read_jsonl(tmp_path / "h.jsonl") == [{"epoch": 1, "loss": None}, {"epoch": 2}]
    assert read_jsonl(tmp_path / "missing.jsonl") == []
    (tmp_path / "bad.jsonl").write_text('{"epoch": 1}\n{oops\n')
    with pytest.raises(ValidationError, match="line 2") as info:
        read_jsonl(tmp_path / "bad.jsonl")
    assert info.value.file.endswith("bad.jsonl")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValidationError):
        read_json(tmp_path / "bad.json")
    assert read_json(tmp_path / "none.json", default={}) == {}


def test_list_load_and_compare(tmp_path):
    _fake_run(tmp_path, "r1", "digits", "2025-01-01T00:00:00Z", 0.8)
    _fake_run(tmp_path, "r2", "digits", "2025-01-02T00:00:00Z", 0.9)
    _fake_run(tmp_path, "r3", "shapes", "2025-01-03T00:00:00Z", 0.5, state="failed")
    (tmp_path / "not-a-run").mkdir()
    runs = list_runs(tmp_path)
    assert [r.run_id for r in runs] == ["r3", "r2", "r1"]
    assert [r.run_id for r in list_runs(tmp_path, dataset="digits")] == ["r2", "r1"]
    assert list_runs(tmp_path / "nowhere") == []
    r2 = load_run(tmp_path / "r2")
    assert r2.state == "finished" and r2.dataset == "digits" and len(r2.history) == 2 and not r2.checkpoints
    rows = compare_runs([runs[1], tmp_path / "r1"])
    assert rows[0]["run_id"] == "r2" and rows[0]["test_accuracy"] == 0.9 and rows[1]["test_accuracy"] == 0.8
    assert rows[0]["epochs"] == 2 and rows[0]["train_time_s"] == 3.5 and rows[0]["model"] == "small-cnn"
    assert "test_confusion" not in rows[0]
    with pytest.raises(NotFoundError):
        load_run(tmp_path / "not-a-run")


def test_run_ids_are_unique_and_sortable():
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50
    assert new_run_id("cls").startswith("cls-")
