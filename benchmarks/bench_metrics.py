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

``--in-training`` times the evaluation the training loop runs after every epoch instead, from data already
in memory: the per-image arrays ``DetectionTask.predict`` returns (boxes ``x, y, w, h``, scores, labels,
and for ``segm`` one compressed RLE per mask, with the mask's box) turned into ``DetectionColumns`` and
scored against the ground-truth dict (``task.columns`` + ``coco_metrics(..., gt_checked=True)``, as
``DetectionTask.evaluate`` calls them), against raw hotcoco given the same data by its own API (the ground
truth dict, the detections as the ``(N, 7)`` array ``load_res`` takes, built before timing, plus the RLE
list for ``segm``), and the previous route (``task.results``' dict per detection, then
``coco_metrics(dict, list)``; ``--before CHECKOUT`` adds that checkout's own). Same turns, medians; the
12 stats checked against pycocotools reading the rows ``predictions.json`` would hold.
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


# ------------------------------------------------------------------------------------ --in-training
Memory = tuple[dict, list, str]  # (ground truth, per-image predictions, iou_type)


def predictions_of(gt: dict, dt: list[dict], iou_type: str) -> list[dict]:
    """Per-image prediction arrays, as ``DetectionTask.predict`` returns them (labels are class indexes;
    for ``segm`` each detection has its mask as compressed RLE and the mask's box)."""
    by_image: dict[int, list[dict]] = {img["id"]: [] for img in gt["images"]}
    for d in dt:
        by_image[d["image_id"]].append(d)
    out = []
    for image_id, mine in by_image.items():
        pred = {
            "example_id": image_id,
            "scores": np.array([d["score"] for d in mine], dtype=np.float64),
            "labels": np.array([d["category_id"] - 1 for d in mine], dtype=np.int64),
        }
        if iou_type == "segm":
            import pycocotools.mask as mask_utils

            pred["masks"] = [d["segmentation"] for d in mine]
            rles = [{"size": m["size"], "counts": m["counts"].encode()} for m in pred["masks"]]
            pred["boxes"] = np.asarray(mask_utils.toBbox(rles), dtype=np.float64).reshape(-1, 4)
        else:
            pred["boxes"] = np.array([d["bbox"] for d in mine], dtype=np.float64).reshape(-1, 4)
        out.append(pred)
    return out


def _task(iou_type: str, tasks_module) -> object:
    return tasks_module.get_task("segmentation" if iou_type == "segm" else "detection")


def in_training(gt: dict, preds: list, iou_type: str) -> np.ndarray:
    """What ``DetectionTask.evaluate`` runs for ``iou_type`` once it has the ground truth."""
    from workbench.train import tasks

    res = coco_metrics(gt, _task(iou_type, tasks).columns(preds), iou_type, gt_checked=True)
    return np.array([res.stats[k] for k in STAT_KEYS])


def dict_route(gt: dict, preds: list, iou_type: str) -> np.ndarray:
    """The previous in-training route: one result dict per detection, then ``coco_metrics(dict, list)``."""
    from workbench.train import tasks

    rows = _task(iou_type, tasks).results(preds, [], [], {})
    res = coco_metrics(gt, rows, iou_type)
    return np.array([res.stats[k] for k in STAT_KEYS])


def before_dict_route(root: Path) -> Callable[[dict, list, str], np.ndarray]:
    before_checkout(root)  # imports it as workbench_before
    tasks = importlib.import_module("workbench_before.train.tasks")
    metrics = importlib.import_module("workbench_before.evaluate.coco").coco_metrics

    def run(gt: dict, preds: list, iou_type: str) -> np.ndarray:
        rows = _task(iou_type, tasks).results(preds, [], [], {})
        res = metrics(gt, rows, iou_type)
        return np.array([res.stats[k] for k in STAT_KEYS])

    return run


def raw_hotcoco_memory(prepared: dict) -> Callable[[dict, list, str], np.ndarray]:
    """hotcoco from memory by its own API: the detections as its ``load_res`` array (built once, before
    timing, from the rows ``predictions.json`` would hold), the masks beside it for ``segm``."""

    def run(gt: dict, preds: list, iou_type: str) -> np.ndarray:
        import hotcoco

        rows, masks = prepared[iou_type]
        coco_gt = hotcoco.COCO(gt)
        coco_dt = coco_gt.load_res(rows, segmentation=masks) if masks is not None else coco_gt.load_res(rows)
        ev = hotcoco.COCOeval(coco_gt, coco_dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        return np.asarray(ev.stats)

    return run


def pycocotools_memory(gt: dict, rows: list[dict], iou_type: str) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    coco_gt = COCO()
    coco_gt.dataset = json.loads(json.dumps(gt))
    coco_gt.createIndex()
    ev = COCOeval(coco_gt, coco_gt.loadRes(json.loads(json.dumps(rows))), iou_type)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return np.asarray(ev.stats)


def in_training_main(args: argparse.Namespace) -> list[Row]:
    from workbench.train import tasks

    rows_out: list[Row] = []
    prepared: dict[str, tuple[np.ndarray, list | None]] = {}
    contenders: list[tuple[str, Callable[[dict, list, str], np.ndarray]]] = [
        ("hotcoco (raw, from memory)", raw_hotcoco_memory(prepared)),
        ("workbench in-training (columns)", in_training),
        ("workbench dict route (results + dicts)", dict_route),
    ]
    if args.before:
        contenders.append(("workbench (before): dict route", before_dict_route(args.before)))
    for iou_type in args.iou_types:
        warm_gt, warm_dt = make_coco_pair(3, 3, 2, seed=1, iou_type=iou_type)
        warm_preds = predictions_of(warm_gt, warm_dt, iou_type)
        prepared[iou_type] = _prepared(_task(iou_type, tasks).results(warm_preds, [], [], {}), iou_type)
        for _, fn in contenders:
            with quiet():
                fn(warm_gt, warm_preds, iou_type)
    for iou_type in args.iou_types:
        t0 = time.perf_counter()
        gt, dt = make_coco_pair(args.images, args.boxes_per_image, args.classes, seed=args.seed, iou_type=iou_type)
        preds = predictions_of(gt, dt, iou_type)
        written = _task(iou_type, tasks).results(preds, [], [], {})  # what predictions.json would hold
        prepared[iou_type] = _prepared(written, iou_type)
        print(
            f"\n{iou_type} in training: {args.images} images, {len(gt['annotations'])} ground-truth objects, "
            f"{len(dt)} detections, {args.classes} classes (ready in {time.perf_counter() - t0:.1f} s; "
            f"load average {os.getloadavg()[0]:.2f})"
        )
        times: dict[str, list[float]] = {name: [] for name, _ in contenders}
        stats: dict[str, np.ndarray] = {}
        for _ in range(args.repeat):
            for name, fn in contenders:
                t1 = time.perf_counter()
                with quiet():
                    stats[name] = fn(gt, preds, iou_type)
                times[name].append(time.perf_counter() - t1)
        with quiet():
            ref = pycocotools_memory(gt, written, iou_type)
        raw = float(np.median(times[contenders[0][0]]))
        print(f"{'contender':44} {'seconds':>8} {'vs raw hotcoco':>15}  12 stats equal to pycocotools' (max |diff|)")
        for name, _ in contenders:
            sec, diff = float(np.median(times[name])), float(np.abs(stats[name] - ref).max())
            print(f"{name:44} {sec:8.3f} {sec / raw:14.2f}x  {'yes' if diff < 1e-12 else 'NO'} ({diff:.1e})")
        ours = float(np.median(times["workbench in-training (columns)"]))
        dicts = float(np.median(times["workbench dict route (results + dicts)"]))
        print(
            f"in-training / raw hotcoco ({iou_type}): {ours:.3f} s / {raw:.3f} s = {ours / raw:.2f}x (goal <= 1.2; "
            f"medians of {args.repeat} alternating runs); the dict route took {dicts / ours:.2f}x the columns' time"
        )
        what = f"COCO {'box' if iou_type == 'bbox' else 'mask'} mAP in training, {args.images:,} images / {len(dt):,} detections"
        diff = float(np.abs(stats["workbench in-training (columns)"] - ref).max())
        rows_out += [
            Row(f"{what}: Workbench time over hotcoco's (from memory)", f"{ours:.3f} s", f"{raw:.3f} s (hotcoco)",
                ours / raw, "<= 1.2", f"time ratio, medians of {args.repeat} alternating runs"),
            Row(f"{what}: time over the dict route's", f"{ours:.3f} s", f"{dicts:.3f} s (dict route)", ours / dicts,
                None, f"time ratio, medians of {args.repeat} alternating runs"),
            Row(f"{what}: 12 stats equal to pycocotools'", f"max abs diff {diff:.1e}", "pycocotools on the written rows",
                float(diff < 1e-12), "== 1"),
        ]
    return rows_out


def _prepared(written: list[dict], iou_type: str) -> tuple[np.ndarray, list | None]:
    """hotcoco's ``load_res`` array of the written rows (and their masks for ``segm``)."""
    rows = np.array(
        [[d["image_id"], *d["bbox"], d["score"], d["category_id"]] for d in written], dtype=np.float64
    ).reshape(-1, 7)
    return rows, ([d["segmentation"] for d in written] if iou_type == "segm" else None)


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
    ap.add_argument(
        "--in-training", action="store_true", help="time the evaluation after each epoch (from memory) instead"
    )
    args = ap.parse_args(argv)
    rows: list[Row] = []
    if args.in_training:
        rows = in_training_main(args)
        if args.json:
            write_rows(args.json, rows)
        return 0

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
