"""Builders shared by the tests."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from workbench.data import Annotation, ImportBatch, ImportItem
from workbench.data.records import ClassDef


def png_bytes(w: int = 32, h: int = 24, seed: int = 0, mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).convert(mode).save(buf, format="PNG")
    return buf.getvalue()


def box_batch(n: int, *, seed: int = 0, classes=("cat", "dog"), size=(40, 30)) -> ImportBatch:
    items = []
    for i in range(n):
        anns = [Annotation("box", classes[i % len(classes)], bbox=(1.0 + i % 5, 2.0, 10.0, 8.0))]
        items.append(ImportItem(file_name=f"img_{seed}_{i:05d}.png", data=png_bytes(*size, seed=seed * 100000 + i),
                                annotations=anns, record=i))
    return ImportBatch(items=items, classes=[ClassDef(c, "#ff0000") for c in classes], type="detection")
