"""Run a trained model on new images, a folder or a video; write COCO-format results and overlays.

``Predictor.from_run(run_dir_or_checkpoint)`` rebuilds the best model with the run's classes, image size
and evaluation pipeline (all stored in the checkpoint). ``predict(images)`` returns one row per
detection (COCO results: ``image_id``, ``category_id`` = class index + 1, ``bbox`` in the image's pixels,
``score``, and ``segmentation`` as compressed RLE for instance masks) or per image (classification:
``label`` and ``probabilities``; anomaly: ``score`` and ``label`` at the run's threshold).
``predict_folder`` / ``predict_video`` also write ``predictions.json``, ``images.json`` (the COCO
``images`` and ``categories``) and overlay images drawn in the class colours.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.images import IMAGE_SUFFIXES, probe_image
from ..data.records import Example
from ..data.task_types import TaskType, type_info
from ..errors import ValidationError
from ..runs.records import prediction_example_id, prediction_id_key
from .runs import write_json

__all__ = ["Predictor", "predict_folder", "predict_video", "draw_overlay", "VIDEO_SUFFIXES"]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


@dataclass
class Predictor:
    """A trained model ready for new images (see the module doc)."""

    model: Any
    dataset_type: str
    classes: list[dict[str, str]]
    image_size: int
    augment: dict[str, Any]
    device: str = "cpu"
    threshold: float | None = None  # anomaly decision threshold chosen on val
    batch_size: int = 8
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_run(cls, path: str | Path, *, device: str = "auto", batch_size: int = 8) -> Predictor:
        """From a run folder (its best checkpoint, else the last) or a checkpoint file."""
        from .checkpoint import load_model
        from .config import resolve_device
        from .errors import CheckpointError

        dev = resolve_device(device)
        model, state = load_model(path, map_location=dev)
        resolved = state.get("resolved")
        if not resolved or "classes" not in resolved:
            raise CheckpointError(
                "checkpoint lacks the run's classes and pipeline (made by an older version?)", file=str(path)
            )
        record = state.get("record") or {}
        return cls(
            model.to(dev),
            resolved["dataset_type"],
            list(resolved["classes"]),
            int(resolved["image_size"]),
            resolved["augment"],
            dev,
            record.get("threshold"),
            batch_size,
        )

    @property
    def class_names(self) -> list[str]:
        return [c["name"] for c in self.classes]

    def predict(
        self,
        images: Sequence[np.ndarray | bytes | str | Path],
        names: Sequence[str] | None = None,
        *,
        first_id: int = 0,
    ) -> tuple[list[dict], list[Example]]:
        """Predictions for images given as RGB arrays, encoded bytes or paths; image ids count from
        ``first_id``. Returns ``(rows, examples)``: the result rows and the image records they refer to."""
        from ..augment import Augmenter
        from .data import VisionDataset, make_loader
        from .tasks import get_task

        store: dict[str, Any] = {}
        examples = []
        for k, item in enumerate(images):
            key = f"img{first_id + k}"
            name = (
                names[k] if names is not None else (Path(item).name if isinstance(item, (str, Path)) else key)
            )
            data: Any = Path(item).read_bytes() if isinstance(item, (str, Path)) else item
            if isinstance(data, np.ndarray):
                h, w = data.shape[:2]
            else:
                info = probe_image(data, file=name)
                h, w = info.height, info.width
            store[key] = data
            examples.append(Example(first_id + k, "", key, name, int(w), int(h), "test", "new"))
        if not examples:
            return [], []
        ds = VisionDataset(
            examples,
            dataset_type=self.dataset_type,
            class_names=self.class_names,
            load_bytes=store.__getitem__,
            image_size=self.image_size,
            cache_bytes=0,
            augmenter=Augmenter(self.augment, self.dataset_type, for_training=False),
            with_truth=False,
        )
        loader = make_loader(ds, batch_size=self.batch_size, shuffle=False)
        task = get_task(self.dataset_type)
        preds = task.predict(self.model, loader, self.device)
        rows = task.results(preds, examples, self.class_names, {"threshold": self.threshold})
        for row in rows:  # no ground truth here
            row.pop("truth", None)
        return rows, examples

    def overlay(
        self, image: np.ndarray, rows: Sequence[dict[str, Any]], *, score_threshold: float = 0.5
    ) -> np.ndarray:
        return draw_overlay(image, rows, self.dataset_type, self.classes, score_threshold=score_threshold)


def _hex_rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def draw_overlay(
    image: np.ndarray,
    rows: Sequence[dict[str, Any]],
    dataset_type: str,
    classes: Sequence[dict[str, str]],
    *,
    score_threshold: float = 0.5,
    alpha: float = 0.45,
) -> np.ndarray:
    """The image with its predictions drawn in class colours: boxes and labels, masks blended in,
    a caption for classification and anomaly. ``rows`` are one image's prediction rows."""
    from PIL import Image, ImageDraw

    img = np.asarray(image, dtype=np.uint8).copy()
    if type_info(dataset_type).region_labels and rows and rows[0].get("map"):  # the anomaly map as a heat map
        from .anomaly_maps import map_from_row, overlay_map

        heat = map_from_row(rows[0], img.shape[0], img.shape[1])
        if heat is not None:
            img = overlay_map(img, heat)
    colors = {i + 1: _hex_rgb(c["color"]) for i, c in enumerate(classes)}
    names = {i + 1: c["name"] for i, c in enumerate(classes)}
    shown = [r for r in rows if "bbox" in r and r.get("score", 1.0) >= score_threshold]
    if type_info(dataset_type).masks:
        from pycocotools import mask as mask_utils

        for r in shown:
            seg = r.get("segmentation")
            if seg:
                m = mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode()}).astype(bool)
                img[m] = (img[m] * (1 - alpha) + np.array(colors[r["category_id"]]) * alpha).astype(np.uint8)
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    for r in shown:
        x, y, w, h = r["bbox"]
        color = colors.get(r["category_id"], (255, 255, 255))
        draw.rectangle([x, y, x + w, y + h], outline=color, width=2)
        draw.text((x + 2, max(0, y - 11)), f"{names.get(r['category_id'], '?')} {r['score']:.2f}", fill=color)
    if type_info(dataset_type).image_level and rows:
        r = rows[0]
        label = r.get("label")
        caption = (
            f"{label} {r['probabilities'][label]:.2f}"
            if dataset_type == TaskType.CLASSIFICATION
            else f"{label or 'score'} {r['score']:.4g}"
        )
        index = next((i + 1 for i, c in enumerate(classes) if c["name"] == label), None)
        color = colors.get(index, (255, 255, 255)) if index else (255, 255, 255)
        draw.rectangle([0, 0, pil.width, 12], fill=(0, 0, 0))
        draw.text((2, 0), caption, fill=color)
        if dataset_type == TaskType.ANOMALY and label == "anomalous":
            draw.rectangle([0, 0, pil.width - 1, pil.height - 1], outline=color, width=3)
            if r.get("region"):  # where the map reaches the threshold
                x, y, w, h = r["region"]["bbox"]
                draw.rectangle([x, y, x + w - 1, y + h - 1], outline=color, width=2)
    return np.asarray(pil)


def _write_outputs(
    predictor: Predictor, rows: list[dict], examples: list[Example], out_dir: Path
) -> dict[str, Any]:
    write_json(out_dir / "predictions.json", rows)
    write_json(
        out_dir / "images.json",
        {
            "images": [
                {"id": e.id, "file_name": e.file_name, "width": e.width, "height": e.height} for e in examples
            ],
            "categories": [
                {"id": i + 1, "name": c["name"], "color": c["color"]} for i, c in enumerate(predictor.classes)
            ],
            "dataset_type": predictor.dataset_type,
        },
    )
    return {
        "predictions": out_dir / "predictions.json",
        "images": out_dir / "images.json",
        "count": len(examples),
    }


def _by_image(rows: Iterable[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        rid = prediction_example_id(r)
        out.setdefault(-1 if rid is None else rid, []).append(r)
    return out


def predict_folder(
    predictor: Predictor,
    folder: str | Path,
    out_dir: str | Path,
    *,
    recursive: bool = False,
    overlays: bool = True,
    score_threshold: float = 0.5,
) -> dict[str, Any]:
    """Predict every image in ``folder``; write results (and ``overlays/<name>.png``) to ``out_dir``."""
    from ..data.images import decode_rgb

    src = Path(folder)
    if not src.is_dir():
        raise ValidationError("not a folder", file=str(src))
    pattern = "**/*" if recursive else "*"
    files = sorted(p for p in src.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValidationError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in the folder", file=str(src))
    out = Path(out_dir)
    names = [str(p.relative_to(src)) for p in files]
    rows, examples = predictor.predict(files, names)
    result = _write_outputs(predictor, rows, examples, out)
    if overlays:
        grouped = _by_image(rows)
        for ex, path in zip(examples, files, strict=True):
            target = out / "overlays" / Path(ex.file_name).with_suffix(".png")
            target.parent.mkdir(parents=True, exist_ok=True)
            _save_png(
                predictor.overlay(decode_rgb(path), grouped.get(ex.id, []), score_threshold=score_threshold),
                target,
            )
        result["overlays"] = out / "overlays"
    return result


def _save_png(arr: np.ndarray, path: Path) -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    path.write_bytes(buf.getvalue())


def predict_video(
    predictor: Predictor,
    video: str | Path,
    out_dir: str | Path,
    *,
    every: int = 1,
    max_frames: int | None = None,
    overlay_video: bool = True,
    chunk: int = 32,
    score_threshold: float = 0.5,
) -> dict[str, Any]:
    """Predict every ``every``-th frame of a video (image id = frame index); write results and, when asked,
    ``overlay.mp4`` with the predictions drawn on the frames."""
    import cv2

    path = Path(video)
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValidationError(
            "cannot open the video (missing, or a format OpenCV cannot read)", file=str(path)
        )
    if every < 1:
        raise ValidationError(f"every must be at least 1, got {every}", field="every")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    writer = None
    all_rows: list[dict] = []
    all_examples: list[Example] = []
    frames: list[np.ndarray] = []
    ids: list[int] = []

    def flush() -> None:
        nonlocal writer
        if not frames:
            return
        rows, examples = predictor.predict(frames, [f"frame_{i:06d}" for i in ids], first_id=ids[0])
        # ids are consecutive only when every == 1: renumber to the real frame indices
        remap = {ex.id: fid for ex, fid in zip(examples, ids, strict=True)}
        for r in rows:
            key = prediction_id_key(r)
            r[key] = remap[r[key]]
        examples = [
            Example(fid, "", "", ex.file_name, ex.width, ex.height, "test", "new")
            for ex, fid in zip(examples, ids, strict=True)
        ]
        all_rows.extend(rows)
        all_examples.extend(examples)
        if overlay_video:
            grouped = _by_image(rows)
            for frame, fid in zip(frames, ids, strict=True):
                drawn = predictor.overlay(frame, grouped.get(fid, []), score_threshold=score_threshold)
                if writer is None:
                    h, w = drawn.shape[:2]
                    writer = cv2.VideoWriter(
                        str(out / "overlay.mp4"), cv2.VideoWriter.fourcc(*"mp4v"), fps / every, (w, h)
                    )
                writer.write(cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
        frames.clear()
        ids.clear()

    try:
        index = 0
        while max_frames is None or len(all_examples) + len(frames) < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            if index % every == 0:
                frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                ids.append(index)
                if len(frames) >= chunk:
                    flush()
            index += 1
        flush()
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    if not all_examples:
        raise ValidationError("the video has no frames to read", file=str(path))
    result = _write_outputs(predictor, all_rows, all_examples, out)
    if overlay_video:
        result["overlay_video"] = out / "overlay.mp4"
    return result
