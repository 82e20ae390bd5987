from __future__ import annotations

import numpy as np
import pytest

import workbench.augment as wa
from workbench.errors import ValidationError

pytest.importorskip("albumentations")


def scene():
    img = np.zeros((100, 100, 3), np.uint8)
    boxes = [[60, 60, 20, 20], [30, 30, 40, 40], [0, 0, 20, 20]]
    return img, boxes, ["a", "b", "c"]


def shift_config(p: float) -> dict:
    return {
        "version": 1,
        "min_visibility": 0.2,
        "transforms": [
            {
                "name": "Affine",
                "params": {
                    "translate_percent": [0.5, 0.5],
                    "scale": [1, 1],
                    "rotate": [0, 0],
                    "shear": [0, 0],
                    "p": p,
                },
            },
            {"name": "HorizontalFlip", "params": {"p": 0.5}},
            {"name": "RandomBrightnessContrast", "params": {"p": 1.0}},
        ],
    }


def test_report_counts_dropped_and_clipped():
    rep = wa.box_loss_report(shift_config(1.0), "detection", [scene()], draws=4, seed=3)
    assert rep["boxes"] == 12 and rep["draws"] == 4 and rep["examples"] == 1
    # the shift always pushes one box out and cuts 3/4 off another; a flip moves boxes but loses none
    assert rep["dropped_fraction"] == pytest.approx(1 / 3)
    assert rep["clipped_fraction"] == pytest.approx(1 / 3)
    rows = {r["name"]: r for r in rep["per_transform"]}
    assert set(rows) == {"Affine", "HorizontalFlip"}  # brightness never touches a box
    assert rows["Affine"]["index"] == 0 and rows["Affine"]["dropped_fraction"] == pytest.approx(1 / 3)
    assert rows["HorizontalFlip"]["dropped_fraction"] == 0 and rows["HorizontalFlip"]["clipped_fraction"] == 0


def test_report_per_transform_forces_the_transform_on():
    rep = wa.box_loss_report(shift_config(0.0), "detection", [scene()], draws=3, seed=0)
    assert rep["dropped_fraction"] == 0  # p = 0: never fires in the real pipeline
    assert rep["per_transform"][0]["dropped_fraction"] == pytest.approx(1 / 3)  # but does when forced


def test_report_threshold_changes_clipped_only():
    loose = wa.box_loss_report(
        shift_config(1.0), "detection", [scene()], draws=1, threshold=0.9, per_transform=False
    )
    assert loose["clipped_fraction"] == 0 and loose["dropped_fraction"] == pytest.approx(1 / 3)
    assert loose["per_transform"] == []


def test_report_segmentation_with_masks():
    img, boxes, labels = scene()
    masks = []
    for x, y, w, h in boxes:
        m = np.zeros((100, 100), np.uint8)
        m[y : y + h, x : x + w] = 1
        masks.append(m)
    rep = wa.box_loss_report(shift_config(1.0), "segmentation", [(img, None, labels, masks)], draws=2)
    assert rep["boxes"] == 6 and rep["dropped"] == 2 and rep["clipped"] == 2


def test_report_is_reproducible_for_a_seed():
    cfg = wa.preset("detection-default")
    cfg = wa.set_param(cfg, "Affine", "translate_percent", [-0.4, 0.4])
    rng = np.random.default_rng(0)
    exs = [
        (rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), [[2, 2, 30, 30], [40, 40, 20, 20]], [0, 1])
        for _ in range(3)
    ]
    a = wa.box_loss_report(cfg, "detection", exs, draws=5, seed=11)
    b = wa.box_loss_report(cfg, "detection", exs, draws=5, seed=11)
    assert a == b
    assert 0 < a["dropped_fraction"] + a["clipped_fraction"] < 1


def test_report_rejects_bad_arguments():
    with pytest.raises(ValidationError):
        wa.box_loss_report(wa.preset("none"), "classification", [scene()])
    with pytest.raises(ValidationError):
        wa.box_loss_report(wa.preset("none"), "detection", [scene()], draws=0)
    with pytest.raises(ValidationError) as info:
        wa.box_loss_report(wa.preset("none"), "detection", [scene(), (1, 2)])
    assert info.value.record == "example 1"
    bad = (np.zeros((10, 10, 3), np.uint8), [[0, 0, -1, 2]], [0])
    with pytest.raises(ValidationError) as info:
        wa.box_loss_report(wa.preset("none"), "detection", [scene(), bad])
    assert info.value.record == "example 1" and info.value.field == "boxes"
