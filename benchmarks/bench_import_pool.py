"""Threads or worker processes for an import's image checks, by import size: what ``image_pool``'s
``PROCESS_MIN_IMAGES`` (the size from which ``auto`` takes processes) is set from.

For each kind of image (32x24 PNGs; 320x240 photo JPEGs: ``bench_import_scale.py``'s sets) and each size,
the same COCO file is imported into a fresh workspace in a fresh process with ``WORKBENCH_IMPORT_POOL=thread``
and ``=process`` in turn (``--repeat`` rounds, best of each), and the ratio printed: below 1, processes are
faster at that size.

    python benchmarks/bench_import_pool.py [--sizes 500 1000 2000 4000] [--repeat 2] [--data DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_import_scale import make_coco_photos  # noqa: E402
from benchmarks.bench_store import make_coco  # noqa: E402
from benchmarks.rows import Row, table, write_rows  # noqa: E402

RUN = """
import sys, time
sys.path.insert(0, {root!r})
import numpy, PIL.Image
from workbench.data import Workspace
from workbench.data.transfer import import_source
t = time.perf_counter()
with Workspace({home!r}) as ws:
    import_source(ws, "d", {ann!r}, "coco", images_dir={imgs!r})
print(time.perf_counter() - t)
"""


def _subset(full: dict, n: int, path: Path) -> Path:
    images = full["images"][:n]
    ids = {im["id"] for im in images}
    path.write_text(json.dumps({"images": images, "annotations": [a for a in full["annotations"] if a["image_id"] in ids],
                                "categories": full["categories"]}))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000, 4000])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--data", type=Path, help="keep the generated sets here (reused when present)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench_import_pool_"))
    data = args.data or tmp / "data"
    n_max = max(args.sizes)
    sets = {"32x24 PNGs": data / "png", "320x240 photo JPEGs": data / "jpg"}
    for name, folder in sets.items():
        if not (folder / "annotations.json").is_file():
            if name.endswith("PNGs"):
                make_coco(folder, n_max, 10)
            else:
                make_coco_photos(folder, n_max, 10, (320, 240))
        for p in (folder / "images").iterdir():  # into the page cache
            p.read_bytes()
    rows = []
    for name, folder in sets.items():
        full = json.loads((folder / "annotations.json").read_text())
        for n in args.sizes:
            ann = _subset(full, n, tmp / f"{folder.name}_{n}.json")
            best: dict[str, float] = {}
            for r in range(args.repeat):
                for kind in ("thread", "process"):
                    code = RUN.format(root=str(ROOT), home=str(tmp / f"ws_{folder.name}_{n}_{kind}_{r}"), ann=str(ann),
                                      imgs=str(folder / "images"))
                    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                          env={**os.environ, "WORKBENCH_IMPORT_POOL": kind})
                    if proc.returncode != 0:
                        raise RuntimeError(proc.stderr[-3000:])
                    best[kind] = min(best.get(kind, float("inf")), float(proc.stdout.strip().splitlines()[-1]))
            ratio = best["process"] / best["thread"]
            print(f"{name:>20} {n:>6} images: threads {best['thread']:6.2f} s, processes {best['process']:6.2f} s,"
                  f" processes / threads {ratio:.2f}", flush=True)
            rows.append(Row(f"import {n:,} {name} (10 boxes each): worker processes over threads",
                            f"{best['process']:.2f} s", f"threads {best['thread']:.2f} s", ratio, None,
                            "below 1: processes faster"))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{cores} cores, load {load:.1f}")
    print(table(rows))
    if args.json:
        write_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
