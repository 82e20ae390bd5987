"""Anomaly region masks as files: a mask PNG read into an RLE region (checked against its image's size), and a
region written back as a PNG. Shared by the anomaly-folder and MVTec AD formats (:mod:`.anomaly_folder`,
:mod:`.mvtec`), which both read and write ``ground_truth`` masks."""

from __future__ import annotations

import io
from pathlib import Path

from ...errors import ImportFormatError, ValidationError
from ..records import Annotation, Example
from ._common import probe_path
from .rle import rasterize, rle_from_array, rle_to_array

__all__ = ["mask_region", "mask_png"]


def mask_region(mask_path: Path, size: tuple[int, int], *, rec: str) -> dict | None:
    import numpy as np
    from PIL import Image

    info = probe_path(mask_path, record=rec, verify=True)
    if (info.width, info.height) != size:
        raise ImportFormatError(
            f"mask is {info.width}x{info.height} but the image is {size[0]}x{size[1]}",
            file=str(mask_path),
            record=rec,
            field="mask",
        )
    with Image.open(io.BytesIO(mask_path.read_bytes())) as im:
        arr = np.asarray(im.convert("L"))
    if not arr.any():
        return None
    return rle_from_array(arr)


def mask_png(ann: Annotation, ex: Example) -> bytes | None:
    import numpy as np
    from PIL import Image

    if ann.mask is not None:
        arr = rle_to_array(ann.mask)
    elif ann.polygons is not None or ann.bbox is not None:
        arr = rasterize(ann.polygons, ann.bbox, ex.height, ex.width)
    else:
        return None
    if arr.shape != (ex.height, ex.width):
        raise ValidationError(
            f"region is {arr.shape[1]}x{arr.shape[0]}, image is {ex.width}x{ex.height}",
            record=f"example {ex.id}",
            field="mask",
        )
    buf = io.BytesIO()
    Image.fromarray((arr != 0).astype(np.uint8) * 255, mode="L").save(buf, format="PNG")
    return buf.getvalue()
