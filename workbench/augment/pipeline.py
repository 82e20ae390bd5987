"""Build albumentations pipelines from configs and apply them with an explicit, replayable seed.

The seed contract (what makes the preview grid show exactly what training sees):

- Training draws the augmentation of example ``example_id`` at epoch ``epoch`` with
  ``seed = draw_seed(base_seed, epoch, example_id)`` and ``Augmenter.__call__(..., seed=seed)``.
- The preview calls the same ``Augmenter`` (or ``sample``) with the same seed and gets the same pixels,
  boxes, masks and sampled parameters, whatever happened before (other examples, other workers).

How the seed is applied: before each call the whole ``Compose`` gets ONE numpy Generator and ONE
``random.Random`` made from the seed (``Compose.set_random_state``), shared by every transform, so the
transforms draw one after another from one stream. We do not use ``Compose(seed=...)`` /
``Compose.set_random_seed``: in albumentations 2.0.8 that gives every transform its own generator seeded
with the same number, so two transforms with the same ``p`` fire together (measured: HorizontalFlip and
VerticalFlip at p=0.5 agreed on 200 of 200 seeds, against 94 of 200 with the shared stream).

Boxes are COCO ``(x, y, w, h)`` pixels. Detection boxes go through albumentations' ``BboxParams`` (clipped,
dropped under ``min_visibility``). Segmentation instances are their masks: each output box is the tight box
of its output mask, and an instance is dropped when its mask is empty or too little of it stays in view.
To know how much of a box was cut by the image border, its four corners also travel as keypoints (never
removed), so the unclipped extent is known after any chain of geometric transforms (to about 1 px: the
keypoint and box conventions of albumentations differ by half a pixel per side).

Training reads only pixels, boxes, labels and masks, so what is for people is left out of its path:
``AugmentedSample.params`` (the readable parameters) is worked out on first use, and a detection
``Augmenter(..., track_clipping=False)`` (the trainer's) carries no corner keypoints: same outputs, no
``clipped`` / ``visibility`` count (``benchmarks/bench_augment.py`` measures the difference).
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data.records import TASK_TYPES
from ..data.task_types import TYPE_INFO, TaskType
from ..errors import UnknownNameError, ValidationError
from .captions import caption as _caption
from .captions import summarize
from .config import enabled_transforms, validate

if TYPE_CHECKING:  # pragma: no cover
    import albumentations

__all__ = [
    "AugmentedSample",
    "Augmenter",
    "build",
    "augmenter",
    "sample",
    "draw_seed",
    "BOX_TYPES",
    "DEFAULT_CLIP_THRESHOLD",
]

BOX_TYPES = tuple(t.value for t, info in TYPE_INFO.items() if info.regions)
DEFAULT_CLIP_THRESHOLD = 0.5
_SEED_MODULUS = 2**32


def draw_seed(base_seed: int, epoch: int, example_id: int | str) -> int:
    """The seed of one augmentation draw: a stable hash of (base seed, epoch, example id), in [0, 2**32).

    Stable across processes, platforms and Python versions (no ``hash()``); neighbouring inputs give
    unrelated seeds.
    """
    for name, v in (("base_seed", base_seed), ("epoch", epoch)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ValidationError(f"{name} must be an integer, got {v!r}", field=name)
    key = f"{int(base_seed)}:{int(epoch)}:{example_id}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") % _SEED_MODULUS


def _albumentations() -> Any:
    """albumentations, without the torch it would load for its ``pytorch`` sub-package (~500 MB and seconds
    in a dashboard kernel that only previews augmentations) when torch is not loaded yet. Its tensor
    transforms (``A.ToTensorV2``, ``A.ToTensor3D``, ``albumentations.pytorch``) still import on first use."""
    import sys

    if "albumentations" in sys.modules or "torch" in sys.modules:
        import albumentations  # noqa: PLC0415 - heavy (4-5 s), only when a pipeline is built

        return albumentations
    sys.modules["albumentations.pytorch"] = None  # type: ignore[assignment]  # its `from .pytorch import *` is in suppress(ImportError)
    try:
        import albumentations  # noqa: PLC0415
    finally:
        if sys.modules.get("albumentations.pytorch", 0) is None:
            del sys.modules["albumentations.pytorch"]
    albumentations.__getattr__ = _late_tensor_transform  # type: ignore[attr-defined]  # PEP 562
    return albumentations


def _late_tensor_transform(name: str) -> Any:
    if name in ("ToTensorV2", "ToTensor3D", "pytorch"):
        import albumentations.pytorch  # noqa: PLC0415 - imports torch

        return albumentations.pytorch if name == "pytorch" else getattr(albumentations.pytorch, name)
    raise AttributeError(f"module 'albumentations' has no attribute {name!r}")


def _check_type(dataset_type: str) -> None:
    if dataset_type not in TASK_TYPES:
        raise UnknownNameError("dataset type", str(dataset_type), TASK_TYPES)


def _make_transform(A: Any, index: int, entry: dict[str, Any]) -> Any:
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in entry["params"].items()}
    cls = getattr(A, entry["name"])
    try:
        return cls(**kwargs)
    except Exception as exc:  # albumentations raises pydantic / ValueError on bad arguments
        raise ValidationError(
            f"albumentations rejected {entry['name']}({kwargs}): {exc}",
            record=f"transform {index} ({entry['name']})",
            field=f"transforms[{index}].params",
        ) from None


def build(
    config: dict[str, Any], dataset_type: str, *, for_training: bool = True, corners: bool = True
) -> albumentations.Compose:
    """An ``albumentations.Compose`` for ``config``.

    Training: the enabled transforms in order, then ``Resize`` to ``image_size`` when set. Evaluation
    (``for_training=False``): only the resize. Detection and segmentation pipelines are box-aware
    (``BboxParams(format="coco", label_fields=["labels"], clip=True)``, so ``bboxes=`` and ``labels=`` must
    be passed, empty if need be) and, unless ``corners=False`` (detection only), carry ``keypoints=``
    (``xy``, never removed). Masks go as ``masks=[...]``.
    The Compose records what it applied (``save_applied_params=True``). Seed it per call as the module doc
    says; ``Augmenter`` does all of this.
    """
    _check_type(dataset_type)
    cfg = validate(config)
    A = _albumentations()
    transforms = [_make_transform(A, i, e) for i, e in enabled_transforms(cfg)] if for_training else []
    if cfg["image_size"] is not None:
        h, w = cfg["image_size"]
        transforms.append(A.Resize(height=h, width=w))
    bbox_params = keypoint_params = None
    if dataset_type in BOX_TYPES:
        bbox_params = A.BboxParams(
            format="coco",
            label_fields=["labels"],
            min_visibility=cfg["min_visibility"] if for_training else 0.0,
            min_width=1.0 if for_training else 0.0,
            min_height=1.0 if for_training else 0.0,
            clip=True,
        )
        if corners or TYPE_INFO[TaskType(dataset_type)].masks:
            keypoint_params = A.KeypointParams(format="xy", remove_invisible=False)
    with warnings.catch_warnings():
        # an empty pipeline ("none", or evaluation without a resize) makes albumentations warn that the box
        # and keypoint processors have nothing to process; that is expected here
        warnings.filterwarnings("ignore", message="Got processor for", category=UserWarning)
        return A.Compose(
            transforms, bbox_params=bbox_params, keypoint_params=keypoint_params, save_applied_params=True
        )


class AugmentedSample:
    """One augmented example.

    ``boxes``: ``(n, 4)`` float COCO boxes in output pixels; ``labels``: the input labels of the kept
    instances; ``kept``: their input indices; ``masks``: output masks (instances for segmentation, else
    every input mask) or None. ``params``: the transforms that fired, in order, as
    ``{"index": config index, "name", "params": readable sampled values}`` (the final resize has index None).
    ``dropped``: input instances lost; ``clipped``: kept ones whose box lost more than ``clip_threshold``
    of its area at the image border (0, with an empty ``visibility``, from an ``Augmenter`` that does not
    track clipping).

    An ``Augmenter`` passes ``params=None`` and albumentations' own ``(config index, name, sampled params)``
    records as ``applied``; ``params`` is then made from them on first read (summarizing reads whole noise
    maps, and training never asks).
    """

    def __init__(
        self,
        image: np.ndarray,
        boxes: np.ndarray,
        labels: list[Any],
        masks: list[np.ndarray] | None,
        kept: list[int],
        params: list[dict[str, Any]] | None,
        seed: int | None,
        dropped: int = 0,
        clipped: int = 0,
        visibility: np.ndarray | None = None,
        *,
        applied: Sequence[tuple[int | None, str, dict[str, Any]]] = (),
    ) -> None:
        self.image = image
        self.boxes = boxes
        self.labels = labels
        self.masks = masks
        self.kept = kept
        self.seed = seed
        self.dropped = dropped
        self.clipped = clipped
        self.visibility = np.zeros(0) if visibility is None else visibility
        self.applied = list(applied)
        self._params = params

    @property
    def params(self) -> list[dict[str, Any]]:
        if self._params is None:
            self._params = [{"index": i, "name": n, "params": summarize(n, p)} for i, n, p in self.applied]
        return self._params

    @property
    def caption(self) -> str:
        """One readable line of what fired, for a preview tile."""
        return _caption(self.params)

    def __repr__(self) -> str:
        return (
            f"AugmentedSample(image {self.image.shape}, {len(self.boxes)} boxes, seed {self.seed}, "
            f"dropped {self.dropped}, clipped {self.clipped})"
        )


class Augmenter:
    """A built pipeline for one config and dataset type; call it per example with a seed.

    ``Augmenter(config, "detection")(image, boxes, labels, seed=draw_seed(base, epoch, example_id))``.
    Picklable by config (DataLoader workers rebuild the Compose). Not thread-safe: the Compose holds the
    per-call random state, so use one Augmenter per thread / worker. ``track_clipping=False`` (detection):
    no count of boxes cut at the border, a little faster, the same outputs (what training uses).
    """

    def __init__(
        self,
        config: dict[str, Any],
        dataset_type: str,
        *,
        for_training: bool = True,
        clip_threshold: float = DEFAULT_CLIP_THRESHOLD,
        track_clipping: bool = True,
    ) -> None:
        _check_type(dataset_type)
        if not 0.0 <= clip_threshold <= 1.0:
            raise ValidationError(
                f"clip_threshold must be in [0, 1], got {clip_threshold}", field="clip_threshold"
            )
        self.config = validate(config)
        self.dataset_type = dataset_type
        self.for_training = for_training
        self.clip_threshold = clip_threshold
        # the corners of every box travel as keypoints: clipping counts, and segmentation's visibility rule
        self.corners = dataset_type in BOX_TYPES and (track_clipping or dataset_type == TaskType.SEGMENTATION)
        self.compose = self._build()
        # config index of each Compose transform, the final resize being None
        self._indices: list[int | None] = (
            [i for i, _ in enabled_transforms(self.config)] if for_training else []
        )
        if self.config["image_size"] is not None:
            self._indices.append(None)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "compose"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.compose = self._build()

    def _build(self) -> albumentations.Compose:
        return build(self.config, self.dataset_type, for_training=self.for_training, corners=self.corners)

    def __call__(
        self,
        image: np.ndarray,
        boxes: Any = None,
        labels: Sequence[Any] | None = None,
        masks: Sequence[np.ndarray] | None = None,
        *,
        seed: int | None,
    ) -> AugmentedSample:
        """Augment one example. ``seed=None`` draws fresh randomness (not replayable)."""
        img = _check_image(image)
        h, w = img.shape[:2]
        mask_list = _check_masks(masks, h, w)
        instance_masks = self.dataset_type == TaskType.SEGMENTATION and mask_list is not None
        if instance_masks:
            assert mask_list is not None
            box_arr = _check_boxes(boxes, len(mask_list)) if boxes is not None else _mask_boxes(mask_list)
        else:
            box_arr = _check_boxes(boxes, None) if boxes is not None else np.zeros((0, 4))
        n = len(box_arr) if self.dataset_type in BOX_TYPES else 0
        lab = list(labels) if labels is not None else [None] * n
        if self.dataset_type in BOX_TYPES and len(lab) != n:
            raise ValidationError(f"{len(lab)} labels for {n} boxes", field="labels")

        data: dict[str, Any] = {"image": img}
        if mask_list is not None:
            data["masks"] = mask_list
        if self.dataset_type in BOX_TYPES:
            if self.corners:
                data["keypoints"] = _corners(box_arr[:n])
            if instance_masks:
                data["bboxes"], data["labels"] = np.zeros((0, 4)), []
            else:
                clipped_in, inside = _clip_input(box_arr[:n], w, h)
                data["bboxes"], data["labels"] = clipped_in[inside], np.flatnonzero(inside).tolist()
        rng_seed = seed if seed is not None else random.SystemRandom().randrange(_SEED_MODULUS)
        self.compose.set_random_state(np.random.default_rng(rng_seed), random.Random(rng_seed))
        out = self.compose(**data)

        applied = self._applied(out.get("applied_transforms", []))
        out_img = out["image"]
        out_masks = [np.asarray(m) for m in out["masks"]] if mask_list is not None else None
        if self.dataset_type not in BOX_TYPES:
            return AugmentedSample(out_img, np.zeros((0, 4)), [], out_masks, [], None, seed, applied=applied)
        oh, ow = out_img.shape[:2]
        if not self.corners:  # detection without clipping counts: albumentations kept and clipped the boxes
            kept = [int(round(float(x))) for x in out["labels"]]
            return AugmentedSample(
                out_img,
                np.asarray(out["bboxes"], dtype=float).reshape(-1, 4),
                [lab[i] for i in kept],
                None,
                kept,
                None,
                seed,
                dropped=n - len(kept),
                applied=applied,
            )
        hull = (
            _hull(np.asarray(out["keypoints"], dtype=float).reshape(-1, 4, 2)[:, :, :2])
            if n
            else np.zeros((0, 4))
        )
        vis = _visibility(hull, ow, oh)
        if instance_masks:
            assert out_masks is not None
            min_vis = self.config["min_visibility"] if self.for_training else 0.0
            kept = [i for i in range(n) if out_masks[i].any() and vis[i] >= min_vis]
            out_boxes = _mask_boxes([out_masks[i] for i in kept]) if kept else np.zeros((0, 4))
            out_masks = [out_masks[i] for i in kept]
        else:
            kept = [int(round(float(x))) for x in out["labels"]]
            out_boxes = np.asarray(out["bboxes"], dtype=float).reshape(-1, 4)
        clipped = sum(1 for i in kept if 1.0 - vis[i] > self.clip_threshold)
        return AugmentedSample(
            image=out_img,
            boxes=out_boxes,
            labels=[lab[i] for i in kept],
            masks=out_masks,
            kept=kept,
            params=None,
            applied=applied,
            seed=seed,
            dropped=n - len(kept),
            clipped=clipped,
            visibility=vis[kept] if n else np.zeros(0),
        )

    def _applied(
        self, applied: list[tuple[str, dict[str, Any]]]
    ) -> list[tuple[int | None, str, dict[str, Any]]]:
        """Pair albumentations' ``(class name, params)`` records with config indices, in order."""
        out = []
        j = 0
        transforms = self.compose.transforms
        for name, params in applied:
            while j < len(transforms) and type(transforms[j]).__name__ != name:
                j += 1
            index = self._indices[j] if j < len(self._indices) else None
            j += 1
            out.append((index, name, params))
        return out


@functools.lru_cache(maxsize=16)
def _cached(config_json: str, dataset_type: str, for_training: bool, clip_threshold: float) -> Augmenter:
    return Augmenter(
        json.loads(config_json), dataset_type, for_training=for_training, clip_threshold=clip_threshold
    )


def augmenter(
    config: dict[str, Any],
    dataset_type: str,
    *,
    for_training: bool = True,
    clip_threshold: float = DEFAULT_CLIP_THRESHOLD,
) -> Augmenter:
    """A (cached) ``Augmenter`` for this config: building the Compose is the slow part."""
    return _cached(json.dumps(validate(config), sort_keys=True), dataset_type, for_training, clip_threshold)


def sample(
    config: dict[str, Any],
    dataset_type: str,
    image: np.ndarray,
    boxes: Any = None,
    labels: Sequence[Any] | None = None,
    masks: Sequence[np.ndarray] | None = None,
    *,
    seed: int,
    for_training: bool = True,
    clip_threshold: float = DEFAULT_CLIP_THRESHOLD,
) -> AugmentedSample:
    """One seeded draw: the same seed gives the same output as the training dataset's call with that seed."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValidationError(f"seed must be an integer, got {seed!r}", field="seed")
    aug = augmenter(config, dataset_type, for_training=for_training, clip_threshold=clip_threshold)
    return aug(image, boxes, labels, masks, seed=int(seed))


# ---- input checks and box geometry ---------------------------------------------------------------


def _check_image(image: Any) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        kind = f"{type(image).__name__} of {getattr(image, 'dtype', '?')}"
        raise ValidationError(f"image must be a uint8 numpy array, got {kind}", field="image")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3)):
        if min(image.shape[:2]) < 1:
            raise ValidationError(f"image is empty: shape {image.shape}", field="image")
        return np.ascontiguousarray(image)
    raise ValidationError(f"image must be HxW or HxWx3 (or HxWx1), got shape {image.shape}", field="image")


def _check_masks(masks: Sequence[np.ndarray] | None, h: int, w: int) -> list[np.ndarray] | None:
    if masks is None:
        return None
    out = []
    for i, m in enumerate(masks):
        a = np.asarray(m)
        if a.shape != (h, w):
            raise ValidationError(f"mask {i} has shape {a.shape}, the image is {(h, w)}", field=f"masks[{i}]")
        out.append(a.astype(np.uint8, copy=False))
    return out


def _check_boxes(boxes: Any, expected: int | None) -> np.ndarray:
    try:
        arr = np.asarray(boxes, dtype=float)
    except (TypeError, ValueError):
        raise ValidationError(f"boxes must be numbers (x, y, w, h), got {boxes!r}", field="boxes") from None
    if arr.size == 0:
        arr = arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValidationError(f"boxes must have shape (n, 4), got {arr.shape}", field="boxes")
    if not np.isfinite(arr).all():
        raise ValidationError("boxes contain a non-finite number", field="boxes")
    if (arr[:, 2:] <= 0).any():
        bad = np.flatnonzero((arr[:, 2] <= 0) | (arr[:, 3] <= 0))
        raise ValidationError(
            f"box {int(bad[0])} has non-positive size {arr[bad[0]].tolist()}", field="boxes"
        )
    if expected is not None and len(arr) != expected:
        raise ValidationError(f"{len(arr)} boxes for {expected} masks", field="boxes")
    return arr


def _clip_input(boxes: np.ndarray, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Boxes cut to the image (albumentations rejects boxes outside it), and which of them keep any area
    (the others are dropped before the pipeline, and counted as dropped)."""
    limit = np.array([w, h], dtype=float)
    lo = np.minimum(np.maximum(boxes[:, :2], 0.0), limit)  # np.clip costs more per call on small arrays
    size = np.minimum(np.maximum(boxes[:, :2] + boxes[:, 2:], 0.0), limit) - lo
    return np.concatenate([lo, size], axis=1), (size > 0).all(axis=1)


def _corners(boxes: np.ndarray) -> np.ndarray:
    x0, y0 = boxes[:, 0], boxes[:, 1]
    x1, y1 = x0 + boxes[:, 2], y0 + boxes[:, 3]
    pts = np.stack(
        [np.stack([x0, y0], 1), np.stack([x1, y0], 1), np.stack([x0, y1], 1), np.stack([x1, y1], 1)], 1
    )
    return pts.reshape(-1, 2)


def _hull(corners: np.ndarray) -> np.ndarray:
    """``(n, 4, 2)`` corner points -> ``(n, 4)`` x0, y0, x1, y1 of their axis-aligned hull."""
    lo = corners.min(axis=1)
    hi = corners.max(axis=1)
    return np.concatenate([lo, hi], axis=1)


def _visibility(hull: np.ndarray, w: int, h: int) -> np.ndarray:
    """Fraction of each hull's area that lies inside the ``w`` x ``h`` image."""
    if not len(hull):
        return np.zeros(0)
    area = np.clip(hull[:, 2] - hull[:, 0], 0, None) * np.clip(hull[:, 3] - hull[:, 1], 0, None)
    cx0, cy0 = np.clip(hull[:, 0], 0, w), np.clip(hull[:, 1], 0, h)
    cx1, cy1 = np.clip(hull[:, 2], 0, w), np.clip(hull[:, 3], 0, h)
    inside = np.clip(cx1 - cx0, 0, None) * np.clip(cy1 - cy0, 0, None)
    return np.where(area > 0, inside / np.where(area > 0, area, 1.0), 0.0)


def _mask_boxes(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Tight COCO boxes of masks (pixel edges: a one-pixel mask at (x, y) is ``(x, y, 1, 1)``)."""
    out = np.zeros((len(masks), 4))
    for i, m in enumerate(masks):
        ys = np.flatnonzero(m.any(axis=1))
        xs = np.flatnonzero(m.any(axis=0))
        if not len(xs):
            raise ValidationError(
                f"mask {i} is empty: an instance needs at least one pixel", field=f"masks[{i}]"
            )
        out[i] = (xs[0], ys[0], xs[-1] + 1 - xs[0], ys[-1] + 1 - ys[0])
    return out
