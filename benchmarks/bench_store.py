"""Store at scale: import a generated COCO file of N images / 10*N boxes, then time stats, opening one
example, and committing one annotation edit (p50 / p99). References measured in the same run:
``json.load`` + pycocotools indexing of the same file.

    python benchmarks/bench_store.py --images 100000 --boxes-per-image 10 [--json OUT]

``--json OUT`` writes the rows ``run_all.py`` collects (``benchmarks/rows.py``): the two import phases
against the reference (no goal), and against fixed targets the first stats after the import (< 1 s), stats
after one edit and after adding 20 new images (p50 < 200 ms each), opening one example and committing one
edit (p99 < 5 ms each); stats recomputed with no caches is shown without a goal.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.rows import Row, target_row, write_rows  # noqa: E402


def make_coco(root: Path, n_images: int, per_image: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    img_dir = root / "images"
    img_dir.mkdir(parents=True)
    base = rng.integers(0, 255, size=(24, 32, 3), dtype=np.uint8)
    images, anns = [], []
    aid = 1
    for i in range(n_images):
        arr = base.copy()
        arr[i % 24, (i // 24) % 32] = (i * 7) % 255
        arr[(i // 768) % 24, 0, :] = (i // 768) % 255  # unique bytes per image
        arr[0, 0, :] = [i % 256, (i // 256) % 256, (i // 65536) % 256]
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
        name = f"im{i:06d}.png"
        (img_dir / name).write_bytes(buf.getvalue())
        images.append({"id": i + 1, "file_name": name, "width": 32, "height": 24})
        xy = rng.uniform(0, 20, size=(per_image, 2))
        wh = rng.uniform(1, 10, size=(per_image, 2))
        cats = rng.integers(1, 4, size=per_image)
        for k in range(per_image):
            x, y = round(float(xy[k, 0]), 2), round(float(xy[k, 1]), 2)
            w, h = round(min(float(wh[k, 0]), 32 - x), 2), round(min(float(wh[k, 1]), 24 - y), 2)
            anns.append(
                {
                    "id": aid,
                    "image_id": i + 1,
                    "category_id": int(cats[k]),
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
            aid += 1
    cats = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "c"}]
    path = root / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile of sorted ``values`` (nearest rank, no interpolation)."""
    return values[min(len(values) - 1, int(q * len(values)))]


def summary_rows(
    scale: str,
    t_ref: float,
    imports: list[tuple[str, float]],
    t_first: float,
    after_edit: list[float],
    opens: list[float],
    edits: list[float],
    after_add: list[float],
    t_scratch: float,
) -> list[Row]:
    """The table rows: imports against the reference, the rest against fixed targets (times in seconds,
    lists sorted)."""
    ref = f"{t_ref:.1f} s (json.load + pycocotools index)"
    rows = [Row(f"store {label}, {scale}", f"{t:.1f} s", ref, t / t_ref, None) for label, t in imports]
    first_ms, edit_ms = t_first * 1000, pct(after_edit, 0.5) * 1000
    open_ms = [pct(opens, q) * 1000 for q in (0.5, 0.99)]
    commit_ms = [pct(edits, q) * 1000 for q in (0.5, 0.99)]
    rows += [
        target_row(f"store stats, first after the import, {scale}", first_ms, 1000, f"{first_ms:.0f} ms"),
        target_row(
            f"store stats after one edit, {scale}",
            edit_ms,
            200,
            f"{edit_ms:.0f} ms (max {after_edit[-1] * 1000:.0f})",
            f"p50 of {len(after_edit)}",
        ),
        target_row(
            f"store stats after adding 20 new images, {scale}",
            pct(after_add, 0.5) * 1000,
            200,
            f"{pct(after_add, 0.5) * 1000:.0f} ms (max {after_add[-1] * 1000:.0f})",
            f"p50 of {len(after_add)}; only the new images are compared",
        ),
        Row(
            f"store stats recomputed from nothing, {scale}",
            f"{t_scratch * 1000:.0f} ms",
            "no caches: every image's duplicates searched again",
            None,
            None,
        ),
        target_row(
            f"store open one example, {scale}",
            open_ms[1],
            5,
            f"{open_ms[0]:.2f} / {open_ms[1]:.2f} ms",
            "p50 / p99; goal on p99",
        ),
        target_row(
            f"store one edit committed, {scale}",
            commit_ms[1],
            5,
            f"{commit_ms[0]:.2f} / {commit_ms[1]:.2f} ms",
            "p50 / p99; goal on p99",
        ),
    ]
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--boxes-per-image", type=int, default=10)
    ap.add_argument("--edits", type=int, default=300)
    ap.add_argument("--keep", type=Path, help="Keep the generated files and workspace here.")
    ap.add_argument("--json", type=Path, help="also write the summary rows here (for run_all.py)")
    args = ap.parse_args(argv)
    if args.images < 1 or args.boxes_per_image < 1 or args.edits < 1:
        ap.error("--images, --boxes-per-image and --edits must be at least 1")
    from workbench.data import Annotation, Workspace
    from workbench.data.formats import get_reader
    from workbench.data.stats import dataset_stats

    root = args.keep or Path(tempfile.mkdtemp(prefix="wb-bench-store-"))
    root.mkdir(parents=True, exist_ok=True)
    imports = []
    t_gen, gt = timed(lambda: make_coco(root / "src", args.images, args.boxes_per_image))

    def reference():
        from pycocotools.coco import COCO

        c = COCO.__new__(COCO)
        c.dataset = json.loads(Path(gt).read_text())
        c.anns, c.cats, c.imgs = {}, {}, {}
        import contextlib

        with contextlib.redirect_stdout(io.StringIO()):
            c.createIndex()
        return c

    t_ref, _ = timed(reference)
    ws = Workspace(root / "ws")
    t_read, batch = timed(lambda: get_reader("coco").read(gt))
    ds = ws.create_dataset("big", "detection")
    t_store, ids = timed(lambda: ds.import_batch(batch))
    n_boxes = sum(len(it.annotations) for it in batch.items)
    batch = None  # free the items before timing the rest
    imports.append(("import (read + validate COCO)", t_read))
    imports.append(("import (store: hash, phash, write, commit)", t_store))
    t_first, st = timed(lambda: dataset_stats(ds))  # first ask: counts read, duplicates searched
    t_stats, _ = timed(lambda: dataset_stats(ds, use_cache=False), repeat=2)
    t_stats_nd, _ = timed(lambda: dataset_stats(ds, near_duplicates=False, use_cache=False), repeat=2)
    dataset_stats(ds)
    t_stats_warm, _ = timed(lambda: dataset_stats(ds), repeat=5)
    rng = np.random.default_rng(1)
    after_edit = []  # the case that matters: someone edited, the overview asks again
    for eid in rng.choice(ids, size=20):
        a = ds.example(int(eid)).annotations[0]
        ds.update_annotation(a.id, Annotation("box", a.label, bbox=(1.0, 1.0, 6.0, 5.0)), author="bench")
        t = time.perf_counter()
        dataset_stats(ds)
        after_edit.append(time.perf_counter() - t)
    after_edit.sort()
    after_add = []  # images collected into the dataset, then the overview asks again
    for k in range(5):
        added = get_reader("coco").read(make_coco(root / f"added{k}", 20, args.boxes_per_image, seed=100 + k))
        ds.import_batch(added)
        t = time.perf_counter()
        dataset_stats(ds)
        after_add.append(time.perf_counter() - t)
    after_add.sort()
    opens = []
    for eid in rng.choice(ids, size=200):
        t = time.perf_counter()
        ds.example(int(eid))
        opens.append(time.perf_counter() - t)
    edits = []
    for eid in rng.choice(ids, size=args.edits):
        ex = ds.example(int(eid))
        a = ex.annotations[0]
        t = time.perf_counter()
        ds.update_annotation(a.id, Annotation("box", a.label, bbox=(0.0, 0.0, 3.0, 3.0)), author="bench")
        edits.append(time.perf_counter() - t)
    opens.sort()
    edits.sort()
    print(f"\nstore benchmark: {args.images:,} images, {n_boxes:,} boxes (generated in {t_gen:.1f} s)")
    print(f"reference: json.load + pycocotools createIndex = {t_ref:.2f} s\n")
    print(f"{'what':48s} {'time':>10s} {'x reference':>12s}")
    for name, t in imports:
        print(f"{name:48s} {t:9.2f}s {t / t_ref:11.1f}x")
    print(
        f"{'stats, first after the import (+ duplicate search)':48s} {t_first * 1000:8.0f}ms   goal < 1000 ms (issue 2)"
    )
    print(
        f"{'stats after one edit (p50 / max of 20)':48s} {pct(after_edit, 0.5) * 1000:6.0f} / {after_edit[-1] * 1000:.0f} ms"
        "  goal < 200 ms (issue 8)"
    )
    print(
        f"{'stats after adding 20 images (p50 / max of 5)':48s} {pct(after_add, 0.5) * 1000:6.0f} / {after_add[-1] * 1000:.0f} ms"
        "  goal < 200 ms"
    )
    print(f"{'stats, no caches (duplicates searched again)':48s} {t_stats * 1000:8.0f}ms")
    print(f"{'stats, no caches, without near-duplicate search':48s} {t_stats_nd * 1000:8.0f}ms")
    print(f"{'stats, unchanged dataset (cached by version)':48s} {t_stats_warm * 1000:8.1f}ms")
    print(
        f"{'open one example (p50 / p99)':48s} {pct(opens, 0.5) * 1000:6.2f} / {pct(opens, 0.99) * 1000:.2f} ms  goal < 5 ms"
    )
    print(
        f"{'one annotation edit committed (p50 / p99)':48s} {pct(edits, 0.5) * 1000:6.2f} / {pct(edits, 0.99) * 1000:.2f} ms  goal p99 < 5 ms"
    )
    print(f"examples in store: {st['examples']:,}; annotations: {st['annotations']:,}")
    from workbench.data import aggregates

    t_verify, problems = timed(lambda: aggregates.verify(ws.conn))
    print(f"maintained counts equal a full recount: {not problems} (recount took {t_verify:.1f} s)")
    ws.close()
    if args.json:
        scale = f"{args.images:,} images / {n_boxes:,} boxes"
        write_rows(
            args.json,
            summary_rows(scale, t_ref, imports, t_first, after_edit, opens, edits, after_add, t_stats),
        )
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
