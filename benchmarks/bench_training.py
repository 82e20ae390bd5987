"""Trainer overhead: workbench's Trainer against a bare hand-written torch loop over the same model, data,
augmentation, loader and optimizer.

Cases: ``small-cnn`` on the digits sample (8x8 grey, trained at 32 px) and ``resnet18`` on the
shapes-classification sample at 64 px. For each, training-phase throughput (images/s, validation excluded
on both sides) of the two loops, their ratio (goal: >= 0.95), and the share of the training time spent
waiting for data. The two loops run interleaved, ``--repeats`` times, and the median epoch is reported
(the first epoch of every run is a warm-up and not counted): this machine may be shared.

    python benchmarks/bench_training.py [--epochs 3] [--repeats 3] [--threads N] [--workers 0]
        [--examples N] [--only NAME] [--json OUT]

``--examples N`` caps each case's sample at N images (a smoke run; the figures are then not the README's).
``--json OUT`` writes the rows ``run_all.py`` collects (``benchmarks/rows.py``): per case, the Trainer's
throughput against the bare loop's (goal: ratio >= 0.95), with the Trainer's data-loading share as a note.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.rows import Row, write_rows  # noqa: E402
from workbench.augment import Augmenter  # noqa: E402
from workbench.data.samples import make_sample  # noqa: E402
from workbench.train.config import TrainConfig, build_optimizer  # noqa: E402
from workbench.train.data import VisionDataset, make_loader, set_loader_epoch  # noqa: E402
from workbench.train.models import build_model  # noqa: E402
from workbench.train.setup import resolve_augment, seed_everything  # noqa: E402
from workbench.train.source import source_from_batch  # noqa: E402
from workbench.train.trainer import Trainer  # noqa: E402

CASES = [
    # name, sample, count, sample options, model, image size, batch size
    ("small-cnn / digits @32", "digits", 1797, {}, "small-cnn", 32, 64),
    ("resnet18 / shapes @64", "shapes-classification", 400, {"size": 64}, "resnet18", 64, 32),
]


def bare_loop(config: TrainConfig, source, epochs: int) -> list[dict[str, float]]:
    """The hand-written loop: same dataset class, loader, seed, model, optimizer; nothing else."""
    augment, size = resolve_augment(config, "classification")
    ds = VisionDataset(
        source.split("train"),
        dataset_type="classification",
        class_names=source.class_names,
        load_bytes=source.load_bytes,
        image_size=size,
        augmenter=Augmenter(augment, "classification"),
        seed=config.seed,
    )
    loader = make_loader(
        ds, batch_size=config.batch_size, shuffle=True, seed=config.seed, num_workers=config.num_workers
    )
    seed_everything(config.seed)
    model = build_model(config.model, len(source.class_names), image_size=size)
    opt = build_optimizer(model.parameters(), config)
    out = []
    for epoch in range(1, epochs + 1):
        set_loader_epoch(loader, epoch)
        model.train()
        images, data_time, start = 0, 0.0, time.perf_counter()
        tick = start
        for x, y in loader:
            data_time += time.perf_counter() - tick
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            images += len(x)
            tick = time.perf_counter()
        wall = time.perf_counter() - start
        out.append({"images_per_s": images / wall, "data_share": data_time / wall})
    return out


def trainer_loop(config: TrainConfig, source, epochs: int) -> list[dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        Trainer(config, source, Path(tmp) / "run").fit()
        from workbench.train.runs import read_jsonl

        history = read_jsonl(Path(tmp) / "run" / "history.jsonl")
    return [{"images_per_s": h["images_per_s"], "data_share": h["data_share"]} for h in history]


def summary_rows(results: list[tuple[str, int, float, float, float, float, float]]) -> list[Row]:
    """One row per case: the Trainer's median throughput against the bare loop's."""
    return [
        Row(
            f"Trainer vs bare torch loop, {name}",
            f"{ours:.0f} img/s",
            f"{bare:.0f} img/s (bare loop)",
            ratio,
            ">= 0.95",
            f"data loading {data_ours:.1%} of the trainer's step time",
        )
        for name, _n, bare, ours, ratio, _data_bare, data_ours in results
    ]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3, help="per run, the first one a warm-up (at least 2)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    ap.add_argument("--augment", default="classification-default")
    ap.add_argument("--only", help="run only the case whose name contains this")
    ap.add_argument("--examples", type=int, help="at most this many images per case (default: all)")
    ap.add_argument("--json", type=Path, help="also write the summary rows here (for run_all.py)")
    args = ap.parse_args(argv)
    if args.epochs < 2:
        ap.error("--epochs must be at least 2 (the first epoch of every run is a warm-up)")
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    if args.examples is not None and args.examples < 20:
        ap.error("--examples must be at least 20 (about 16 left to train on after the val / test split)")
    if args.only and not any(args.only in case[0] for case in CASES):
        ap.error(f"--only {args.only!r} matches no case; the cases: {', '.join(c[0] for c in CASES)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.workers} loader workers, "
        f"augment={args.augment}, {args.epochs} epochs x {args.repeats} repeats (first epoch = warm-up)"
    )
    rows = []
    for name, sample, count, opts, model, size, batch in CASES:
        if args.only and args.only not in name:
            continue
        if args.examples is not None:
            count = min(count, args.examples)
        source = source_from_batch(make_sample(sample, count, 0, **opts), dataset=sample)
        config = TrainConfig(
            model=model,
            image_size=size,
            epochs=args.epochs,
            batch_size=batch,
            seed=0,
            augment=args.augment,
            schedule="none",
            patience=None,
            device="cpu",
            num_workers=args.workers,
            threads=args.threads,
        )
        bare, ours = [], []
        for _ in range(args.repeats):  # interleaved, so load changes hit both alike
            bare += bare_loop(config, source, args.epochs)[1:]
            ours += trainer_loop(config, source, args.epochs)[1:]
        b = statistics.median(r["images_per_s"] for r in bare)
        t = statistics.median(r["images_per_s"] for r in ours)
        rows.append(
            (
                name,
                len(source.split("train")),
                b,
                t,
                t / b,
                statistics.median(r["data_share"] for r in bare),
                statistics.median(r["data_share"] for r in ours),
            )
        )
    head = (
        f"{'case':<26}{'train imgs':>11}{'bare img/s':>12}{'trainer img/s':>15}{'ratio':>8}"
        f"{'data share bare':>17}{'data share trainer':>20}"
    )
    print(head)
    print("-" * len(head))
    for name, n, b, t, ratio, db, dt in rows:
        print(f"{name:<26}{n:>11}{b:>12.1f}{t:>15.1f}{ratio:>8.3f}{db:>17.1%}{dt:>20.1%}")
    if args.json:
        write_rows(args.json, summary_rows(rows))


if __name__ == "__main__":
    main()
