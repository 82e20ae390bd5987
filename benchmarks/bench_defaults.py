"""Each dataset type's default (model + the defaults table's settings, as `workbench train` picks them) on its
built-in sample for a fixed wall-clock budget, next to Ultralytics YOLOv8n from scratch on the same exported
data, the same budget and the same test split, both scored by an independent reader.

Per type: a workspace gets the built-in sample (its default size, or ``--count``), the table's row for the
type and the training split's size sets batch size, lr, schedule, epochs and image size, and the run is
stopped when ``--minutes`` of wall time (validation included) have passed; the best epoch so far predicts the
test split. The peer, same budget (Ultralytics' ``time=``, its own validation included), random init (the
``*.yaml`` model: nothing is downloaded), same batch size, same image size (rounded up to its stride of 32):

    detection       YOLOv8n      on ``workbench export --format yolo`` (data.yaml, images/ labels/ per split)
    segmentation    YOLOv8n-seg  on ``workbench export --format yolo`` (polygons)
    classification  YOLOv8n-cls  on ``workbench export --format imagefolder`` (split/class/image: the layout
                                 Ultralytics classifies from)
    anomaly         no YOLO peer (Ultralytics has no anomaly task): the default next to ``conv-ae``, the
                    autoencoder, with the same table row and budget

Scoring, the same for both sides: the test split exported as COCO (``workbench export --format coco --split
test``) is the ground truth; Workbench's test predictions (the run's predictions.json) and YOLO's (predicted on
the exported test images, conf 0.001, at most 100 per image, as Ultralytics validates) are matched to it by
file name and class name and scored by pycocotools (bbox; and segm, masks as RLE); classification is the
share of test images whose top class is the truth; anomaly is scikit-learn's ROC AUC of the image scores.

Ultralytics is AGPL: it is never imported here. It runs as a subprocess of another interpreter
(``--yolo-python``, default ``/work/yolovenv/bin/python``; make one with ``python -m venv /work/yolovenv &&
/work/yolovenv/bin/pip install ultralytics`` using the torch pin of constraints.txt). Without it the YOLO rows
say "not run".

    OMP_NUM_THREADS=1 python benchmarks/bench_defaults.py [--minutes 2]
        [--types detection,segmentation,classification,anomaly] [--threads 1] [--count N] [--no-yolo]
        [--json OUT]

The machine may be shared: the load average before and after each run is printed beside its figures.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.rows import Row, write_rows  # noqa: E402
from workbench.data.transfer import add_sample  # noqa: E402
from workbench.data.workspace import Workspace  # noqa: E402
from workbench.train.callbacks import Callback  # noqa: E402
from workbench.train.config import TrainConfig  # noqa: E402
from workbench.train.defaults import choose_defaults  # noqa: E402
from workbench.train.from_store import source_from_dataset, train_dataset  # noqa: E402
from workbench.train.models import default_model, model_spec  # noqa: E402

SAMPLES = {
    "classification": "digits",
    "detection": "shapes-detection",
    "segmentation": "shapes-segmentation",
    "anomaly": "shapes-anomaly",
}
HEADLINE = {
    "classification": ("accuracy",),
    "detection": ("mAP50", "mAP"),
    "segmentation": ("mask_mAP50", "mask_mAP", "mAP50"),
    "anomaly": ("image_auroc", "auroc", "f1"),
}
# the Ultralytics task, its from-scratch model and the Workbench export it trains on
YOLO_PEER = {
    "detection": ("detect", "yolov8n.yaml", "yolo"),
    "segmentation": ("segment", "yolov8n-seg.yaml", "yolo"),
    "classification": ("classify", "yolov8n-cls.yaml", "imagefolder"),
}
ANOMALY_PEER = "conv-ae"

_YOLO = r"""
import json, sys
from pathlib import Path
from ultralytics import YOLO
task, cfg, data, minutes, imgsz, batch, project, images, out = sys.argv[1:10]
model = YOLO(cfg, task=task)  # random init from the yaml: nothing is downloaded
model.train(data=data, epochs=1000, time=float(minutes) / 60, imgsz=int(imgsz), batch=int(batch), device="cpu",
            workers=0, pretrained=False, amp=False, plots=False, project=project, name="train", exist_ok=True,
            seed=0, deterministic=True, patience=1000, verbose=False)
files = [line for line in Path(images).read_text().splitlines() if line]
rows = []
for i in range(0, len(files), 16):
    for r in model.predict(files[i:i + 16], imgsz=int(imgsz), conf=0.001, iou=0.7, max_det=100, device="cpu",
                           verbose=False):
        row = {"file": r.path}
        if task == "classify":
            row["top1"] = r.names[int(r.probs.top1)]
        else:
            row["boxes"] = r.boxes.xyxy.tolist()
            row["scores"] = r.boxes.conf.tolist()
            row["classes"] = [r.names[int(c)] for c in r.boxes.cls.tolist()]
            if task == "segment":
                row["polygons"] = [p.tolist() for p in r.masks.xy] if r.masks is not None else []
        rows.append(row)
Path(out).write_text(json.dumps(rows))
print("YOLO_DONE", flush=True)
"""


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


class Budget(Callback):
    """Stops the run once ``seconds`` of wall time have passed since it started; prints each epoch."""

    def __init__(self, seconds: float, headline: tuple[str, ...]) -> None:
        self.seconds = seconds
        self.headline = headline
        self.start = time.perf_counter()
        self.epochs = 0

    def on_fit_start(self, info: dict[str, Any]) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, record: Any) -> None:
        self.epochs = record.epoch
        data = record.to_json()
        shown = ", ".join(f"{k} {data[k]:.3f}" for k in self.headline if isinstance(data.get(k), float))
        print(f"    epoch {record.epoch}: {time.perf_counter() - self.start:.0f} s, val {shown}", flush=True)

    def should_stop(self) -> bool:
        return time.perf_counter() - self.start > self.seconds



def _cli(home: Path, *args: str) -> None:
    """``workbench --home HOME ARGS`` in a subprocess (the exports are the CLI's own)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "--home", str(home), *args], capture_output=True,
                          text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"workbench {' '.join(args)} failed: {proc.stderr.strip()[-800:]}")


def run_default(dtype: str, minutes: float, threads: int | None, count: int | None, root: Path,
                model: str | None = None, name: str | None = None, epochs: int | None = None) -> dict[str, Any]:
    """The table's row for the type (``epochs``: instead of the row's, for a peer that should fill the budget)
    trained on the sample until the budget is spent; the best epoch scores the test split."""
    ws = Workspace(root / f"ws-{dtype}")
    name = name or dtype
    if ws.has_dataset(dtype):
        ds = ws.dataset(dtype)
    else:
        ds, _ = add_sample(ws, dtype, SAMPLES[dtype], count=count, seed=0)
    n_train = source_from_dataset(ds).counts()["train"]
    row = choose_defaults(dtype, n_train)
    model = model or default_model(dtype)
    print(f"{name}: {model} on {SAMPLES[dtype]} ({ds.count()} images); {row.describe()}", flush=True)
    settings = {**row.settings(), **({"epochs": epochs} if epochs else {})}
    config = TrainConfig(model=model, **settings, augment=ds.augment_config(), threads=threads, patience=None,
                         extra={"defaults": row.to_dict()})
    budget = Budget(minutes * 60, HEADLINE[dtype])
    load0, t0 = _load(), time.perf_counter()
    summary = train_dataset(ws, dtype, config, callbacks=[budget])
    wall = time.perf_counter() - t0
    test = summary.get("test", {})
    metric = next(k for k in HEADLINE[dtype] if isinstance(test.get(k), float))
    size = row.image_size or model_spec(model).default_image_size
    out = {"type": dtype, "model": model, "run_dir": Path(summary["run_dir"]), "metric": metric,
           "value": test[metric], "test": {k: v for k, v in test.items() if isinstance(v, float)},
           "epochs": budget.epochs, "planned_epochs": settings["epochs"], "status": summary["status"], "wall_s": wall,
           "load": f"{load0} -> {_load()}", "workspace": ws, "dataset": ds, "row": row, "image_size": size}
    print(f"  {model}: its own test {metric} {test[metric]:.3f} after {budget.epochs}/{settings['epochs']} epochs, "
          f"{wall:.0f} s ({summary['status']}); load {out['load']}", flush=True)
    return out


# ------------------------------------------------------------------------------------------ independent scoring
def _cocoeval(gt_file: Path, results: list[dict[str, Any]], iou_type: str) -> dict[str, float]:
    """pycocotools' mAP@[.5:.95] and AP50 of ``results`` against ``gt_file``."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not results:
        return {"mAP": 0.0, "mAP50": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        ev = COCOeval(gt, gt.loadRes(results), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {"mAP": max(float(ev.stats[0]), 0.0), "mAP50": max(float(ev.stats[1]), 0.0)}


def _rle(polygons: list[list[float]], height: int, width: int) -> dict[str, Any]:
    import numpy as np
    from pycocotools import mask as mask_utils

    flat = [[float(v) for xy in poly for v in xy] for poly in polygons if len(poly) >= 3]
    if flat:
        rle = mask_utils.merge(mask_utils.frPyObjects(flat, height, width))
    else:
        rle = mask_utils.encode(np.asfortranarray(np.zeros((height, width), dtype=np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


class TestTruth:
    """The test split as ``workbench export --format coco --split test`` wrote it: the COCO file, its images,
    and image ids / category ids by file name / class name."""

    def __init__(self, home: Path, name: str, out: Path) -> None:
        _cli(home, "export", name, str(out), "--format", "coco", "--split", "test")
        self.file = out / "annotations.json"
        data = json.loads(self.file.read_text())
        self.images = {im["file_name"]: im for im in data["images"]}
        self.image_dir = out / "images"
        self.category = {c["name"]: c["id"] for c in data["categories"]}

    def paths(self) -> list[Path]:
        return [self.image_dir / f for f in sorted(self.images)]


def score_workbench(res: dict[str, Any], truth: TestTruth) -> dict[str, float]:
    """The run's test predictions (predictions.json: COCO results by example id and class index) re-keyed to
    the exported ground truth and scored by pycocotools."""
    ds = res["dataset"]
    file_of = {ex.id: ex.file_name for ex in ds.examples()}
    names = [c.name for c in ds.classes]
    rows = json.loads((res["run_dir"] / "predictions.json").read_text())
    out = []
    for r in rows:
        image = truth.images[file_of[r["image_id"]]]
        row = {**r, "image_id": image["id"], "category_id": truth.category[names[r["category_id"] - 1]]}
        out.append(row)
    scores = _cocoeval(truth.file, out, "bbox")
    if res["type"] == "segmentation":
        segm = _cocoeval(truth.file, out, "segm")
        scores.update(mask_mAP=segm["mAP"], mask_mAP50=segm["mAP50"])
    return scores


def score_yolo(rows: list[dict[str, Any]], truth: TestTruth, segmentation: bool) -> dict[str, float]:
    out = []
    for r in rows:
        image = truth.images[Path(r["file"]).name]
        polys = r.get("polygons") or []
        for k, (box, score, cls) in enumerate(zip(r["boxes"], r["scores"], r["classes"], strict=True)):
            x0, y0, x1, y1 = box
            det = {"image_id": image["id"], "category_id": truth.category[cls], "score": float(score),
                   "bbox": [x0, y0, x1 - x0, y1 - y0]}
            if segmentation:
                det["segmentation"] = _rle([polys[k]] if k < len(polys) else [], image["height"], image["width"])
            out.append(det)
    scores = _cocoeval(truth.file, out, "bbox")
    if segmentation:
        segm = _cocoeval(truth.file, out, "segm")
        scores.update(mask_mAP=segm["mAP"], mask_mAP50=segm["mAP50"])
    return scores


def accuracy_workbench(res: dict[str, Any]) -> tuple[float, int]:
    rows = json.loads((res["run_dir"] / "predictions.json").read_text())
    return sum(r["label"] == r["truth"] for r in rows) / len(rows), len(rows)


def _test_counts(res: dict[str, Any]) -> str:
    rows = json.loads((res["run_dir"] / "predictions.json").read_text())
    bad = sum(r["truth"] != "good" for r in rows)
    return f"{len(rows)} test images, {bad} anomalous"


def auroc_of(res: dict[str, Any]) -> float:
    from sklearn.metrics import roc_auc_score

    rows = json.loads((res["run_dir"] / "predictions.json").read_text())
    return float(roc_auc_score([int(r["truth"] != "good") for r in rows], [r["score"] for r in rows]))


# ------------------------------------------------------------------------------------------ the YOLO peer
def _upscale_small(folder: Path, size: int) -> bool:
    """Ultralytics' classifier refuses images under 10 px a side (digits are 8 x 8): such images are resized
    (bilinear) to ``size``, the side Workbench's model sees them at too. True when any was."""
    from PIL import Image

    files = [p for p in folder.rglob("*.png") if p.is_file()]
    with Image.open(files[0]) as first:
        if min(first.size) >= 10:
            return False
    for p in files:
        with Image.open(p) as im:
            big = im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        big.save(p)
    return True


def run_yolo(python: str, res: dict[str, Any], minutes: float, root: Path) -> dict[str, Any]:
    """YOLOv8n(-seg / -cls) from scratch on the CLI's export of the same dataset, same budget and batch size;
    its test predictions scored as Workbench's are."""
    dtype, ds = res["type"], res["dataset"]
    task, cfg, fmt = YOLO_PEER[dtype]
    home = res["workspace"].home
    data_dir = root / f"{dtype}-{fmt}"
    _cli(home, "export", ds.name, str(data_dir), "--format", fmt)
    imgsz = max(32, math.ceil(res["image_size"] / 32) * 32)
    upscaled = False
    if task == "classify":
        data = data_dir
        truth = None
        images = sorted(p for p in (data_dir / "test").rglob("*") if p.is_file())
        upscaled = _upscale_small(data_dir, imgsz)
    else:
        data = data_dir / "data.yaml"
        truth = TestTruth(home, ds.name, root / f"{dtype}-test-coco")
        images = truth.paths()
    listing = root / f"{dtype}-test-images.txt"
    listing.write_text("\n".join(str(p) for p in images) + "\n")
    preds = root / f"{dtype}-yolo-predictions.json"
    env = {**os.environ, "YOLO_CONFIG_DIR": str(root / "yolo-config"), "YOLO_OFFLINE": "1"}
    load0, t0 = _load(), time.perf_counter()
    proc = subprocess.run([python, "-c", _YOLO, task, cfg, str(data), str(minutes), str(imgsz),
                           str(res["row"].batch_size), str(root / f"yolo-{dtype}"), str(listing), str(preds)],
                          capture_output=True, text=True, env=env, timeout=minutes * 60 * 3 + 600)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or "YOLO_DONE" not in proc.stdout:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        raise RuntimeError(f"YOLO run failed (exit {proc.returncode}):\n{tail}")
    rows = json.loads(preds.read_text())
    out: dict[str, Any] = {"wall_s": wall, "load": f"{load0} -> {_load()}", "imgsz": imgsz, "images": len(rows),
                           "upscaled": upscaled}
    if task == "classify":
        out["accuracy"] = sum(r["top1"] == Path(r["file"]).parent.name for r in rows) / len(rows)
    else:
        assert truth is not None
        out.update(score_yolo(rows, truth, task == "segment"))
        out["workbench"] = score_workbench(res, truth)
    return out


# ------------------------------------------------------------------------------------------ rows
def _pair(dtype: str, res: dict[str, Any], yolo: dict[str, Any] | None, minutes: float, why: str) -> Row:
    wb = f"{res['model']}: "
    budget = f"{minutes:g} min, {res['image_size']} px, batch {res['row'].batch_size}"
    if dtype == "classification":
        acc, n = accuracy_workbench(res)
        wb += f"test accuracy {acc:.3f} ({n} images; {res['epochs']} epochs, {res['wall_s']:.0f} s)"
        peer = (f"YOLOv8n-cls: {yolo['accuracy']:.3f} ({yolo['images']} images, {yolo['imgsz']} px"
                f"{', exported images upscaled to it: Ultralytics refuses images under 10 px' if yolo['upscaled'] else ''}"
                f", {yolo['wall_s']:.0f} s)" if yolo else f"YOLOv8n-cls: not run ({why})")
        ratio = acc - yolo["accuracy"] if yolo else None
    else:
        keys = ("mask_mAP50", "mask_mAP") if dtype == "segmentation" else ("mAP50", "mAP")
        name = "YOLOv8n-seg" if dtype == "segmentation" else "YOLOv8n"
        if yolo:
            mine = yolo["workbench"]
            wb += (f"test {keys[0]} {mine[keys[0]]:.3f} / {keys[1]} {mine[keys[1]]:.3f} ({res['epochs']} epochs, "
                   f"{res['wall_s']:.0f} s)")
            peer = (f"{name}: {yolo[keys[0]]:.3f} / {yolo[keys[1]]:.3f} ({yolo['imgsz']} px, "
                    f"{yolo['wall_s']:.0f} s incl. predicting the test split)")
            ratio = mine[keys[0]] - yolo[keys[0]]
        else:
            wb += f"test {res['metric']} {res['value']:.3f} (its own scoring; {res['epochs']} epochs)"
            peer, ratio = f"{name}: not run ({why})", None
    note = (f"{budget}; ratio = difference in the first figure; scored by "
            f"{'accuracy over the test images' if dtype == 'classification' else 'pycocotools'}; "
            f"load {res['load']}" + (f" / {yolo['load']}" if yolo else ""))
    return Row(f"{dtype} default vs {YOLO_PEER[dtype][1].removesuffix('.yaml')} from scratch, {minutes:g} min",
               wb, peer, ratio, None, note)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=2.0, help="wall-clock budget per run")
    ap.add_argument("--types", default="detection,segmentation,classification,anomaly")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: OMP_NUM_THREADS / all)")
    ap.add_argument("--count", type=int, default=None, help="images per sample (default: the sample's own)")
    ap.add_argument("--yolo-python", default="/work/yolovenv/bin/python")
    ap.add_argument("--no-yolo", action="store_true")
    ap.add_argument("--json", type=Path, help="write result rows (benchmarks/rows.py) here")
    args = ap.parse_args(argv)
    types = [t.strip() for t in args.types.split(",") if t.strip()]
    unknown = sorted(set(types) - set(SAMPLES))
    if unknown:
        ap.error(f"unknown type {unknown[0]!r}; valid: {', '.join(SAMPLES)}")
    rows: list[Row] = []
    why = "--no-yolo" if args.no_yolo else f"{args.yolo_python} not found"
    use_yolo = not args.no_yolo and Path(args.yolo_python).exists()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for dtype in types:
            res = run_default(dtype, args.minutes, args.threads, args.count, root)
            if dtype == "anomaly":  # no YOLO peer: Ultralytics has no anomaly task
                # the autoencoder learns by epochs: it gets the whole budget (the row's epochs end it in seconds)
                peer = run_default(dtype, args.minutes, args.threads, args.count, root, model=ANOMALY_PEER,
                                   name=f"anomaly peer {ANOMALY_PEER}", epochs=100_000)
                mine, theirs = auroc_of(res), auroc_of(peer)
                print(f"  image AUROC (scikit-learn): {res['model']} {mine:.3f}, {ANOMALY_PEER} {theirs:.3f}")
                rows.append(Row(
                    f"anomaly default vs {ANOMALY_PEER}, {args.minutes:g} min (no YOLO peer: Ultralytics has no "
                    "anomaly task)",
                    f"{res['model']}: test image AUROC {mine:.3f} ({res['epochs']} epochs, {res['wall_s']:.0f} s)",
                    f"{ANOMALY_PEER}: {theirs:.3f} ({peer['epochs']} epochs, {peer['wall_s']:.0f} s)",
                    mine - theirs, None,
                    f"the table's row ({res['row'].describe().split(';')[0]}), conv-ae trained until the budget "
                    f"ends; {_test_counts(res)}; ratio = AUROC difference; scored by scikit-learn roc_auc_score; "
                    f"load {res['load']} / {peer['load']}"))
                continue
            yolo = run_yolo(args.yolo_python, res, args.minutes, root) if use_yolo else None
            if yolo and dtype != "classification":
                print(f"  pycocotools on the test split: workbench {yolo['workbench']}, YOLO "
                      f"{ {k: v for k, v in yolo.items() if 'mAP' in k} }", flush=True)
            elif yolo:
                print(f"  YOLOv8n-cls test accuracy {yolo['accuracy']:.3f}", flush=True)
            rows.append(_pair(dtype, res, yolo, args.minutes, why))
    print()
    for r in rows:
        ratio = "" if r.ratio is None else f"{r.ratio:+.3f}"
        print(f"| {r.name} | {r.figure} | {r.reference} | {ratio} | {r.note} |")
    if args.json:
        write_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
