"""Time Workbench's ``coco_metrics`` against pycocotools (and faster-coco-eval / hotcoco where installed).

    python benchmarks/bench_metrics.py --images 5000 --boxes-per-image 20

Writes a seeded synthetic ground-truth file and detection file (``workbench.evaluate.synthetic``) to a
temporary folder, then times each contender doing the whole computation from those two files (reading
JSON, loading results, evaluate, accumulate, summarize), in this process, output silenced, after one
warm-up run each on a tiny pair (imports are not timed). Prints one
table per IoU type: seconds (best of ``--repeat``), ratio to pycocotools, and whether all 12 stats equal
pycocotools' (largest absolute difference). The default is the issue's case: 5,000 images with ~20 objects
each, boxes (``bbox``) and masks (``segm``). ``--json OUT`` writes the summary rows ``run_all.py`` collects:
per IoU type, Workbench's speed-up over pycocotools and faster-coco-eval (goal >= 1 each), over raw
hotcoco (the backend it calls; no goal: the difference is reading and checking the files in Python), and
the 12 stats equal to pycocotools' (goal: all).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.rows import Row, write_rows  # noqa: E402
from workbench.evaluate import STAT_KEYS, coco_metrics  # noqa: E402
from workbench.evaluate.coco_backends import BACKENDS, get_backend, quiet  # noqa: E402
from workbench.evaluate.synthetic import make_coco_pair  # noqa: E402


def raw_pycocotools(gt_path: Path, dt_path: Path, iou_type: str) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO(str(gt_path))
    dt = gt.loadRes(str(dt_path))
    ev = COCOeval(gt, dt, iou_type)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return np.asarray(ev.stats)


def raw_faster(gt_path: Path, dt_path: Path, iou_type: str) -> np.ndarray:
    from faster_coco_eval import COCO, COCOeval_faster

    gt = COCO(str(gt_path))
    dt = gt.loadRes(str(dt_path))
    ev = COCOeval_faster(gt, dt, iou_type, print_function=lambda *a, **k: None)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return np.asarray(ev.stats)


def raw_hotcoco(gt_path: Path, dt_path: Path, iou_type: str) -> np.ndarray:
    import hotcoco

    gt = hotcoco.COCO(str(gt_path))
    dt = gt.load_res(str(dt_path))
    ev = hotcoco.COCOeval(gt, dt, iou_type)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return np.asarray(ev.stats)


def ours(backend: str) -> Callable[[Path, Path, str], np.ndarray]:
    def run(gt_path: Path, dt_path: Path, iou_type: str) -> np.ndarray:
        res = coco_metrics(gt_path, dt_path, iou_type, backend=backend)
        return np.array([res.stats[k] for k in STAT_KEYS])

    return run


def timed(fn: Callable[[Path, Path, str], np.ndarray], gt: Path, dt: Path, iou_type: str, repeat: int):
    best, stats = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        with quiet():
            stats = fn(gt, dt, iou_type)
        best = min(best, time.perf_counter() - t0)
    return best, stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--boxes-per-image", type=int, default=20)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="runs per contender; the best time is kept")
    ap.add_argument("--iou-types", nargs="+", default=["bbox", "segm"], choices=["bbox", "segm"])
    ap.add_argument("--json", type=Path, help="also write the summary rows here (for run_all.py)")
    args = ap.parse_args(argv)
    rows: list[Row] = []

    contenders: list[tuple[str, Callable[[Path, Path, str], np.ndarray]]] = [("pycocotools", raw_pycocotools)]
    if importlib.util.find_spec("faster_coco_eval"):
        contenders.append(("faster-coco-eval 1.8 (raw)", raw_faster))
    if importlib.util.find_spec("hotcoco"):
        contenders.append(("hotcoco (raw)", raw_hotcoco))
    auto = get_backend("auto").name
    contenders.append((f"workbench coco_metrics (auto={auto})", ours("auto")))
    for name, b in BACKENDS.items():
        if b.available() and name != auto:
            contenders.append((f"workbench coco_metrics ({name})", ours(name)))

    with tempfile.TemporaryDirectory() as tmp:
        # warm-up: imports and first-call setup are not what we measure
        for iou_type in args.iou_types:
            gt, dt = make_coco_pair(3, 3, 2, seed=1, iou_type=iou_type)
            wg, wd = Path(tmp) / "warm_gt.json", Path(tmp) / "warm_dt.json"
            wg.write_text(json.dumps(gt))
            wd.write_text(json.dumps(dt))
            for _, fn in contenders:
                timed(fn, wg, wd, iou_type, 1)
        for iou_type in args.iou_types:
            t0 = time.perf_counter()
            gt, dt = make_coco_pair(
                args.images, args.boxes_per_image, args.classes, seed=args.seed, iou_type=iou_type
            )
            gt_path, dt_path = Path(tmp) / f"gt_{iou_type}.json", Path(tmp) / f"dt_{iou_type}.json"
            gt_path.write_text(json.dumps(gt))
            dt_path.write_text(json.dumps(dt))
            print(
                f"\n{iou_type}: {args.images} images, {len(gt['annotations'])} ground-truth objects, "
                f"{len(dt)} detections, {args.classes} classes (generated in {time.perf_counter() - t0:.1f} s)"
            )
            ref_time, ref = timed(raw_pycocotools, gt_path, dt_path, iou_type, args.repeat)
            print(f"{'contender':44} {'seconds':>8} {'vs pycocotools':>15}  12 stats equal (max |diff|)")
            results = {}
            for name, fn in contenders:
                sec, stats = (
                    (ref_time, ref)
                    if fn is raw_pycocotools
                    else timed(fn, gt_path, dt_path, iou_type, args.repeat)
                )
                diff = float(np.abs(stats - ref).max())
                equal = "yes" if diff < 1e-12 else "NO"
                results[name] = (sec, diff)
                print(f"{name:44} {sec:8.2f} {ref_time / sec:14.2f}x  {equal} ({diff:.1e})")
            rows += summary_rows(iou_type, args, len(gt["annotations"]), results, auto)
    if args.json:
        write_rows(args.json, rows)
    return 0


def summary_rows(
    iou_type: str,
    args: argparse.Namespace,
    n_objects: int,
    results: dict[str, tuple[float, float]],
    auto: str,
) -> list[Row]:
    """Workbench (auto backend) against pycocotools and each raw library (speed-ups); stats equality."""
    what = (
        f"COCO {'box' if iou_type == 'bbox' else 'mask'} mAP, {args.images:,} images / {n_objects:,} objects"
    )
    ours, ours_diff = results[f"workbench coco_metrics (auto={auto})"]
    rows = []
    for name, (sec, _) in results.items():
        if name != "pycocotools" and not name.endswith("(raw)"):
            continue
        library = name.replace(" (raw)", "")
        called = library.startswith(auto)
        rows.append(
            Row(
                f"{what}: Workbench vs {library}",
                f"{ours:.2f} s",
                f"{sec:.2f} s ({name})",
                sec / ours,
                None if called else ">= 1",
                "speed-up; the backend Workbench calls (the rest: JSON parsed and checked in Python)"
                if called
                else "speed-up (higher is faster)",
            )
        )
    worst = max(d for _, d in results.values())
    rows.append(
        Row(
            f"{what}: 12 stats equal to pycocotools'",
            f"max abs diff {ours_diff:.1e}",
            f"every contender: max abs diff {worst:.1e}",
            float(ours_diff < 1e-12),
            "== 1",
        )
    )
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
