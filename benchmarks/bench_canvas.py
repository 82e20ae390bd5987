"""How fast the annotation canvas redraws and saves, without a browser.

    .venv/bin/python benchmarks/bench_canvas.py [--repeat 20] [--json OUT]

Redraw: the time to build a layer's display list and turn it into ipycanvas draw commands inside
``hold_canvas`` (serialised into the one message ipycanvas would send; no browser receives it), for 10 /
100 / 1,000 boxes on a 2,000 x 2,000 image. Hit-test: one click over 1,000 boxes. Edit latency: from the
pointer release (or key press) to the store call returning, with the in-memory sink and with the real
SQLite store (one committed transaction per edit).

``--json OUT`` writes the rows ``run_all.py`` collects (``benchmarks/rows.py``), each against a fixed
target: per box count, the annotation-layer redraw after an edit and the three-layer zoom redraw (one 60 Hz
frame each); the hit-test (< 1 ms); the slowest kind of edit committed to SQLite (< 5 ms).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.rows import Row, target_row, write_rows  # noqa: E402
from workbench.data.records import Annotation  # noqa: E402
from workbench.widgets.sink import MemoryImage, MemorySink  # noqa: E402

SIZE = 2000
FRAME_MS = 1000 / 60  # one frame at 60 Hz: the budget of an interactive redraw


def _png(size: int) -> bytes:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, (size // 8, size // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _boxes(n: int, seed: int = 0) -> list[Annotation]:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, SIZE - 160, (n, 2))
    wh = rng.uniform(8, 150, (n, 2))
    labels = ("cat", "dog", "bird")
    return [
        Annotation(
            "box",
            labels[i % 3],
            bbox=(float(x), float(y), float(w), float(h)),
            proposal=i % 10 == 0,
            score=0.5 if i % 10 == 0 else None,
        )
        for i, ((x, y), (w, h)) in enumerate(zip(xy, wh, strict=True))
    ]


def _ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def bench_redraw(repeat: int, png: bytes) -> list[tuple]:
    from workbench.widgets.canvas import AnnotationCanvas
    from workbench.widgets.scene import annotation_scene

    rows = []
    for n in (10, 100, 1000):
        sink = MemorySink(
            "detection", ["cat", "dog", "bird"], [MemoryImage(png, SIZE, SIZE, annotations=_boxes(n))]
        )
        t = time.perf_counter()
        c = AnnotationCanvas(sink, width=900, height=700)
        first = (time.perf_counter() - t) * 1000
        s = c.state
        scene_ms = _ms(lambda s=s: annotation_scene(s), repeat)
        ann_ms = _ms(lambda c=c: c.redraw({"annotations"}), repeat)
        ids = [a.id for a in s.annotations]
        k = iter(range(10**9))
        sel_ms = _ms(lambda c=c, s=s, ids=ids, k=k: (s.select(ids[next(k) % len(ids)]), c.redraw()), repeat)
        s.zoom_at(450, 350, 4.0)
        zoom_ms = _ms(lambda c=c: c.redraw({"image", "annotations", "interaction"}), repeat)
        rows.append((n, first, scene_ms, ann_ms, sel_ms, zoom_ms))
    return rows


def bench_hit(repeat: int) -> float:
    from workbench.widgets.geometry import ShapeIndex

    idx = ShapeIndex(_boxes(1000))
    rng = np.random.default_rng(1)
    pts = rng.uniform(0, SIZE, (max(repeat, 200), 2))
    times = []
    for x, y in pts:
        t = time.perf_counter()
        idx.hit(float(x), float(y), 2.0)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def _edits(state) -> dict[str, float]:
    """Latency of each kind of edit, from the event to the store call returning (median, ms)."""
    out: dict[str, list[float]] = {
        "add box": [],
        "move box": [],
        "change class": [],
        "delete": [],
        "undo": [],
    }
    for i in range(15):
        x0 = 100 + 25 * i
        t = time.perf_counter()
        state.pointer_down(x0, 100)
        state.pointer_move(x0 + 20, 130)
        state.pointer_up(x0 + 20, 130)
        out["add box"].append(time.perf_counter() - t)
        t = time.perf_counter()
        state.pointer_down(x0 + 10, 115)
        state.pointer_move(x0 + 12, 125)
        state.pointer_up(x0 + 12, 125)
        out["move box"].append(time.perf_counter() - t)
        t = time.perf_counter()
        state.key_down("2" if i % 2 else "3")
        out["change class"].append(time.perf_counter() - t)
        t = time.perf_counter()
        state.key_down("Delete")
        out["delete"].append(time.perf_counter() - t)
        t = time.perf_counter()
        state.key_down("z", ctrl=True)
        out["undo"].append(time.perf_counter() - t)
    return {k: statistics.median(v) * 1000 for k, v in out.items()}


def bench_edits(png_small: bytes) -> dict[str, dict[str, float]]:
    from workbench.widgets.canvas_state import CanvasState

    mem = MemorySink("detection", ["cat", "dog", "bird"], [MemoryImage(png_small, 800, 600)])
    results = {"memory": _edits(CanvasState(mem))}
    try:
        from workbench.data import ImportBatch, ImportItem, Workspace
    except ImportError:
        return results
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        try:
            ds = ws.create_dataset("bench", "detection", classes="cat,dog,bird")
            ds.import_batch(ImportBatch(items=[ImportItem(file_name="a.png", data=png_small)]))
            results["sqlite store"] = _edits(CanvasState(ds))
        finally:
            ws.close()
    return results


def summary_rows(redraw: list[tuple], hit_ms: float, edits: dict[str, dict[str, float]]) -> list[Row]:
    """The table rows, each time (ms) against its fixed target."""
    rows = []
    for n, _first, _scene, ann_ms, _sel, zoom_ms in redraw:
        rows.append(
            target_row(
                f"canvas redraw after an edit, {SIZE:,}-px image, {n:,} boxes",
                ann_ms,
                FRAME_MS,
                f"{ann_ms:.2f} ms",
                "annotation layer; one 60 Hz frame",
            )
        )
        rows.append(
            target_row(
                f"canvas zoom (3 layers), {SIZE:,}-px image, {n:,} boxes",
                zoom_ms,
                FRAME_MS,
                f"{zoom_ms:.2f} ms",
                "one 60 Hz frame",
            )
        )
    rows.append(target_row("canvas hit-test, 1,000 boxes", hit_ms, 1, f"{hit_ms * 1000:.0f} us"))
    if "sqlite store" in edits:
        worst = max(edits["sqlite store"].values())
        rows.append(
            target_row(
                "canvas edit -> SQLite commit (slowest edit kind)",
                worst,
                5,
                f"{worst:.2f} ms",
                "median of 15 per kind",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--json", type=Path, help="also write the summary rows here (for run_all.py)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    png = _png(SIZE)
    print(f"Canvas redraw, {SIZE}x{SIZE} image, 900x700 canvas (median of {args.repeat}, ms)")
    print(f"{'boxes':>6} {'open':>8} {'scene':>8} {'ann layer':>10} {'select':>8} {'zoom (3 layers)':>16}")
    redraw = bench_redraw(args.repeat, png)
    for n, first, scene_ms, ann_ms, sel_ms, zoom_ms in redraw:
        print(f"{n:>6} {first:>8.1f} {scene_ms:>8.2f} {ann_ms:>10.2f} {sel_ms:>8.2f} {zoom_ms:>16.2f}")
    hit_ms = bench_hit(args.repeat)
    print(f"\nHit-test, 1,000 boxes: {hit_ms * 1000:.1f} us per click (median)")
    print("\nEdit latency, event -> store call returned (median of 15, ms)")
    res = bench_edits(_small_png())
    kinds = list(next(iter(res.values())))
    print(f"{'sink':>14} " + " ".join(f"{k:>13}" for k in kinds))
    for name, r in res.items():
        print(f"{name:>14} " + " ".join(f"{r[k]:>13.2f}" for k in kinds))
    if args.json:
        write_rows(args.json, summary_rows(redraw, hit_ms, res))


def _small_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (800, 600), (90, 90, 90)).save(buf, format="PNG")
    return buf.getvalue()


if __name__ == "__main__":
    main()
