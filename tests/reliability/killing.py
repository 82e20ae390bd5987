"""Kill writers with SIGKILL at random moments and check what each one leaves behind.

A writer is a child process running one operation in a loop (annotating through the canvas state object,
importing COCO folders, snapshotting, training); it prints ``READY`` once set up, and the parent kills it
after a random delay. Before each write the child appends a ``pending`` record to a log and, after the write
returned (committed), a ``done`` record; every record is flushed and fsync'ed. After each kill the parent
opens the workspace and checks:

* SQLite's ``PRAGMA integrity_check`` and foreign keys, and ``Workspace.check()`` (no example whose image
  is missing): the store opens and is sound;
* every ``done`` record is in the store, replayed in order (the store equals the replay); the one record a
  kill can leave ``pending`` is either wholly in the store or wholly absent (then the parent logs what it
  found, so the next round replays it);
* image files no row points at are only leftovers that ``Workspace.gc`` reclaims (never visible examples);
  afterwards the blob folder holds exactly the referenced images and no temp file;
* training: every checkpoint on disk loads, ``last.pt`` is at least as far as the last epoch logged, the
  run record files parse.

``run_kill_loop(root, {"annotate": 12, ...})`` runs it; the CI test and ``scripts/kill_loop.py`` call it.
The operations live in :mod:`tests.reliability.kill_ops`.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
READY = "READY"

__all__ = [
    "EventLog",
    "read_log",
    "Outcome",
    "OpResult",
    "run_child",
    "run_kill_loop",
    "store_checks",
    "format_table",
    "ROOT",
]


class EventLog:
    """Append-only JSON-lines log; every record is written with one ``write`` and fsync'ed."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, record: dict[str, Any]) -> None:
        os.write(self.fd, (json.dumps(record, sort_keys=True) + "\n").encode())
        os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


def read_log(path: Path) -> list[dict[str, Any]]:
    """The log's records. A record torn by the kill (the last line, without its newline) is cut off, so
    records the parent appends afterwards start on a line of their own."""
    path = Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    end = raw.rfind(b"\n") + 1
    if end != len(raw):
        with open(path, "r+b") as fh:
            fh.truncate(end)
    return [json.loads(line) for line in raw[:end].decode().splitlines() if line.strip()]


@dataclass
class Outcome:
    """What one verification found: committed units checked, failures, and counters for the summary."""

    verified: int = 0
    failures: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def fail(self, message: str) -> None:
        self.failures.append(message)


@dataclass
class OpResult:
    op: str
    kills: int = 0
    verified: int = 0
    failures: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def store_checks(ws: Any, out: Outcome) -> None:
    """The store opens sound; unreferenced image files are only gc-able leftovers, then gone."""
    from workbench.data.snapshots import snapshot_blobs

    integrity = [r[0] for r in ws.conn.execute("PRAGMA integrity_check")]
    if integrity != ["ok"]:
        out.fail(f"integrity_check: {integrity[:3]}")
    for problem in ws.check():
        out.fail(f"Workspace.check: {problem}")
    referenced = {r[0] for r in ws.conn.execute("SELECT DISTINCT blob FROM examples")} | snapshot_blobs(
        ws.conn
    )
    rows = {r[0] for r in ws.conn.execute("SELECT hash FROM blobs")}
    if referenced - rows:
        out.fail(f"{len(referenced - rows)} examples point at images with no blob row")
    on_disk = ws.blobs.all()
    out.count("orphan files", len(on_disk - referenced))
    out.count("temp files", len(ws.blobs.temp_files()))
    ws.gc(grace_s=0)
    left = ws.blobs.all()
    if left != referenced:
        out.fail(
            f"after gc: {len(left - referenced)} unreferenced and {len(referenced - left)} missing images"
        )
    if ws.blobs.temp_files():
        out.fail(
            f"after gc: temp files left in the blob folder: {[p.name for p in ws.blobs.temp_files()][:3]}"
        )


def run_child(
    op: str, home: Path, log: Path, seed: int, delay: float, *, ready_timeout: float = 120.0
) -> str | None:
    """Start the writer, wait for READY, sleep ``delay``, SIGKILL it. Returns a failure message or None."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    err_path = Path(home).parent / f"{op}.stderr"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.kill_ops", op, str(home), str(log), str(seed)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        try:
            assert proc.stdout is not None
            readable, _, _ = select.select(
                [proc.stdout], [], [], ready_timeout
            )  # the child prints READY only
            line = proc.stdout.readline() if readable else ""
            if line.strip() != READY:
                proc.kill()
                proc.wait()
                return f"{op} writer never got ready (exit {proc.returncode}): {_tail(err_path)}"
            time.sleep(delay)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()
    if proc.returncode != -signal.SIGKILL:
        return f"{op} writer died by itself (exit {proc.returncode}): {_tail(err_path)}"
    return None


def _tail(path: Path, n: int = 600) -> str:
    text = Path(path).read_text(errors="replace").strip()
    return " | ".join(text[-n:].splitlines()[-6:])


def run_kill_loop(
    root: Path, plan: dict[str, int], *, seed: int = 0, progress: Any = None
) -> dict[str, OpResult]:
    """Kill each operation's writer ``plan[op]`` times, verifying after every kill (see the module doc)."""
    from tests.reliability.kill_ops import OPERATIONS

    rng = random.Random(seed)
    results: dict[str, OpResult] = {}
    for name, kills in plan.items():
        op = OPERATIONS[name]()
        res = results[name] = OpResult(name)
        t0 = time.monotonic()
        base = Path(root) / name
        base.mkdir(parents=True, exist_ok=True)
        home, log = base / "home", base / "log.jsonl"
        op.setup(home, log)
        for i in range(kills):
            lo, hi = op.delay
            problem = run_child(name, home, log, rng.randrange(2**31), rng.uniform(lo, hi))
            res.kills += 1
            out = op.verify(home, log)
            if problem:
                out.fail(problem)
            res.failures += [f"kill {i + 1}: {f}" for f in out.failures]
            res.verified = out.verified  # the whole log is re-verified each time
            for k, v in out.counts.items():
                res.counts[k] = res.counts.get(k, 0) + v if k in op.summed else v
            if progress:
                progress(name, i + 1, kills, out)
        res.seconds = time.monotonic() - t0
    return results


def format_table(results: dict[str, OpResult]) -> str:
    rows = [("operation", "kills", "committed units verified", "failures", "seconds", "notes")]
    for r in results.values():
        notes = ", ".join(f"{k} {v}" for k, v in sorted(r.counts.items()))
        rows.append((r.op, str(r.kills), str(r.verified), str(len(r.failures)), f"{r.seconds:.0f}", notes))
    total = (
        "total",
        str(sum(r.kills for r in results.values())),
        str(sum(r.verified for r in results.values())),
        str(sum(len(r.failures) for r in results.values())),
        f"{sum(r.seconds for r in results.values()):.0f}",
        "",
    )
    rows.append(total)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)
