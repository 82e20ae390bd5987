"""Turning examples into the tensors torchvision models expect.

``VisionDataset`` decodes an example's image, resizes it to the training size, applies an
albumentations pipeline seeded per sample with ``draw_seed(seed, epoch, example_id)`` and returns:

==============  ===================================================================================
classification  ``(image, class_index)``
detection       ``(image, {"boxes": float32 N x 4 xyxy, "labels": int64 1-based, "image_id"})``
segmentation    the detection target plus ``"masks"``: uint8 N x H x W
anomaly         ``(image, 0 | 1)`` (good / anomalous)
==============  ===================================================================================

Images are float32 ``3 x S x S`` in ``[0, 1]`` (greyscale is expanded to three channels; models
normalize inside). The same seed, epoch and example give the same sample in any worker process, so
results do not depend on ``num_workers`` or on where a resumed run picks up.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..data.images import decode_rgb
from ..data.records import ANOMALY_CLASSES, Example
from ..data.task_types import TaskType
from ..errors import ImageError, ValidationError
from .masks import mask_bbox, polygons_to_mask, resize_mask, rle_to_mask

__all__ = [
    "VisionDataset",
    "set_loader_epoch",
    "EpochSampler",
    "collate_fn",
    "worker_init_fn",
    "make_loader",
    "sample_seed",
    "polygons_to_mask",
    "rle_to_mask",
]

_MIN_BOX_SIDE = 0.5  # pixels at training size; thinner boxes are dropped (torchvision needs x1 > x0)


def sample_seed(seed: int, epoch: int, example_id: int) -> int:
    """The augmentation seed of one example in one epoch: ``augment.draw_seed(seed, epoch, example_id)``."""
    from ..augment.pipeline import draw_seed

    return int(draw_seed(seed, epoch, example_id))


def _rgb(arr: np.ndarray) -> np.ndarray:
    """An already decoded image (``H x W``, ``H x W x 1|3|4`` uint8) as ``H x W x 3``."""
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise ValueError(f"expected an H x W (x 1, 3 or 4) uint8 array, got {arr.dtype} {arr.shape}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] == 1:
        return np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr[:, :, :3])


def _resize_image(img: np.ndarray, size: int) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    if (h, w) == (size, size):
        return img
    interp = cv2.INTER_AREA if h > size and w > size else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


class VisionDataset(Dataset):
    """Examples of one split as model inputs.

    ``augmenter`` is a :class:`workbench.augment.Augmenter` whose config resizes to ``image_size``
    (training or evaluation mode), or None for a plain resize. It is called with
    ``seed=draw_seed(seed, epoch, example.id)``, exactly as the augmentation preview replays it.
    ``__getitem__`` takes an index (using the epoch set by :meth:`set_epoch`) or an ``(index, epoch)``
    pair, which :class:`EpochSampler` yields so workers need no shared state. Decoded images are cached
    up to ``cache_bytes``. ``load_bytes`` may also return an already decoded RGB uint8 array (video
    frames). ``with_truth=False`` ignores annotations (prediction on new images): targets are empty.
    """

    def __init__(
        self,
        examples: Sequence[Example],
        *,
        dataset_type: str,
        class_names: Sequence[str],
        load_bytes: Callable[[str], bytes],
        image_size: int,
        augmenter: Any = None,
        seed: int = 0,
        cache_bytes: int = 1 << 30,
        with_truth: bool = True,
    ) -> None:
        if dataset_type not in _TARGETS:
            raise ValidationError(
                f"unknown dataset type {dataset_type!r}; valid: {', '.join(_TARGETS)}", field="dataset_type"
            )
        self.examples = list(examples)
        self.dataset_type = dataset_type
        self.class_names = list(class_names)
        self.class_index = {n: i for i, n in enumerate(self.class_names)}
        self.load_bytes = load_bytes
        self.image_size = int(image_size)
        self.augmenter = augmenter
        self.seed = int(seed)
        self.epoch = 0
        self.cache_bytes = int(cache_bytes)
        self.with_truth = with_truth
        self._cache: dict[int, tuple[np.ndarray, dict[str, Any]]] = {}
        self._cached_bytes = 0

    def __len__(self) -> int:
        return len(self.examples)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def base(self, index: int) -> tuple[np.ndarray, dict[str, Any]]:
        """The decoded RGB image (original size) and its ground truth, before augmentation."""
        hit = self._cache.get(index)
        if hit is not None:
            return hit
        ex = self.examples[index]
        try:
            data = self.load_bytes(ex.blob)
            img = _rgb(data) if isinstance(data, np.ndarray) else decode_rgb(data)
        except ImageError:
            raise
        except (OSError, ValueError, KeyError) as e:
            raise ImageError(f"cannot read image ({e})", file=ex.file_name, record=ex.id) from None
        make_truth = _TRUTH[self.dataset_type] if self.with_truth else _NO_TRUTH[self.dataset_type]
        truth = make_truth(self, ex, img.shape[0], img.shape[1])
        out = (img, truth)
        size = img.nbytes + sum(v.nbytes for v in truth.values() if isinstance(v, np.ndarray))
        if self._cached_bytes + size <= self.cache_bytes:
            self._cache[index] = out
            self._cached_bytes += size
        return out

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, Any]:
        index, epoch = key if isinstance(key, tuple) else (key, self.epoch)
        index = int(index)
        img, truth = self.base(index)
        ex = self.examples[index]
        boxes, classes, masks = truth.get("boxes"), truth.get("classes"), truth.get("masks")
        if self.augmenter is not None:
            try:
                out = self.augmenter(
                    img,
                    boxes if self.dataset_type == TaskType.DETECTION else None,
                    None if classes is None else classes.tolist(),
                    None if masks is None else list(masks),
                    seed=sample_seed(self.seed, epoch, ex.id),
                )
            except ValidationError as e:
                raise e.located(file=ex.file_name, record=ex.id) from None
            img = out.image
            if classes is not None:
                boxes = np.asarray(out.boxes, dtype=np.float32).reshape(-1, 4)
                classes = np.asarray(out.labels, dtype=np.int64)
                masks = None if out.masks is None else np.asarray(out.masks, dtype=np.uint8)
        return _TARGETS[self.dataset_type](self, ex, img, truth, boxes, classes, masks)


# ---------------------------------------------------------------------------------------------- truth
def _class_index(ds: VisionDataset, ex: Example) -> int:
    label = ex.label
    if label is None or label not in ds.class_index:
        raise ValidationError(
            f"example has no class among {ds.class_names}", file=ex.file_name, record=ex.id, field="label"
        )
    return ds.class_index[label]


def _truth_label(ds: VisionDataset, ex: Example, h: int, w: int) -> dict[str, Any]:
    return {"label": _class_index(ds, ex)}


def _truth_anomaly(ds: VisionDataset, ex: Example, h: int, w: int) -> dict[str, Any]:
    label = ex.label
    if label not in ANOMALY_CLASSES:
        raise ValidationError(
            "example is not marked good or anomalous", file=ex.file_name, record=ex.id, field="label"
        )
    return {"label": ANOMALY_CLASSES.index(label)}


def _truth_boxes(ds: VisionDataset, ex: Example, h: int, w: int) -> dict[str, Any]:
    boxes, classes = [], []
    for ann in ex.targets():  # crowd regions are no objects to learn (COCO / torchvision references)
        if ann.bbox is None:
            continue
        x, y, bw, bh = ann.bbox
        x0, y0 = max(0.0, x), max(0.0, y)
        x1, y1 = min(float(w), x + bw), min(float(h), y + bh)
        if x1 - x0 > 0 and y1 - y0 > 0:
            boxes.append([x0, y0, x1 - x0, y1 - y0])
            classes.append(ds.class_index[ann.label] + 1)
    return {
        "boxes": np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        "classes": np.asarray(classes, np.int64),
    }


def _truth_instances(ds: VisionDataset, ex: Example, h: int, w: int) -> dict[str, Any]:
    masks, classes = [], []
    for ann in ex.targets():
        if ann.polygons is not None:
            m = polygons_to_mask(ann.polygons, h, w)
        elif ann.mask is not None:
            m = resize_mask(rle_to_mask(ann.mask), h, w)
        elif ann.bbox is not None:  # a box-only instance: its mask is the box
            m = np.zeros((h, w), np.uint8)
            x, y, bw, bh = ann.bbox
            m[max(0, int(y)) : int(np.ceil(y + bh)), max(0, int(x)) : int(np.ceil(x + bw))] = 1
        else:
            continue
        if m.any():
            masks.append(m)
            classes.append(ds.class_index[ann.label] + 1)
    arr = np.asarray(masks, dtype=np.uint8).reshape(-1, h, w)
    boxes = [mask_bbox(m) for m in arr]
    return {
        "boxes": np.asarray(
            [[b[0], b[1], b[2] - b[0], b[3] - b[1]] for b in boxes if b is not None], dtype=np.float32
        ).reshape(-1, 4),
        "classes": np.asarray(classes, np.int64),
        "masks": arr,
    }


def _no_label(ds: VisionDataset, ex: Example, h: int, w: int) -> dict[str, Any]:
    return {"label": -1}


def _no_boxes(ds: VisionDataset, ex: Example, h: int, w: int) -> dict[str, Any]:
    return {"boxes": np.zeros((0, 4), np.float32), "classes": np.zeros(0, np.int64)}


def _no_instances(ds: VisionDataset, ex: Example, h: int, w: int) -> dict[str, Any]:
    return {**_no_boxes(ds, ex, h, w), "masks": np.zeros((0, h, w), np.uint8)}


_NO_TRUTH: dict[str, Callable[..., dict[str, Any]]] = {
    TaskType.CLASSIFICATION: _no_label,
    TaskType.ANOMALY: _no_label,
    TaskType.DETECTION: _no_boxes,
    TaskType.SEGMENTATION: _no_instances,
}

_TRUTH: dict[str, Callable[..., Any]] = {
    TaskType.CLASSIFICATION: _truth_label,
    TaskType.ANOMALY: _truth_anomaly,
    TaskType.DETECTION: _truth_boxes,
    TaskType.SEGMENTATION: _truth_instances,
}


# ---------------------------------------------------------------------------------------------- targets
def _to_tensor(img: np.ndarray) -> torch.Tensor:
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    t = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
    return t.float().div_(255.0) if t.dtype == torch.uint8 else t.float()


def _fit(ds: VisionDataset, img: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The image at training size, and the x / y factors that took it there."""
    h, w = img.shape[:2]
    return _resize_image(img, ds.image_size), ds.image_size / w, ds.image_size / h


def _target_label(ds, ex, img, truth, boxes, classes, masks):
    return _to_tensor(_fit(ds, img)[0]), int(truth["label"])


def _target_boxes(ds, ex, img, truth, boxes, classes, masks):
    img, sx, sy = _fit(ds, img)
    classes = np.asarray(classes, dtype=np.int64)
    if masks is not None:  # instances: each box is the tight box of its mask at training size
        s = ds.image_size
        resized = [resize_mask(np.asarray(m, dtype=np.uint8), s, s) for m in masks]
        tight = [mask_bbox(m) for m in resized]
        keep = [
            k
            for k, b in enumerate(tight)
            if b is not None and b[2] - b[0] >= _MIN_BOX_SIDE and b[3] - b[1] >= _MIN_BOX_SIDE
        ]
        return _to_tensor(img), {
            "boxes": torch.tensor([tight[k] for k in keep], dtype=torch.float32).reshape(-1, 4),
            "labels": torch.from_numpy(classes[keep]),
            "masks": torch.from_numpy(
                np.asarray([resized[k] for k in keep], dtype=np.uint8).reshape(-1, s, s)
            ),
            "image_id": torch.tensor(ex.id, dtype=torch.int64),
        }
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    xyxy = np.stack([b[:, 0] * sx, b[:, 1] * sy, (b[:, 0] + b[:, 2]) * sx, (b[:, 1] + b[:, 3]) * sy], axis=1)
    ok = ((xyxy[:, 2] - xyxy[:, 0]) >= _MIN_BOX_SIDE) & ((xyxy[:, 3] - xyxy[:, 1]) >= _MIN_BOX_SIDE)
    return _to_tensor(img), {
        "boxes": torch.from_numpy(np.ascontiguousarray(xyxy[ok], dtype=np.float32)),
        "labels": torch.from_numpy(classes[ok]),
        "image_id": torch.tensor(ex.id, dtype=torch.int64),
    }


_TARGETS: dict[str, Callable[..., Any]] = {
    TaskType.CLASSIFICATION: _target_label,
    TaskType.ANOMALY: _target_label,
    TaskType.DETECTION: _target_boxes,
    TaskType.SEGMENTATION: _target_boxes,
}


# ---------------------------------------------------------------------------------------------- loading
class EpochSampler(Sampler):
    """Yields ``(index, epoch)`` pairs: a permutation drawn from ``(seed, epoch)`` when shuffling.

    Like ``DistributedSampler``'s ``set_epoch``: the order depends only on the seed and the epoch, so a
    resumed run sees the same batches as an uninterrupted one. ``count`` (default: all) keeps only the
    first ``count`` indices of each permutation.

    One process of ``num_replicas`` (a torchrun job) gets its ``rank``'s share, cut the way torch's
    ``DistributedSampler`` cuts it: the order padded by repeating its start to a multiple of
    ``num_replicas``, then every ``num_replicas``-th index from ``rank``, so every process has the same
    length. The order is the single-process one, so the first ``b`` indices of all the processes together
    are the first ``b * num_replicas`` of one process: a global batch holds the same examples as one
    process's batch of that size. ``count`` is then per process.
    """

    def __init__(
        self,
        length: int,
        *,
        shuffle: bool,
        seed: int = 0,
        count: int | None = None,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValidationError(
                f"rank {rank} does not fit {num_replicas} processes (need 0 <= rank < num_replicas)",
                field="rank",
            )
        self.length = int(length)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.epoch = 0
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        share = -(-self.length // self.num_replicas)  # ceil: every process gets the same number
        self.count = share if count is None else max(0, min(int(count), share))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(zlib.crc32(f"order:{self.seed}:{self.epoch}".encode()))
            order = torch.randperm(self.length, generator=g).tolist()
        else:
            order = list(range(self.length))
        if self.num_replicas > 1 and order:
            total = -(-len(order) // self.num_replicas) * self.num_replicas
            order = (order * -(-total // len(order)))[:total][self.rank :: self.num_replicas]
        return iter([(i, self.epoch) for i in order[: self.count]])


def _collate_stack(batch: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = zip(*batch, strict=True)
    return torch.stack(images), torch.tensor(labels, dtype=torch.int64)


def _collate_lists(batch: list[tuple[torch.Tensor, dict]]) -> tuple[list[torch.Tensor], list[dict]]:
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)


_COLLATE: dict[str, Callable[[list], Any]] = {
    TaskType.CLASSIFICATION: _collate_stack,
    TaskType.ANOMALY: _collate_stack,
    TaskType.DETECTION: _collate_lists,
    TaskType.SEGMENTATION: _collate_lists,
}


def collate_fn(dataset_type: str) -> Callable[[list], Any]:
    """Batch stacking for classification / anomaly; lists of images and target dicts for detectors."""
    try:
        return _COLLATE[dataset_type]
    except KeyError:
        raise ValidationError(f"unknown dataset type {dataset_type!r}", field="dataset_type") from None


def worker_init_fn(worker_id: int) -> None:
    """Seed numpy and ``random`` in a DataLoader worker from torch's per-worker seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(
    dataset: VisionDataset,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    num_workers: int = 0,
    num_replicas: int = 1,
    rank: int = 0,
) -> DataLoader:
    """A DataLoader over ``dataset`` with an :class:`EpochSampler` (see :func:`set_loader_epoch`).

    A shuffled (training) loader leaves out one example per epoch when the last batch would hold just
    one: BatchNorm cannot train on a single 1 x 1 feature map, and a one-image step is mostly noise.
    ``num_replicas`` / ``rank``: this process's share in a multi-process run (``batch_size`` is then per
    process).
    """
    n = -(-len(dataset) // num_replicas)  # examples per process
    count = n - 1 if shuffle and n > 1 and n % batch_size == 1 else n
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=EpochSampler(
            len(dataset), shuffle=shuffle, seed=seed, count=count, num_replicas=num_replicas, rank=rank
        ),
        collate_fn=collate_fn(dataset.dataset_type),
        num_workers=num_workers,
        worker_init_fn=worker_init_fn if num_workers > 0 else None,
        drop_last=False,
    )


def set_loader_epoch(loader: DataLoader, epoch: int) -> None:
    """Point a :func:`make_loader` loader (its sampler and dataset) at ``epoch``."""
    sampler = loader.sampler
    if isinstance(sampler, EpochSampler):
        sampler.set_epoch(epoch)
    dataset = loader.dataset
    if isinstance(dataset, VisionDataset):
        dataset.set_epoch(epoch)
