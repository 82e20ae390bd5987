from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workbench.augment as wa
from workbench.augment.pipeline import _mask_boxes
from workbench.errors import UnknownNameError, ValidationError

pytest.importorskip("albumentations")

H, W = 60, 80


def image(seed: int = 0, h: int = H, w: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def rect_mask(x: int, y: int, w: int, h: int, shape=(H, W)) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    m[y : y + h, x : x + w] = 1
    return m


def only(name: str, image_size=None, min_visibility=0.25, **params) -> dict:
    return {
        "version": 1,
        "image_size": image_size,
        "min_visibility": min_visibility,
        "transforms": [{"name": name, "params": params}],
    }


SHIFT = only(
    "Affine",
    min_visibility=0.2,
    translate_percent=[0.5, 0.5],
    scale=[1, 1],
    rotate=[0, 0],
    shear=[0, 0],
    p=1.0,
)


def test_draw_seed_is_stable_and_spread():
    assert wa.draw_seed(0, 0, 0) == wa.draw_seed(0, 0, 0)
    assert wa.draw_seed(1, 2, "img-3") == wa.draw_seed(1, 2, "img-3")
    seeds = {wa.draw_seed(7, e, i) for e in range(10) for i in range(100)}
    assert len(seeds) == 1000
    assert all(0 <= s < 2**32 for s in seeds)
    assert wa.draw_seed(0, 1, 2) != wa.draw_seed(0, 2, 1)
    # pinned: the value must not change between releases, or old preview captions stop replaying
    assert wa.draw_seed(0, 0, 0) == 2969150386
    with pytest.raises(ValidationError):
        wa.draw_seed(0, 1.5, 2)


def test_same_seed_same_output_regardless_of_history():
    cfg = wa.preset("detection-default")
    img = image()
    boxes, labels = [[10, 10, 30, 20], [50, 30, 20, 25]], [3, 4]
    seed = wa.draw_seed(42, 3, 17)
    train = wa.Augmenter(cfg, "detection")
    for s in range(5):  # other examples drawn first, as in a training epoch
        train(image(s), boxes, labels, seed=s)
    a = train(img, boxes, labels, seed=seed)
    b = wa.sample(cfg, "detection", img, boxes, labels, seed=seed)
    c = pickle.loads(pickle.dumps(train))(img, boxes, labels, seed=seed)  # a DataLoader worker's copy
    for other in (b, c):
        assert np.array_equal(a.image, other.image)
        assert np.allclose(a.boxes, other.boxes)
        assert a.labels == other.labels and a.params == other.params


def test_different_seeds_differ():
    cfg = wa.preset("classification-default")
    outs = [wa.sample(cfg, "classification", image(), seed=s).image for s in range(6)]
    assert len({o.tobytes() for o in outs}) > 1


def test_transforms_draw_independently():
    # albumentations' own Compose(seed=) seeds each transform alike, so equal-p transforms fire together
    cfg = {
        "version": 1,
        "transforms": [
            {"name": "HorizontalFlip", "params": {"p": 0.5}},
            {"name": "VerticalFlip", "enabled": True, "params": {"p": 0.5}},
        ],
    }
    aug = wa.Augmenter(cfg, "classification")
    agree = 0
    for s in range(200):
        names = {p["name"] for p in aug(image(), seed=s).params}
        agree += ("HorizontalFlip" in names) == ("VerticalFlip" in names)
    assert 60 < agree < 140


def test_params_record_what_fired():
    cfg = {
        "version": 1,
        "image_size": [30, 40],
        "transforms": [
            {"name": "HorizontalFlip", "params": {"p": 1.0}},
            {"name": "GaussNoise", "enabled": False},
            {"name": "Rotate", "params": {"limit": [20, 20], "p": 1.0}},
            {"name": "RandomGamma", "params": {"gamma_limit": [150, 150], "p": 1.0}},
            {
                "name": "Affine",
                "params": {
                    "rotate": [5, 5],
                    "scale": [1.2, 1.2],
                    "translate_percent": [0.1, 0.1],
                    "shear": [3, 3],
                    "p": 1.0,
                },
            },
        ],
    }
    s = wa.sample(cfg, "classification", image(), seed=1)
    assert [(p["index"], p["name"]) for p in s.params] == [
        (0, "HorizontalFlip"),
        (2, "Rotate"),
        (3, "RandomGamma"),
        (4, "Affine"),
        (None, "Resize"),
    ]
    by_name = {p["name"]: p["params"] for p in s.params}
    assert by_name["Rotate"] == {"angle": 20.0}
    assert by_name["RandomGamma"]["gamma"] == pytest.approx(1.5)
    assert by_name["Affine"] == {
        "rotate": 5.0,
        "scale": {"x": 1.2, "y": 1.2},
        "translate_px": {"x": 8.0, "y": 6.0},
        "shear": {"x": 3.0, "y": 3.0},
    }
    assert s.caption.startswith("HorizontalFlip · Rotate(angle=20)")
    assert "Resize" not in s.caption
    assert s.image.shape == (30, 40, 3)


def test_nothing_fired_caption():
    assert wa.sample(wa.preset("none"), "classification", image(), seed=0).caption == "no change"


def test_horizontal_flip_moves_boxes_and_masks():
    cfg = only("HorizontalFlip", p=1.0)
    m = rect_mask(20, 10, 30, 20)
    s = wa.sample(cfg, "detection", image(), [[20, 10, 30, 20]], ["cat"], seed=0)
    assert np.allclose(s.boxes, [[30, 10, 30, 20]], atol=1e-4)
    assert s.labels == ["cat"] and s.kept == [0] and s.dropped == 0 and s.clipped == 0
    seg = wa.sample(cfg, "segmentation", image(), None, ["cat"], [m], seed=0)
    assert np.array_equal(seg.masks[0], m[:, ::-1])
    assert seg.boxes.tolist() == [[30, 10, 30, 20]]


@pytest.mark.parametrize("dataset_type", ["detection", "segmentation"])
def test_drop_and_clip_counts(dataset_type):
    boxes = [[60, 60, 20, 20], [30, 30, 40, 40], [0, 0, 20, 20]]
    img = image(h=100, w=100)
    masks = [rect_mask(*b, shape=(100, 100)) for b in boxes] if dataset_type == "segmentation" else None
    s = wa.sample(SHIFT, dataset_type, img, boxes, ["a", "b", "c"], masks, seed=0)
    assert s.kept == [1, 2] and s.labels == ["b", "c"]
    assert s.dropped == 1 and s.clipped == 1
    assert np.allclose(s.boxes, [[80, 80, 20, 20], [50, 50, 20, 20]], atol=1e-4)
    assert s.visibility == pytest.approx([0.25, 1.0], abs=0.03)
    if masks is not None:
        assert [int(m.sum()) for m in s.masks] == [400, 400]


def test_min_visibility_drops_mostly_hidden_boxes():
    strict = dict(SHIFT, min_visibility=0.5)
    s = wa.sample(strict, "detection", image(h=100, w=100), [[30, 30, 40, 40]], [0], seed=0)
    assert s.dropped == 1 and s.kept == [] and s.boxes.shape == (0, 4)


def test_input_boxes_outside_the_image_count_as_dropped():
    s = wa.sample(
        wa.preset("none"), "detection", image(), [[-50, 5, 10, 10], [70, 50, 30, 30]], [0, 1], seed=0
    )
    assert s.kept == [1] and s.dropped == 1
    assert np.allclose(s.boxes, [[70, 50, 10, 10]], atol=1e-4)  # clipped to the image


def test_eval_mode_only_resizes():
    cfg = dict(wa.preset("detection-default"), image_size=[30, 40])
    img = image()
    outs = [
        wa.sample(cfg, "detection", img, [[20, 10, 40, 20]], [1], seed=s, for_training=False)
        for s in range(3)
    ]
    for o in outs:
        assert [p["name"] for p in o.params] == ["Resize"]
        assert np.allclose(o.boxes, [[10, 5, 20, 10]], atol=1e-4)
        assert np.array_equal(o.image, outs[0].image)
    assert (
        wa.Augmenter(wa.preset("detection-default"), "detection", for_training=False).compose.transforms == []
    )


def test_build_returns_compose_with_box_params():
    import albumentations as A

    comp = wa.build(wa.preset("segmentation-default"), "segmentation")
    assert isinstance(comp, A.Compose)
    assert "bboxes" in comp.processors and comp.processors["bboxes"].params.format == "coco"
    assert "bboxes" not in wa.build(wa.preset("classification-default"), "classification").processors
    assert isinstance(comp.transforms[-1], A.CoarseDropout) is False  # disabled transforms are left out
    with pytest.raises(UnknownNameError):
        wa.build(wa.preset("none"), "keypoints")


def test_anomaly_masks_follow_the_image():
    cfg = only("HorizontalFlip", image_size=[30, 40], p=1.0)
    m = rect_mask(0, 0, 10, 10)
    s = wa.sample(cfg, "anomaly", image(), masks=[m], seed=0)
    assert s.masks[0].shape == (30, 40) and s.masks[0][:5, -5:].all() and not s.masks[0][:, :30].any()
    assert s.boxes.shape == (0, 4)


BAD_INPUTS = [
    (dict(image=np.zeros((10, 10, 3), np.float32)), "image"),
    (dict(image=np.zeros((10, 10, 5), np.uint8)), "image"),
    (dict(image=np.zeros((10, 10, 3), np.uint8), boxes=[[1, 1, 0, 3]], labels=[0]), "boxes"),
    (dict(image=np.zeros((10, 10, 3), np.uint8), boxes=[[1, 1, 2]], labels=[0]), "boxes"),
    (dict(image=np.zeros((10, 10, 3), np.uint8), boxes=[[1, 1, 2, np.inf]], labels=[0]), "boxes"),
    (dict(image=np.zeros((10, 10, 3), np.uint8), boxes=[[1, 1, 2, 2]], labels=[0, 1]), "labels"),
    (dict(image=np.zeros((10, 10, 3), np.uint8), masks=[np.zeros((9, 10))]), "masks[0]"),
]


@pytest.mark.parametrize("kwargs,field", BAD_INPUTS)
def test_bad_inputs_name_the_field(kwargs, field):
    with pytest.raises(ValidationError) as info:
        wa.sample(wa.preset("none"), "detection", seed=0, **kwargs)
    assert info.value.field == field


def test_segmentation_needs_nonempty_masks_and_matching_boxes():
    img = image()
    with pytest.raises(ValidationError) as info:
        wa.sample(wa.preset("none"), "segmentation", img, None, [0], [np.zeros((H, W))], seed=0)
    assert info.value.field == "masks[0]"
    with pytest.raises(ValidationError, match="2 boxes for 1 masks"):
        wa.sample(
            wa.preset("none"), "segmentation", img, [[0, 0, 2, 2]] * 2, [0], [rect_mask(0, 0, 2, 2)], seed=0
        )
    with pytest.raises(ValidationError):
        wa.sample(wa.preset("none"), "detection", img, seed=1.5)


# ---- properties over every preset -----------------------------------------------------------------

PRESET_NAMES = sorted(wa.PRESETS)


@st.composite
def scene(draw):
    h = draw(st.integers(16, 96))
    w = draw(st.integers(16, 96))
    n = draw(st.integers(0, 5))
    boxes = []
    for _ in range(n):
        x0 = draw(st.integers(0, w - 2))
        y0 = draw(st.integers(0, h - 2))
        bw = draw(st.integers(1, w - x0))
        bh = draw(st.integers(1, h - y0))
        boxes.append([x0, y0, bw, bh])
    return h, w, boxes


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scene(), st.sampled_from(PRESET_NAMES), st.integers(0, 2**32 - 1), st.booleans())
def test_detection_boxes_stay_in_the_image(sc, name, seed, resize):
    h, w, boxes = sc
    cfg = wa.preset(name)
    if resize:
        cfg["image_size"] = [40, 56]
    s = wa.sample(cfg, "detection", image(seed % 7, h, w), boxes, list(range(len(boxes))), seed=seed)
    oh, ow = s.image.shape[:2]
    assert s.boxes.shape == (len(s.kept), 4)
    assert s.dropped + len(s.kept) == len(boxes)
    if len(s.boxes):
        x, y, bw, bh = s.boxes.T
        eps = 1e-4
        assert (x >= -eps).all() and (y >= -eps).all()
        assert (x + bw <= ow + eps).all() and (y + bh <= oh + eps).all()
        assert (bw > 0).all() and (bh > 0).all()
    assert s.labels == s.kept  # labels were the indices
    assert 0 <= s.clipped <= len(s.kept)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scene(), st.sampled_from(PRESET_NAMES), st.integers(0, 2**32 - 1))
def test_segmentation_boxes_are_their_masks(sc, name, seed):
    h, w, boxes = sc
    masks = [rect_mask(*b, shape=(h, w)) for b in boxes]
    mask_boxes = _mask_boxes(masks) if masks else np.zeros((0, 4))
    assert np.array_equal(mask_boxes, np.asarray(boxes, float).reshape(-1, 4))
    s = wa.sample(wa.preset(name), "segmentation", image(1, h, w), None, ["x"] * len(boxes), masks, seed=seed)
    oh, ow = s.image.shape[:2]
    assert len(s.masks) == len(s.boxes) == len(s.labels) == len(s.kept)
    for box, m in zip(s.boxes, s.masks, strict=True):
        assert m.shape == (oh, ow) and m.any()
        ys, xs = np.nonzero(m)
        tight = [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]
        assert np.abs(box - tight).max() <= 1
        assert box[0] >= 0 and box[1] >= 0 and box[0] + box[2] <= ow and box[1] + box[3] <= oh
