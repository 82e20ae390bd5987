"""The ``workbench`` command line: a thin layer over the library.

Errors are one line on stderr and a non-zero exit (2 for bad input, 1 for anything else), never a
traceback (set WORKBENCH_DEBUG=1 to see one). Heavy libraries load only in the commands that need them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from .cliutil import table as _table
from .cliutil import workspace as _ws
from .errors import WorkbenchError, missing_extra
from .text import echo

__all__ = ["main", "cli"]

FORMATS = ["coco", "yolo", "voc", "imagefolder", "anomaly-folder", "images", "video", "cvat", "labelme",
           "label-studio", "mvtec"]
WRITABLE = ["coco", "yolo", "voc", "imagefolder", "anomaly-folder", "cvat", "labelme", "label-studio", "mvtec"]
SAMPLES = ["digits", "mnist", "shapes-classification", "shapes-detection", "shapes-segmentation", "shapes-anomaly"]
TYPES = ["classification", "detection", "segmentation", "anomaly"]


def _echo_json(data: Any) -> None:
    echo(json.dumps(data, indent=2, sort_keys=False, default=str))


# Commands that live with their layer: name -> (module, attribute, the first sentence of its help). The
# module is imported only when its command runs or shows its own help, so `workbench --help` and the store
# commands never import the training, evaluation or loop layers (tests/test_cli_startup.py checks that the
# sentences here are the commands' own and that the listing is the same either way).
_LAYER_COMMANDS: dict[str, tuple[str, str, str]] = {
    "train": (
        "workbench.train.cli",
        "train",
        "Train a model on dataset NAME (or a snapshot / directory of it).",
    ),
    "runs": (
        "workbench.train.cli",
        "runs",
        "List training runs (of dataset NAME), newest first, with their metrics.",
    ),
    "evaluate": (
        "workbench.train.cli",
        "evaluate",
        "Detailed test-split metrics of RUN (per class, confusion matrix / COCO stats), from its predictions "
        "against the labels of the snapshot it was trained on (today's labels with --live).",
    ),
    "mine": (
        "workbench.train.cli",
        "mine",
        "Rank RUN's test and val examples by how much they would teach; the top COUNT go to `review` with "
        "the model's predictions as proposals (errors first, then the most uncertain, to fill COUNT).",
    ),
    "predict": (
        "workbench.train.cli",
        "predict",
        "Run RUN's best model on an image, a folder or a video: COCO-format results + overlay images.",
    ),
    "export-model": (
        "workbench.train.cli",
        "export_model",
        "Export RUN's best model to ONNX (checked against the torch model with onnxruntime).",
    ),
    "metrics": ("workbench.evaluate.cli", "metrics", "Compute metrics from files, without a model."),
    "loop": (
        "workbench.loop.cli",
        "loop",
        "Run annotate -> train -> evaluate headless on the built-in sample (or your parameters).",
    ),
    "new": (
        "workbench.loop.cli",
        "new",
        "Start a project: the loop's notebooks, a params file and a README for one dataset type.",
    ),
    "serve": (
        "workbench.loop.cli",
        "serve",
        "Serve the annotate and review dashboards with Voilà (127.0.0.1 by default).",
    ),
}


class _LazyGroup(click.Group):
    """A group whose layer commands (``_LAYER_COMMANDS``) load on first use; the command listing of
    ``--help`` shows their first sentence without importing them."""

    _listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_LAYER_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in _LAYER_COMMANDS:
            return self.commands.get(cmd_name)
        module, attr, sentence = _LAYER_COMMANDS[cmd_name]
        if self._listing:  # a stand-in that lists like the real one
            return click.Command(cmd_name, help=sentence)
        import importlib

        command = getattr(importlib.import_module(module), attr)
        self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), envvar="WORKBENCH_HOME",
              help="Workspace folder (default: $WORKBENCH_HOME or ./workbench-data).")
@click.version_option(package_name="workbench")
@click.pass_context
def cli(ctx: click.Context, home: Path | None) -> None:
    """Workbench: datasets, annotation, training and evaluation for computer vision."""
    ctx.ensure_object(dict)
    ctx.obj["home"] = home


# ---------------------------------------------------------------------------------------------- datasets
@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def datasets(ctx: click.Context, as_json: bool) -> None:
    """List datasets with their type and counts."""
    rows = _ws(ctx).datasets()
    if as_json:
        _echo_json(rows)
    elif not rows:
        echo("no datasets yet: try `workbench sample demo digits`")
    else:
        _table(rows, ["name", "type", "examples", "annotations", "classes"])


@cli.command()
@click.argument("name")
@click.option("--type", "dtype", type=click.Choice(TYPES), required=True)
@click.option("--classes", help="a,b,c or a=#ff0000,b=#00ff00")
@click.option("--description", default="")
@click.pass_context
def create(ctx: click.Context, name: str, dtype: str, classes: str | None, description: str) -> None:
    """Create an empty dataset."""
    ds = _ws(ctx).create_dataset(name, dtype, classes=classes, description=description)
    echo(f"created {dtype} dataset '{name}' with classes: {', '.join(c.name for c in ds.classes) or '-'}")


@cli.command("import")
@click.argument("name")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True)
@click.option("--type", "dtype", type=click.Choice(TYPES), help="Dataset type when NAME is new and SRC has none.")
@click.option("--images", "images_dir", type=click.Path(path_type=Path),
              help="coco, cvat, label-studio: image folder.")
@click.option("--directory", help="Also put the new examples into this directory.")
@click.option("--every", type=int, help="video: keep every Nth frame.")
@click.option("--count", type=int, help="video: keep N frames spread over the video.")
@click.option("--clip-boxes", is_flag=True, help="Clip boxes that stick out of the image (off by default).")
@click.option("--skip-missing", is_flag=True, help="Skip records whose image file is missing (off by default).")
@click.option("--allow-unlabeled", is_flag=True, help="yolo: import images without a label file as status new.")
@click.option("--skip-unsupported", is_flag=True,
              help="cvat, labelme, label-studio: leave out shape types Workbench does not hold (counted).")
@click.option("--voc-one-based", "one_based", is_flag=True,
              help="voc: boxes follow the old devkit's 1-based convention (subtract 1 from xmin/ymin).")
@click.option("--author", default="import")
@click.option("--split", type=click.Choice(["train", "val", "test"]),
              help="Put every imported example in this split (default: the source's own split folders or "
                   "lists, else drawn by hash with copies of one image kept together).")
@click.option("--json", "as_json", is_flag=True, help="Print the import summary as JSON.")
@click.pass_context
def import_(ctx: click.Context, name: str, src: Path, fmt: str, dtype: str | None, images_dir: Path | None,
            directory: str | None, every: int | None, count: int | None, clip_boxes: bool, skip_missing: bool,
            allow_unlabeled: bool, skip_unsupported: bool, one_based: bool, author: str, split: str | None,
            as_json: bool) -> None:
    """Import SRC into dataset NAME (created when missing). All or nothing."""
    from .data.formats import get_reader
    from .data.transfer import import_source

    if not src.exists():
        raise WorkbenchError(f"{src}: no such file or folder")
    wanted = {"images_dir": images_dir, "every": every, "count": count,
              "clip_boxes": clip_boxes or None, "skip_missing": skip_missing or None,
              "allow_unlabeled": allow_unlabeled or None, "skip_unsupported": skip_unsupported or None,
              "one_based": one_based or None}
    supported = set(get_reader(fmt).options)
    options = {k: v for k, v in wanted.items() if v is not None and k in supported}
    unsupported = sorted(k for k, v in wanted.items() if v is not None and k not in supported)
    if unsupported:
        flags = {"one_based": "voc-one-based"}
        raise click.UsageError(
            f"the {fmt} format takes no {', '.join('--' + flags.get(u, u.replace('_', '-')) for u in unsupported)}")
    from .progress import ProgressPrinter

    result = import_source(_ws(ctx), name, src, fmt, type=dtype, directory=directory, author=author, split=split,
                           progress=ProgressPrinter(), **options)
    if as_json:
        _echo_json(result.summary.to_dict())
    else:
        echo(str(result.summary))


@cli.command()
@click.argument("name")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(WRITABLE), required=True)
@click.option("--split", type=click.Choice(["train", "val", "test"]))
@click.option("--directory")
@click.option("--snapshot", help="Export a snapshot instead of the live dataset.")
@click.option("--status", "status", metavar="LIST",
              help="Export only examples with these statuses (comma-separated: new, annotated, reviewed; "
                   "default: annotated,reviewed -- images nobody labelled are not written as empty negatives).")
@click.option("--per-split", is_flag=True,
              help="coco: annotations/instances_<split>.json + images/<split>/ (datumaro / mmdetection / "
                   "detectron2 layout).")
@click.option("--voc-one-based", "one_based", is_flag=True,
              help="voc: write boxes in the old devkit's 1-based convention (xmin/ymin + 1).")
@click.pass_context
def export(ctx: click.Context, name: str, out: Path, fmt: str, split: str | None, directory: str | None,
           snapshot: str | None, status: str | None, per_split: bool, one_based: bool) -> None:
    """Export dataset NAME (or a split / directory / snapshot of it) to OUT."""
    from .data.formats import get_writer
    from .data.transfer import export_with_report, parse_statuses

    wanted = {"per_split": per_split or None, "one_based": one_based or None}
    supported = set(get_writer(fmt).options)
    unsupported = [k for k, v in wanted.items() if v is not None and k not in supported]
    if unsupported:
        flags = {"per_split": "--per-split", "one_based": "--voc-one-based"}
        raise click.UsageError(f"the {fmt} format takes no {', '.join(flags[u] for u in unsupported)}")
    try:
        statuses = parse_statuses(status)
    except WorkbenchError as e:
        raise click.BadParameter(getattr(e, "detail", str(e)), param_hint="'--status'") from None
    from .progress import ProgressPrinter

    ds = _ws(ctx).dataset(name)
    result = export_with_report(ds, out, fmt, split=split, directory=directory, snapshot=snapshot,
                                status=statuses, progress=ProgressPrinter(),
                                **{k: v for k, v in wanted.items() if v is not None})
    echo(f"wrote {len(result.files)} files to {out} ({result.examples} examples with status "
               f"{' or '.join(result.statuses)})")
    if result.left_out:
        said = ", ".join(f"{n} {s}" for s, n in sorted(result.left_out.items()))
        echo(f"left out {result.total_left_out} examples by status ({said}); --status "
                   f"{','.join(sorted(set(result.statuses) | set(result.left_out)))} includes them")
    for what, n in sorted(result.not_written.items()):
        echo(f"not written: {n} {what}")


@cli.command()
@click.argument("name")
@click.argument("sample", type=click.Choice(SAMPLES))
@click.option("--count", type=int, help="How many examples (default: the sample's own).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.pass_context
def sample(ctx: click.Context, name: str, sample: str, count: int | None, seed: int) -> None:
    """Add a built-in sample to dataset NAME (created when missing)."""
    from .data.transfer import add_sample
    from .progress import ProgressPrinter

    ds, ids = add_sample(_ws(ctx), name, sample, count=count, seed=seed, progress=ProgressPrinter())
    echo(f"added {len(ids)} {sample} examples to '{name}' ({ds.type}); it now has {ds.count()}")


@cli.command()
@click.argument("name")
@click.option("--directory")
@click.option("--json", "as_json", is_flag=True)
@click.option("--near-duplicates/--no-near-duplicates", default=True, help="Look for near-duplicate images.")
@click.pass_context
def stats(ctx: click.Context, name: str, directory: str | None, as_json: bool, near_duplicates: bool) -> None:
    """Counts per class and split, balance warnings, box sizes, near-duplicates."""
    from .data.stats import dataset_stats

    st = dataset_stats(_ws(ctx).dataset(name), directory=directory, near_duplicates=near_duplicates)
    if as_json:
        _echo_json(st)
        return
    echo(f"{name}: {st['examples']} examples, {st['annotations']} annotations "
               f"(train {st['splits']['train']} / val {st['splits']['val']} / test {st['splits']['test']})")
    rows = [{"class": c, **v} for c, v in st["classes"].items()]
    _table(rows, ["class", "train", "val", "test", "total"])
    for w in st["warnings"]:
        echo(f"{w['severity']}: {w['message']}")


# ---------------------------------------------------------------------------------------------- snapshots
@cli.command()
@click.argument("name")
@click.option("--message", "-m", default="")
@click.option("--directory")
@click.pass_context
def snapshot(ctx: click.Context, name: str, message: str, directory: str | None) -> None:
    """Freeze dataset NAME (or a directory) into a content-hashed snapshot."""
    info = _ws(ctx).dataset(name).snapshot(message, directory=directory)
    echo(f"snapshot {info.id}: {info.examples} examples, {info.annotations} annotations")


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def snapshots(ctx: click.Context, name: str, as_json: bool) -> None:
    """List the snapshots of dataset NAME."""
    rows = [s.to_dict() for s in _ws(ctx).dataset(name).snapshots()]
    if as_json:
        _echo_json(rows)
    else:
        _table(rows, ["id", "created_at", "examples", "annotations", "directory", "message"])


@cli.command()
@click.argument("name")
@click.argument("a")
@click.argument("b")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def diff(ctx: click.Context, name: str, a: str, b: str, as_json: bool) -> None:
    """What changed between snapshots A and B."""
    d = _ws(ctx).dataset(name).diff(a, b)
    if as_json:
        _echo_json(d)
        return
    for key in ("added", "removed", "annotations_changed", "split_changed", "classes_added", "classes_removed"):
        vals = d[key]
        shown = ", ".join(map(str, vals[:20])) + (" ..." if len(vals) > 20 else "")
        echo(f"{key.replace('_', ' ')}: {len(vals)}{'  ' + shown if vals else ''}")


# ---------------------------------------------------------------------------------------------- directories
@cli.group("dir")
def dir_() -> None:
    """Directories: named sets of examples inside a dataset (mirrors share annotations)."""


def _ids(values: tuple[str, ...]) -> list[int]:
    out: list[int] = []
    for v in values:
        for part in v.split(","):
            if part.strip():
                if "-" in part:
                    lo, hi = part.split("-", 1)
                    out.extend(range(int(lo), int(hi) + 1))
                else:
                    out.append(int(part))
    if not out:
        raise click.UsageError("give example ids, e.g. 3 4 7-12")
    return out


@dir_.command("list")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def dir_list(ctx: click.Context, name: str, as_json: bool) -> None:
    """List the directories of dataset NAME."""
    rows = _ws(ctx).dataset(name).directories()
    if as_json:
        _echo_json(rows)
    else:
        _table(rows, ["name", "examples"]) if rows else echo("no directories")


@dir_.command("mirror")
@click.argument("name")
@click.argument("directory")
@click.argument("ids", nargs=-1)
@click.pass_context
def dir_mirror(ctx: click.Context, name: str, directory: str, ids: tuple[str, ...]) -> None:
    """Mirror examples IDS into DIRECTORY (annotations shared)."""
    n = _ws(ctx).dataset(name).mirror(directory, _ids(ids))
    echo(f"mirrored {n} examples into '{directory}'")


@dir_.command("copy")
@click.argument("name")
@click.argument("directory")
@click.argument("ids", nargs=-1)
@click.pass_context
def dir_copy(ctx: click.Context, name: str, directory: str, ids: tuple[str, ...]) -> None:
    """Copy examples IDS into DIRECTORY without their annotations (same image bytes)."""
    new = _ws(ctx).dataset(name).copy_without_annotations(_ids(ids), directory)
    echo(f"copied {len(new)} examples into '{directory}' as ids {new[0]}-{new[-1]}")


@dir_.command("remove")
@click.argument("name")
@click.argument("directory")
@click.argument("ids", nargs=-1)
@click.pass_context
def dir_remove(ctx: click.Context, name: str, directory: str, ids: tuple[str, ...]) -> None:
    """Take examples IDS out of DIRECTORY (they stay in the dataset)."""
    _ws(ctx).dataset(name).remove_from_directory(directory, _ids(ids))
    echo(f"removed {len(_ids(ids))} examples from '{directory}'")


@dir_.command("delete")
@click.argument("name")
@click.argument("directory")
@click.pass_context
def dir_delete(ctx: click.Context, name: str, directory: str) -> None:
    """Delete DIRECTORY (its examples stay in the dataset)."""
    _ws(ctx).dataset(name).delete_directory(directory)
    echo(f"deleted directory '{directory}'")


@cli.command()
@click.option("--grace", type=float, default=3600.0, show_default=True,
              help="Keep unreferenced images younger than this many seconds.")
@click.pass_context
def gc(ctx: click.Context, grace: float) -> None:
    """Check the workspace and remove images nothing refers to (files, rows of blobs/small.sqlite)."""
    ws = _ws(ctx)
    problems = ws.check()
    res = ws.gc(grace_s=grace)
    echo(f"integrity: {'ok' if not problems else '; '.join(problems)}; removed {res['files_removed']} "
               f"orphan images, {res['rows_removed']} rows")
    if problems:
        raise SystemExit(1)


@cli.command()
@click.argument("name")
@click.option("--example", "example_id", type=int, help="Only this example's history.")
@click.option("--annotation", "annotation_id", type=int, help="Only this annotation's history.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the last N entries.")
@click.option("--restore", "restore_id", type=int,
              help="Undo history entry ID as a new edit: a deleted shape comes back, an edit is reverted.")
@click.option("--author", default="cli", show_default=True, help="Who --restore is recorded as.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def history(ctx: click.Context, name: str, example_id: int | None, annotation_id: int | None, limit: int | None,
            restore_id: int | None, author: str, as_json: bool) -> None:
    """Show the edit history of dataset NAME (who changed or deleted which annotation, when, before and after)."""
    from .data import history as hist

    ds = _ws(ctx).dataset(name)
    if restore_id is not None:
        ann = hist.restore(ds, restore_id, author)
        click.echo(f"restored history entry {restore_id}: annotation {ann.id} ({_printable(ann.kind)} "
                   f"'{_printable(ann.label)}')")
        return
    rows = hist.entries(ds, example_id=example_id, annotation_id=annotation_id, limit=limit)
    if as_json:
        _echo_json([r.to_dict() for r in rows])
        return
    if not rows:
        click.echo("no history")
        return

    def shape(d: dict | None) -> str:
        if d is None:
            return "-"
        box = "" if d.get("x") is None else " [" + ", ".join(f"{d[k]:g}" for k in "xywh") + "]"
        return f"{d['kind']} '{d['label']}'{box}{' proposal' if d.get('proposal') else ''}"

    _table([{"entry": r.id, "at": r.at, "who": _printable(r.who), "example": r.example_id,
             "annotation": r.annotation_id, "action": r.action, "before": _printable(shape(r.before)),
             "after": _printable(shape(r.after))} for r in rows],
           ["entry", "at", "who", "example", "annotation", "action", "before", "after"])


def _printable(text: str) -> str:
    """``text`` with control and format characters (escape sequences, bidi overrides) shown escaped."""
    import unicodedata

    return "".join(ch if unicodedata.category(ch)[0] != "C" else ascii(ch)[1:-1] for ch in str(text))


# ---------------------------------------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> int:
    debug = bool(os.environ.get("WORKBENCH_DEBUG"))
    try:
        cli.main(args=argv, prog_name="workbench", standalone_mode=False)
    except click.exceptions.Abort:
        echo("aborted", err=True)
        return 130
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Exit as e:
        return e.exit_code
    except WorkbenchError as e:
        if debug:
            raise
        msg = " ".join(str(e).split())
        echo(f"error: {msg}", err=True)
        return 2
    except KeyboardInterrupt:
        echo("interrupted", err=True)
        return 130
    except SystemExit as e:
        return int(e.code or 0) if not isinstance(e.code, str) else 1
    except Exception as e:  # never a traceback on the command line
        if debug:
            raise
        missing = missing_extra(e) if isinstance(e, ModuleNotFoundError) else None
        if missing is not None:  # an optional library: say which extra installs it
            echo(f"error: {missing}", err=True)
            return 2
        msg = " ".join(str(e).split()) or type(e).__name__
        echo(f"error: {type(e).__name__}: {msg} (set WORKBENCH_DEBUG=1 for the traceback)", err=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
