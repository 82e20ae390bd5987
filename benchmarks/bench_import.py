"""Import speed on real-size photos: N JPEGs of ~1.5 MP with a COCO file, imported into a fresh workspace
(every image read, verified by a decode, hashed: sha256 and the perceptual hash), against datumaro 1.13
importing the same COCO folder and decoding every image (``item.media.data``), measured in the same run.

    python benchmarks/bench_import.py [--images 300] [--datumaro-python PY] [--before CHECKOUT] [--json OUT]

Each import runs in a fresh process (libraries imported before the clock starts; the files are read once
before, so every run finds them in the page cache). Figures are the best of ``--repeat`` runs.

* ``--datumaro-python``: a Python with ``datumaro==1.13.*`` installed (datumaro pins its own numpy /
  opencv; keep it in its own virtual environment: ``python -m venv dm && dm/bin/pip install
  'datumaro==1.13.*' scikit-image``). Without it the datumaro row says so.
* ``--before``: another Workbench checkout (say the main branch before this change), timed the same way.
* The photos are built from ``skimage.data``'s colour photos (astronaut, coffee, chelsea, rocket...),
  scaled to ~1.5 MP with a random crop, flip and tint each so every file differs; ``--build-python`` names
  a Python with scikit-image when this one has none. ``--data DIR`` keeps them between runs.

``--json OUT`` writes the rows ``run_all.py`` collects (``benchmarks/rows.py``): Workbench against datumaro
(goal ``<= 1``: at least as fast), and, without a goal, Workbench in one process and the ``--before``
checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina")


def photo_jpeg(src, rng, w: int, h: int, least_crop: float = 0.7, resample: int = 3) -> bytes:
    """A JPEG of ``w`` x ``h`` made from the PIL image ``src``: a random crop (each side at least
    ``least_crop`` of it), scaled (``resample``: PIL's filter, bicubic by default), flipped half the time,
    tinted and noised like a sensor (JPEG sizes close to real photos'), so no two files are alike."""
    import io

    import numpy as np
    from PIL import Image

    sw, sh = src.size
    cw, ch = int(sw * rng.uniform(least_crop, 1.0)), int(sh * rng.uniform(least_crop, 1.0))
    x0, y0 = int(rng.integers(0, sw - cw + 1)), int(rng.integers(0, sh - ch + 1))
    im = src.crop((x0, y0, x0 + cw, y0 + ch)).resize((w, h), resample)
    if rng.random() < 0.5:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    arr = np.asarray(im).astype(np.float32) * rng.uniform(0.85, 1.15, size=3)
    arr += rng.normal(0, 3, size=arr.shape)  # sensor-like noise: JPEG sizes close to real photos
    buf = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def build(out: Path, n: int, megapixels: float, seed: int = 0) -> None:
    """``out/images/default/*.jpg`` and ``out/annotations/instances_default.json`` (CVAT's / datumaro's layout)."""

    import numpy as np
    from PIL import Image
    from skimage import data as skdata

    rng = np.random.default_rng(seed)
    photos = [np.asarray(getattr(skdata, p)())[..., :3] for p in PHOTOS if hasattr(skdata, p)]
    img_dir = out / "images" / "default"
    img_dir.mkdir(parents=True, exist_ok=True)
    w = int(round((megapixels * 1e6 * 1.5) ** 0.5))
    h = int(round(w / 1.5))
    images, anns = [], []
    for i in range(n):
        src = Image.fromarray(photos[i % len(photos)].astype(np.uint8))
        name = f"photo_{i:04d}.jpg"
        (img_dir / name).write_bytes(photo_jpeg(src, rng, w, h))
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
        bw, bh = float(rng.uniform(20, w / 3)), float(rng.uniform(20, h / 3))
        bx, by = float(rng.uniform(0, w - bw)), float(rng.uniform(0, h - bh))
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1 + i % 3,
                     "bbox": [round(bx, 2), round(by, 2), round(bw, 2), round(bh, 2)],
                     "area": round(bw * bh, 2), "iscrowd": 0, "segmentation": []})
    (out / "annotations").mkdir(exist_ok=True)
    cats = [{"id": k, "name": name, "supercategory": ""} for k, name in ((1, "a"), (2, "b"), (3, "c"))]
    (out / "annotations" / "instances_default.json").write_text(
        json.dumps({"images": images, "annotations": anns, "categories": cats}))


WORKBENCH_RUN = """
import json, sys, time
sys.path.insert(0, {root!r})
import numpy, PIL.Image
from workbench.data import Workspace
from workbench.data.transfer import import_source
t = time.perf_counter()
with Workspace({home!r}) as ws:
    _, ids = import_source(ws, "d", {ann!r}, "coco", images_dir={imgs!r})
print(json.dumps({{"seconds": time.perf_counter() - t, "examples": len(ids)}}))
"""

DATUMARO_RUN = """
import json, time
import datumaro as dm
t = time.perf_counter()
ds = dm.Dataset.import_from({data!r}, "coco_instances")
n = 0
for item in ds:
    n += item.media.data.shape[0] > 0  # decodes the image
print(json.dumps({{"seconds": time.perf_counter() - t, "examples": n}}))
"""


def run(python: str, code: str, env: dict[str, str] | None = None) -> dict:
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise RuntimeError(f"{python} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def interleaved(contenders: dict[str, tuple[str, object, dict[str, str] | None]], repeat: int
                ) -> dict[str, tuple[float, int]]:
    """Best time and example count of each contender, the runs taken in turn (A B C A B C ...) so that a
    change in the machine's load weighs on each alike."""
    times: dict[str, list[float]] = {k: [] for k in contenders}
    counts: dict[str, int] = {}
    for r in range(repeat):
        for name, (python, code_for, env) in contenders.items():
            out = run(python, code_for(r), env)  # type: ignore[operator]
            times[name].append(out["seconds"])
            counts[name] = out["examples"]
    return {k: (min(v), counts[k]) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--megapixels", type=float, default=1.5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data", type=Path, help="keep the built photos here (reused when present)")
    ap.add_argument("--build-python", default=sys.executable, help="a Python with scikit-image")
    ap.add_argument("--datumaro-python", help="a Python with datumaro 1.13 installed")
    ap.add_argument("--before", type=Path, help="another Workbench checkout to time the same way")
    ap.add_argument("--build-only", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if args.build_only:
        build(args.build_only, args.images, args.megapixels)
        return 0

    sys.path.insert(0, str(ROOT))
    from benchmarks.rows import Row, table, write_rows

    tmp = Path(tempfile.mkdtemp(prefix="bench_import_"))
    data = args.data or tmp / "data"
    ann = data / "annotations" / "instances_default.json"
    if not ann.is_file():
        subprocess.run([args.build_python, __file__, "--build-only", str(data), "--images", str(args.images),
                        "--megapixels", str(args.megapixels)], check=True)
    imgs = data / "images" / "default"
    files = sorted(imgs.glob("*.jpg"))
    total_mb = sum(p.stat().st_size for p in files) / 1e6
    for p in files:  # into the page cache: every run reads from memory
        p.read_bytes()
    what = f"{len(files)} JPEGs ({args.megapixels:g} MP, {total_mb:.0f} MB)"

    def wb(root: Path, tag: str):
        return lambda r: WORKBENCH_RUN.format(root=str(root), home=str(tmp / f"ws_{tag}_{r}"), ann=str(ann),
                                              imgs=str(imgs))

    contenders: dict[str, tuple[str, object, dict[str, str] | None]] = {
        "after": (sys.executable, wb(ROOT, "after"), None),
        "serial": (sys.executable, wb(ROOT, "serial"), {"WORKBENCH_IMPORT_WORKERS": "1"}),
    }
    if args.datumaro_python:
        contenders["datumaro"] = (args.datumaro_python, lambda r: DATUMARO_RUN.format(data=str(data)), None)
    if args.before:
        contenders["before"] = (sys.executable, wb(args.before, "before"), None)
    got = interleaved(contenders, args.repeat)
    for name, (_s, n) in got.items():
        assert n == len(files), f"{name} imported {n} of {len(files)}"
    after, serial = got["after"][0], got["serial"][0]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"workbench: {after:.2f} s ({cores} cores, load {load:.1f}), one thread {serial:.2f} s")
    rows = []
    if args.datumaro_python:
        dm = got["datumaro"][0]
        print(f"datumaro: {dm:.2f} s")
        rows.append(Row(f"import {what}: read, verify, hash", f"{after:.2f} s",
                        f"datumaro 1.13 import + decode {dm:.2f} s", after / dm, "<= 1", f"{cores} cores"))
        rows.append(Row(f"import {what}, one thread", f"{serial:.2f} s", f"datumaro {dm:.2f} s", serial / dm,
                        None, "WORKBENCH_IMPORT_WORKERS=1"))
    else:
        rows.append(Row(f"import {what}: read, verify, hash", f"{after:.2f} s", "datumaro not given", None, None,
                        "--datumaro-python PY to compare"))
    if args.before:
        before = got["before"][0]
        print(f"before ({args.before}): {before:.2f} s")
        rows.append(Row(f"import {what} against {args.before.name}", f"{after:.2f} s", f"before {before:.2f} s",
                        after / before, None, "the same import before decode-once"))
    print(table(rows))
    if args.json:
        write_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
