"""What ``test_distributed`` starts under torchrun: the ``workbench`` command line, plus a test-only model.

``mlp-test`` has no BatchNorm and no dropout, so one step of 2 processes x 16 images computes what one
process computes on those 32 images (DistributedDataParallel averages the gradients): the test can
compare the two runs number for number. Arguments: one ``workbench`` command line per run, separated by
``--next`` (several runs in one torchrun job reuse its process group).

Two test-only options, taken out of a command line before ``workbench`` sees it:

- ``--stop-after-steps N``: the run gets a stop request after its N-th optimizer step (a
  :class:`~workbench.train.callbacks.RecordingCallback` on rank 0, the way a widget's stop button asks),
  so it ends ``stopped`` with the last epoch's checkpoint to resume from.
- ``--writes-log DIR`` (once, anywhere): every file this process creates, writes, renames, removes or
  makes a folder at is recorded (a ``sys.addaudithook`` hook) and written to ``DIR/rank<RANK>.txt`` at the
  end, one path per line, so a test can see which process wrote what.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torch import nn

from workbench.train.models import ModelSpec, register_model
from workbench.train.transfer import BackboneSpec, register_backbone

STOP_OPTION = "--stop-after-steps"
LOG_OPTION = "--writes-log"
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# audit events (https://docs.python.org/3/library/audit_events.html) that change the file system at args[0]
_CHANGING_EVENTS = ("os.rename", "os.remove", "os.mkdir", "os.rmdir", "os.truncate", "shutil.rmtree")


def mlp(num_classes: int, image_size: int) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(), nn.Linear(3 * image_size * image_size, 64), nn.ReLU(), nn.Linear(64, num_classes)
    )


MLP = ModelSpec("mlp-test", "classification", mlp, 16, "test-only MLP: no BatchNorm, no dropout")
MLP_BACKBONE = BackboneSpec(("1.",), description="the first linear layer")  # the head: "3."


def commands(argv: list[str]) -> list[list[str]]:
    runs: list[list[str]] = [[]]
    for arg in argv:
        if arg == "--next":
            runs.append([])
        else:
            runs[-1].append(arg)
    return [r for r in runs if r]


def take_option(command: list[str], name: str) -> tuple[list[str], str | None]:
    """``command`` without ``name VALUE``, and VALUE (None when the option is not there)."""
    if name not in command:
        return command, None
    at = command.index(name)
    return command[:at] + command[at + 2 :], command[at + 1]


class WriteRecorder:
    """Collects the paths this process changes on disk (an audit hook cannot be removed: ``active`` stops it)."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.active = True

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active:
            return
        if event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS
            )
        else:
            path, writing = (args[0] if args else None), event in _CHANGING_EVENTS
        if writing and isinstance(path, (str, bytes, os.PathLike)):
            self.paths.append(os.path.abspath(os.fsdecode(path)))
        if writing and event == "os.rename":
            self.paths.append(os.path.abspath(os.fsdecode(args[1])))

    def dump(self, folder: str) -> None:
        self.active = False
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"rank{os.environ.get('RANK', '0')}.txt").write_text("".join(p + "\n" for p in self.paths))


@contextlib.contextmanager
def stop_after(steps: int | None) -> Iterator[None]:
    """``workbench train`` runs started inside get a stop request after ``steps`` optimizer steps."""
    if steps is None:
        yield
        return
    from workbench.train import from_store
    from workbench.train.callbacks import RecordingCallback

    original = from_store.train_dataset

    def train_dataset(*args: Any, callbacks: Any = (), **kwargs: Any) -> Any:
        return original(*args, callbacks=[*callbacks, RecordingCallback(stop_after_steps=steps)], **kwargs)

    from_store.train_dataset = train_dataset  # the CLI imports it from the module when it runs
    try:
        yield
    finally:
        from_store.train_dataset = original


def run(argv: list[str]) -> int:
    from workbench.cli import main

    argv, log_dir = take_option(argv, LOG_OPTION)
    recorder = WriteRecorder()
    if log_dir is not None:
        sys.addaudithook(recorder)
    try:
        for command in commands(argv):
            command, steps = take_option(command, STOP_OPTION)
            with stop_after(None if steps is None else int(steps)):
                code = main(command)
            if code:
                return code
        return 0
    finally:
        if log_dir is not None:
            recorder.dump(log_dir)


if __name__ == "__main__":
    register_model(MLP)
    register_backbone(MLP.name, MLP_BACKBONE)
    sys.exit(run(sys.argv[1:]))
