"""VisionDataset: what each dataset type yields, seeded augmentation, sampler order, collate, errors."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from tests.train.sources import easy_anomaly_source, png, sample_source
from workbench.augment import Augmenter, preset, sample, set_image_size
from workbench.augment.pipeline import draw_seed
from workbench.data.records import Annotation, ClassDef, Example
from workbench.errors import ImageError, ValidationError
from workbench.train.data import EpochSampler, VisionDataset, collate_fn, make_loader, sample_seed
from workbench.train.source import TrainSource


def _dataset(
    source: TrainSource, size: int, *, augment: str | None = None, training: bool = True, seed: int = 0
):
    aug = None
    if augment is not None:
        aug = Augmenter(
            set_image_size(preset(augment), [size, size]), source.dataset_type, for_training=training
        )
    return VisionDataset(
        source.split("train"),
        dataset_type=source.dataset_type,
        class_names=source.class_names,
        load_bytes=source.load_bytes,
        image_size=size,
        augmenter=aug,
        seed=seed,
    )


CASES = [
    ("digits", dict(name="digits", count=40), 16, "classification-default"),
    ("detection", dict(name="shapes-detection", count=12, size=64), 48, "detection-default"),
    ("segmentation", dict(name="shapes-segmentation", count=12, size=64), 48, "segmentation-default"),
    ("anomaly", dict(name="shapes-anomaly", count=12, size=64), 32, "anomaly-default"),
]


@pytest.mark.parametrize(("case", "spec", "size", "augment"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("with_augment", [False, True])
def test_item_contract(case, spec, size, augment, with_augment):
    spec = dict(spec)
    source = sample_source(spec.pop("name"), spec.pop("count"), **spec)
    ds = _dataset(source, size, augment=augment if with_augment else None)
    for i in range(len(ds)):
        image, target = ds[i]
        assert image.shape == (3, size, size) and image.dtype == torch.float32
        assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
        if source.dataset_type in ("classification", "anomaly"):
            assert isinstance(target, int) and 0 <= target < len(source.class_names)
            continue
        boxes, labels = target["boxes"], target["labels"]
        assert boxes.dtype == torch.float32 and boxes.shape[1] == 4 and labels.dtype == torch.int64
        assert len(boxes) == len(labels)
        if len(boxes):
            assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
            assert boxes.min() >= 0 and boxes.max() <= size
            assert labels.min() >= 1 and labels.max() <= len(source.class_names)  # 0 is background
        assert int(target["image_id"]) == ds.examples[i].id
        if source.dataset_type == "segmentation":
            masks = target["masks"]
            assert masks.dtype == torch.uint8 and masks.shape == (len(boxes), size, size)
            for m, b in zip(masks, boxes, strict=True):  # each box is its mask's tight box
                ys, xs = torch.nonzero(m, as_tuple=True)
                assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == tuple(int(v) for v in b)


def test_unaugmented_boxes_scale_with_the_image():
    source = sample_source("shapes-detection", 6, size=64)
    ds = _dataset(source, 32)
    for i, ex in enumerate(ds.examples):
        _, target = ds[i]
        expected = sorted(
            [a.bbox[0] / 2, a.bbox[1] / 2, (a.bbox[0] + a.bbox[2]) / 2, (a.bbox[1] + a.bbox[3]) / 2]
            for a in ex.annotations
        )
        assert np.allclose(sorted(target["boxes"].tolist()), expected, atol=1e-4)


def test_greyscale_is_expanded_to_three_equal_channels():
    ds = _dataset(sample_source("digits", 20), 8)
    image, _ = ds[0]
    assert image.shape == (3, 8, 8)
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])


def test_augmentation_is_seeded_per_example_and_epoch():
    source = sample_source("shapes-detection", 8, size=64)
    a = _dataset(source, 48, augment="detection-default", seed=3)
    b = _dataset(source, 48, augment="detection-default", seed=3)
    other_seed = _dataset(source, 48, augment="detection-default", seed=4)
    x1, t1 = a[(2, 5)]
    b.set_epoch(5)
    x2, t2 = b[2]
    assert torch.equal(x1, x2) and torch.equal(t1["boxes"], t2["boxes"])
    assert not torch.equal(x1, a[(2, 6)][0])
    assert not torch.equal(x1, other_seed[(2, 5)][0])
    # the preview (augment.sample with the same seed, on the same image) shows exactly what training sees
    img, truth = a.base(2)
    ex = a.examples[2]
    preview = sample(
        set_image_size(preset("detection-default"), [48, 48]),
        "detection",
        img,
        truth["boxes"],
        truth["classes"].tolist(),
        seed=draw_seed(3, 5, ex.id),
    )
    assert sample_seed(3, 5, ex.id) == draw_seed(3, 5, ex.id)
    assert torch.equal(x1, torch.from_numpy(preview.image.transpose(2, 0, 1).copy()).float() / 255)


def test_epoch_sampler_order_depends_on_seed_and_epoch_only():
    s = EpochSampler(20, shuffle=True, seed=1)
    s.set_epoch(3)
    first = list(s)
    s.set_epoch(4)
    assert list(s) != first
    again = EpochSampler(20, shuffle=True, seed=1)
    again.set_epoch(3)
    assert list(again) == first
    assert sorted(i for i, _ in first) == list(range(20)) and {e for _, e in first} == {3}
    assert [i for i, _ in EpochSampler(5, shuffle=False)] == [0, 1, 2, 3, 4]


def test_loader_batches_and_workers_agree():
    source = sample_source("shapes-detection", 10, size=64)
    ds = _dataset(source, 32, augment="detection-default")
    batches = {}
    for workers in (0, 2):
        loader = make_loader(ds, batch_size=3, shuffle=True, seed=7, num_workers=workers)
        loader.sampler.set_epoch(2)
        batches[workers] = list(loader)
    assert len(batches[0]) == -(-len(ds) // 3) >= 2
    for (im0, t0), (im2, t2) in zip(batches[0], batches[2], strict=True):
        assert isinstance(im0, list) and isinstance(t0, list)
        assert all(torch.equal(a, b) for a, b in zip(im0, im2, strict=True))
        assert all(torch.equal(a["boxes"], b["boxes"]) for a, b in zip(t0, t2, strict=True))


def test_classification_collate_stacks():
    x, y = collate_fn("classification")([(torch.zeros(3, 4, 4), 1), (torch.ones(3, 4, 4), 2)])
    assert x.shape == (2, 3, 4, 4) and y.tolist() == [1, 2] and y.dtype == torch.int64
    with pytest.raises(ValidationError):
        collate_fn("nope")


def test_anomaly_labels():
    source = easy_anomaly_source()
    ds = VisionDataset(
        source.split("val"),
        dataset_type="anomaly",
        class_names=source.class_names,
        load_bytes=source.load_bytes,
        image_size=32,
    )
    labels = [ds[i][1] for i in range(len(ds))]
    assert labels == [int(ex.label == "anomalous") for ex in ds.examples] and set(labels) == {0, 1}


def test_segmentation_from_rle_and_box_only_instances():
    size = 20
    mask = np.zeros((size, size), np.uint8)
    mask[2:6, 3:9] = 1
    from workbench.train.masks import mask_to_rle

    data = png(np.full((size, size, 3), 90, np.uint8))
    sha = hashlib.sha256(data).hexdigest()
    ex = Example(
        1,
        "d",
        sha,
        "x.png",
        size,
        size,
        "train",
        "annotated",
        annotations=(
            Annotation("mask", "a", mask=mask_to_rle(mask)),
            Annotation("box", "b", bbox=(10.0, 10.0, 5.0, 4.0)),
        ),
    )
    ds = VisionDataset(
        [ex],
        dataset_type="segmentation",
        class_names=["a", "b"],
        load_bytes={sha: data}.__getitem__,
        image_size=size,
    )
    _, t = ds[0]
    assert t["labels"].tolist() == [1, 2]
    assert torch.equal(t["masks"][0], torch.from_numpy(mask))
    assert t["masks"][1].sum() == 20 and t["boxes"][1].tolist() == [10, 10, 15, 14]


def test_unreadable_image_names_the_example():
    ex = Example(
        7, "d", "0" * 64, "broken.png", 8, 8, "train", "annotated", annotations=(Annotation("label", "a"),)
    )
    ds = VisionDataset(
        [ex],
        dataset_type="classification",
        class_names=["a"],
        load_bytes=lambda sha: b"not an image",
        image_size=8,
    )
    with pytest.raises(ImageError) as info:
        ds[0]
    assert info.value.record == 7 and info.value.file == "broken.png"


def test_unknown_dataset_type():
    with pytest.raises(ValidationError, match="dataset type"):
        VisionDataset([], dataset_type="keypoints", class_names=["a"], load_bytes=bytes, image_size=8)


def test_source_checks_labels_and_splits():
    ex = Example(
        1, "d", "0" * 64, "x.png", 8, 8, "train", "annotated", annotations=(Annotation("label", "zebra"),)
    )
    with pytest.raises(ValidationError, match="zebra") as info:
        TrainSource([ex], [ClassDef("cat", "#ff0000")], "classification", bytes)
    assert info.value.record == 1
    with pytest.raises(ValidationError, match="dataset type"):
        TrainSource([], [ClassDef("cat", "#ff0000")], "keypoints", bytes)


def test_training_loader_never_ends_on_a_one_image_batch():
    ds = _dataset(sample_source("digits", 60), 8)
    n = len(ds)
    train = make_loader(ds, batch_size=n - 1, shuffle=True)
    assert [len(y) for _, y in train] == [n - 1]
    evaluation = make_loader(ds, batch_size=n - 1, shuffle=False)
    assert [len(y) for _, y in evaluation] == [n - 1, 1]
    assert (
        EpochSampler(5, shuffle=True, count=3).__len__() == 3
        and len(list(EpochSampler(5, shuffle=True, count=3))) == 3
    )
