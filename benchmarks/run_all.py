"""Run every speed benchmark, one after the other in fresh processes, and print one table for the README.

    python benchmarks/run_all.py [--quick] [--markdown] [--only startup augment ...] [--out DIR]

Columns: what, figure, reference (measured in the same run, or a fixed target where there is no
reference), ratio, goal, met?. ``--quick`` runs smaller cases (the metrics on 1,000 images instead of
5,000, the store on 10,000 images instead of 100,000, fewer repeats): about 6 minutes here instead of
about 15. Each benchmark's own output is kept in ``--out`` (``NAME.log``; ``results.json`` and
``results.md`` hold the table). Benchmarks that write rows themselves (``--json``: startup, augment,
metrics) are read as such; the store, training and canvas tables are read from their printed output. The
exit status is 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.rows import Row, read_rows, table  # noqa: E402

FRAME_MS = 1000 / 60  # one frame at 60 Hz: the budget of an interactive redraw


@dataclass(frozen=True)
class Bench:
    script: str
    full: list[str]
    quick: list[str]
    parse: Callable[[str], list[Row]] | None = None  # None: the script writes rows with --json


# ---------------------------------------------------------------------------------------------- parsers
def _number(pattern: str, text: str) -> tuple[float, ...] | None:
    m = re.search(pattern, text, re.MULTILINE)
    return tuple(float(g) for g in m.groups()) if m else None


def _target(name: str, value_ms: float, target_ms: float, shown: str, note: str = "") -> Row:
    return Row(name, shown, f"target < {round(target_ms, 1):g} ms", value_ms / target_ms, "<= 1", note)


def parse_store(out: str) -> list[Row]:
    rows = []
    size = re.search(r"store benchmark: ([\d,]+) images, ([\d,]+) boxes", out)
    scale = f"{size.group(1)} images / {size.group(2)} boxes" if size else "?"
    ref = _number(r"createIndex = ([\d.]+) s", out)
    for label in ("import (read + validate COCO)", "import (store: hash, phash, write, commit)"):
        got = _number(re.escape(label) + r"\s+([\d.]+)s\s+([\d.]+)x", out)
        if got and ref:
            rows.append(
                Row(
                    f"store {label}, {scale}",
                    f"{got[0]:.1f} s",
                    f"{ref[0]:.1f} s (json.load + pycocotools index)",
                    got[1],
                    None,
                )
            )
    first = _number(r"^stats, first after the import[^\d]*([\d.]+)ms", out)
    if first:
        rows.append(
            _target(f"store stats, first after the import, {scale}", first[0], 1000, f"{first[0]:.0f} ms")
        )
    edit = _number(r"^stats after one edit \(p50 / max of 20\)\s+([\d.]+) / ([\d.]+) ms", out)
    if edit:
        rows.append(
            _target(
                f"store stats after one edit, {scale}",
                edit[0],
                200,
                f"{edit[0]:.0f} ms (max {edit[1]:.0f})",
                "p50 of 20",
            )
        )
    opened = _number(r"^open one example \(p50 / p99\)\s+([\d.]+) / ([\d.]+) ms", out)
    if opened:
        rows.append(
            _target(
                f"store open one example, {scale}",
                opened[1],
                5,
                f"{opened[0]:.2f} / {opened[1]:.2f} ms",
                "p50 / p99; goal on p99",
            )
        )
    edits = _number(r"^one annotation edit committed \(p50 / p99\)\s+([\d.]+) / ([\d.]+) ms", out)
    if edits:
        rows.append(
            _target(
                f"store one edit committed, {scale}",
                edits[1],
                5,
                f"{edits[0]:.2f} / {edits[1]:.2f} ms",
                "p50 / p99; goal on p99",
            )
        )
    return rows


def parse_training(out: str) -> list[Row]:
    rows = []
    pattern = r"^(.+?)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)%\s+([\d.]+)%\s*$"
    for m in re.finditer(pattern, out, re.MULTILINE):
        name, _n, bare, ours, ratio, _db, dt = m.groups()
        rows.append(
            Row(
                f"Trainer vs bare torch loop, {name.strip()}",
                f"{float(ours):.0f} img/s",
                f"{float(bare):.0f} img/s (bare loop)",
                float(ratio),
                ">= 0.95",
                f"data loading {dt}% of the trainer's step time",
            )
        )
    return rows


def parse_canvas(out: str) -> list[Row]:
    rows = []
    for m in re.finditer(
        r"^\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$", out, re.MULTILINE
    ):
        n, _open, _scene, ann, _sel, zoom = m.groups()
        rows.append(
            _target(
                f"canvas redraw after an edit, 2,000-px image, {int(n):,} boxes",
                float(ann),
                FRAME_MS,
                f"{float(ann):.2f} ms",
                "annotation layer; one 60 Hz frame",
            )
        )
        rows.append(
            _target(
                f"canvas zoom (3 layers), 2,000-px image, {int(n):,} boxes",
                float(zoom),
                FRAME_MS,
                f"{float(zoom):.2f} ms",
                "one 60 Hz frame",
            )
        )
    hit = _number(r"Hit-test, 1,000 boxes: ([\d.]+) us", out)
    if hit:
        rows.append(_target("canvas hit-test, 1,000 boxes", hit[0] / 1000, 1, f"{hit[0]:.0f} us"))
    store = re.search(r"^\s*sqlite store\s+([\d.\s]+)$", out, re.MULTILINE)
    if store:
        worst = max(float(v) for v in store.group(1).split())
        rows.append(
            _target(
                "canvas edit -> SQLite commit (slowest edit kind)",
                worst,
                5,
                f"{worst:.2f} ms",
                "median of 15 per kind",
            )
        )
    return rows


BENCHES: dict[str, Bench] = {
    "startup": Bench("bench_startup.py", [], ["--repeat", "7", "--voila-repeat", "1"]),
    "augment": Bench("bench_augment.py", [], ["--rounds", "7", "--per-size", "8"]),
    "metrics": Bench("bench_metrics.py", [], ["--images", "1000"]),
    "training": Bench("bench_training.py", [], ["--epochs", "2", "--repeats", "1"], parse_training),
    "canvas": Bench("bench_canvas.py", [], ["--repeat", "5"], parse_canvas),
    "store": Bench("bench_store.py", [], ["--images", "10000", "--edits", "100"], parse_store),
}


def run(name: str, bench: Bench, quick: bool, out: Path) -> list[Row]:
    args = list(bench.quick if quick else bench.full)
    rows_file = out / f"{name}.json"
    if bench.parse is None:
        args += ["--json", str(rows_file)]
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
    rows = read_rows(rows_file) if bench.parse is None else bench.parse(proc.stdout)
    if not rows:
        rows = [
            Row(f"{name}: no figures read", "-", f"output format changed? see {out / (name + '.log')}", None)
        ]
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
