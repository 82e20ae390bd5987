"""Time Workbench's ``coco_metrics`` against pycocotools (and faster-coco-eval / hotcoco where installed).

    python benchmarks/bench_metrics.py --images 5000 --boxes-per-image 20

Writes a seeded synthetic ground-truth file and detection file (``workbench.evaluate.synthetic``) to a
temporary folder, then times each contender doing the whole computation from those two files (reading
JSON, loading results, evaluate, accumulate, summarize), in this process, output silenced, after one
warm-up run each on a tiny pair (imports are not timed). The contenders take turns (``--repeat`` rounds,
each round runs every contender once), so a busy machine slows them alike; the median is kept. Prints one
table per IoU type: seconds, ratio to pycocotools, and whether all 12 stats equal pycocotools' (largest
absolute difference), then Workbench's time over raw hotcoco's (the backend it calls; goal <= 1.2). The
default is the issue's case: 5,000 images with ~20 objects each, boxes (``bbox``) and masks (``segm``).
``--hotcoco-only`` times just raw hotcoco and Workbench (pycocotools still runs once, for the stats).
``--before CHECKOUT``: another Workbench checkout (say a ``git worktree`` of main), imported in this process
under another package name and timed in the same turns (``workbench (before)``), so both figures come from
one run. ``--data DIR`` keeps the generated files there and reuses them on the next run (same arguments).
``--json OUT`` writes the summary rows ``run_all.py`` collects: per IoU type, Workbench's speed-up over
pycocotools and faster-coco-eval (goal >= 1 each), its time over raw hotcoco's (goal <= 1.2), and the 12
stats equal to pycocotools' (goal: all).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
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


Contender = Callable[[Path, Path, str], np.ndarray]


def before_checkout(root: Path) -> Contender:
    """``coco_metrics`` of another checkout's ``workbench`` package, imported as ``workbench_before``
    (its modules import each other relatively, so none of this checkout's code runs in it)."""
    package = root / "workbench"
    spec = importlib.util.spec_from_file_location(
        "workbench_before", package / "__init__.py", submodule_search_locations=[str(package)]
    )
    if spec is None or spec.loader is None:
        raise SystemExit(f"--before: no workbench package in {root}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["workbench_before"] = module
    spec.loader.exec_module(module)
    metrics = importlib.import_module("workbench_before.evaluate.coco").coco_metrics

    def run(gt_path: Path, dt_path: Path, iou_type: str) -> np.ndarray:
        res = metrics(gt_path, dt_path, iou_type)
        return np.array([res.stats[k] for k in STAT_KEYS])

    return run


def pair_files(folder: Path, args: argparse.Namespace, iou_type: str) -> tuple[Path, Path, int, int]:
    """The generated ground-truth and detection files in ``folder`` (written unless already there for
    these arguments), with their object and detection counts."""
    stem = f"{iou_type}_{args.images}x{args.boxes_per_image}_c{args.classes}_s{args.seed}"
    gt_path, dt_path = folder / f"gt_{stem}.json", folder / f"dt_{stem}.json"
    counts = folder / f"counts_{stem}.json"
    if not (gt_path.exists() and dt_path.exists() and counts.exists()):
        gt, dt = make_coco_pair(
            args.images, args.boxes_per_image, args.classes, seed=args.seed, iou_type=iou_type
        )
        gt_path.write_text(json.dumps(gt))
        dt_path.write_text(json.dumps(dt))
        counts.write_text(json.dumps([len(gt["annotations"]), len(dt)]))
    n_gt, n_dt = json.loads(counts.read_text())
    return gt_path, dt_path, n_gt, n_dt


def timed(fn: Contender, gt: Path, dt: Path, iou_type: str) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    with quiet():
        stats = fn(gt, dt, iou_type)
    return time.perf_counter() - t0, stats


def taking_turns(
    contenders: list[tuple[str, Contender]], gt: Path, dt: Path, iou_type: str, repeat: int
) -> dict[str, tuple[float, np.ndarray]]:
    """Median seconds and the stats of each contender, over ``repeat`` rounds of one run each."""
    times: dict[str, list[float]] = {name: [] for name, _ in contenders}
    stats: dict[str, np.ndarray] = {}
    for _ in range(repeat):
        for name, fn in contenders:
            sec, stats[name] = timed(fn, gt, dt, iou_type)
            times[name].append(sec)
    return {name: (float(np.median(times[name])), stats[name]) for name, _ in contenders}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--boxes-per-image", type=int, default=20)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="rounds of turns; the median time is kept")
    ap.add_argument(
        "--hotcoco-only", action="store_true", help="time only raw hotcoco and Workbench (its backend)"
    )
    ap.add_argument("--iou-types", nargs="+", default=["bbox", "segm"], choices=["bbox", "segm"])
    ap.add_argument("--before", type=Path, help="another Workbench checkout, timed in the same turns")
    ap.add_argument("--data", type=Path, help="keep the generated files in this folder (and reuse them)")
    ap.add_argument("--json", type=Path, help="also write the summary rows here (for run_all.py)")
    args = ap.parse_args(argv)
    rows: list[Row] = []

    contenders: list[tuple[str, Contender]] = []
    if importlib.util.find_spec("faster_coco_eval") and not args.hotcoco_only:
        contenders.append(("faster-coco-eval 1.8 (raw)", raw_faster))
    if importlib.util.find_spec("hotcoco"):
        contenders.append(("hotcoco (raw)", raw_hotcoco))
    auto = get_backend("auto").name
    contenders.append((f"workbench coco_metrics (auto={auto})", ours("auto")))
    if args.before:
        contenders.append(("workbench (before)", before_checkout(args.before)))
    for name, b in BACKENDS.items():
        if b.available() and name != auto and not args.hotcoco_only:
            contenders.append((f"workbench coco_metrics ({name})", ours(name)))

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.data:
            args.data.mkdir(parents=True, exist_ok=True)
            folder = args.data
        # warm-up: imports and first-call setup are not what we measure
        for iou_type in args.iou_types:
            gt, dt = make_coco_pair(3, 3, 2, seed=1, iou_type=iou_type)
            wg, wd = Path(tmp) / "warm_gt.json", Path(tmp) / "warm_dt.json"
            wg.write_text(json.dumps(gt))
            wd.write_text(json.dumps(dt))
            for _, fn in [("pycocotools", raw_pycocotools), *contenders]:
                timed(fn, wg, wd, iou_type)
        for iou_type in args.iou_types:
            t0 = time.perf_counter()
            gt_path, dt_path, n_gt, n_dt = pair_files(folder, args, iou_type)
            print(
                f"\n{iou_type}: {args.images} images, {n_gt} ground-truth objects, {n_dt} detections, "
                f"{args.classes} classes (ready in {time.perf_counter() - t0:.1f} s; "
                f"load average {os.getloadavg()[0]:.2f})"
            )
            peers = contenders if args.hotcoco_only else [("pycocotools", raw_pycocotools), *contenders]
            measured = taking_turns(peers, gt_path, dt_path, iou_type, args.repeat)
            if args.hotcoco_only:
                measured["pycocotools"] = timed(raw_pycocotools, gt_path, dt_path, iou_type)
            ref_time, ref = measured["pycocotools"]
            print(f"{'contender':44} {'seconds':>8} {'vs pycocotools':>15}  12 stats equal (max |diff|)")
            results = {}
            for name, (sec, stats) in measured.items():
                diff = float(np.abs(stats - ref).max())
                equal = "yes" if diff < 1e-12 else "NO"
                results[name] = (sec, diff)
                print(f"{name:44} {sec:8.2f} {ref_time / sec:14.2f}x  {equal} ({diff:.1e})")
            if "workbench (before)" in results and "hotcoco (raw)" in results:
                before_sec = results["workbench (before)"][0]
                print(
                    f"before ({args.before}) / raw hotcoco ({iou_type}): {before_sec:.2f} s / "
                    f"{results['hotcoco (raw)'][0]:.2f} s = {before_sec / results['hotcoco (raw)'][0]:.2f}x"
                )
            if "hotcoco (raw)" in results:
                ours_sec, raw_sec = (
                    results[f"workbench coco_metrics (auto={auto})"][0],
                    results["hotcoco (raw)"][0],
                )
                print(
                    f"workbench / raw hotcoco ({iou_type}): {ours_sec:.2f} s / {raw_sec:.2f} s = "
                    f"{ours_sec / raw_sec:.2f}x (goal <= 1.2; medians of {args.repeat} alternating runs)"
                )
            rows += summary_rows(iou_type, args, n_gt, results, auto)
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
        if library.startswith(auto):  # the backend Workbench calls: what reading and checking add
            rows.append(
                Row(
                    f"{what}: Workbench time over {library}'s (the backend it calls)",
                    f"{ours:.2f} s",
                    f"{sec:.2f} s ({name})",
                    ours / sec,
                    "<= 1.2",
                    f"time ratio, same files, medians of {args.repeat} alternating runs",
                )
            )
            continue
        rows.append(
            Row(
                f"{what}: Workbench vs {library}",
                f"{ours:.2f} s",
                f"{sec:.2f} s ({name})",
                sec / ours,
                ">= 1",
                "speed-up (higher is faster)",
            )
        )
    if "workbench (before)" in results:
        before = results["workbench (before)"][0]
        rows.append(
            Row(
                f"{what}: Workbench time over the --before checkout's",
                f"{ours:.2f} s",
                f"{before:.2f} s (before)",
                ours / before,
                None,
                f"time ratio, same files, medians of {args.repeat} alternating runs",
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
