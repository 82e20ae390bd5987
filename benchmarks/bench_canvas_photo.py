"""How fast the annotation canvas zooms and turns pages on a real-size photo (4,000 x 3,000 JPEG, 100 boxes).

    .venv/bin/python benchmarks/bench_canvas_photo.py [--notches 40] [--pages 20] [--json OUT]

The photo: the two real photographs scikit-learn ships (``china.jpg``, ``flower.jpg``, 640 x 427; or
matplotlib's ``grace_hopper.jpg``), upscaled bicubic to 4,000 x 3,000 and given a fine sensor-like grain so
the JPEG (quality 92) weighs what a camera's does (3-5 MB), one photo per page with different crops. No
download.

Measured, per event, in the kernel (what the widget does before the browser gets its one message): a zoom
notch (a wheel turn around the pointer, in and out across the pyramid levels: state + redraw of the three
layers) and next / previous (open the example + redraw, with the next page prefetched in the background
as a labeller's pace leaves time to: ``--pace`` ms between page turns). p50 / p95 against the 100 ms goal
of issue 14, and the reference measured in the same run: decoding the JPEG once with PIL (what every page
turn paid before the display cache, and what the browser then paid again for the full-size bytes). Also
the bytes sent to the browser per page (the full JPEG before, a display-size copy now).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.rows import Row, target_row, write_rows  # noqa: E402
from workbench.data.records import Annotation  # noqa: E402

W, H = 4000, 3000
GOAL_MS = 100.0
CLASSES = ("cat", "dog", "bird", "car", "tree")


def _sources() -> list[Path]:
    """Real photographs installed with the Python packages at hand (scikit-learn, matplotlib)."""
    found: list[Path] = []
    try:
        import sklearn

        base = Path(sklearn.__file__).parent / "datasets" / "images"
        found += [base / "china.jpg", base / "flower.jpg"]
    except ImportError:
        pass
    try:
        import matplotlib

        found.append(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    except ImportError:
        pass
    found = [p for p in found if p.is_file()]
    if not found:
        raise SystemExit("no real photo found: install scikit-learn or matplotlib (they ship sample photos)")
    return found


def photo_jpeg(seed: int = 0, size: tuple[int, int] = (W, H), quality: int = 92) -> bytes:
    """A real photo upscaled to ``size`` with grain, as JPEG bytes (different crop per ``seed``)."""
    srcs = _sources()
    rng = np.random.default_rng(seed)
    with Image.open(srcs[seed % len(srcs)]) as im:
        src = im.convert("RGB")
    sw, sh = src.size
    cw, ch = int(sw * 0.8), int(sh * 0.8)
    x0, y0 = int(rng.integers(0, sw - cw + 1)), int(rng.integers(0, sh - ch + 1))
    big = src.crop((x0, y0, x0 + cw, y0 + ch)).resize(size, Image.Resampling.BICUBIC)
    arr = np.asarray(big, dtype=np.int16)
    grain = rng.normal(0.0, 6.0, (size[1], size[0], 1)).astype(np.int16)
    arr = np.clip(arr + grain, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def photo_boxes(n: int = 100, seed: int = 0, size: tuple[int, int] = (W, H)) -> list[Annotation]:
    rng = np.random.default_rng(seed + 1000)
    w, h = size
    out = []
    for i in range(n):
        bw, bh = rng.uniform(40, 500, 2)
        x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
        out.append(Annotation("box", CLASSES[i % len(CLASSES)], bbox=(float(x), float(y), float(bw), float(bh))))
    return out
