"""Training in a child process: the page's kernel starts it, hears its events, and outlives it.

:class:`TrainingProcess` runs ``python -m workbench.train.process`` (a fresh interpreter: the kernel that
starts it never imports torch) on one dataset of a workspace, into a run folder chosen up front. The child
trains with :func:`~workbench.train.from_store.train_dataset`, mines the run's errors into the ``review``
directory (``mined.json``), and sends every trainer callback event (fit start, steps, epoch records,
overfitting, fit end) as one JSON line on a pipe; a thread in the parent hands them to the parent's
callbacks (the live curves), so they see what an in-process trainer would have told them.

``request_stop()`` sends SIGTERM, which the child turns into ``Trainer.request_stop()``: the run ends
cleanly after the current step and is still scored and mined. The child stops the same way when the kernel
that started it exits or dies (no page could stop it any more). A child that dies (``kill -9``, out of
memory, a crash in native code) ends the pipe; the parent then reports ``state="died"`` with the signal or
exit code and the tail of the child's stderr, and marks the run folder's ``status.json`` ``failed`` with
that error when the child left it ``running`` (the trainer writes every file atomically, so the folder is
otherwise as the last finished epoch left it, and ``resume_run`` goes on from ``last.pt``).

The parent side imports no torch, no numpy: only the standard library and the run-folder helpers.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..runs.folder import RunPaths, read_json, write_json

__all__ = ["TrainingProcess", "TrainingOutcome", "main"]

_STDERR_LINES = 40
_EVENTS = ("fit_start", "epoch_start", "step", "epoch_end", "overfit", "fit_end")


@dataclass
class TrainingOutcome:
    """How a child training run ended.

    ``state``: the run's final state (``finished``, ``early_stopped``, ``stopped``), ``failed`` (the child
    raised: ``error`` is the exception's message, ``error_type`` its class name) or ``died`` (the child
    ended without a word: killed, out of memory, a native crash; ``error`` says how, with its stderr tail).
    """

    state: str
    run_dir: Path
    returncode: int | None
    summary: dict[str, Any] | None = None
    error: str | None = None
    error_type: str | None = None
    mined: int | None = None

    @property
    def ok(self) -> bool:
        return self.state in ("finished", "early_stopped", "stopped")

    @property
    def run_id(self) -> str:
        return self.run_dir.name


class TrainingProcess:
    """One training run of dataset ``dataset`` (in the workspace at ``home``) in a child process.

    ``config``: a ``TrainConfig``'s ``to_dict()``; ``callbacks``: objects with the trainer callback methods
    (``on_fit_start``, ``on_step``, ``on_epoch_end``...), called from the watcher thread; ``on_end``:
    called there with the :class:`TrainingOutcome` once the child has exited. ``mine``: how many examples to
    mine into the ``review`` directory after training (``0``: none).
    """

    def __init__(
        self,
        home: str | Path,
        dataset: str,
        config: dict[str, Any],
        run_dir: str | Path,
        *,
        directory: str | None = None,
        mine: int = 40,
        callbacks: Sequence[Any] = (),
        on_end: Callable[[TrainingOutcome], Any] | None = None,
        python: str | None = None,
    ) -> None:
        self.home = Path(home)
        self.dataset = dataset
        self.config = dict(config)
        self.run_dir = Path(run_dir)
        self.directory = directory
        self.mine = int(mine)
        self.callbacks = list(callbacks)
        self.on_end = on_end
        self.python = python or sys.executable
        self.proc: subprocess.Popen[bytes] | None = None
        self.thread: threading.Thread | None = None
        self.outcome: TrainingOutcome | None = None
        self.events_seen: collections.Counter[str] = collections.Counter()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        self.stop_requested = False
        self._summary: dict[str, Any] | None = None
        self._error: tuple[str, str] | None = None
        self._mined: int | None = None

    # ------------------------------------------------------------------ control
    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self) -> TrainingProcess:
        """Start the child and the thread that listens to it; returns at once."""
        if self.proc is not None:
            raise RuntimeError("this TrainingProcess was started already")
        read_fd, write_fd = os.pipe()
        args = [
            self.python, "-m", "workbench.train.process",
            "--home", str(self.home), "--dataset", self.dataset, "--run-dir", str(self.run_dir),
            "--config", json.dumps(self.config), "--mine", str(self.mine), "--events-fd", str(write_fd),
        ]
        if self.directory is not None:
            args += ["--directory", self.directory]
        env = dict(os.environ)
        # the child imports this copy of workbench, wherever the parent found it
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        try:
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                pass_fds=(write_fd,), env=env,
            )
        finally:
            os.close(write_fd)  # the child holds the only write end: its exit ends the pipe
        atexit.register(self._at_exit)
        events = os.fdopen(read_fd, "rb")
        self.thread = threading.Thread(target=self._watch, args=(events,), daemon=True,
                                       name=f"training-{self.run_dir.name}")
        self.thread.start()
        return self

    def request_stop(self) -> None:
        """Ask the child to end the run after the current step (it is still scored and mined)."""
        self.stop_requested = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def _at_exit(self) -> None:  # the kernel is shutting down: its child stops too (cleanly)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float | None = None) -> TrainingOutcome | None:
        """Block until the child has exited and its outcome is known (None on timeout)."""
        if self.thread is not None:
            self.thread.join(timeout)
        return self.outcome

    # ------------------------------------------------------------------ the watcher thread
    def _watch(self, events: Any) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        err = threading.Thread(target=self._drain_stderr, args=(self.proc.stderr,), daemon=True)
        err.start()
        with events:
            for line in events:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue  # not ours (nothing else writes to this pipe)
                if isinstance(msg, dict):
                    self._dispatch(msg)
        rc = self.proc.wait()
        atexit.unregister(self._at_exit)
        err.join()
        self.outcome = self._conclude(rc)
        if self.on_end is not None:
            self.on_end(self.outcome)

    def _drain_stderr(self, stream: Any) -> None:
        with stream:
            for raw in stream:
                self.stderr_tail.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def _dispatch(self, msg: dict[str, Any]) -> None:
        event, data = msg.get("event"), msg.get("data")
        self.events_seen[str(event)] += 1
        if event in _EVENTS:
            args = data if isinstance(data, list) and event in ("step", "overfit") else [data]
            for cb in self.callbacks:
                method = getattr(cb, "on_" + str(event), None)
                if method is not None:
                    method(*args)
        elif event == "done":
            self._summary = data
        elif event == "mined" and isinstance(data, int):
            self._mined = data
        elif event == "error" and isinstance(data, dict):
            self._error = (str(data.get("type", "")), str(data.get("message", "")))

    def _conclude(self, rc: int) -> TrainingOutcome:
        if self._summary is not None and rc == 0:
            return TrainingOutcome(str(self._summary.get("status", "finished")), self.run_dir, rc,
                                   summary=self._summary, mined=self._mined)
        if self._error is not None:
            return TrainingOutcome("failed", self.run_dir, rc, error=self._error[1], error_type=self._error[0])
        if rc < 0:
            try:
                how = f"killed by {signal.Signals(-rc).name}"
            except ValueError:
                how = f"killed by signal {-rc}"
        else:
            how = f"exited with code {rc}"
        tail = [t for t in self.stderr_tail if t.strip()][-5:]
        error = f"the training process ({self.pid}) {how}" + (": " + " / ".join(tail) if tail else "")
        self._mark_failed(error)
        outcome = TrainingOutcome("died", self.run_dir, rc, error=error)
        if self.events_seen["fit_start"] and not self.events_seen["fit_end"]:
            for cb in self.callbacks:  # the curves end as failed, not "training" for ever
                method = getattr(cb, "on_fit_end", None)
                if method is not None:
                    method({"status": "failed", "error": error})
        return outcome

    def _mark_failed(self, error: str) -> None:
        """The run folder says ``failed`` with ``error`` where the dead child left it ``running``."""
        paths = RunPaths(self.run_dir)
        if not paths.params.is_file():
            return  # died before the run folder was started: nothing to correct
        try:
            status = read_json(paths.status, {}) or {}
        except Exception:
            status = {}
        if status.get("state") not in (None, "running"):
            return
        write_json(paths.status, {**status, "state": "failed", "error": error})


# ---------------------------------------------------------------------- the child
class _PipeCallback:
    """The child's side: every callback event as one JSON line. When the parent is gone (the pipe closed,
    or the child re-parented) the run ends as a stop does: cleanly, scored, into its folder."""

    trainer: Any = None

    def __init__(self, stream: Any, stop: threading.Event) -> None:
        self.stream = stream
        self.stop = stop
        self.broken = False
        self.parent = os.getppid()

    def send(self, event: str, data: Any) -> None:
        if self.broken:
            return
        from ..runs.folder import jsonable

        if hasattr(data, "to_json"):  # typed run records
            data = data.to_json()
        elif isinstance(data, Mapping):
            data = dict(data)
        try:
            line = json.dumps({"event": event, "data": jsonable(data)}, allow_nan=False) + "\n"
        except (TypeError, ValueError) as e:  # an event the page cannot be told: said, the run goes on
            print(f"workbench: {event} event not sent to the page ({e})", file=sys.stderr)
            return
        try:
            self.stream.write(line)
            self.stream.flush()
        except (BrokenPipeError, OSError, ValueError):
            self.broken = True

    def on_fit_start(self, info: dict[str, Any]) -> None:
        self.send("fit_start", info)

    def on_epoch_start(self, epoch: int) -> None:
        self.send("epoch_start", epoch)

    def on_step(self, step: int, loss: float, data_time: float, step_time: float) -> None:
        self.send("step", [step, loss, data_time, step_time])

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        self.send("epoch_end", record)

    def on_overfit(self, start_epoch: int, end_epoch: int) -> None:
        self.send("overfit", [start_epoch, end_epoch])

    def on_fit_end(self, summary: dict[str, Any]) -> None:
        self.send("fit_end", summary)

    def should_stop(self) -> bool:
        # SIGTERM (the Stop button), or the kernel that started this run is gone (no one can stop it then)
        return self.stop.is_set() or self.broken or os.getppid() != self.parent


def main(argv: Sequence[str] | None = None) -> int:
    """The child: ``python -m workbench.train.process --home H --dataset D --run-dir R --config JSON``."""
    p = argparse.ArgumentParser(prog="python -m workbench.train.process")
    p.add_argument("--home", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--directory", default=None)
    p.add_argument("--mine", type=int, default=40)
    p.add_argument("--events-fd", type=int, required=True)
    args = p.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _sig, _frame: stop.set())
    pipe = _PipeCallback(os.fdopen(args.events_fd, "w", encoding="utf-8"), stop)
    try:
        from ..data.workspace import Workspace
        from .config import TrainConfig
        from .from_store import train_dataset

        with Workspace(args.home) as ws:
            summary = train_dataset(ws, args.dataset, TrainConfig.from_dict(json.loads(args.config)),
                                    directory=args.directory, callbacks=[pipe], run_dir=args.run_dir)
            if args.mine > 0:
                from .mining import mine_run

                result = mine_run(ws.dataset(args.dataset), summary["run_dir"], count=args.mine)
                pipe.send("mined", len(result.selected))
        pipe.send("done", summary)
        return 0
    except BaseException as e:  # the parent shows the message; the traceback goes to stderr
        pipe.send("error", {"type": type(e).__name__, "message": str(e)})
        import traceback

        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
