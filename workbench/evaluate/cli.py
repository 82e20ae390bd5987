"""CLI commands of the evaluation layer: ``metrics coco`` (no torch: a quick tool)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..text import echo

__all__ = ["register"]


@click.group()
def metrics() -> None:
    """Compute metrics from files, without a model."""


@metrics.command("coco")
@click.argument("gt", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("detections", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--iou-type", type=click.Choice(["bbox", "segm"]), default="bbox", show_default=True)
@click.option("--per-class", is_flag=True, help="Also AP per class.")
@click.option("--backend", default="auto", show_default=True,
              help="auto, hotcoco, faster-coco-eval or pycocotools (all give the same numbers).")
@click.option("--json", "as_json", is_flag=True)
def coco(gt: Path, detections: Path, iou_type: str, per_class: bool, backend: str, as_json: bool) -> None:
    """COCO mAP of DETECTIONS (COCO results JSON) against ground truth GT (COCO JSON)."""
    from .coco import coco_metrics

    res = coco_metrics(gt, detections, iou_type=iou_type, backend=backend, per_class=per_class)
    if as_json:
        out: dict = dict(res.stats)
        if per_class:
            out["per_class"] = res.per_class
        echo(json.dumps(out, indent=2))
        return
    for k, v in res.stats.items():
        echo(f"{k:6s} {v:.4f}")
    if per_class:
        for name, row in res.per_class.items():
            echo(f"  {name}: AP {row.get('AP', -1):.4f}  AP50 {row.get('AP50', -1):.4f}")


def register(cli: click.Group) -> None:
    cli.add_command(metrics)
