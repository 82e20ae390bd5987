"""The augmentation preview's state, without widgets: the examples, the pipeline being edited, the seeds
and the draws.

Draw ``j`` of an example uses the seed training uses for it at epoch ``first_epoch + j``
(``draw_seed(base_seed, epoch, example_id)``), so the preview shows exactly what the network will see.
Every edit goes through ``augment.config`` (validated, a new config each time); ``dirty`` says whether it
differs from the last saved one. Tested without a kernel; ``augment_grid.AugmentationGrid`` is the view.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..augment import config as config_mod
from ..augment.pipeline import BOX_TYPES, draw_seed
from ..augment.pipeline import sample as pipeline_sample
from ..augment.specs import transform_spec
from ..data.images import decode_rgb
from ..data.records import TASK_TYPES, Annotation, Example
from ..data.shapes import rasterize_polygon
from ..data.task_types import type_info
from ..errors import UnknownNameError, ValidationError
from .masks import rle_decode, rle_encode

__all__ = [
    "Sampler",
    "GridExample",
    "Draw",
    "SliderSpec",
    "AugmentGridState",
    "slider_specs",
    "sample_annotations",
]

Sampler = Callable[..., Any]  # the signature of workbench.augment.pipeline.sample


# ---------------------------------------------------------------------------------------------- inputs
@dataclass
class GridExample:
    """One example as the pipeline takes it: image, boxes (COCO x, y, w, h), labels, masks, and the class
    of a classification / anomaly example."""

    example_id: int
    image: np.ndarray
    boxes: np.ndarray | None = None
    labels: list[str] = field(default_factory=list)
    masks: list[np.ndarray] | None = None
    label: str | None = None

    @classmethod
    def from_example(cls, example: Example, image: bytes | np.ndarray, dataset_type: str) -> GridExample:
        """The ground truth of ``example`` as training reads it (model proposals left out): detection boxes
        clipped to the image; segmentation instances as masks (polygons rasterized, box-only instances
        filled); anomaly regions as masks."""
        if dataset_type not in TASK_TYPES:
            raise UnknownNameError("dataset type", dataset_type, TASK_TYPES)
        img = decode_rgb(image) if isinstance(image, bytes | bytearray) else np.asarray(image)
        h, w = img.shape[:2]
        truth = example.truth()
        info = type_info(dataset_type)
        if info.regions and not info.masks:
            boxes, labels = [], []
            for a in truth:
                if a.bbox is None:
                    continue
                c = a.clipped(w, h)
                if c is not None and c.bbox is not None:
                    boxes.append(c.bbox)
                    labels.append(a.label)
            return cls(example.id, img, np.asarray(boxes, dtype=float).reshape(-1, 4), labels)
        if info.masks:
            masks, labels = [], []
            for a in truth:
                m = _instance_mask(a, h, w)
                if m is not None and m.any():
                    masks.append(m)
                    labels.append(a.label)
            return cls(example.id, img, None, labels, masks)
        regions = [
            m for a in truth if a.kind == "anomaly" and (m := _instance_mask(a, h, w)) is not None and m.any()
        ]
        return cls(example.id, img, None, [], regions or None, example.label)


def _instance_mask(a: Annotation, h: int, w: int) -> np.ndarray | None:
    if a.mask is not None:
        m = rle_decode(a.mask)
        return m.astype(np.uint8) if m.shape == (h, w) else None
    if a.polygons is not None:
        rings = [np.asarray(p, dtype=float).reshape(-1, 2) for p in a.polygons]
        return rasterize_polygon(rings, h, w).astype(np.uint8)
    if a.bbox is not None:
        m = np.zeros((h, w), np.uint8)
        x, y, bw, bh = a.bbox
        m[max(0, int(y)) : int(np.ceil(y + bh)), max(0, int(x)) : int(np.ceil(x + bw))] = 1
        return m
    return None


@dataclass
class Draw:
    """One augmented draw of one example."""

    example_id: int
    epoch: int
    seed: int
    sample: Any  # AugmentedSample

    @property
    def flagged(self) -> bool:
        return bool(self.sample.dropped or self.sample.clipped)

    @property
    def flag_text(self) -> str:
        parts = []
        if self.sample.dropped:
            parts.append(f"{self.sample.dropped} dropped")
        if self.sample.clipped:
            parts.append(f"{self.sample.clipped} clipped")
        return ", ".join(parts)

    @property
    def caption(self) -> str:
        flag = f"⚠ {self.flag_text} · " if self.flagged else ""
        return f"{flag}{self.sample.caption}"


def sample_annotations(sample: Any, dataset_type: str, label: str | None = None) -> list[Annotation]:
    """The annotations of an augmented sample, for drawing: instance masks (segmentation), boxes
    (detection), the class banner (classification / anomaly) and anomaly regions."""
    anns: list[Annotation] = []
    if dataset_type in BOX_TYPES:
        masks = sample.masks if type_info(dataset_type).masks else None
        for k, lab in enumerate(sample.labels):
            name = str(lab)
            if masks is not None and k < len(masks) and np.asarray(masks[k]).any():
                anns.append(Annotation("mask", name, mask=rle_encode(np.asarray(masks[k], dtype=bool))))
            elif k < len(sample.boxes):
                x, y, bw, bh = (float(v) for v in sample.boxes[k])
                if bw > 0 and bh > 0:
                    anns.append(Annotation("box", name, bbox=(x, y, bw, bh)))
        return anns
    if label is not None:
        anns.append(Annotation(type_info(dataset_type).label_kind or "label", label))
    for m in sample.masks or []:
        if np.asarray(m).any():
            anns.append(Annotation("mask", "anomalous", mask=rle_encode(np.asarray(m, dtype=bool))))
    return anns


# ---------------------------------------------------------------------------------------------- sliders
@dataclass(frozen=True)
class SliderSpec:
    """A slider for one numeric parameter of one transform entry."""

    index: int
    transform: str
    param: str
    kind: str  # prob | number | range | int_range
    lo: float
    hi: float
    step: float
    doc: str = ""


_STEPS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)


def _step(lo: float, hi: float) -> float:
    target = (hi - lo) / 200.0
    return next((s for s in _STEPS if s >= target), _STEPS[-1])


def slider_specs(config: Mapping[str, Any]) -> list[SliderSpec]:
    """The sliders of a config: the probability ``p`` and the numeric ranges / numbers of every entry, in
    config order (booleans and choices keep their values)."""
    out = []
    for i, entry in enumerate(config["transforms"]):
        spec = transform_spec(entry["name"])
        for name, ps in spec.params.items():
            if ps.kind not in ("prob", "number", "range", "int_range"):
                continue
            lo, hi = (0.0, 1.0) if ps.kind == "prob" else (ps.lo, ps.hi)
            if lo is None or hi is None:
                continue
            step = (
                2.0
                if ps.odd
                else 1.0
                if ps.kind == "int_range"
                else 0.05
                if ps.kind == "prob"
                else _step(lo, hi)
            )
            out.append(SliderSpec(i, spec.name, name, ps.kind, float(lo), float(hi), step, ps.doc))
    return out


# ---------------------------------------------------------------------------------------------- state
class AugmentGridState:
    """The pipeline being edited, the examples, the seeds and the draws (no widgets).

    ``sampler`` is :func:`workbench.augment.pipeline.sample` unless a test passes another with the same
    signature. Every edit returns a new validated config (``augment.config``'s functions); ``dirty`` says
    whether it differs from the last saved one.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        dataset_type: str,
        examples: Sequence[GridExample],
        *,
        draws: int = 4,
        base_seed: int = 0,
        first_epoch: int = 1,
        sampler: Sampler | None = None,
    ) -> None:
        if dataset_type not in TASK_TYPES:
            raise UnknownNameError("dataset type", dataset_type, TASK_TYPES)
        if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
            raise ValidationError(f"draws must be a positive integer, got {draws!r}", field="draws")
        self.config = config_mod.validate(dict(config))
        self.saved_config = self.config
        self.dataset_type = dataset_type
        self.examples = list(examples)
        self.draws = draws
        self.base_seed = int(base_seed)
        self.first_epoch = int(first_epoch)
        self.sampler: Sampler = sampler if sampler is not None else pipeline_sample
        self.rerolls = 0

    # edits ------------------------------------------------------------------------------------------
    def toggle(self, index: int, enabled: bool) -> dict[str, Any]:
        """Switch transform entry ``index`` on or off."""
        self.config = config_mod.set_enabled(self.config, index, enabled)
        return self.config

    def set_param(self, index: int, param: str, value: Any) -> dict[str, Any]:
        """Set one parameter of transform entry ``index`` (validated against its spec)."""
        if isinstance(value, tuple):
            value = list(value)
        self.config = config_mod.set_param(self.config, index, param, value)
        return self.config

    def reroll(self) -> int:
        """Move to a new base seed (deterministic from the current one); returns it."""
        self.base_seed = draw_seed(self.base_seed, self.rerolls, "reroll")
        self.rerolls += 1
        return self.base_seed

    @property
    def dirty(self) -> bool:
        return self.config != self.saved_config

    def mark_saved(self) -> None:
        self.saved_config = self.config

    # draws ------------------------------------------------------------------------------------------
    def epochs(self) -> list[int]:
        return [self.first_epoch + j for j in range(self.draws)]

    def seeds(self) -> list[list[int]]:
        """``seeds()[i][j]``: the seed of example ``i``'s draw ``j`` (training's seed for that epoch)."""
        return [[draw_seed(self.base_seed, e, ex.example_id) for e in self.epochs()] for ex in self.examples]

    def draw_all(self) -> list[list[Draw]]:
        """Every draw, row by example. Errors name the example."""
        rows = []
        for ex, seeds in zip(self.examples, self.seeds(), strict=True):
            row = []
            for epoch, seed in zip(self.epochs(), seeds, strict=True):
                try:
                    s = self.sampler(
                        self.config,
                        self.dataset_type,
                        ex.image,
                        ex.boxes,
                        ex.labels if self.dataset_type in BOX_TYPES else None,
                        ex.masks,
                        seed=seed,
                    )
                except ValidationError as exc:
                    raise exc.located(record=ex.example_id) from None
                row.append(Draw(ex.example_id, epoch, seed, s))
            rows.append(row)
        return rows
