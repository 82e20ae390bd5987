"""An MVTec-style anomaly set built from real photos: crops of one photo are "good", pasted defects are not.

``make_photo_anomaly(count, seed, category="coffee")`` takes one of scikit-image's colour photos
(``skimage.data``: ``coffee``, ``chelsea``, ``astronaut``, ``rocket``, ``immunohistochemistry``) as the
"category". Every image is a random square crop of it (side half the photo's shorter side, resized to
``size`` px). ``anomalous_fraction`` of them (chosen by seed) carry one pasted defect whose polygon is the
ground-truth region, its kind in the annotation's ``defect`` attribute (as the MVTec reader keeps it):

``scratch``  a thin (1.5-3 px), gently curved band, 20-50% of the side long, in a dark or bright grey
``blob``     an irregular blob (radius 4-9% of the side) of one random colour blended in at 55-80%
``patch``    a disc or quadrilateral (radius 5-11% of the side) filled with pixels of *another* photo
             (``hubble_deep_field``, ``retina``, ``immunohistochemistry`` or ``astronaut``, never the category's)

A defect that changes its region by less than ``MIN_CONTRAST`` (18 of 255, mean over its pixels and
channels: a dark patch of the deep field on a black collar, which nobody can see) is drawn again.

Splits follow MVTec AD: anomalous images never go to train; they are split between ``val`` and ``test``
(half each); the good ones are left to the caller (``split=None``). ``write_mvtec`` of the format layer
(``workbench export ... --format mvtec``) writes the usual ``train/good``, ``test/<defect>``,
``ground_truth/<defect>/*_mask.png`` tree.

scikit-image is not a dependency of the package (the photos ship inside it): without it a
``ValidationError`` says so. The builder is shared by ``benchmarks/bench_anomaly.py`` and the tests.
"""

from __future__ import annotations

import io
import math
import zlib

import numpy as np

from ..errors import ValidationError
from .records import ANOMALY_CLASSES, Annotation, ClassDef, ImportBatch, ImportItem, default_color
from .shapes import rasterize_polygon

__all__ = [
    "MIN_CONTRAST",
    "PHOTO_CATEGORIES",
    "PHOTO_DEFECTS",
    "defect_contrast",
    "load_photo",
    "make_photo_anomaly",
]

PHOTO_CATEGORIES = ("coffee", "chelsea", "astronaut", "rocket", "immunohistochemistry")
PHOTO_DEFECTS = ("scratch", "blob", "patch")
MIN_CONTRAST = 18.0  # a defect changes its region's pixels by at least this much on average (0-255)
_TRIES = 20
_DONORS = ("hubble_deep_field", "retina", "immunohistochemistry", "astronaut")


def load_photo(name: str) -> np.ndarray:
    """``skimage.data.<name>()`` as an ``H x W x 3`` uint8 array."""
    try:
        from skimage import data as skdata
    except ImportError:
        raise ValidationError(
            "the real-photo anomaly set needs scikit-image (pip install scikit-image)", field="category"
        ) from None
    loader = getattr(skdata, name, None)
    if loader is None:
        raise ValidationError(f"skimage.data has no photo {name!r}", field="category")
    img = np.asarray(loader())
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3].astype(np.uint8))


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BILINEAR))


def _crop(rng: np.random.Generator, photo: np.ndarray, size: int) -> np.ndarray:
    side = min(photo.shape[:2]) // 2
    y0 = int(rng.integers(0, photo.shape[0] - side + 1))
    x0 = int(rng.integers(0, photo.shape[1] - side + 1))
    return _resize(photo[y0 : y0 + side, x0 : x0 + side], size)


def _blob(rng: np.random.Generator, cx: float, cy: float, r0: float, n: int = 32) -> np.ndarray:
    t = np.arange(n) * (2 * math.pi / n)
    radius = r0 * (1.0 + 0.25 * np.sin(t + rng.uniform(0, 6.3)) + 0.12 * np.sin(2 * t + rng.uniform(0, 6.3)))
    return np.stack([cx + radius * np.cos(t), cy + radius * np.sin(t)], axis=1)


def _scratch(rng: np.random.Generator, size: int) -> np.ndarray:
    length = rng.uniform(0.2, 0.5) * size
    width = rng.uniform(1.5, 3.0)
    theta = rng.uniform(0, 2 * math.pi)
    bend = rng.uniform(-0.5, 0.5) / length
    s = np.linspace(-length / 2, length / 2, 12)
    heading = theta + bend * s
    cx = np.cumsum(np.cos(heading)) * (s[1] - s[0])
    cy = np.cumsum(np.sin(heading)) * (s[1] - s[0])
    cx, cy = cx - cx.mean(), cy - cy.mean()
    margin = length / 2 + width + 2
    ox, oy = rng.uniform(margin, size - margin, 2)
    nx, ny = -np.sin(heading) * width / 2, np.cos(heading) * width / 2
    left = np.stack([ox + cx + nx, oy + cy + ny], axis=1)
    right = np.stack([ox + cx - nx, oy + cy - ny], axis=1)[::-1]
    return np.concatenate([left, right])


def _paste_defect(
    rng: np.random.Generator, img: np.ndarray, kind: str, donors: list[np.ndarray]
) -> np.ndarray:
    """Draw one defect of ``kind`` into ``img`` (in place); returns its polygon (k x 2, x y)."""
    size = img.shape[0]
    if kind == "scratch":
        poly = _scratch(rng, size)
        mask = rasterize_polygon(poly, size, size)
        grey = rng.uniform(10, 45) if rng.random() < 0.5 else rng.uniform(205, 245)
        img[mask] = np.clip(grey + rng.normal(0, 6, (int(mask.sum()), 1)), 0, 255).astype(np.uint8)
        return poly
    r = rng.uniform(0.04, 0.09 if kind == "blob" else 0.11) * size
    cx, cy = rng.uniform(r + 3, size - r - 3, 2)
    if kind == "blob":
        poly = _blob(rng, cx, cy, r)
        mask = rasterize_polygon(poly, size, size)
        alpha = rng.uniform(0.55, 0.8)
        colour = rng.uniform(0, 255, 3)
        img[mask] = (alpha * colour + (1 - alpha) * img[mask]).astype(np.uint8)
        return poly
    if rng.random() < 0.5:  # a disc
        t = np.arange(24) * (2 * math.pi / 24)
        poly = np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)
    else:  # a quadrilateral: a rotated, jittered square
        t = rng.uniform(0, math.pi / 2) + np.arange(4) * (math.pi / 2)
        rr = r * rng.uniform(0.8, 1.2, 4)
        poly = np.stack([cx + rr * np.cos(t), cy + rr * np.sin(t)], axis=1)
    mask = rasterize_polygon(poly, size, size)
    donor = donors[int(rng.integers(len(donors)))]
    img[mask] = _crop(rng, donor, size)[mask]
    return poly


def defect_contrast(before: np.ndarray, after: np.ndarray, poly: np.ndarray) -> float:
    """Mean absolute change (0-255, over the pixels inside ``poly`` and the 3 channels) a defect made."""
    mask = rasterize_polygon(poly, before.shape[1], before.shape[0])
    if not mask.any():
        return 0.0
    return float(np.abs(after[mask].astype(np.int16) - before[mask].astype(np.int16)).mean())


def _visible_defect(
    rng: np.random.Generator, img: np.ndarray, kind: str, donors: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """``img`` with one defect of ``kind`` that a person can see: drawn again (up to ``_TRIES`` times, from
    the same seeded generator) while it changes its region by less than ``MIN_CONTRAST`` on average (a
    dark patch of the deep field on the astronaut's black collar); the most visible draw is kept when
    none reaches it."""
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for _ in range(_TRIES):
        out = img.copy()
        poly = _paste_defect(rng, out, kind, donors)
        contrast = defect_contrast(img, out, poly)
        if best is None or contrast > best[0]:
            best = (contrast, out, poly)
        if contrast >= MIN_CONTRAST:
            break
    assert best is not None
    return best[1], best[2]


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def make_photo_anomaly(
    count: int = 200,
    seed: int = 0,
    *,
    category: str = "coffee",
    size: int = 128,
    anomalous_fraction: float = 0.3,
) -> ImportBatch:
    """The set described in the module doc: ``count`` images of ``size`` px, deterministic in ``seed``."""
    if category not in PHOTO_CATEGORIES:
        raise ValidationError(
            f"unknown photo category {category!r}; valid: {', '.join(PHOTO_CATEGORIES)}", field="category"
        )
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValidationError(f"count must be a positive integer, got {count!r}", field="count")
    if not 32 <= size <= 1024:
        raise ValidationError(f"size must be in [32, 1024], got {size!r}", field="size")
    if not 0.0 <= anomalous_fraction <= 1.0:
        raise ValidationError(
            f"anomalous_fraction must be in [0, 1], got {anomalous_fraction!r}", field="anomalous_fraction"
        )
    photo = load_photo(category)
    donors = [load_photo(n) for n in _DONORS if n != category]
    name = f"photo-{category}"
    base = [seed, zlib.crc32(name.encode())]
    n_bad = int(math.floor(count * anomalous_fraction + 0.5))
    bad = np.random.default_rng([*base, 1 << 40]).permutation(count)[:n_bad].tolist()
    bad_rank = {i: k for k, i in enumerate(sorted(bad))}
    items = []
    for i in range(count):
        rng = np.random.default_rng([*base, i])
        img = _crop(rng, photo, size).copy()
        split = None
        if i in bad_rank:
            kind = PHOTO_DEFECTS[bad_rank[i] % len(PHOTO_DEFECTS)]
            img, poly = _visible_defect(rng, img, kind, donors)
            xs, ys = poly[:, 0], poly[:, 1]
            ann = Annotation(
                kind="anomaly",
                label="anomalous",
                polygons=(tuple(float(v) for v in np.round(poly, 2).ravel()),),
                bbox=(
                    float(xs.min()),
                    float(ys.min()),
                    float(xs.max() - xs.min()),
                    float(ys.max() - ys.min()),
                ),
                author=f"sample:{name}",
                attributes={"defect": kind},
            )
            split = ("val", "test")[bad_rank[i] % 2 if len(bad) > 1 else 1]
        else:
            ann = Annotation(kind="anomaly", label="good", author=f"sample:{name}")
        items.append(
            ImportItem(
                file_name=f"{name}_{i:05d}.png",
                data=_png(img),
                annotations=[ann],
                split=split,
                source=f"sample:{name}",
                record=i,
                status="annotated",
            )
        )
    classes = [ClassDef(c, default_color(i)) for i, c in enumerate(ANOMALY_CLASSES)]
    return ImportBatch(items=items, classes=classes, type="anomaly", source=f"sample:{name}")
