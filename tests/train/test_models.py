"""The model registry: every model builds and runs, unknown names list the valid ones, weights load locally."""

from __future__ import annotations

import pytest
import torch

from workbench.errors import UnknownNameError, ValidationError
from workbench.train.models import (
    MODELS,
    build_model,
    default_model,
    load_weights,
    model_names,
    model_spec,
    rebuild_model,
)

TYPES = ("classification", "detection", "segmentation", "anomaly")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_builds_and_runs(name):
    spec = model_spec(name)
    size = spec.min_image_size if spec.dataset_type == "classification" else max(spec.min_image_size, 64)
    torch.manual_seed(0)
    model = build_model(name, 3, image_size=size)
    assert model.workbench_config == {
        "name": name,
        "dataset_type": spec.dataset_type,
        "num_classes": 3,
        "image_size": size,
    }
    model.eval()
    x = torch.rand(2, 3, size, size)
    with torch.no_grad():
        if spec.dataset_type == "classification":
            assert model(x).shape == (2, 3)
        elif spec.dataset_type == "anomaly" and hasattr(model, "observe"):  # patch-feature memory
            model.observe(x)
            model.finalize()
            scores, maps = model(x)
            assert scores.shape == (2,) and maps.shape == (2, size, size)
        elif spec.dataset_type == "anomaly":
            assert model(x).shape == x.shape
        else:
            out = model(list(x))
            assert len(out) == 2 and {"boxes", "labels", "scores"} <= set(out[0])
            if spec.dataset_type == "segmentation":
                assert out[0]["masks"].shape[1:] == (1, size, size)
            assert all(int(d["labels"].min()) >= 1 for d in out if len(d["labels"]))  # 0 = background


@pytest.mark.parametrize("name", ["tiny-frcnn", "tiny-maskrcnn"])
def test_detectors_train_mode_returns_losses(name):
    model = build_model(name, 2, image_size=64)
    model.train()
    target = {"boxes": torch.tensor([[5.0, 6.0, 30.0, 40.0]]), "labels": torch.tensor([2])}
    if name == "tiny-maskrcnn":
        m = torch.zeros(1, 64, 64, dtype=torch.uint8)
        m[0, 6:40, 5:30] = 1
        target["masks"] = m
    losses = model([torch.rand(3, 64, 64)], [target])
    assert all(torch.isfinite(v) for v in losses.values())
    assert ("loss_mask" in losses) == (name == "tiny-maskrcnn")


def test_small_cnn_handles_8px_digits_and_64px():
    for size in (8, 16, 64):
        model = build_model("small-cnn", 10, image_size=size).eval()
        assert model(torch.rand(1, 3, size, size)).shape == (1, 10)


def test_registry_lookups():
    assert set(model_names()) == set(MODELS)
    for t in TYPES:
        assert default_model(t) in model_names(t)
    assert model_names("detection") == ["fasterrcnn_mobilenet_v3_large_320_fpn", "ssdlite320", "tiny-frcnn"]
    with pytest.raises(UnknownNameError) as info:
        build_model("resnet9000", 3)
    assert "small-cnn" in str(info.value) and "tiny-frcnn" in str(info.value)
    with pytest.raises(UnknownNameError):
        default_model("keypoints")


def test_bad_sizes_and_class_counts():
    with pytest.raises(ValidationError, match="image_size"):
        build_model("tiny-frcnn", 2, image_size=16)
    with pytest.raises(ValidationError, match="num_classes"):
        build_model("small-cnn", 0, image_size=16)


def test_rebuild_from_config_gives_same_architecture():
    model = build_model("small-cnn", 4, image_size=16)
    again = rebuild_model(model.workbench_config)
    again.load_state_dict(model.state_dict())
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(model.eval()(x), again.eval()(x))
    with pytest.raises(ValidationError, match="model_config"):
        rebuild_model({"name": "small-cnn"})


def test_weights_load_from_a_local_file_and_skip_a_mismatched_head(tmp_path):
    torch.manual_seed(1)
    source = build_model("resnet18", 10, image_size=32)
    path = tmp_path / "resnet18.pt"
    torch.save(source.net.state_dict(), path)  # torchvision-style keys, a 10-class head
    torch.manual_seed(2)
    target = build_model("resnet18", 3, image_size=32, weights=path)
    assert torch.equal(target.net.conv1.weight, source.net.conv1.weight)
    assert target.net.fc.weight.shape == (3, 512)  # the head stays new
    report = load_weights(target, path)
    assert "fc.weight" in report["skipped"] and "conv1.weight" in report["loaded"]


def test_bad_weights_files_name_the_file(tmp_path):
    model = build_model("small-cnn", 2, image_size=16)
    with pytest.raises(ValidationError, match="not found") as info:
        load_weights(model, tmp_path / "missing.pt")
    assert info.value.file.endswith("missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"garbage")
    with pytest.raises(ValidationError, match="state_dict"):
        load_weights(model, junk)
    other = tmp_path / "other.pt"
    torch.save({"something.else": torch.zeros(3)}, other)
    with pytest.raises(ValidationError, match="no tensor"):
        load_weights(model, other)
