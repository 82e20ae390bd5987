"""Reading images safely: size, format and a full decode check, with decompression-bomb limits."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import ImageError, ImportFormatError
from .phash import THUMB

__all__ = ["ImageInfo", "ImageCheck", "probe_image", "probe_file", "check_image", "decode_for_check", "read_image_file", "decode_rgb",
           "MAX_PIXELS", "MAX_BYTES", "IMAGE_SUFFIXES", "THUMB"]

MAX_PIXELS = 64_000_000  # ~8000 x 8000; larger declared sizes are refused as bombs
MAX_BYTES = 256 * 1024 * 1024
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_FORMATS = {"JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP", "MPO"}


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str


@dataclass(frozen=True)
class ImageCheck(ImageInfo):
    """What one full decode of an image tells an import: size and format, the sha256 of its bytes (the
    blob key), how many bytes, and its 64-bit perceptual hash as 16 hex digits."""

    sha256: str
    nbytes: int
    phash: str




@contextmanager
def _opened(data: bytes | BinaryIO, file: str | None, record: object | None, size: int | None = None
            ) -> Iterator[Any]:
    """The image in ``data`` (bytes, or an open file of ``size`` bytes) opened (header read, pixels not
    decoded) after the size checks; every Pillow failure inside the block becomes an ImageError naming
    ``file`` / ``record``."""
    from PIL import Image, UnidentifiedImageError

    n = len(data) if isinstance(data, bytes) else int(size or 0)
    if n == 0:
        raise ImageError("file is empty, not an image", file=file, record=record)
    if n > MAX_BYTES:
        raise ImageError(f"file is {n} bytes, over the {MAX_BYTES} byte limit", file=file, record=record)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as im:
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
                yield im
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"not a readable image ({type(e).__name__}: {e})", file=file, record=record) from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"corrupt or truncated image ({e})", file=file, record=record) from None


def probe_image(data: bytes, *, file: str | None = None, record: object | None = None,
                verify: bool = True) -> ImageInfo:
    """Check that ``data`` is a whole, decodable image of sane size; return its size and format.

    Refuses non-images, truncated or corrupt files and decompression bombs (declared size over
    ``MAX_PIXELS``) *before* decoding pixels.
    """
    with _opened(data, file, record) as im:
        w, h = im.size
        fmt = im.format
        if verify:
            im.load()  # full decode: catches truncation and corrupt data
    return ImageInfo(int(w), int(h), fmt)


def check_image(data: bytes, *, file: str | None = None, record: object | None = None) -> ImageCheck:
    """Everything an import needs to know about an image, from one decode: what :func:`probe_image`
    checks (the pixels are decoded, so truncated and corrupt files are refused), the sha256 of the bytes
    and the perceptual hash :func:`~workbench.data.duplicates.phash` gives (the same value: the same
    grey thumbnail, made from this decode).

    A JPEG is decoded at the reduced scale the hash needs (libjpeg's DCT scaling): every byte of the
    compressed stream is still read and entropy-decoded, so truncation and corrupt data are caught as a
    full-scale decode catches them, in a fraction of the time.
    """
    from .phash import hash_thumbnails

    w, h, fmt, digest, thumb = decode_for_check(data, file=file, record=record)
    value = int(hash_thumbnails(thumb[None])[0])
    return ImageCheck(w, h, fmt, digest, len(data), f"{value:016x}")


def decode_for_check(data: bytes, *, file: str | None = None, record: object | None = None
                     ) -> tuple[int, int, str, str, Any]:
    """The one decode :func:`check_image` makes: (width, height, format, sha256, the 32x32 grey thumbnail its
    perceptual hash is made from). Checking many images, hash the thumbnails together (one call for the
    stack instead of one per image: ``image_pool``)."""
    import numpy as np
    from PIL import Image

    digest = hashlib.sha256(data).hexdigest()
    with _opened(data, file, record) as im:
        w, h = im.size
        fmt = im.format
        grey = thumbnail_source(im)  # the decode
        thumb = np.asarray(grey.resize((THUMB, THUMB), Image.Resampling.BOX), dtype=np.float64)
    return int(w), int(h), str(fmt), digest, thumb


def thumbnail_source(im: Any) -> Any:
    """The grey image the perceptual hash's thumbnail is resized from: a JPEG decoded at the smallest
    DCT scale that still gives at least twice the thumbnail's side (the decode happens here)."""
    from PIL import Image

    if im.format == "JPEG":
        im.draft("L", (2 * THUMB, 2 * THUMB))  # decode at a reduced scale: much faster
    grey: Image.Image = im.convert("L")
    return grey


def _regular_size(path: Path | str, name: str, record: object | None) -> int:
    """The size of the regular file at ``path``; refused when it is not one (a FIFO would block the read
    forever, a device never end) or over ``MAX_BYTES`` (before reading: a sparse 1 TB "image" costs
    nothing to make)."""
    st = Path(path).stat()
    if not stat.S_ISREG(st.st_mode):
        raise ImportFormatError("is not a regular file (a pipe, device or socket?)", file=name, record=record)
    if st.st_size > MAX_BYTES:
        raise ImageError(f"file is {st.st_size} bytes, over the {MAX_BYTES} byte limit", file=name, record=record)
    return st.st_size


_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def read_image_file(path: Path | str, *, file: str | None = None, record: object | None = None) -> bytes:
    """The bytes of the image file at ``path`` (only a regular file of at most ``MAX_BYTES``).

    Opened without blocking (a FIFO opened for reading would wait for a writer), then the open file is
    what is checked (``fstat``: no window between the check and the read) and read: an import reads
    every image through here, and plain os calls cost a small image's read a third of what pathlib's did."""
    name = file or str(path)
    try:
        fd = os.open(path, _READ_FLAGS)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ImportFormatError("is not a regular file (a pipe, device or socket?)", file=name, record=record)
            if st.st_size > MAX_BYTES:
                raise ImageError(f"file is {st.st_size} bytes, over the {MAX_BYTES} byte limit", file=name,
                                 record=record)
            parts = []
            left = st.st_size + 1  # one byte more: a file that grew since is read whole, up to the limit
            while left > 0:
                part = os.read(fd, min(left, 1 << 24))
                if not part:
                    break
                parts.append(part)
                left -= len(part)
            data = parts[0] if len(parts) == 1 else b"".join(parts)
            if len(data) > MAX_BYTES:
                raise ImageError(f"file is over the {MAX_BYTES} byte limit", file=name, record=record)
            return data
        finally:
            os.close(fd)
    except OSError as e:
        raise ImportFormatError(f"cannot read image ({e.strerror})", file=name, record=record) from None


def probe_file(path: Path | str, *, file: str | None = None, record: object | None = None) -> ImageInfo:
    """:func:`probe_image` without ``verify`` for the file at ``path``, reading only its header."""
    name = file or str(path)
    try:
        size = _regular_size(path, name, record)
        with open(path, "rb") as fh, _opened(fh, name, record, size) as im:
            w, h = im.size
            return ImageInfo(int(w), int(h), im.format)
    except OSError as e:
        raise ImportFormatError(f"cannot read image ({e.strerror})", file=name, record=record) from None


def decode_rgb(data: bytes | Path | str):  # -> numpy.ndarray (H, W, 3) uint8
    """Decode image bytes (or a path) to an RGB uint8 array."""
    import numpy as np
    from PIL import Image

    if isinstance(data, (str, Path)):
        data = Path(data).read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))
