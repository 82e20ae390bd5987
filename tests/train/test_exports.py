"""The training package's public names, and what importing it costs."""

from __future__ import annotations

import subprocess
import sys

import workbench.train as train


def test_exported_members_resolve():
    assert sorted(train.__all__) == sorted(
        [
            "TrainConfig",
            "TrainSource",
            "source_from_batch",
            "Trainer",
            "train",
            "resume",
            "Callback",
            "RecordingCallback",
            "LoggingCallback",
            "build_model",
            "model_names",
            "load_model",
            "list_runs",
            "load_run",
            "compare_runs",
            "Predictor",
            "export_onnx",
            "NonFiniteLossError",
            "CheckpointError",
            "TrainingStateError",
        ]
    )
    for name in train.__all__:
        assert getattr(train, name) is not None
    try:
        train.nothing_here  # noqa: B018
    except AttributeError as e:
        assert "nothing_here" in str(e)
    else:  # pragma: no cover
        raise AssertionError("unknown attribute resolved")


def test_import_and_run_listing_load_no_torch():
    code = (
        "import sys, workbench.train as t; t.list_runs('.'); t.TrainSource; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'torchvision', 'albumentations'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
