"""Prediction on new images / folders / videos, and ONNX export checked against torch."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from tests.train.sources import easy_anomaly_source, quick_config, sample_source
from workbench.errors import ValidationError
from workbench.train.export import export_onnx
from workbench.train.predict import Predictor, draw_overlay, predict_folder, predict_video
from workbench.train.trainer import Trainer

RUNS = {
    "classification": (
        lambda: sample_source("digits", 120),
        dict(model="small-cnn", image_size=16, epochs=1, batch_size=32),
    ),
    "detection": (
        lambda: sample_source("shapes-detection", 24, size=64),
        dict(model="tiny-frcnn", image_size=64, epochs=1, batch_size=8, max_steps_per_epoch=2),
    ),
    "segmentation": (
        lambda: sample_source("shapes-segmentation", 24, size=64),
        dict(model="tiny-maskrcnn", image_size=64, epochs=1, batch_size=8, max_steps_per_epoch=2),
    ),
    "anomaly": (lambda: easy_anomaly_source(), dict(model="conv-ae", image_size=32, epochs=1)),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for kind, (make, cfg) in RUNS.items():
        source = make()
        Trainer(quick_config(**cfg), source, root / kind).fit()
        out[kind] = (root / kind, source)
    return out


def _images(source, n=3):
    return [
        np.asarray(Image.open(io.BytesIO(source.load_bytes(ex.blob))).convert("RGB"))
        for ex in source.split("test")[:n]
    ]


@pytest.mark.parametrize("kind", sorted(RUNS))
def test_predict_matches_the_trainers_rows_and_draws(kind, runs, tmp_path):
    run_dir, source = runs[kind]
    predictor = Predictor.from_run(run_dir, device="cpu")
    assert predictor.dataset_type == kind and predictor.class_names == source.class_names
    images = _images(source)
    rows, examples = predictor.predict(images)
    assert [e.width for e in examples] == [im.shape[1] for im in images]
    # the same images as encoded bytes give the same rows
    encoded = [source.load_bytes(ex.blob) for ex in source.split("test")[:3]]
    assert predictor.predict(encoded)[0] == rows
    if kind in ("classification", "anomaly"):
        assert [r["example_id"] for r in rows] == [0, 1, 2] and all("truth" not in r for r in rows)
        if kind == "anomaly":
            assert all(r["label"] in ("good", "anomalous") for r in rows)
    else:
        assert all(0 <= r["image_id"] < 3 and 1 <= r["category_id"] <= 3 for r in rows)
    drawn = predictor.overlay(
        images[0], [r for r in rows if r.get("image_id", r.get("example_id")) == 0], score_threshold=0.0
    )
    assert drawn.shape == images[0].shape and drawn.dtype == np.uint8
    if rows and kind != "anomaly":
        assert not np.array_equal(drawn, images[0])


def test_predict_folder_writes_results_and_overlays(runs, tmp_path):
    run_dir, source = runs["detection"]
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    for i, ex in enumerate(source.split("test")[:3]):
        (folder / ("sub" if i == 2 else "") / f"im{i}.png").write_bytes(source.load_bytes(ex.blob))
    (folder / "notes.txt").write_text("not an image")
    predictor = Predictor.from_run(run_dir, device="cpu")
    result = predict_folder(predictor, folder, tmp_path / "out", recursive=True, score_threshold=0.0)
    meta = json.loads(result["images"].read_text())
    assert [i["file_name"] for i in meta["images"]] == ["im0.png", "im1.png", "sub/im2.png"]
    assert [c["name"] for c in meta["categories"]] == source.class_names
    assert isinstance(json.loads(result["predictions"].read_text()), list)
    assert sorted(p.name for p in (tmp_path / "out" / "overlays").rglob("*.png")) == [
        "im0.png",
        "im1.png",
        "im2.png",
    ]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValidationError, match="no images"):
        predict_folder(predictor, tmp_path / "empty", tmp_path / "o2")
    with pytest.raises(ValidationError, match="not a folder"):
        predict_folder(predictor, tmp_path / "missing", tmp_path / "o3")


def test_predict_video(runs, tmp_path):
    import cv2

    run_dir, source = runs["classification"]
    frames = [np.full((24, 32, 3), v, np.uint8) for v in (0, 60, 120, 180, 240)]
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 5, (32, 24))
    for f in frames:
        writer.write(f)
    writer.release()
    predictor = Predictor.from_run(run_dir, device="cpu")
    result = predict_video(predictor, video, tmp_path / "out", every=2, chunk=2)
    rows = json.loads(result["predictions"].read_text())
    assert [r["example_id"] for r in rows] == [0, 2, 4]
    assert result["overlay_video"].is_file() and result["overlay_video"].stat().st_size > 0
    with pytest.raises(ValidationError, match="cannot open"):
        predict_video(predictor, tmp_path / "missing.mp4", tmp_path / "o")


@pytest.mark.parametrize("kind", sorted(RUNS))
def test_onnx_export_matches_torch(kind, runs, tmp_path):
    run_dir, source = runs[kind]
    example = None
    if kind in ("detection", "segmentation"):  # a real image, so the detector finds something to compare
        img = _images(source, 1)[0]
        example = torch.from_numpy(img.transpose(2, 0, 1).copy()).float() / 255
    result = export_onnx(run_dir, tmp_path / f"{kind}.onnx", example=example)
    assert result["onnx"].is_file() and result["dataset_type"] == kind
    meta = json.loads(result["meta"].read_text())
    assert meta["classes"][0]["name"] == source.class_names[0] and meta["image_size"] == result["image_size"]
    check = result["check"]
    assert set(check) == set(result["outputs"]) and all(c["max_abs_diff"] < 1e-3 for c in check.values())
    first = check[result["outputs"][0]]["shape"]
    assert first[0] > 0  # a batch, or detections: the comparison was not vacuous


def test_draw_overlay_classification_caption():
    img = np.zeros((40, 60, 3), np.uint8)
    rows = [{"example_id": 0, "label": "b", "probabilities": {"a": 0.1, "b": 0.9}}]
    out = draw_overlay(
        img, rows, "classification", [{"name": "a", "color": "#ff0000"}, {"name": "b", "color": "#00ff00"}]
    )
    assert out[:12].any() and not out[20:].any()  # caption band only
