"""The pipe between a training child and its page (workbench.train.process), without training: every
callback event crosses as the parent's callbacks would have heard it in-process; typed records cross as
their JSON; a closed pipe makes the child stop, not fail."""

from __future__ import annotations

import io
import json
import math
import threading
from collections.abc import Iterator, Mapping

from workbench.train.callbacks import RecordingCallback
from workbench.train.process import TrainingProcess, _PipeCallback


class _Typed(Mapping):
    """Stands for a typed run record: a Mapping with ``to_json``."""

    def __init__(self, data: dict) -> None:
        self.data = data

    def to_json(self) -> dict:
        return dict(self.data)

    def __getitem__(self, key: str):
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def test_every_event_reaches_the_parents_callbacks(tmp_path):
    stream = io.StringIO()
    child = _PipeCallback(stream, threading.Event())
    child.on_fit_start({"epochs": 2, "monitor": "accuracy"})
    child.on_epoch_start(1)
    child.on_step(1, 0.5, 0.01, 0.02)
    child.on_epoch_end(_Typed({"epoch": 1, "train_loss": 0.5, "val_loss": math.nan, "accuracy": 0.25}))
    child.on_overfit(1, 1)
    child.on_fit_end({"status": "stopped", "best_epoch": 1})
    heard = RecordingCallback()
    parent = TrainingProcess(tmp_path, "d", {}, tmp_path / "run", callbacks=[heard])
    for line in stream.getvalue().splitlines():
        parent._dispatch(json.loads(line))
    assert heard.events == [
        ("fit_start", {"epochs": 2, "monitor": "accuracy"}),
        ("epoch_start", 1),
        ("step", {"step": 1, "loss": 0.5, "data_time": 0.01, "step_time": 0.02}),
        ("epoch_end", {"epoch": 1, "train_loss": 0.5, "val_loss": None, "accuracy": 0.25}),
        ("overfit", (1, 1)),
        ("fit_end", {"status": "stopped", "best_epoch": 1}),
    ]
    assert parent.events_seen["step"] == 1


def test_a_closed_pipe_stops_the_run_instead_of_failing_it():
    class Closed(io.StringIO):
        def write(self, s: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    stop = threading.Event()
    child = _PipeCallback(Closed(), stop)
    assert not child.should_stop()
    child.on_step(1, 0.5, 0.0, 0.0)  # no exception: the trainer goes on to a clean stop
    assert child.broken and child.should_stop()


def test_an_event_that_is_not_json_is_said_and_skipped(capsys):
    stream = io.StringIO()
    child = _PipeCallback(stream, threading.Event())
    child.on_epoch_end({"epoch": 1, "odd": object()})
    child.on_epoch_start(2)
    assert [json.loads(x)["event"] for x in stream.getvalue().splitlines()] == ["epoch_start"]
    assert "epoch_end event not sent" in capsys.readouterr().err and not child.broken
