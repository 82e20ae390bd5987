"""Reading images safely: size, format and a full decode check, with decompression-bomb limits."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..errors import ImageError

__all__ = ["ImageInfo", "probe_image", "decode_rgb", "MAX_PIXELS", "MAX_BYTES", "IMAGE_SUFFIXES"]

MAX_PIXELS = 64_000_000  # ~8000 x 8000; larger declared sizes are refused as bombs
MAX_BYTES = 256 * 1024 * 1024
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_FORMATS = {"JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP", "MPO"}


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str


def probe_image(data: bytes, *, file: str | None = None, record: object | None = None,
                verify: bool = True) -> ImageInfo:
    """Check that ``data`` is a whole, decodable image of sane size; return its size and format.

    Refuses non-images, truncated or corrupt files and decompression bombs (declared size over
    ``MAX_PIXELS``) *before* decoding pixels.
    """
    from PIL import Image, UnidentifiedImageError

    if len(data) == 0:
        raise ImageError("file is empty, not an image", file=file, record=record)
    if len(data) > MAX_BYTES:
        raise ImageError(f"file is {len(data)} bytes, over the {MAX_BYTES} byte limit", file=file, record=record)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
                fmt = im.format or "?"
                if fmt not in _FORMATS:
                    raise ImageError(f"unsupported image format {fmt}", file=file, record=record)
                if w <= 0 or h <= 0:
                    raise ImageError(f"image has an empty size {w}x{h}", file=file, record=record)
                if w * h > MAX_PIXELS:
                    raise ImageError(
                        f"image declares {w}x{h} pixels, over the {MAX_PIXELS} pixel limit (decompression bomb?)",
                        file=file, record=record,
                    )
                if verify:
                    im.load()  # full decode: catches truncation and corrupt data
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"not a readable image ({type(e).__name__}: {e})", file=file, record=record) from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"corrupt or truncated image ({e})", file=file, record=record) from None
    return ImageInfo(int(w), int(h), fmt)


def decode_rgb(data: bytes | Path | str):  # -> numpy.ndarray (H, W, 3) uint8
    """Decode image bytes (or a path) to an RGB uint8 array."""
    import numpy as np
    from PIL import Image

    if isinstance(data, (str, Path)):
        data = Path(data).read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))
