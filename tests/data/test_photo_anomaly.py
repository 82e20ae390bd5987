"""The real-photo anomaly set (scikit-image photos with pasted defects): deterministic, MVTec-style splits,
and every pasted defect lies inside its ground-truth polygon (checked against the same crop without it)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

pytest.importorskip("skimage")

from workbench.data.photo_anomaly import PHOTO_DEFECTS, make_photo_anomaly  # noqa: E402
from workbench.errors import ValidationError  # noqa: E402


def _pixels(item) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(item.data)).convert("RGB")).astype(int)


def _polygon_mask(polygon, size: int) -> np.ndarray:
    """PIL's rasteriser as an independent oracle (its edge rule differs by at most a pixel's rim)."""
    im = Image.new("L", (size, size), 0)
    ImageDraw.Draw(im).polygon([tuple(p) for p in np.asarray(polygon).reshape(-1, 2)], fill=1, outline=1)
    return np.asarray(im).astype(bool)


def test_deterministic_counts_and_mvtec_splits():
    a = make_photo_anomaly(30, 3, category="chelsea", size=64, anomalous_fraction=0.3)
    b = make_photo_anomaly(30, 3, category="chelsea", size=64, anomalous_fraction=0.3)
    assert [it.data for it in a.items] == [it.data for it in b.items]
    other = make_photo_anomaly(30, 4, category="chelsea", size=64, anomalous_fraction=0.3)
    assert [it.data for it in a.items] != [it.data for it in other.items]
    assert a.type == "anomaly" and [c.name for c in a.classes] == ["good", "anomalous"]
    bad = [it for it in a.items if it.annotations[0].label == "anomalous"]
    good = [it for it in a.items if it.annotations[0].label == "good"]
    assert len(bad) == 9 and len(good) == 21
    assert {it.split for it in bad} == {"val", "test"}  # MVTec AD: anomalies never train
    assert all(it.split is None for it in good)
    assert {it.annotations[0].attributes["defect"] for it in bad} == set(PHOTO_DEFECTS)
    assert all(_pixels(it).shape == (64, 64, 3) for it in a.items)


def test_every_defect_lies_inside_its_region():
    size = 128
    bad = make_photo_anomaly(24, 0, category="coffee", size=size, anomalous_fraction=0.5)
    clean = make_photo_anomaly(24, 0, category="coffee", size=size, anomalous_fraction=0.0)
    checked = 0
    for it, ref in zip(bad.items, clean.items, strict=True):
        ann = it.annotations[0]
        if ann.label == "good":
            assert it.data == ref.data  # the same crop: only the defect differs
            continue
        mask = _polygon_mask(ann.polygons[0], size)  # dilated by a pixel: the two rasterisers' rims
        rim = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(3))) > 0
        changed = np.abs(_pixels(it) - _pixels(ref)).sum(axis=2) > 0
        assert changed.any(), ann.attributes
        assert not (changed & ~rim).any(), f"pixels changed outside the {ann.attributes['defect']} region"
        assert changed[mask].mean() > 0.5  # the region is mostly what was pasted
        x, y, w, h = ann.bbox
        ys, xs = np.nonzero(mask)
        assert x - 1 <= xs.min() and xs.max() <= x + w + 1 and y - 1 <= ys.min() and ys.max() <= y + h + 1
        checked += 1
    assert checked == 12


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"category": "moon"}, "category"),
        ({"size": 16}, "size"),
        ({"anomalous_fraction": 1.5}, "anomalous_fraction"),
        ({"count": 0}, "count"),
    ],
)
def test_bad_options_raise_located_errors(kwargs, field):
    args = {"count": 4, **kwargs}
    with pytest.raises(ValidationError) as e:
        make_photo_anomaly(args.pop("count"), 0, **args)
    assert e.value.field == field


@pytest.mark.parametrize("category", ["astronaut", "coffee"])
def test_every_defect_is_visible(category):
    """A defect changes its region by at least MIN_CONTRAST (0-255, mean over its pixels and channels).
    Before this rule two of the astronaut's 60 defects did not: dark patches of the deep field pasted on
    the black collar (14.5 and 16.7), which nobody can see. The next lowest, 19.9-21.4 (a dark red blob on
    a cat's eye, a tan blob on the grey backdrop), are plain to see and stay."""
    from workbench.data.photo_anomaly import MIN_CONTRAST, defect_contrast

    bad = make_photo_anomaly(200, 0, category=category)
    clean = make_photo_anomaly(200, 0, category=category, anomalous_fraction=0.0)
    seen = 0
    for it, ref in zip(bad.items, clean.items, strict=True):
        ann = it.annotations[0]
        if ann.label == "good":
            continue
        poly = np.asarray(ann.polygons[0]).reshape(-1, 2)
        assert defect_contrast(_pixels(ref), _pixels(it), poly) >= MIN_CONTRAST, (it.file_name, ann.attributes)
        seen += 1
    assert seen == 60
