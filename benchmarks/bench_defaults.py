"""Each dataset type's default (model + the defaults table's settings, as `workbench train` picks them) on its
built-in sample for a fixed wall-clock budget, and Ultralytics YOLOv8n from scratch on the same exported
detection data and the same budget.

Per type: a workspace gets the built-in sample (its default size, or ``--count``), the table's row for the
type and the training split's size sets batch size, lr, schedule, epochs and image size, and the run is
stopped when ``--minutes`` of wall time (validation included) have passed; the best epoch so far is scored
on the test split. For detection the same dataset (same splits) is exported as YOLO (``workbench export
--format yolo``) and ``yolov8n.yaml`` (random init, no download) is trained with Ultralytics' ``time=``
budget on the same image size, then scored on the test split with Ultralytics' own validator.

Ultralytics is AGPL: it is never imported here. It runs as a subprocess of another interpreter
(``--yolo-python``, default ``/work/yolovenv/bin/python``; make one with ``python -m venv /work/yolovenv &&
/work/yolovenv/bin/pip install ultralytics`` using the torch pin of constraints.txt). Without it the YOLO row
says "not run".

    OMP_NUM_THREADS=1 python benchmarks/bench_defaults.py [--minutes 2] [--types detection,classification]
        [--threads 1] [--count N] [--no-yolo] [--json OUT]

The machine may be shared: the load average before and after each run is printed beside its figures.
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.rows import Row, write_rows  # noqa: E402
from workbench.data.transfer import add_sample, export_dataset  # noqa: E402
from workbench.data.workspace import Workspace  # noqa: E402
from workbench.train.callbacks import Callback  # noqa: E402
from workbench.train.config import TrainConfig  # noqa: E402
from workbench.train.defaults import choose_defaults  # noqa: E402
from workbench.train.from_store import source_from_dataset, train_dataset  # noqa: E402

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

_YOLO = r"""
import json, sys
from ultralytics import YOLO
data, minutes, imgsz, batch, project = sys.argv[1:6]
model = YOLO("yolov8n.yaml")  # random init: nothing is downloaded
model.train(data=data, epochs=1000, time=float(minutes) / 60, imgsz=int(imgsz), batch=int(batch), device="cpu",
            workers=0, pretrained=False, amp=False, plots=False, project=project, name="train", exist_ok=True,
            seed=0, deterministic=True, patience=1000, verbose=False)
res = model.val(data=data, split="test", imgsz=int(imgsz), batch=int(batch), device="cpu", plots=False,
                project=project, name="test", exist_ok=True, verbose=False)
print("YOLO_RESULT " + json.dumps({"mAP50": float(res.box.map50), "mAP": float(res.box.map)}), flush=True)
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


def run_default(dtype: str, minutes: float, threads: int | None, count: int | None, root: Path) -> dict[str, Any]:
    ws = Workspace(root / f"ws-{dtype}")
    ds, _ = add_sample(ws, dtype, SAMPLES[dtype], count=count, seed=0)
    n_train = source_from_dataset(ds).counts()["train"]
    row = choose_defaults(dtype, n_train)
    print(f"{dtype}: {SAMPLES[dtype]} ({ds.count()} images); {row.describe()}", flush=True)
    config = TrainConfig(**row.settings(), augment=ds.augment_config(), threads=threads, patience=None,
                         extra={"defaults": row.to_dict()})
    budget = Budget(minutes * 60, HEADLINE[dtype])
    load0, t0 = _load(), time.perf_counter()
    summary = train_dataset(ws, dtype, config, callbacks=[budget])
    wall = time.perf_counter() - t0
    test = summary.get("test", {})
    metric = next(k for k in HEADLINE[dtype] if isinstance(test.get(k), float))
    out = {"type": dtype, "model": summary.get("run_dir", ""), "metric": metric, "value": test[metric],
           "test": {k: v for k, v in test.items() if isinstance(v, float)}, "epochs": budget.epochs,
           "planned_epochs": row.epochs, "status": summary["status"], "wall_s": wall, "load": f"{load0} -> {_load()}",
           "workspace": ws, "dataset": ds, "row": row}
    print(f"  workbench default: test {metric} {test[metric]:.3f} after {budget.epochs}/{row.epochs} epochs, "
          f"{wall:.0f} s ({summary['status']}); load {out['load']}", flush=True)
    return out


def run_yolo(python: str, ds: Any, minutes: float, imgsz: int, batch: int, root: Path) -> dict[str, Any]:
    export = root / "yolo-data"
    export_dataset(ds, export, "yolo")
    data = export / "data.yaml"
    env = {**os.environ, "YOLO_CONFIG_DIR": str(root / "yolo-config"), "YOLO_OFFLINE": "1"}
    load0, t0 = _load(), time.perf_counter()
    proc = subprocess.run([python, "-c", _YOLO, str(data), str(minutes), str(imgsz), str(batch), str(root / "yolo")],
                          capture_output=True, text=True, env=env, timeout=minutes * 60 * 3 + 600)
    wall = time.perf_counter() - t0
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("YOLO_RESULT ")), None)
    if proc.returncode != 0 or line is None:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        raise RuntimeError(f"YOLO run failed (exit {proc.returncode}):\n{tail}")
    res = json.loads(line.split(" ", 1)[1])
    res.update({"wall_s": wall, "load": f"{load0} -> {_load()}"})
    print(f"  YOLOv8n from scratch: test mAP50 {res['mAP50']:.3f}, mAP {res['mAP']:.3f}, {wall:.0f} s "
          f"(Ultralytics' time budget; train + test scoring); load {res['load']}", flush=True)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=2.0, help="wall-clock budget per run")
    ap.add_argument("--types", default="detection,classification,segmentation,anomaly")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: OMP_NUM_THREADS / all)")
    ap.add_argument("--count", type=int, default=None, help="images per sample (default: the sample's own)")
    ap.add_argument("--yolo-python", default="/work/yolovenv/bin/python")
    ap.add_argument("--no-yolo", action="store_true")
    ap.add_argument("--json", type=Path, help="write result rows (benchmarks/rows.py) here")
    args = ap.parse_args(argv)
    types = [t.strip() for t in args.types.split(",") if t.strip()]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for dtype in types:
            res = run_default(dtype, args.minutes, args.threads, args.count, root)
            figure = f"{res['metric']} {res['value']:.3f} ({res['epochs']} epochs, {res['wall_s']:.0f} s)"
            if dtype != "detection":
                rows.append(Row(f"{dtype} default, {args.minutes:g} min budget", figure, "", None, None,
                                f"load {res['load']}"))
                continue
            if args.no_yolo or not Path(args.yolo_python).exists():
                print(f"  YOLOv8n: not run ({'--no-yolo' if args.no_yolo else args.yolo_python + ' not found'})")
                rows.append(Row(f"detection default vs YOLOv8n, {args.minutes:g} min", figure, "not run", None,
                                None, f"load {res['load']}"))
                continue
            size = res["row"].image_size or 128
            yolo = run_yolo(args.yolo_python, res["dataset"], args.minutes, size, res["row"].batch_size,
                            root / "y")
            ratio = res["test"].get("mAP50", 0.0) - yolo["mAP50"]
            rows.append(Row(f"detection default vs YOLOv8n from scratch, {args.minutes:g} min, {size} px",
                            figure + f", mAP {res['test'].get('mAP', 0.0):.3f}",
                            f"YOLOv8n mAP50 {yolo['mAP50']:.3f}, mAP {yolo['mAP']:.3f} ({yolo['wall_s']:.0f} s)",
                            ratio, None, f"ratio = mAP50 difference; load {res['load']} / {yolo['load']}"))
    print()
    for r in rows:
        print(f"| {r.name} | {r.figure} | {r.reference} | {r.note} |")
    if args.json:
        write_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
