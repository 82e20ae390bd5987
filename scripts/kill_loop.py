#!/usr/bin/env python
"""Kill Workbench writers with SIGKILL at random moments, many times, and check what they leave.

    .venv/bin/python scripts/kill_loop.py --kills 200 [--seed 0] [--out DIR] [--only annotate,import]

The kills are shared between annotating (canvas state object), importing, snapshotting and training in
the proportions 35 / 30 / 20 / 15. After every kill the workspace is opened and checked (integrity, every
committed edit present, no half import or snapshot, no visible orphan image, every checkpoint loads); see
tests/reliability/killing.py. Prints a table; exits 1 if anything failed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.reliability.killing import format_table, run_kill_loop  # noqa: E402

SHARES = {"annotate": 0.35, "import": 0.30, "snapshot": 0.20, "train": 0.15}


def plan_for(kills: int, only: list[str] | None = None) -> dict[str, int]:
    shares = {k: v for k, v in SHARES.items() if not only or k in only}
    total = sum(shares.values())
    exact = {k: kills * v / total for k, v in shares.items()}
    plan = {k: int(x) for k, x in exact.items()}
    for k in sorted(exact, key=lambda k: plan[k] - exact[k])[: kills - sum(plan.values())]:
        plan[k] += 1  # largest remainders first
    return plan


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="keep the workspaces here (default: a temp folder, removed)")
    ap.add_argument("--only", help="comma-separated operations (annotate, import, snapshot, train)")
    args = ap.parse_args()
    plan = plan_for(args.kills, args.only.split(",") if args.only else None)

    def progress(op: str, i: int, n: int, out) -> None:
        flag = f"  FAILED: {out.failures[0]}" if out.failures else ""
        print(
            f"[{time.strftime('%H:%M:%S')}] {op} kill {i}/{n}: {out.verified} committed units verified{flag}",
            file=sys.stderr,
            flush=True,
        )

    def run(root: Path) -> int:
        results = run_kill_loop(root, plan, seed=args.seed, progress=progress)
        print(format_table(results))
        failures = [f"{r.op}: {f}" for r in results.values() for f in r.failures]
        for f in failures[:20]:
            print("FAILURE", f)
        return 1 if failures else 0

    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        return run(args.out)
    with tempfile.TemporaryDirectory(prefix="kill-loop-") as tmp:
        return run(Path(tmp))


if __name__ == "__main__":
    raise SystemExit(main())
