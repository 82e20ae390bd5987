"""CLI commands of the training layer: ``train``, ``runs``, ``evaluate``, ``mine``, ``predict``,
``export-model``. Registered into ``workbench`` by :func:`register`; torch loads only when one runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

__all__ = ["register"]


class _ProgressBar:
    """The CLI's subscriber to the trainer's callbacks: one line per epoch on stderr, a bar within it."""

    def __init__(self, epochs: int, quiet: bool, batch_size: int = 0) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.quiet = quiet
        self.steps_per_epoch: int | None = None
        self.step_in_epoch = 0

    # the Callback protocol (duck-typed; see workbench.train.callbacks.Callback)
    def on_fit_start(self, info: dict[str, Any]) -> None:
        n = int(info.get("train_examples") or 0)
        self.steps_per_epoch = -(-n // self.batch_size) if self.batch_size and n else None
        self.epochs = int(info.get("epochs") or self.epochs)
        if not self.quiet:
            click.echo(
                f"training {info.get('model', '')} on {info.get('train_examples', '?')} examples "
                f"for up to {self.epochs} epochs ({info.get('device', 'cpu')})",
                err=True,
            )

    def on_epoch_start(self, epoch: int) -> None:
        self.step_in_epoch = 0

    def on_step(self, step: int, loss: float, data_time: float, step_time: float) -> None:
        self.step_in_epoch += 1
        if self.quiet or not sys.stderr.isatty():
            return
        total = self.steps_per_epoch or 0
        done = int(20 * self.step_in_epoch / total) if total else 0
        click.echo(
            f"\r  [{'#' * done}{'.' * (20 - done)}] step {self.step_in_epoch}/{total or '?'} loss {loss:.4f}",
            err=True,
            nl=False,
        )

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        if self.quiet:
            return
        if sys.stderr.isatty():
            click.echo("\r" + " " * 70 + "\r", err=True, nl=False)
        parts = [f"epoch {record.get('epoch')}/{self.epochs}"]
        for k in ("train_loss", "val_loss"):
            if isinstance(record.get(k), (int, float)):
                parts.append(f"{k} {record[k]:.4f}")
        mon = record.get("monitor")
        if mon and isinstance(record.get(mon), (int, float)):
            parts.append(f"{mon} {record[mon]:.4f}")
        if record.get("best"):
            parts.append("(best)")
        click.echo("  ".join(parts), err=True)

    def on_overfit(self, start_epoch: int, end_epoch: int) -> None:
        if not self.quiet:
            click.echo(
                f"overfitting: val loss rising while train loss falls since epoch {start_epoch}", err=True
            )

    def on_fit_end(self, summary: dict[str, Any]) -> None:
        pass

    def should_stop(self) -> bool:
        return False


@click.command()
@click.argument("name")
@click.option("--snapshot", help="Train on this snapshot (id or prefix).")
@click.option("--directory", help="Train on this directory of the dataset.")
@click.option("--model", help="Model name (default: the dataset type's default).")
@click.option("--epochs", type=int, default=20, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--image-size", type=int, help="Input size in pixels (default: the model's).")
@click.option("--augment", help="Augmentation preset name (default: the dataset's pipeline or type preset).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda")
@click.option(
    "--weights",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Start from these local weights (a state_dict file); nothing is downloaded.",
)
@click.option("--patience", type=int, default=10, show_default=True, help="Early-stopping patience (epochs).")
@click.option("--resume", "resume_id", help="Continue this killed or stopped run instead.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object at the end.")
@click.pass_context
def train(
    ctx: click.Context,
    name: str,
    snapshot: str | None,
    directory: str | None,
    model: str | None,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    image_size: int | None,
    augment: str | None,
    device: str,
    weights: Path | None,
    patience: int,
    resume_id: str | None,
    as_json: bool,
) -> None:
    """Train a model on dataset NAME (or a snapshot / directory of it)."""
    from ..cli import _ws
    from .config import TrainConfig
    from .from_store import resume_run, train_dataset

    ws = _ws(ctx)
    bar = _ProgressBar(epochs, quiet=False, batch_size=batch_size)
    if resume_id:
        summary = resume_run(ws, resume_id, [bar])
    else:
        ds = ws.dataset(name)
        cfg_augment: Any = augment if augment else ds.augment_config()
        config = TrainConfig(
            model=model,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            image_size=image_size,
            augment=cfg_augment,
            device=device,
            weights=str(weights) if weights else None,
            patience=patience,
        )
        summary = train_dataset(ws, name, config, snapshot=snapshot, directory=directory, callbacks=[bar])
    if as_json:
        click.echo(
            json.dumps(
                {
                    "run_id": summary["run_id"],
                    "run_dir": summary["run_dir"],
                    "status": summary["status"],
                    "metrics": {"test": summary.get("test", {}), "val": summary.get("val", {})},
                    "best_epoch": summary.get("best_epoch"),
                },
                default=str,
            )
        )
    else:
        test = summary.get("test", {})
        shown = ", ".join(f"{k} {v:.4f}" for k, v in test.items() if isinstance(v, (int, float)))
        click.echo(f"run {summary['run_id']} {summary['status']}: test {shown}")
        click.echo(f"run folder: {summary['run_dir']}")


@click.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def runs(ctx: click.Context, name: str | None, as_json: bool) -> None:
    """List training runs (of dataset NAME), newest first, with their metrics."""
    from ..cli import _table, _ws
    from .from_store import runs_of
    from .runs import compare_runs

    rows = compare_runs(runs_of(_ws(ctx), name))
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
    elif not rows:
        click.echo("no runs yet: `workbench train NAME`")
    else:
        cols: list[str] = [c for c in ("run_id", "state", "dataset", "model", "epochs", "best_epoch") if c in rows[0]]
        cols += [c for c in rows[0] if c.startswith("test_")][:4]
        _table(rows, cols)


def register(cli: click.Group) -> None:
    cli.add_command(train)
    cli.add_command(runs)
