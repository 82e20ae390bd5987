"""Anomaly models side by side, trained by the same Trainer on the same data: the default model
(``patchcore-valid``) against the earlier default ``patchcore-cal``, ``patchcore`` (padded random-init
ResNet-18 features) and ``conv-ae`` (the autoencoder, ``--ae-epochs``).

Data sets:

- ``shapes``: the built-in ``shapes-anomaly`` sample (200 images, 128 px, 25% anomalous).
- ``photo-<category>``: the MVTec-style real-photo sets of :mod:`workbench.data.photo_anomaly`
  (scikit-image's photos; crops of one photo are good, pasted scratches, blobs and patches of other photos
  are the anomalies, their polygons the ground truth); ``--photos coffee,chelsea,...`` picks categories.

Per data set and model: fit time (the whole ``Trainer.fit``, test scoring included), test image AUROC, F1 at
the val-chosen threshold and (map-producing models) pixel AUROC; then the mean image AUROC over the photo
sets (as MVTec AD results are reported: the mean over categories).

    python benchmarks/bench_anomaly.py [--models a,b] [--photos coffee,chelsea] [--only shapes|photos]
                                       [--ae-epochs 10] [--count 200] [--threads 2] [--json OUT]

``--json OUT`` writes rows (``benchmarks/rows.py``): per data set the default's image AUROC against today's
``patchcore`` (ratio, goal >= 1) and against the absolute goal 0.98, its pixel AUROC, and fit times.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.rows import Row, write_rows  # noqa: E402
from workbench.data.photo_anomaly import make_photo_anomaly  # noqa: E402
from workbench.data.samples import make_sample  # noqa: E402
from workbench.train.config import TrainConfig  # noqa: E402
from workbench.train.models import default_model  # noqa: E402
from workbench.train.source import TrainSource, source_from_batch  # noqa: E402
from workbench.train.trainer import Trainer  # noqa: E402

GOAL = 0.98


def photo_source(category: str, count: int = 200, seed: int = 0) -> TrainSource:
    """One real-photo category as a training source (anomalous images sit in val / test only)."""
    batch = make_photo_anomaly(count, seed, category=category)
    return source_from_batch(batch, dataset=f"photo-{category}", seed=seed)


def run(source: TrainSource, model: str, epochs: int, threads: int) -> tuple[float, dict]:
    cfg = TrainConfig(
        model=model,
        epochs=epochs,
        batch_size=16,
        seed=0,
        device="cpu",
        image_size=128,
        threads=threads,
        patience=None,
    )
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        summary = Trainer(cfg, source, Path(d) / "run").fit()
        return time.perf_counter() - t, summary["test"]


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--models",
        help="comma-separated model names (default: the default, patchcore-cal, patchcore, conv-ae)",
    )
    ap.add_argument("--photos", default="coffee,chelsea,astronaut", help="photo categories")
    ap.add_argument("--only", choices=["shapes", "photos"])
    ap.add_argument("--ae-epochs", type=int, default=10)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    best = default_model("anomaly")
    models = (
        args.models.split(",")
        if args.models
        else list(dict.fromkeys([best, "patchcore-cal", "patchcore", "conv-ae"]))
    )
    sets: dict[str, object] = {}
    if args.only != "photos":
        sets["shapes"] = lambda: source_from_batch(
            make_sample("shapes-anomaly", args.count, 0), dataset="shapes-anomaly", seed=0
        )
    if args.only != "shapes":
        for cat in args.photos.split(","):
            sets[f"photo-{cat}"] = lambda cat=cat: photo_source(cat, args.count)
    rows: list[Row] = []
    results: dict[str, dict[str, tuple[float, dict]]] = {}
    print(f"{'data':18} {'model':14} {'fit s':>7} {'AUROC':>6} {'F1':>6} {'pixel AUROC':>11}")
    for name, make in sets.items():
        source = make()  # type: ignore[operator]
        res = results.setdefault(name, {})
        for model in models:
            epochs = args.ae_epochs if model == "conv-ae" else 1
            secs, test = run(source, model, epochs, args.threads)
            res[model] = (secs, test)
            print(
                f"{name:18} {model:14} {secs:7.1f} {_fmt(test.get('auroc')):>6} {_fmt(test.get('f1')):>6} "
                f"{_fmt(test.get('pixel_auroc')):>11}",
                flush=True,
            )
        if best in res:
            bt, b = res[best]
            rows.append(
                Row(
                    f"anomaly image AUROC, {name}: {best} vs the goal",
                    f"{b['auroc']:.3f}",
                    f"goal {GOAL}",
                    round(b["auroc"] / GOAL, 3),
                    ">= 1",
                    f"F1 {b.get('f1', 0):.3f}, pixel AUROC {_fmt(b.get('pixel_auroc'))}, fit {bt:.1f} s",
                )
            )
            for other in models:
                if other == best:
                    continue
                ot, o = res[other]
                rows.append(
                    Row(
                        f"anomaly image AUROC, {name}: {best} vs {other}",
                        f"{b['auroc']:.3f} ({bt:.1f} s)",
                        f"{o['auroc']:.3f} ({ot:.1f} s)",
                        round(b["auroc"] / o["auroc"], 3) if o["auroc"] else None,
                        ">= 1",
                        f"F1 {b.get('f1', 0):.3f} vs {o.get('f1', 0):.3f}; pixel AUROC "
                        f"{_fmt(b.get('pixel_auroc'))} vs {_fmt(o.get('pixel_auroc'))}",
                    )
                )
    photo_sets = [n for n in results if n.startswith("photo-")]
    if photo_sets:
        print("mean image AUROC over the photo sets:")
        for model in models:
            mean = sum(results[n][model][1]["auroc"] for n in photo_sets) / len(photo_sets)
            print(f"  {model:14} {mean:.3f}")
    if args.json:
        write_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
