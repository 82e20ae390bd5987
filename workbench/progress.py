"""Progress as typed events, and the terminal renderer the CLI draws them with.

Library code never prints: a long operation (import, export, training steps, evaluation, mining, a loop
step) takes an optional ``progress`` callable and calls it with :class:`Progress` records. A widget
subscribes, a notebook prints, the CLI hands in a :class:`ProgressPrinter`, which draws a bar when its
stream is a terminal and writes one plain line every few seconds (and one at the end of each stage) when it
is not (a log file, a pipe, a papermill kernel). Everything goes to stderr, so ``--json`` output stays
the only thing on stdout.

``WORKBENCH_PROGRESS_SECONDS`` sets the seconds between plain lines (default 5; 0 writes every event).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

__all__ = ["Progress", "ProgressFn", "Stage", "ProgressPrinter", "progress_seconds"]


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` (None: not known) ``unit`` in ``stage`` of ``task``; ``final`` ends the stage."""

    task: str
    stage: str
    done: int
    total: int | None = None
    unit: str = "items"
    detail: str = ""
    final: bool = False

    def __post_init__(self) -> None:
        if self.done < 0 or (self.total is not None and self.total < 0):
            raise ValueError(f"progress counts must not be negative: {self.done}/{self.total}")

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


ProgressFn = Callable[[Progress], None]


class Stage:
    """Reports one stage: ``advance()`` per item, ``close()`` at the end (idempotent). A None callable
    makes every call a no-op, so library code can report unconditionally."""

    def __init__(self, progress: ProgressFn | None, task: str, stage: str, total: int | None,
                 unit: str = "items") -> None:
        self.progress, self.task, self.stage, self.total, self.unit = progress, task, stage, total, unit
        self.done = 0
        self.closed = False
        self._emit(False)

    def _emit(self, final: bool, detail: str = "") -> None:
        if self.progress is not None:
            self.progress(Progress(self.task, self.stage, self.done, self.total, self.unit, detail, final))

    def advance(self, n: int = 1, detail: str = "") -> None:
        self.done += n
        self._emit(False, detail)

    def close(self, detail: str = "") -> None:
        if not self.closed:
            self.closed = True
            self._emit(True, detail)


def progress_seconds(default: float = 5.0) -> float:
    """Seconds between plain progress lines: ``WORKBENCH_PROGRESS_SECONDS`` or ``default``."""
    raw = os.environ.get("WORKBENCH_PROGRESS_SECONDS")
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        return default
    return value if value >= 0 else default


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class ProgressPrinter:
    """Draws :class:`Progress` events on ``stream`` (default: stderr at call time).

    On a terminal: one bar per stage, redrawn at most ten times a second, left in place when the stage
    ends. Otherwise: a line when a stage starts, one every ``interval`` seconds while it runs, and one
    when it ends (with its time), so a log shows that work goes on.
    """

    def __init__(self, stream: IO[str] | None = None, *, tty: bool | None = None,
                 interval: float | None = None, width: int = 24) -> None:
        self._stream = stream
        self._tty = tty
        self.interval = progress_seconds() if interval is None else interval
        self.width = width
        self._key: tuple[str, str] | None = None
        self._starts: dict[tuple[str, str], float] = {}  # open stages' start times (one may pause another)
        self._started = 0.0
        self._last = 0.0
        self._drawn = False  # a bar is on the current terminal line

    @property
    def stream(self) -> IO[str]:
        return self._stream if self._stream is not None else sys.stderr

    @property
    def tty(self) -> bool:
        if self._tty is not None:
            return self._tty
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def __call__(self, event: Progress) -> None:
        now = time.monotonic()
        key = (event.task, event.stage)
        if key != self._key:  # a stage another interrupted (training, then its validation) keeps its start
            self._end_line()
            if len(self._starts) > 64:
                self._starts.clear()
            self._key, self._started, self._last = key, self._starts.setdefault(key, now), float("-inf")
        if event.final:
            self._starts.pop(key, None)
        if self.tty:
            if event.final or now - self._last >= 0.1:
                self._last = now
                self._write("\r" + self._text(event, now) + "\033[K")
                self._drawn = True
            if event.final:
                self._end_line()
                self._key = None
        elif event.final or now - self._last >= self.interval:
            self._last = now
            self._write(self._text(event, now) + "\n")
            if event.final:
                self._key = None

    def line(self, text: str) -> None:
        """A whole line of text (a loop step's output), below any bar."""
        self._end_line()
        self._write(text.rstrip("\n") + "\n")

    def _end_line(self) -> None:
        if self._drawn:
            self._write("\n")
            self._drawn = False

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _text(self, e: Progress, now: float) -> str:
        elapsed = now - self._started
        parts = [f"{e.task}: {e.stage}"]
        frac = e.fraction
        if self.tty and frac is not None:
            filled = int(self.width * frac)
            parts.append("[" + "#" * filled + "." * (self.width - filled) + "]")
        count = f"{e.done}/{e.total}" if e.total is not None else f"{e.done}"
        parts.append(f"{count} {e.unit}" + (f" ({100 * frac:.0f}%)" if frac is not None else ""))
        if e.final:
            parts.append(f"done in {elapsed:.1f} s")
        elif elapsed > 0 and e.done:
            rate = e.done / elapsed
            parts.append(f"{rate:.1f} {e.unit}/s" if rate < 100 else f"{rate:.0f} {e.unit}/s")
            if e.total and rate > 0:
                parts.append(f"ETA {_clock((e.total - e.done) / rate)}")
        if e.detail:
            parts.append(e.detail)
        return "  ".join(parts)
