"""Augmentation speed: Workbench's ``Augmenter`` against raw albumentations, and the preview grid to PNG.

    python benchmarks/bench_augment.py [--rounds 15] [--per-size 16] [--json OUT]

Throughput: the shapes-detection sample at 256, 384 and 512 px (``--per-size`` images each, 1-5 boxes per
image) through a preset, by our ``Augmenter`` and by a bare ``albumentations.Compose`` of the same
transforms (built from the same config entries) with plain ``BboxParams``. Both get the same random state
per image (``Compose.set_random_state`` from ``draw_seed(0, round, index)``), so the same transforms fire
with the same parameters and the comparison is of the work around them. CPU time (``time.process_time``,
OpenCV on one thread), the contenders taking turns image by image (so a change in the machine's load hits
them alike), summed per round; the median round of ``--rounds``. Goal: >= 0.95 of raw throughput on the path
training takes (``track_clipping=False``); the preview's path (corner keypoints for clipping counts) is
shown too.

Preview grid: 4 examples at 512 px x 4 draws (16 augmented images with boxes) composed into one PNG by
``AugmentationGrid`` (draws, boxes in class colours, captions, red frames), against raw albumentations
for the same 16 draws plus a bare PIL grid (thumbnails, box outlines, no captions) saved as PNG the same way.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import albumentations as A  # noqa: E402
import cv2  # noqa: E402

from benchmarks.rows import Row, table, write_rows  # noqa: E402
from workbench.augment import Augmenter, preset  # noqa: E402
from workbench.augment.config import enabled_transforms, validate  # noqa: E402
from workbench.augment.pipeline import _make_transform, draw_seed  # noqa: E402
from workbench.data.images import decode_rgb  # noqa: E402
from workbench.data.samples import make_sample  # noqa: E402
from workbench.train.source import source_from_batch  # noqa: E402

Item = tuple[np.ndarray, np.ndarray, list[str]]  # image, COCO boxes, labels


def load(sizes: tuple[int, ...], per_size: int) -> tuple[list[Item], Any]:
    items: list[Item] = []
    classes: Any = None
    for size in sizes:
        src = source_from_batch(make_sample("shapes-detection", per_size, 0, size=size), dataset="shapes")
        classes = src.classes
        for ex in src.examples:
            anns = [a for a in ex.truth() if a.bbox is not None]
            boxes = np.array([a.bbox for a in anns], dtype=float).reshape(-1, 4)
            items.append((decode_rgb(src.load_bytes(ex.blob)), boxes, [str(a.label) for a in anns]))
    return items, classes


def raw_compose(config: dict[str, Any], boxes: bool) -> A.Compose:
    """The same transforms, bare: what someone using albumentations directly would write."""
    cfg = validate(config)
    transforms = [_make_transform(A, i, e) for i, e in enabled_transforms(cfg)]
    if cfg["image_size"] is not None:
        transforms.append(A.Resize(*cfg["image_size"]))
    bbox = (
        A.BboxParams(
            format="coco",
            label_fields=["labels"],
            min_visibility=cfg["min_visibility"],
            min_width=1.0,
            min_height=1.0,
            clip=True,
        )
        if boxes
        else None
    )
    return A.Compose(transforms, bbox_params=bbox)


def raw_call(compose: A.Compose, item: Item, seed: int, boxes: bool) -> Any:
    compose.set_random_state(np.random.default_rng(seed), random.Random(seed))
    if boxes:
        return compose(image=item[0], bboxes=item[1], labels=item[2])
    return compose(image=item[0])


def interleaved(fns: dict[str, Callable[[int, int], None]], rounds: int, items: int) -> dict[str, float]:
    """Median over rounds of the CPU seconds each ``fn(round, item)`` takes for all items; the functions
    take turns item by item, in an order that rotates."""
    names = list(fns)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(-1, rounds):  # round -1 warms up
        total = dict.fromkeys(names, 0.0)
        for i in range(items):
            k = (r + i) % len(names)
            for name in names[k:] + names[:k]:
                t0 = time.process_time()
                fns[name](r, i)
                total[name] += time.process_time() - t0
        if r >= 0:
            for name in names:
                times[name].append(total[name])
    return {k: statistics.median(v) for k, v in times.items()}


def throughput_rows(items: list[Item], rounds: int) -> list[Row]:
    rows = []
    cases = [
        ("detection-default", "detection", True),
        ("classification-default", "classification", False),
    ]
    for name, dtype, boxes in cases:
        config = preset(name)
        raw = raw_compose(config, boxes)
        variants = {"training": Augmenter(config, dtype, track_clipping=False)}
        if boxes:
            variants["preview"] = Augmenter(config, dtype)

        def run_raw(r: int, i: int, raw: A.Compose = raw, boxes: bool = boxes) -> None:
            raw_call(raw, items[i], draw_seed(0, r, i), boxes)

        def runner(aug: Augmenter, boxes: bool = boxes) -> Callable[[int, int], None]:
            def run(r: int, i: int) -> None:
                img, b, labels = items[i]
                if boxes:
                    aug(img, b, labels, seed=draw_seed(0, r, i))
                else:
                    aug(img, seed=draw_seed(0, r, i))

            return run

        t = interleaved({"raw": run_raw, **{k: runner(v) for k, v in variants.items()}}, rounds, len(items))
        raw_rate = len(items) / t["raw"]
        for variant in variants:
            rate = len(items) / t[variant]
            path = "training path" if variant == "training" else "preview path (clipping counts)"
            rows.append(
                Row(
                    f"Augmenter, {name}, {path}",
                    f"{rate:.0f} img/s",
                    f"{raw_rate:.0f} img/s (raw albumentations)",
                    rate / raw_rate,
                    ">= 0.95" if variant == "training" else None,
                    f"{len(items)} images of 256-512 px, CPU time, median of {rounds} rounds",
                )
            )
    return rows


# ---------------------------------------------------------------------------------------------- grid
def ours_grid(items: list[Item], classes: Any, draws: int) -> Callable[[int], bytes]:
    from workbench.widgets.augment_grid import AugmentationGrid
    from workbench.widgets.augment_state import GridExample
    from workbench.widgets.static import png_bytes

    examples = [GridExample(i, img, b, labels) for i, (img, b, labels) in enumerate(items)]
    grid = AugmentationGrid(preset("detection-default"), "detection", examples, classes, draws=draws)

    def run(r: int) -> bytes:
        grid.state.base_seed = r
        grid.rows = grid.state.draw_all()
        return png_bytes(grid.grid_image())

    return run


def reference_grid(items: list[Item], classes: Any, draws: int, cell: int = 200) -> Callable[[int], bytes]:
    """Raw albumentations for the draws, then thumbnails with box outlines pasted into one PNG."""
    import io

    from PIL import Image, ImageDraw

    compose = raw_compose(preset("detection-default"), True)
    colors = {c.name: c.color for c in classes}

    def thumb(img: np.ndarray, boxes: Any, labels: list[str]) -> Image.Image:
        im = Image.fromarray(img)
        s = cell / max(im.size)
        im = im.resize((round(im.width * s), round(im.height * s)), Image.Resampling.BILINEAR)
        d = ImageDraw.Draw(im)
        for (x, y, w, h), lab in zip(boxes, labels, strict=True):
            d.rectangle([x * s, y * s, (x + w) * s, (y + h) * s], outline=colors.get(lab, "#ff0000"), width=2)
        return im

    def run(r: int) -> bytes:
        tiles = []
        for i, item in enumerate(items):
            tiles.append(thumb(*item))
            for e in range(1, draws + 1):
                out = raw_call(compose, item, draw_seed(r, e, i), True)
                tiles.append(thumb(out["image"], out["bboxes"], list(out["labels"])))
        cols = draws + 1
        sheet = Image.new("RGB", (cols * cell, -(-len(tiles) // cols) * cell), "white")
        for k, t in enumerate(tiles):
            sheet.paste(t, ((k % cols) * cell, (k // cols) * cell))
        buf = io.BytesIO()
        sheet.save(buf, format="PNG", optimize=False)
        return buf.getvalue()

    return run


def grid_rows(rounds: int) -> list[Row]:
    items, classes = load((512,), 4)
    ours, ref = ours_grid(items, classes, 4), reference_grid(items, classes, 4)
    t = interleaved({"ref": lambda r, _: ref(r), "ours": lambda r, _: ours(r)}, rounds, 1)
    return [
        Row(
            "preview grid, 16 augmented 512-px images with boxes -> PNG",
            f"{t['ours'] * 1000:.0f} ms",
            f"{t['ref'] * 1000:.0f} ms (raw albumentations + bare PIL grid)",
            t["ours"] / t["ref"],
            "<= 1.5",
            f"CPU time, median of {rounds}; ours adds captions, class colours, clip frames",
        )
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--per-size", type=int, default=16, help="images per size (256, 384, 512 px)")
    ap.add_argument("--json", type=Path, help="also write the rows here (for run_all.py)")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    items, _ = load((256, 384, 512), args.per_size)
    rows = throughput_rows(items, args.rounds) + grid_rows(args.rounds)
    print(table(rows))
    if args.json:
        write_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
