"""Import at scale: a generated COCO file of N images x K boxes, imported into a fresh workspace, against
references in the same run. The images are 32x24 PNGs by default (the annotation and store side: what each
image costs beyond its decode); ``--photos 640x480`` makes photo JPEGs of that size instead (COCO's usual
size: the decode's share, which the issue's "real JPEGs decoded two to three times each" is about):

* ``floor``: ``json.load`` + pycocotools' index of the same file (what reading it costs at the least);
* ``before``: another Workbench checkout (``--before``, say a ``git worktree`` of main), timed the same way;
* ``datumaro``: datumaro 1.13 importing the same folder (``--datumaro-python``, a Python with it installed in
  its own venv), every item's annotations and image read (``item.media.data``).

    python benchmarks/bench_import_scale.py [--images 20000] [--boxes-per-image 10] [--photos WxH]
        [--before CHECKOUT] [--datumaro-python PY] [--repeat 1] [--data DIR] [--json OUT]

Each run is a fresh process (libraries imported before the clock starts, the files read once before so
every run finds them in the page cache), the contenders taken in turn (A B C A B C ...) so the machine's
load weighs on each alike; figures are each one's best. Printed per contender: wall time, peak RSS of the
importing process (``ru_maxrss``) and of its largest worker process if any (``RUSAGE_CHILDREN``: on Linux a
child's figure starts at its parent's size when it was started, so it overstates a small worker: a check
worker alone peaks near 45 MB), and the ratio to each reference. ``--profile OUT`` writes a cProfile of one Workbench import instead.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_store import make_coco  # noqa: E402
from benchmarks.rows import Row, table, write_rows  # noqa: E402

_RSS = """
def _rss_mb():
    import resource, sys
    scale = 2 ** 20 if sys.platform == "darwin" else 2 ** 10  # ru_maxrss: bytes on macOS, KiB on Linux
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / scale
    return own, kids
"""

WORKBENCH_RUN = _RSS + """
import json, sys, time
sys.path.insert(0, {root!r})
import numpy, PIL.Image, sqlite3
from workbench.data import Workspace
from workbench.data.transfer import import_source
t = time.perf_counter()
with Workspace({home!r}) as ws:
    _, ids = import_source(ws, "d", {ann!r}, "coco", images_dir={imgs!r})
    boxes = ws.conn.execute("SELECT COUNT(*) FROM annotations").fetchone()[0]
took = time.perf_counter() - t
own, kids = _rss_mb()
print(json.dumps({{"seconds": took, "examples": len(ids), "boxes": boxes, "rss_mb": own, "workers_rss_mb": kids}}))
"""

FLOOR_RUN = _RSS + """
import json, time, contextlib, io
from pycocotools.coco import COCO
t = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    c = COCO({ann!r})
took = time.perf_counter() - t
own, kids = _rss_mb()
print(json.dumps({{"seconds": took, "examples": len(c.imgs), "boxes": len(c.anns), "rss_mb": own,
                  "workers_rss_mb": kids}}))
"""

DATUMARO_RUN = _RSS + """
import json, time
import datumaro as dm
t = time.perf_counter()
ds = dm.Dataset.import_from({data!r}, "coco_instances")
n = boxes = 0
for item in ds:
    n += item.media.data.shape[0] > 0  # decodes the image
    boxes += len(item.annotations)
took = time.perf_counter() - t
own, kids = _rss_mb()
print(json.dumps({{"seconds": took, "examples": n, "boxes": boxes, "rss_mb": own, "workers_rss_mb": kids}}))
"""


def _photo_part(job: tuple[str, int, int, int, int, int, int]) -> tuple[list[dict], list[dict]]:
    """Images ``start..stop`` of :func:`make_coco_photos` (a process of its own makes each part)."""
    from skimage import data as skdata

    from benchmarks.bench_import import PHOTOS, photo_jpeg

    img_dir, start, stop, per_image, w, h, seed = job
    photos = [Image.fromarray(np.asarray(getattr(skdata, p)())[..., :3].astype(np.uint8))
              for p in PHOTOS if hasattr(skdata, p)]
    images, anns = [], []
    for i in range(start, stop):
        rng = np.random.default_rng((seed, i))
        name = f"photo_{i:06d}.jpg"
        data = photo_jpeg(photos[i % len(photos)], rng, w, h, least_crop=0.5, resample=Image.Resampling.BILINEAR)
        (Path(img_dir) / name).write_bytes(data)
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
        wh = rng.uniform(8, [w / 3, h / 3], size=(per_image, 2))
        xy = rng.uniform(0, 1, size=(per_image, 2)) * ([w, h] - wh)
        for k in range(per_image):
            bw, bh = round(float(wh[k, 0]), 2), round(float(wh[k, 1]), 2)
            bx, by = round(float(xy[k, 0]), 2), round(float(xy[k, 1]), 2)
            anns.append({"id": i * per_image + k + 1, "image_id": i + 1, "category_id": int(1 + (i + k) % 3),
                         "bbox": [bx, by, bw, bh], "area": round(bw * bh, 2), "iscrowd": 0})
    return images, anns


def make_coco_photos(root: Path, n_images: int, per_image: int, size: tuple[int, int], seed: int = 0) -> Path:
    """A COCO set of ``n_images`` photo JPEGs of ``size`` (``bench_import.py``'s photos: ``skimage.data``'s
    colour photos, cropped, scaled, flipped, tinted and noised, so every file differs and sizes are close to
    real photos') with ``per_image`` boxes each; made by a process per core."""
    from concurrent.futures import ProcessPoolExecutor

    img_dir = root / "images"
    img_dir.mkdir(parents=True)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    step = 500
    jobs = [(str(img_dir), a, min(a + step, n_images), per_image, size[0], size[1], seed)
            for a in range(0, n_images, step)]
    images: list[dict] = []
    anns: list[dict] = []
    with ProcessPoolExecutor(cores) as pool:
        for part_images, part_anns in pool.map(_photo_part, jobs):
            images += part_images
            anns += part_anns
    cats = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "c"}]
    path = root / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def run(python: str, code: str, env: dict[str, str] | None = None) -> dict:
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise RuntimeError(f"{python} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def datumaro_layout(data: Path, ann: Path) -> Path:
    """``data/dm/annotations/instances_default.json`` + ``data/dm/images/default/`` (links to the images)."""
    root = data / "dm"
    if not (root / "annotations" / "instances_default.json").exists():
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "images").mkdir(parents=True, exist_ok=True)
        os.symlink(ann, root / "annotations" / "instances_default.json")
        os.symlink(data / "images", root / "images" / "default")
    return root


def _before_name(befores: list[Path], i: int) -> str:
    """``before`` for one checkout; ``before:<folder>`` when several are timed."""
    return "before" if len(befores) == 1 else f"before:{befores[i].resolve().name}"


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--photos: expected WIDTHxHEIGHT such as 640x480, got {text!r}") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise SystemExit(f"--photos: each side between 16 and 8192 pixels, got {text!r}")
    return w, h


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=20_000)
    ap.add_argument("--boxes-per-image", type=int, default=10)
    ap.add_argument("--photos", metavar="WxH", help="photo JPEGs of this size (COCO's usual: 640x480) instead "
                    "of the small PNGs")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--data", type=Path, help="keep the generated set here (reused when present)")
    ap.add_argument("--before", type=Path, action="append", default=[],
                    help="another Workbench checkout to time the same way (repeat the flag for several)")
    ap.add_argument("--datumaro-python", help="a Python with datumaro 1.13 installed")
    ap.add_argument("--profile", type=Path, help="write a cProfile of one import here and stop")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench_import_scale_"))
    data = args.data or tmp / "data"
    ann = data / "annotations.json"
    size = _size(args.photos) if args.photos else None
    if not ann.is_file():
        if size:
            make_coco_photos(data, args.images, args.boxes_per_image, size)
        else:
            make_coco(data, args.images, args.boxes_per_image)
    imgs = data / "images"
    for p in imgs.iterdir():  # into the page cache: every run reads from memory
        p.read_bytes()
    ann.read_bytes()
    n_boxes = args.images * args.boxes_per_image
    kind = f"{size[0]}x{size[1]} photo JPEGs" if size else "small PNGs"
    what = f"{args.images:,} images / {n_boxes:,} boxes"

    def wb(root: Path, tag: str):
        return lambda r: WORKBENCH_RUN.format(root=str(root), home=str(tmp / f"ws_{tag}_{r}"), ann=str(ann),
                                              imgs=str(imgs))

    if args.profile:
        code = wb(ROOT, "profile")(0).replace(
            "    _, ids = import_source(", "    import cProfile\n    pr = cProfile.Profile(); pr.enable()\n"
            "    _, ids = import_source(").replace(
            "    boxes = ws.conn", f"    pr.disable(); pr.dump_stats({str(args.profile)!r})\n    boxes = ws.conn")
        print(run(sys.executable, code))
        return 0

    contenders: dict[str, tuple[str, object]] = {"after": (sys.executable, wb(ROOT, "after")),
                                                 "floor": (sys.executable, lambda r: FLOOR_RUN.format(ann=str(ann)))}
    for i, before in enumerate(args.before):
        contenders[_before_name(args.before, i)] = (sys.executable, wb(before.resolve(), f"before{i}"))
    if args.datumaro_python:
        dm_root = datumaro_layout(data, ann)
        contenders["datumaro"] = (args.datumaro_python, lambda r: DATUMARO_RUN.format(data=str(dm_root)))
    got: dict[str, dict] = {}
    for r in range(args.repeat):
        for name, (python, code_for) in contenders.items():
            out = run(python, code_for(r))  # type: ignore[operator]
            print(f"  run {r + 1} {name}: {out['seconds']:.2f} s, {out['rss_mb']:.0f} MB", flush=True)
            if name not in got or out["seconds"] < got[name]["seconds"]:
                got[name] = out
    for name, out in got.items():
        assert out["examples"] == args.images and out["boxes"] == n_boxes, (name, out)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    after = got["after"]
    print(f"{what} ({kind}); {cores} cores, load {load:.1f}")
    for name, out in got.items():
        ratio = out["seconds"] / after["seconds"]
        print(f"{name:>9}: {out['seconds']:7.2f} s  peak RSS {out['rss_mb']:6.0f} MB (workers {out['workers_rss_mb']:.0f})"
              f"  {ratio:5.2f}x workbench's time")
    rows = [Row(f"import {what} (COCO, {kind})", f"{after['seconds']:.1f} s, {after['rss_mb']:.0f} MB",
                f"json.load + pycocotools index {got['floor']['seconds']:.1f} s", after["seconds"] /
                got["floor"]["seconds"], None, f"{cores} cores")]
    for i in range(len(args.before)):
        b = got[_before_name(args.before, i)]
        rows.append(Row(f"import {what} ({kind}) against {_before_name(args.before, i)}", f"{after['seconds']:.1f} s",
                        f"before {b['seconds']:.1f} s, {b['rss_mb']:.0f} MB", after["seconds"] / b["seconds"],
                        "<= 0.333", "at least 3x faster"))
    if "datumaro" in got:
        d = got["datumaro"]
        rows.append(Row(f"import {what} ({kind}) against datumaro", f"{after['seconds']:.1f} s",
                        f"datumaro 1.13 import + decode {d['seconds']:.1f} s, {d['rss_mb']:.0f} MB",
                        after["seconds"] / d["seconds"], None, "datumaro reads lazily, copies nothing"))
    print(table(rows))
    if args.json:
        write_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
