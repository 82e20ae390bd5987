"""CLI commands of the training layer: ``train``, ``runs``, ``evaluate``, ``mine``, ``predict``,
``export-model``. Registered into ``workbench`` by :func:`register`; torch loads only when one runs."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..progress import Progress, ProgressPrinter
from ..text import echo, terminal_safe
from .config import SCHEDULES

if TYPE_CHECKING:
    from ..runs.records import EpochRecord, RunSummary

__all__ = ["register"]


class _ProgressBar:
    """The CLI's subscriber to the trainer's callbacks: one line per epoch on stderr, a bar within it."""

    def __init__(self, epochs: int, quiet: bool, batch_size: int = 0) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.quiet = quiet
        self.steps_per_epoch: int | None = None
        self.step_in_epoch = 0
        self.epoch = 0
        self.train_closed = True  # the current epoch's step bar has ended
        self.printer = ProgressPrinter()
        self.note = ""  # said when training starts (the defaults chosen); an error before it stays one line

    # the Callback protocol (duck-typed; see workbench.train.callbacks.Callback)
    def on_fit_start(self, info: dict[str, Any]) -> None:
        n = int(info.get("train_examples") or 0)
        self.steps_per_epoch = info.get("steps_per_epoch") or (
            -(-n // self.batch_size) if self.batch_size and n else None
        )
        self.epochs = int(info.get("epochs") or self.epochs)
        if self.note and not self.quiet:
            click.echo(self.note, err=True)
        if not self.quiet:
            procs = int(info.get("processes") or 1)
            click.echo(
                f"training {info.get('model', '')} on {info.get('train_examples', '?')} examples "
                f"for up to {self.epochs} epochs ({info.get('device', 'cpu')}"
                + (f", {procs} processes" if procs > 1 else "")
                + ")",
                err=True,
            )
            for line in transfer_lines(info.get("transfer") or {}):
                click.echo(line, err=True)

    def on_epoch_start(self, epoch: int) -> None:
        self.step_in_epoch = 0
        self.epoch = epoch
        self.train_closed = False
        if not self.quiet:
            self.printer(Progress("train", f"epoch {epoch}/{self.epochs}", 0, self.steps_per_epoch, "steps"))

    def on_step(self, step: int, loss: float, data_time: float, step_time: float) -> None:
        self.step_in_epoch += 1
        if self.quiet:
            return
        # a bar on a terminal, a line every few seconds in a log (workbench.progress)
        self.printer(Progress("train", f"epoch {self.epoch}/{self.epochs}", self.step_in_epoch,
                              self.steps_per_epoch, "steps", f"loss {loss:.4f}"))

    def on_progress(self, event: Progress) -> None:
        """Validation and test scoring, drawn like the training steps (the epoch's step bar ends first)."""
        if self.quiet:
            return
        if not self.train_closed and self.epoch:
            self.train_closed = True
            self.printer(Progress("train", f"epoch {self.epoch}/{self.epochs}", self.step_in_epoch,
                                  self.steps_per_epoch, "steps", final=True))
        self.printer(event)

    def on_epoch_end(self, record: EpochRecord) -> None:
        if self.quiet:
            return
        if not self.train_closed:
            self.train_closed = True
            self.printer(Progress("train", f"epoch {self.epoch}/{self.epochs}", self.step_in_epoch,
                                  self.steps_per_epoch, "steps", final=True))
        parts = [f"epoch {record.epoch}/{self.epochs}"]
        for k, v in (("train_loss", record.train_loss), ("val_loss", record.val_loss)):
            if v is not None:
                parts.append(f"{k} {v:.4f}")
        mon, value = record.metric_name, record.metric()
        if mon and mon not in ("train_loss", "val_loss") and value is not None:
            parts.append(f"{mon} {value:.4f}")
        transfer = record.extra.get("transfer")
        if isinstance(transfer, dict) and transfer.get("backbone_frozen"):
            parts.append("[backbone frozen]")
        if record.best:
            parts.append("(best)")
        click.echo("  ".join(parts), err=True)

    def on_overfit(self, start_epoch: int, end_epoch: int) -> None:
        if not self.quiet:
            click.echo(
                f"overfitting: val loss rising while train loss falls since epoch {start_epoch}", err=True
            )

    def on_fit_end(self, summary: RunSummary) -> None:
        pass

    def should_stop(self) -> bool:
        return False


# TrainConfig fields -> the flags of `workbench train` that set them (errors name what the user typed)
_FLAGS = {"model": "--model", "epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr", "seed": "--seed",
          "image_size": "--image-size", "augment": "--augment", "device": "--device", "weights": "--weights",
          "freeze_backbone": "--freeze-backbone", "backbone_lr_scale": "--backbone-lr-scale",
          "patience": "--patience", "schedule": "--schedule"}


@contextlib.contextmanager
def _flag_names() -> Iterator[None]:
    """A ValidationError about a training setting names its CLI flag instead of the config field."""
    from ..errors import ValidationError

    try:
        yield
    except ValidationError as e:
        flag = _FLAGS.get(str(e.field))
        if flag is None or (e.file is not None and e.field != "weights"):
            raise
        raise ValidationError(e.detail, file=e.file, record=e.record, field=flag) from None


def _recorded_transfer(run_dir: str) -> Any:
    """``resolved.transfer`` of the run's ``params.json`` (weights loaded, backbone frozen / scaled)."""
    from .runs import read_json

    params = read_json(Path(run_dir) / "params.json", {}) or {}
    return (params.get("resolved") or {}).get("transfer")


def transfer_lines(transfer: dict[str, Any]) -> list[str]:
    """What a run does with loaded weights and its backbone, in words (from ``resolved.transfer``)."""
    lines = []
    weights = transfer.get("weights")
    if isinstance(weights, dict):
        new = weights.get("head_new") or []
        lines.append(
            f"weights: {terminal_safe(weights.get('file'))}: {weights.get('loaded')} tensors loaded"
            + (f", {len(new)} head tensors left new ({terminal_safe(', '.join(new[:4]))}"
               + (", ..." if len(new) > 4 else "") + ")" if new else "")
        )
    backbone = transfer.get("backbone")
    freeze, scale = int(transfer.get("freeze_backbone") or 0), float(transfer.get("backbone_lr_scale") or 1.0)
    if isinstance(backbone, dict) and (freeze or scale != 1.0):
        what = f"backbone: {backbone.get('description') or 'registered'} ({backbone.get('parameters')} tensors)"
        if freeze:
            what += f"; frozen for epochs 1-{freeze} (BatchNorm statistics kept), then trained"
        what += f" at lr x {scale:g}" if scale != 1.0 else " at the full lr"
        lines.append(what)
    return lines


@click.command()
@click.argument("name")
@click.option("--snapshot", help="Train on this snapshot (id or prefix).")
@click.option("--directory", help="Train on this directory of the dataset.")
@click.option("--model", help="Model name (default: the dataset type's default).")
@click.option("--epochs", type=int, help="Epochs (default: the defaults table's, by dataset type and size).")
@click.option(
    "--batch-size",
    type=int,
    help="Images per step and process; under torchrun a step sees batch-size x processes (default: the table's).",
)
@click.option("--lr", type=float, help="Learning rate (default: the table's).")
@click.option("--schedule", type=click.Choice(sorted(SCHEDULES)),
              help="Learning-rate schedule; onecycle and warmup-cosine step per batch (default: the table's).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--image-size", type=int, help="Input size in pixels (default: the table's, else the model's).")
@click.option("--augment", help="Augmentation preset name (default: the dataset's pipeline or type preset).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda")
@click.option(
    "--weights",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Start from these local weights (a state_dict file); nothing is downloaded.",
)
@click.option(
    "--freeze-backbone",
    type=int,
    default=0,
    show_default=True,
    help="Keep the model's backbone frozen (BatchNorm in eval) for the first N epochs, then train it.",
)
@click.option(
    "--backbone-lr-scale",
    type=float,
    default=1.0,
    show_default=True,
    help="The backbone learns at lr x this (differential learning rates; the head keeps lr).",
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
    epochs: int | None,
    batch_size: int | None,
    lr: float | None,
    schedule: str | None,
    seed: int,
    image_size: int | None,
    augment: str | None,
    device: str,
    weights: Path | None,
    freeze_backbone: int,
    backbone_lr_scale: float,
    patience: int,
    resume_id: str | None,
    as_json: bool,
) -> None:
    """Train a model on dataset NAME (or a snapshot / directory of it).

    On several processes: `torchrun --nproc_per_node=N -m workbench train NAME ...` (DistributedDataParallel;
    rank 0 writes the run and prints)."""
    from ..cliutil import workspace as _ws
    from .config import TrainConfig
    from .distributed import is_main_process
    from .from_store import resume_run, train_dataset

    ws = _ws(ctx)
    bar = _ProgressBar(epochs or 0, quiet=False, batch_size=batch_size or 0)
    if resume_id:
        summary = resume_run(ws, resume_id, [bar])
    else:
        ds = ws.dataset(name)
        cfg_augment: Any = augment if augment else ds.augment_config()
        given = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "schedule": schedule,
                 "image_size": image_size}
        chosen, why = _table_defaults(ds, snapshot, directory, given)
        bar.note = why["note"]
        bar.batch_size = int(chosen["batch_size"])
        with _flag_names():
            config = TrainConfig(
                model=model,
                **chosen,
                seed=seed,
                augment=cfg_augment,
                device=device,
                weights=str(weights) if weights else None,
                freeze_backbone=freeze_backbone,
                backbone_lr_scale=backbone_lr_scale,
                patience=patience,
                extra={"defaults": why},
            )
        with _flag_names():
            summary = train_dataset(ws, name, config, snapshot=snapshot, directory=directory, callbacks=[bar])
    if not is_main_process():  # the other processes of a torchrun job: rank 0 reports
        return
    if as_json:
        echo(
            json.dumps(
                {
                    "run_id": summary["run_id"],
                    "run_dir": summary["run_dir"],
                    "status": summary["status"],
                    "metrics": {"test": summary.get("test", {}), "val": summary.get("val", {})},
                    "best_epoch": summary.get("best_epoch"),
                    "transfer": _recorded_transfer(summary["run_dir"]),
                },
                default=str,
            )
        )
    else:
        test = summary.get("test", {})
        shown = ", ".join(f"{k} {v:.4f}" for k, v in test.items() if isinstance(v, (int, float)))
        echo(f"run {summary['run_id']} {summary['status']}: test {shown}")
        echo(f"run folder: {summary['run_dir']}")


def _table_defaults(ds: Any, snapshot: str | None, directory: str | None,
                   given: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings not given on the command line from the defaults table (by the dataset's type and the
    size of its training split), and what was chosen and why (kept in the run's params: the table's row,
    the flags given, the line printed)."""
    from .defaults import fill_from_table

    return fill_from_table(ds, given, snapshot=snapshot, directory=directory,
                           name=lambda k, v: f"--{k.replace('_', '-')} {v}")


@click.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def runs(ctx: click.Context, name: str | None, as_json: bool) -> None:
    """List training runs (of dataset NAME), newest first, with their metrics."""
    from ..cliutil import table as _table
    from ..cliutil import workspace as _ws
    from .from_store import runs_of
    from .runs import compare_runs

    rows = compare_runs(runs_of(_ws(ctx), name))
    if as_json:
        echo(json.dumps(rows, indent=2, default=str))
    elif not rows:
        echo("no runs yet: `workbench train NAME`")
    else:
        cols: list[str] = [
            c for c in ("run_id", "state", "dataset", "model", "epochs", "best_epoch") if c in rows[0]
        ]
        cols += [c for c in rows[0] if c.startswith("test_")][:4]
        _table(rows, cols)


@click.command()
@click.argument("run")
@click.option("--live", is_flag=True, help="Score against today's labels, not the snapshot RUN trained on.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def evaluate(ctx: click.Context, run: str, live: bool, as_json: bool) -> None:
    """Detailed test-split metrics of RUN (per class, confusion matrix / COCO stats), from its predictions
    against the labels of the snapshot it was trained on (today's labels with --live)."""
    from ..cliutil import workspace as _ws
    from .from_store import evaluate_run

    rec, metrics = evaluate_run(_ws(ctx), run, live=live)
    labels = metrics.pop("labels")
    if as_json:
        echo(json.dumps({"run_id": rec.run_id, "labels": labels, "test": metrics}, indent=2, default=str))
        return
    if labels["source"] == "snapshot":
        echo(f"labels: snapshot {labels['snapshot_id'][:12]} (what the run trained on)")
    else:
        echo("labels: LIVE (today's labels, not the run's snapshot)" if live else f"labels: live ({labels['note']})")
    echo(f"run {rec.run_id} on {rec.dataset}, test split:")
    for k, v in metrics.items():
        if isinstance(v, float):
            echo(f"  {k}: {v:.4f}")


@click.command()
@click.argument("run")
@click.option("--count", type=int, default=40, show_default=True, help="Examples to put into `review`.")
@click.option("--directory", default="review", show_default=True)
@click.option("--check-train", type=click.Choice(["model", "folds", "off"]), default="model", show_default=True,
              help="Also check the training labels (confident learning): on the run's model's predictions, "
              "on out-of-fold predictions (trains 2 more models), or not.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def mine(ctx: click.Context, run: str, count: int, directory: str, check_train: str, as_json: bool) -> None:
    """Rank RUN's test and val examples by how much they would teach; the top COUNT go to `review` with
    the model's predictions as proposals (errors first, then the most uncertain, to fill COUNT)."""
    from ..cliutil import workspace as _ws
    from .from_store import find_run
    from .mining import mine_run
    from .runs import load_run

    ws = _ws(ctx)
    rec = load_run(find_run(ws, run))
    res = mine_run(ws.dataset(rec.dataset), rec, count=count, directory=directory, check_train=check_train,
                   progress=ProgressPrinter())
    if as_json:
        echo(json.dumps(res.to_dict(), indent=2, default=str))
        return
    echo(
        f"{len(res.selected)} examples into '{directory}' ({res.added_to_directory} new), "
        f"{len(res.label_errors)} likely label errors; ranked list in {res.path}"
    )
    echo("by reason: " + ", ".join(f"{k} {v}" for k, v in res.by_reason.items()))
    if "train" in res.sources:
        echo(f"training labels checked ({res.sources['train']}): {res.train_label_errors} doubted")
    for note in res.notes:
        echo(f"note: {note}")
    for m in res.selected[:10]:
        echo(f"  example {m.example_id}: {m.score:.3f} {', '.join(m.reasons)}")


@click.command()
@click.argument("run")
@click.argument("src", type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Default: RUN/predict-<name>.")
@click.option("--every", type=int, default=1, show_default=True, help="Videos: every Nth frame.")
@click.option("--score-threshold", type=float, default=0.5, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.pass_context
def predict(
    ctx: click.Context, run: str, src: Path, out: Path | None, every: int, score_threshold: float, device: str
) -> None:
    """Run RUN's best model on an image, a folder or a video: COCO-format results + overlay images."""
    import tempfile

    from ..cliutil import workspace as _ws
    from ..data.images import IMAGE_SUFFIXES
    from .from_store import find_run
    from .predict import Predictor, predict_folder, predict_video

    path = find_run(_ws(ctx), run)
    out = out or path / f"predict-{src.stem}"
    predictor = Predictor.from_run(path, device=device)
    if src.is_dir():
        res = predict_folder(predictor, src, out, score_threshold=score_threshold)
    elif src.suffix.lower() in IMAGE_SUFFIXES:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / src.name).write_bytes(src.read_bytes())
            res = predict_folder(predictor, tmp, out, score_threshold=score_threshold)
    else:
        res = predict_video(predictor, src, out, every=every, score_threshold=score_threshold)
    echo(f"predicted {res.get('count', '?')} images; COCO results in {res.get('predictions')}")


@click.command("export-model")
@click.argument("run")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def export_model(ctx: click.Context, run: str, out: Path) -> None:
    """Export RUN's best model to ONNX (checked against the torch model with onnxruntime)."""
    from ..cliutil import workspace as _ws
    from .export import export_onnx
    from .from_store import find_run

    info = export_onnx(find_run(_ws(ctx), run), out)
    worst = max((v.get("max_abs_diff", 0.0) for v in info.get("check", {}).values()), default=0.0)
    echo(
        f"wrote {out} ({info.get('dataset_type')}, {info.get('image_size')} px); largest difference "
        f"from the torch model: {worst:.2e}"
    )


def register(cli: click.Group) -> None:
    cli.add_command(train)
    cli.add_command(runs)
    cli.add_command(evaluate)
    cli.add_command(mine)
    cli.add_command(predict)
    cli.add_command(export_model)
