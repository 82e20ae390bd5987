from __future__ import annotations

import pytest

from workbench.augment import config as C
from workbench.augment import presets as P
from workbench.augment.specs import transform_spec
from workbench.data.records import TASK_TYPES
from workbench.errors import AlreadyExistsError, UnknownNameError

EXPECTED = {
    "classification-default",
    "detection-default",
    "segmentation-default",
    "anomaly-default",
    "geometric",
    "photometric",
    "none",
}


def test_registry_has_the_named_presets():
    assert EXPECTED <= set(P.PRESETS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_presets_are_valid_and_fresh_copies(name):
    cfg = P.preset(name)
    assert C.validate(cfg) == cfg
    cfg["transforms"].append({"name": "HorizontalFlip", "enabled": True, "params": {"p": 1.0}})
    assert P.preset(name) != cfg  # mutating a copy leaves the registry alone


@pytest.mark.parametrize("dataset_type", TASK_TYPES)
def test_default_preset_per_type(dataset_type):
    name = P.default_preset(dataset_type)
    assert name == f"{dataset_type}-default"
    assert name in P.preset_names(dataset_type)
    assert dataset_type in P.PRESETS[name].dataset_types


def test_unknown_names():
    with pytest.raises(UnknownNameError) as info:
        P.preset("heavy")
    assert "classification-default" in str(info.value)
    with pytest.raises(UnknownNameError):
        P.default_preset("keypoints")
    with pytest.raises(UnknownNameError):
        P.preset_names("keypoints")


def test_defaults_cover_the_transform_families():
    names = {t["name"] for t in P.preset("classification-default")["transforms"]}
    assert {
        "HorizontalFlip",
        "VerticalFlip",
        "Affine",
        "RandomBrightnessContrast",
        "RandomGamma",
        "HueSaturationValue",
        "GaussNoise",
        "GaussianBlur",
        "CoarseDropout",
    } <= names
    assert {"Rotate", "Affine"} <= {t["name"] for t in P.preset("geometric")["transforms"]}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_vertical_flip_is_off_everywhere(name):
    for t in P.preset(name)["transforms"]:
        if t["name"] == "VerticalFlip":
            assert t["enabled"] is False


def test_anomaly_presets_are_mild():
    for name in P.preset_names("anomaly"):
        for t in P.preset(name)["transforms"]:
            if not t["enabled"]:
                continue
            group = transform_spec(t["name"]).group
            assert group in ("geometric", "photometric"), (name, t["name"])
            params = t["params"]
            if t["name"] == "Affine":
                assert max(abs(v) for v in params["rotate"]) <= 5
                assert 0.9 <= params["scale"][0] <= params["scale"][1] <= 1.1
            if t["name"] == "RandomBrightnessContrast":
                assert max(abs(v) for v in params["brightness_limit"] + params["contrast_limit"]) <= 0.15


def test_photometric_preset_never_moves_boxes():
    for t in P.preset("photometric")["transforms"]:
        assert not transform_spec(t["name"]).affects_boxes


def test_register_preset():
    cfg = {"version": 1, "transforms": [{"name": "HorizontalFlip"}]}
    try:
        P.register_preset("test-flip", cfg, description="just a flip", dataset_types=("detection",))
        assert P.preset("test-flip")["transforms"][0]["params"] == {"p": 0.5}
        assert "test-flip" in P.preset_names("detection") and "test-flip" not in P.preset_names("anomaly")
        with pytest.raises(AlreadyExistsError):
            P.register_preset("test-flip", cfg)
        P.register_preset("test-flip", P.preset("none"), replace=True)
        assert P.preset("test-flip")["transforms"] == []
        with pytest.raises(UnknownNameError):
            P.register_preset("test-bad", cfg, dataset_types=("keypoints",))
    finally:
        P.PRESETS.pop("test-flip", None)
