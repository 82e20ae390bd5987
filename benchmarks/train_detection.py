"""How fast does the default detector learn on CPU? ``tiny-frcnn`` on the synthetic shapes-detection sample.

128 px images, 1-5 shapes each (circle / square / triangle), ~400 training images; prints mAP50 and
mAP on the validation split after every epoch against the training time so far (validation excluded),
then the test metrics of the best epoch. Goal: mAP50 clearly above 0.5 within minutes.

    python benchmarks/train_detection.py [--images 500] [--epochs 8] [--size 128] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from workbench.data.samples import make_sample  # noqa: E402
from workbench.train.callbacks import Callback  # noqa: E402
from workbench.train.config import TrainConfig  # noqa: E402
from workbench.train.source import source_from_batch  # noqa: E402
from workbench.train.trainer import Trainer  # noqa: E402


class Progress(Callback):
    def __init__(self) -> None:
        self.train_time = 0.0
        self.start = time.perf_counter()

    def on_fit_start(self, info):
        print(
            f"{info['model']} on {info['counts']} examples, {info['image_size']} px, {info['device']}",
            flush=True,
        )
        print(
            f"{'epoch':>5}{'train s':>9}{'wall s':>8}{'img/s':>7}{'data %':>8}{'loss':>8}{'val loss':>9}"
            f"{'mAP50':>7}{'mAP':>7}",
            flush=True,
        )

    def on_epoch_end(self, r):
        self.train_time += r["train_time"]
        print(
            f"{r['epoch']:>5}{self.train_time:>9.1f}{time.perf_counter() - self.start:>8.1f}"
            f"{r['images_per_s']:>7.1f}{r['data_share']:>8.1%}{r['train_loss']:>8.3f}{r['val_loss']:>9.3f}"
            f"{r['mAP50']:>7.3f}{r['mAP']:>7.3f}",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=500, help="sample size (80%% train, 10%% val, 10%% test)")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--augment", default="detection-default")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    batch = make_sample("shapes-detection", args.images, args.seed, size=args.size)
    source = source_from_batch(
        batch, dataset="shapes-detection", val_fraction=0.1, test_fraction=0.1, seed=args.seed
    )
    print(
        f"sample made in {time.perf_counter() - t0:.1f} s; torch {torch.__version__}, "
        f"{args.threads or torch.get_num_threads()} threads",
        flush=True,
    )
    config = TrainConfig(
        model="tiny-frcnn",
        image_size=args.size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        augment=args.augment,
        schedule="cosine",
        patience=None,
        device="auto",
        threads=args.threads,
    )
    with tempfile.TemporaryDirectory() as tmp:
        summary = Trainer(config, source, Path(tmp) / "run", [Progress()]).fit()
    test = summary["test"]
    print(
        f"best epoch {summary['best_epoch']} (by val {summary['monitor']}): test mAP50 {test['mAP50']:.3f}, "
        f"mAP {test['mAP']:.3f}; total {time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
