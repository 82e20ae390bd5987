"""ONNX export of a run's best model, checked against torch with onnxruntime.

The graph takes float images in ``[0, 1]`` at the run's size (normalization is inside the model):

==============  =============================  ===============================================
type            input                          outputs
==============  =============================  ===============================================
classification  ``images`` N x 3 x S x S       ``logits`` N x C
anomaly         ``images`` N x 3 x S x S       ``scores`` N, ``error_map`` N x S x S (patchcore:
                                               its anomaly map)
detection       ``image`` 3 x S x S (one)      ``boxes`` K x 4 (xyxy, input pixels), ``labels``
                                               K (1-based), ``scores`` K
segmentation    ``image`` 3 x S x S (one)      the detection outputs and ``masks`` K x 1 x S x S
==============  =============================  ===============================================

Uses torch's TorchScript-based exporter (``dynamo=False``), which handles torchvision's detectors.
A ``<name>.json`` next to the model records classes, colours, image size and the input / output names.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.task_types import TaskType
from ..errors import ValidationError
from .runs import write_json

__all__ = ["export_onnx", "check_onnx", "AnomalyScorer", "OPSET"]

OPSET = 17


class AnomalyScorer(nn.Module):
    """Autoencoder -> (per-image anomaly score, per-pixel error map), as the trainer scores them."""

    def __init__(self, model: nn.Module, image_size: int) -> None:
        super().__init__()
        self.model = model
        # fixed for the exported size (the graph is traced); equal to autoencoder.anomaly_scores' k
        self.k = max(1, int(round(image_size * image_size * float(getattr(model, "top_k_fraction", 0.02)))))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if hasattr(self.model, "observe"):  # a feature-memory model (patchcore) gives (scores, maps) itself
            return self.model(x)
        err = ((self.model(x) - x) ** 2).mean(dim=1)
        return err.flatten(1).topk(self.k, dim=1).values.mean(dim=1), err


def _spec(dataset_type: str) -> tuple[list[str], list[str], bool]:
    """(input names, output names, batched input)."""
    specs: dict[str, tuple[list[str], list[str], bool]] = {
        TaskType.CLASSIFICATION: (["images"], ["logits"], True),
        TaskType.ANOMALY: (["images"], ["scores", "error_map"], True),
        TaskType.DETECTION: (["image"], ["boxes", "labels", "scores"], False),
        TaskType.SEGMENTATION: (["image"], ["boxes", "labels", "scores", "masks"], False),
    }
    return specs[dataset_type]


def _torch_outputs(module: nn.Module, x: torch.Tensor, batched: bool) -> list[np.ndarray]:
    with torch.no_grad():
        out = module(x) if batched else module([x])[0]
    if isinstance(out, dict):
        keys = ["boxes", "labels", "scores"] + (["masks"] if "masks" in out else [])
        return [out[k].numpy() for k in keys]
    if isinstance(out, tuple):
        return [o.numpy() for o in out]
    return [out.numpy()]


def check_onnx(
    path: str | Path,
    module: nn.Module,
    example: torch.Tensor,
    batched: bool,
    *,
    atol: float = 1e-4,
    rtol: float = 1e-3,
) -> dict[str, dict[str, Any]]:
    """Run the ONNX file with onnxruntime and torch on ``example``; raise ``ValidationError`` when they
    differ. Returns ``{output: {"shape": [...], "max_abs_diff": float}}``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    got = session.run(None, {name: example.numpy()})
    want = _torch_outputs(module, example, batched)
    out_names = [o.name for o in session.get_outputs()]
    report: dict[str, dict[str, Any]] = {}
    for n, g, w in zip(out_names, got, want, strict=True):
        if g.shape != w.shape:
            raise ValidationError(
                f"ONNX output {n} has shape {g.shape}, torch gives {w.shape}", file=str(path)
            )
        diff = float(np.abs(g.astype(np.float64) - w.astype(np.float64)).max()) if g.size else 0.0
        report[n] = {"shape": list(g.shape), "max_abs_diff": diff}
        if not np.allclose(g, w, atol=atol, rtol=rtol):
            raise ValidationError(f"ONNX output {n} differs from torch by up to {diff:.3g}", file=str(path))
    return report


def export_onnx(
    run: str | Path, out: str | Path | None = None, *, check: bool = True, example: torch.Tensor | None = None
) -> dict[str, Any]:
    """Export the best model of ``run`` (a run folder or a checkpoint) to ONNX; check it with onnxruntime.

    ``out`` defaults to ``<run>/model.onnx``. ``example`` is the check input (default: a seeded random
    image batch at the run's size; detectors are best checked on a real image, so pass one). Returns the
    paths, the input / output names and, under ``check``, each output's shape and largest difference.
    """
    from .checkpoint import load_model

    model, state = load_model(run, map_location="cpu")
    resolved = state.get("resolved") or {}
    dataset_type = resolved.get("dataset_type") or model.workbench_config["dataset_type"]
    size = int(model.workbench_config["image_size"])
    run_path = Path(run)
    target = (
        Path(out) if out is not None else (run_path if run_path.is_dir() else run_path.parent) / "model.onnx"
    )
    inputs, outputs, batched = _spec(dataset_type)
    module: nn.Module = AnomalyScorer(model, size).eval() if dataset_type == TaskType.ANOMALY else model.eval()
    if example is None:
        g = torch.Generator().manual_seed(0)
        example = torch.rand((2, 3, size, size) if batched else (3, size, size), generator=g)
    args = (example,) if batched else ([example],)
    dynamic = (
        {n: {0: "batch"} for n in inputs + outputs} if batched else {n: {0: "detections"} for n in outputs}
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on torchvision's shape arithmetic
        torch.onnx.export(
            module,
            args,
            str(target),
            dynamo=False,
            opset_version=OPSET,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic,
        )
    meta = {
        "model": model.workbench_config,
        "dataset_type": dataset_type,
        "image_size": size,
        "classes": resolved.get("classes"),
        "inputs": inputs,
        "outputs": outputs,
        "opset": OPSET,
        "input_range": [0.0, 1.0],
        "batched": batched,
        "threshold": (state.get("record") or {}).get("threshold"),
    }
    result: dict[str, Any] = {"onnx": target, "meta": target.with_suffix(".json"), **meta}
    if check:
        result["check"] = meta["check"] = check_onnx(target, module, example, batched)
    write_json(target.with_suffix(".json"), json.loads(json.dumps(meta, default=str)))
    return result
