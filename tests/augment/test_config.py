from __future__ import annotations

import copy
import json

import pytest

from workbench.augment import config as C
from workbench.augment.specs import TRANSFORMS, ParamSpec, transform_spec
from workbench.errors import UnknownNameError, ValidationError


def base() -> dict:
    return {
        "version": 1,
        "image_size": [64, 96],
        "transforms": [
            {"name": "HorizontalFlip", "enabled": True, "params": {"p": 0.5}},
            {"name": "Affine", "params": {"rotate": [-10, 10]}},
            {"name": "GaussNoise", "enabled": False},
        ],
    }


def test_validate_normalizes_and_fills_defaults():
    cfg = C.validate(base())
    assert cfg["version"] == 1 and cfg["image_size"] == [64, 96]
    assert cfg["min_visibility"] == C.DEFAULT_MIN_VISIBILITY
    affine = cfg["transforms"][1]
    assert affine["enabled"] is True
    assert affine["params"]["rotate"] == [-10, 10]
    assert affine["params"]["scale"] == transform_spec("Affine").defaults["scale"]
    assert set(affine["params"]) == set(TRANSFORMS["Affine"].params)
    assert cfg["transforms"][2]["enabled"] is False


def test_validate_does_not_change_input():
    cfg = base()
    before = copy.deepcopy(cfg)
    C.validate(cfg)
    assert cfg == before


BAD = [
    # (mutation, field expected in the error, text expected)
    (lambda c: c.update(version=2), "version", "version"),
    (lambda c: c.update(extra=1), "extra", "unknown key"),
    (lambda c: c.update(image_size=[0, 10]), "image_size", "image_size"),
    (lambda c: c.update(image_size=[10]), "image_size", "image_size"),
    (lambda c: c.update(image_size=[10.5, 10]), "image_size", "image_size"),
    (lambda c: c.update(min_visibility=1.5), "min_visibility", "min_visibility"),
    (lambda c: c.update(transforms={}), "transforms", "list"),
    (lambda c: c["transforms"].append(3), "transforms[3]", "object"),
    (lambda c: c["transforms"].append({"params": {}}), "transforms[3].name", "no name"),
    (lambda c: c["transforms"][0].update(enabled="yes"), "transforms[0].enabled", "true or false"),
    (lambda c: c["transforms"][0].update(colour=1), "transforms[0].colour", "unknown key"),
    (lambda c: c["transforms"][0].update(params=[0.5]), "transforms[0].params", "object"),
    (lambda c: c["transforms"][0]["params"].update(p=1.5), "transforms[0].params.p", "outside"),
    (lambda c: c["transforms"][0]["params"].update(p="half"), "transforms[0].params.p", "number"),
    (lambda c: c["transforms"][0]["params"].update(q=0.1), "transforms[0].params.q", "unknown parameter"),
    (lambda c: c["transforms"][1]["params"].update(rotate=[10, -10]), "transforms[1].params.rotate", "above"),
    (lambda c: c["transforms"][1]["params"].update(rotate=5), "transforms[1].params.rotate", "[low, high]"),
    (lambda c: c["transforms"][1]["params"].update(scale=[-1, 2]), "transforms[1].params.scale", "outside"),
    (
        lambda c: c["transforms"][1]["params"].update(shear=[0, float("nan")]),
        "transforms[1].params.shear",
        "finite",
    ),
    (
        lambda c: c["transforms"][1]["params"].update(rotate_method="box"),
        "transforms[1].params.rotate_method",
        "one of",
    ),
    (
        lambda c: c["transforms"].append({"name": "GaussianBlur", "params": {"blur_limit": [3, 4]}}),
        "transforms[3].params.blur_limit",
        "odd",
    ),
    (
        lambda c: c["transforms"].append({"name": "CoarseDropout", "params": {"num_holes_range": [1, 2.5]}}),
        "transforms[3].params.num_holes_range",
        "integer",
    ),
    (
        lambda c: c["transforms"][2].update(params={"per_channel": 1}),
        "transforms[2].params.per_channel",
        "true or false",
    ),
]


@pytest.mark.parametrize("mutate,field,text", BAD)
def test_bad_configs_name_the_field(mutate, field, text):
    cfg = base()
    mutate(cfg)
    with pytest.raises(ValidationError) as info:
        C.validate(cfg)
    assert info.value.field == field
    assert text in str(info.value)


def test_bad_param_error_names_transform_index():
    cfg = base()
    cfg["transforms"][1]["params"]["rotate"] = [0, 999]
    with pytest.raises(ValidationError) as info:
        C.validate(cfg)
    assert info.value.record == "transform 1 (Affine)"
    assert "Affine.rotate" in str(info.value)


def test_unknown_transform_lists_valid_names():
    cfg = base()
    cfg["transforms"].append({"name": "Solarize"})
    with pytest.raises(UnknownNameError) as info:
        C.validate(cfg)
    assert info.value.name == "Solarize"
    assert "HorizontalFlip" in info.value.valid and "CoarseDropout" in str(info.value)


def test_not_a_dict():
    with pytest.raises(ValidationError):
        C.validate([1, 2])


def test_json_round_trip(tmp_path):
    cfg = C.validate(base())
    text = C.to_json(cfg)
    assert json.loads(text) == cfg
    assert C.from_json(text) == cfg
    path = tmp_path / "aug.json"
    C.save(cfg, path)
    assert C.load(path) == cfg


def test_from_json_errors_name_the_file(tmp_path):
    with pytest.raises(ValidationError, match="not valid JSON"):
        C.from_json("{nope")
    p = tmp_path / "aug.json"
    p.write_text(json.dumps({"version": 1, "transforms": [{"name": "Rotate", "params": {"limit": [5, 1]}}]}))
    with pytest.raises(ValidationError) as info:
        C.load(p)
    assert info.value.file == str(p) and info.value.field == "transforms[0].params.limit"
    with pytest.raises(ValidationError) as info:
        C.load(tmp_path / "missing.json")
    assert info.value.file.endswith("missing.json")


def test_set_enabled_returns_new_config():
    cfg = C.validate(base())
    snapshot = copy.deepcopy(cfg)
    off = C.set_enabled(cfg, "HorizontalFlip", False)
    assert cfg == snapshot
    assert off["transforms"][0]["enabled"] is False
    on = C.set_enabled(off, 0, True)
    assert on["transforms"][0]["enabled"] is True
    # enabling a transform the pipeline lacks appends it with defaults; disabling one it lacks is a no-op
    added = C.set_enabled(cfg, "MotionBlur", True)
    assert added["transforms"][-1] == {
        "name": "MotionBlur",
        "enabled": True,
        "params": TRANSFORMS["MotionBlur"].defaults,
    }
    assert C.set_enabled(cfg, "MotionBlur", False) == cfg
    with pytest.raises(UnknownNameError):
        C.set_enabled(cfg, "Nope", True)
    with pytest.raises(ValidationError):
        C.set_enabled(cfg, 9, True)
    with pytest.raises(ValidationError):
        C.set_enabled(cfg, "HorizontalFlip", "no")


def test_set_param_validates_and_copies():
    cfg = C.validate(base())
    new = C.set_param(cfg, "Affine", "rotate", [-30, 30])
    assert new["transforms"][1]["params"]["rotate"] == [-30, 30]
    assert cfg["transforms"][1]["params"]["rotate"] == [-10, 10]
    with pytest.raises(ValidationError) as info:
        C.set_param(cfg, "Affine", "rotate", [-300, 30])
    assert info.value.field == "transforms[1].params.rotate"
    with pytest.raises(ValidationError, match="unknown parameter"):
        C.set_param(cfg, "HorizontalFlip", "angle", 3)
    with pytest.raises(ValidationError, match="set_enabled"):
        C.set_param(cfg, "Rotate", "limit", [-5, 5])
    with pytest.raises(UnknownNameError):
        C.set_param(cfg, "Twirl", "p", 1.0)


def test_set_image_size():
    cfg = C.validate(base())
    assert C.set_image_size(cfg, None)["image_size"] is None
    assert C.set_image_size(cfg, (32, 48))["image_size"] == [32, 48]
    with pytest.raises(ValidationError):
        C.set_image_size(cfg, (0, 48))


def test_every_spec_default_is_valid():
    for name, spec in TRANSFORMS.items():
        assert C.validate({"transforms": [{"name": name}]})["transforms"][0]["params"] == spec.defaults
        for key, pspec in spec.params.items():
            assert pspec.check(pspec.default) == pspec.default, (name, key)


def test_param_spec_rejects_unknown_kind():
    with pytest.raises(ValueError):
        ParamSpec("colour", 0)
