"""Run every speed benchmark, one after the other in fresh processes, and print one table for the README.

    python benchmarks/run_all.py [--quick] [--markdown] [--only startup augment ...] [--out DIR]

Columns: what, figure, reference (measured in the same run, or a fixed target where there is no
reference), ratio, goal, met?. ``--quick`` runs smaller cases (the metrics on 1,000 images instead of
5,000, the store on 10,000 images instead of 100,000, fewer repeats): about 6 minutes here instead of
about 15. Each benchmark writes its rows with ``--json`` (``benchmarks/rows.py``); its printed output is
kept in ``--out`` (``NAME.log``, rows in ``NAME.json``; ``results.json`` and ``results.md`` hold the
table). A benchmark that fails or writes no rows shows as a row saying so. The exit status is 1 when a goal
is missed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.rows import Row, read_rows, table  # noqa: E402


@dataclass(frozen=True)
class Bench:
    """A benchmark script (in this folder, or an absolute path) and its arguments; it takes ``--json OUT``."""

    script: str
    full: list[str]
    quick: list[str]


BENCHES: dict[str, Bench] = {
    "startup": Bench("bench_startup.py", [], ["--repeat", "7", "--voila-repeat", "1"]),
    "augment": Bench("bench_augment.py", [], ["--rounds", "7", "--per-size", "8"]),
    "metrics": Bench("bench_metrics.py", [], ["--images", "1000"]),
    "metrics-in-training": Bench(
        "bench_metrics.py", ["--in-training", "--repeat", "5"], ["--in-training", "--images", "1000", "--repeat", "3"]
    ),
    "training": Bench("bench_training.py", [], ["--epochs", "2", "--repeats", "1"]),
    "canvas": Bench("bench_canvas.py", [], ["--repeat", "5"]),
    "canvas-photo": Bench("bench_canvas_photo.py", [], ["--notches", "20", "--pages", "8"]),
    "store": Bench("bench_store.py", [], ["--images", "10000", "--edits", "100"]),
    "import_lock": Bench("bench_import_lock.py", [], ["--images", "500", "--boxes-per-image", "100"]),
    "import_scale": Bench("bench_import_scale.py", [], ["--images", "2000"]),
    "import_scale-photos": Bench("bench_import_scale.py", ["--photos", "640x480"],
                                 ["--images", "2000", "--photos", "640x480"]),
    "import_pool": Bench("bench_import_pool.py", [], ["--sizes", "200", "1000", "--repeat", "1"]),
    "blob_store": Bench("bench_blob_store.py", [], ["--sizes", "2000", "32768", "65536", "--repeat", "1"]),
    "kernel": Bench("bench_kernel.py", [], ["--epochs", "2"]),
}


def run(name: str, bench: Bench, quick: bool, out: Path) -> list[Row]:
    rows_file = out / f"{name}.json"
    rows_file.unlink(missing_ok=True)  # a file left by an earlier run must not pass for this one's
    args = [*(bench.quick if quick else bench.full), "--json", str(rows_file)]
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(HERE / bench.script), *args], capture_output=True, text=True)
    took = time.monotonic() - t0
    (out / f"{name}.log").write_text(
        proc.stdout + ("\n--- stderr ---\n" + proc.stderr if proc.stderr else "")
    )
    print(
        f"{name}: {took:.0f} s{'' if proc.returncode == 0 else f', FAILED (exit {proc.returncode})'}",
        flush=True,
    )
    if proc.returncode != 0:
        return [
            Row(
                f"{name}: the benchmark failed",
                f"exit {proc.returncode}",
                f"see {out / (name + '.log')}",
                None,
            )
        ]
    try:
        rows = read_rows(rows_file)
    except (OSError, ValueError) as exc:  # missing, not JSON, or not rows (ValidationError)
        why = f"{type(exc).__name__}: {exc}"
        return [Row(f"{name}: no figures read", "-", why, None)]
    if not rows:
        return [Row(f"{name}: no figures read", "-", f"{rows_file} holds no rows", None)]
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="smaller cases, fewer repeats (about 6 minutes here)"
    )
    ap.add_argument("--only", nargs="+", choices=list(BENCHES), help="run only these")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown (for the README)")
    ap.add_argument("--out", type=Path, help="where logs and results go (default: a new temporary folder)")
    args = ap.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="wb-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    for name in args.only or list(BENCHES):
        rows += run(name, BENCHES[name], args.quick, out)
    (out / "results.json").write_text(json.dumps([r.to_dict() for r in rows], indent=2) + "\n")
    (out / "results.md").write_text(table(rows, markdown=True) + "\n")
    print()
    print(table(rows, markdown=args.markdown))
    print(f"\nlogs and results in {out}")
    return 0 if all(r.met is not False for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
