"""Other writers during a long import: the commit latency of one annotation edit, made over and over by this
process while another process imports a generated COCO file of N images x K boxes into the same workspace.

    python benchmarks/bench_import_lock.py --images 2000 --boxes-per-image 100 [--json OUT]

The import runs in short write transactions (``workbench.data.staged``), so an edit waits at most one of
them: the goal is an edit p99 under 100 ms while the import runs. Edits are due every ``INTERVAL_S``, and
an edit's latency counts from when it was due (not from when a stalled loop got round to it), so one long
stall shows as the many edits it held up, not as one slow sample. Also reported: the import's own time, and
the longest write transaction it held (from its progress log).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_store import make_coco  # noqa: E402
from benchmarks.rows import Row, target_row, write_rows  # noqa: E402

INTERVAL_S = 0.025  # one edit due every 25 ms (a busy annotator: 40 edits a second)

IMPORTER = """
import json, sys, time
from workbench.data import Workspace, staged
from workbench.data.transfer import import_source
home, src, images, out = sys.argv[1:5]
holds = []
staged.ON_CHUNK = lambda held_s: holds.append(held_s)
ws = Workspace(home)
t = time.time()
print("start", flush=True)
ds, ids = import_source(ws, "big", src, "coco", images_dir=images)
json.dump({"start": t, "end": time.time(), "examples": len(ids), "holds": holds}, open(out, "w"))
"""


def measure(home: Path, coco: Path, images: Path, *, timeout_s: float = 600.0) -> dict:
    """Import ``coco`` in a subprocess while this process edits one box in a loop; latencies in ms."""
    from workbench.data import Annotation, Workspace

    ws = Workspace(home)
    ds = ws.create_dataset("edits", "detection", classes="a") if not ws.has_dataset("edits") else ws.dataset("edits")
    if not ds.count():
        from workbench.data import ImportBatch, ImportItem

        png = (images / sorted(os.listdir(images))[0]).read_bytes()
        ds.import_batch(ImportBatch(items=[ImportItem("e.png", data=png, annotations=[
            Annotation("box", "a", bbox=(1, 1, 4, 4))])]))
    out = home / "importer.json"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", IMPORTER, str(home), str(coco), str(images), str(out)],
                            stdout=subprocess.PIPE, env=env, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()  # the importer has opened the workspace
    lat: list[tuple[float, float, float]] = []  # (when due, ms from due to committed, ms the call took)
    ex = ds.example_ids()[0]
    k = 0
    deadline = time.time() + timeout_s
    t_first, p_first = time.time(), time.perf_counter()
    while proc.poll() is None and time.time() < deadline:
        due = p_first + k * INTERVAL_S
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        a = ds.example(ex).annotations[0]
        k += 1
        p = time.perf_counter()
        ds.update_annotation(a.id, Annotation("box", "a", bbox=(1 + k % 5, 1, 4, 4), version=a.version), "bench")
        done = time.perf_counter()
        lat.append((t_first + (due - p_first), (done - due) * 1000, (done - p) * 1000))
    proc.wait(timeout=max(1.0, deadline - time.time()))
    if proc.returncode != 0:
        raise RuntimeError(f"the import failed (exit {proc.returncode})")
    info = json.loads(out.read_text())
    during = np.array([(ms, call) for t, ms, call in lat if info["start"] <= t <= info["end"]] or [(0.0, 0.0)])
    ws.close()
    return {"import_s": info["end"] - info["start"], "examples": info["examples"], "edits": len(during),
            "p50_ms": float(np.percentile(during[:, 0], 50)), "p99_ms": float(np.percentile(during[:, 0], 99)),
            "max_ms": float(during[:, 0].max()), "call_p99_ms": float(np.percentile(during[:, 1], 99)),
            "longest_hold_ms": 1000 * max(info["holds"] or [0.0]), "transactions": len(info["holds"])}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--boxes-per-image", type=int, default=100)
    ap.add_argument("--json", type=Path, help="also write the summary rows here (for run_all.py)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        coco = make_coco(root / "src", args.images, args.boxes_per_image)
        r = measure(root / "ws", coco, root / "src" / "images")
    boxes = args.images * args.boxes_per_image
    print(json.dumps(r, indent=2))
    rows = [
        target_row(f"edit commit p99 during a {boxes:,}-box import (other process)", r["p99_ms"], 100.0,
                   f"{r['p99_ms']:.1f} ms", note=f"p50 {r['p50_ms']:.1f} ms, max {r['max_ms']:.1f} ms, "
                   f"{r['edits']} edits"),
        Row(f"import of {boxes:,} boxes in short transactions", f"{r['import_s']:.1f} s", "-", None,
            note=f"{r['transactions']} write transactions, longest {r['longest_hold_ms']:.0f} ms"),
    ]
    if args.json:
        write_rows(args.json, rows)


if __name__ == "__main__":
    main()
