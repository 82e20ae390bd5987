"""What the canvas sends the browser for an image: a pyramid of display copies, decoded once, prefetched.

A 4,000 x 3,000 photo fitted into a 1,200 x 700 canvas shows at scale ~0.23: sending the 4 MB JPEG makes
the browser decode 12 million pixels for 0.3 million shown (and ipycanvas decodes a ``Image`` widget again
on EVERY ``draw_image``). Level ``f`` of the pyramid is the image scaled by ``1 / f`` (``f`` = 1, 2, 4...);
the canvas shows the coarsest level that still has at least one level pixel per screen pixel
(:func:`level_for_scale`) and draws it over the SAME canvas rectangle as the full image would take, so the
view transform, the clicks and every stored coordinate stay in full-image pixels: level pixel ``j`` covers
image pixels ``[j * W / w_f, (j + 1) * W / w_f)`` exactly (PIL's resize maps the whole extent onto the
whole extent).

Levels are built lazily and kept per image content (the blob hash): a JPEG is decoded straight at the
reduced size (libjpeg's DCT scaling, ``Image.draft``), then resized to the exact level size; level 1 is the
original bytes when a browser can draw them. :class:`DisplayCache` keeps the last few images and builds the
next page's level in a background thread (pure PIL work: no widget, no comm, no store call there), so a
page turn finds it ready. Entries are keyed by content, so a prefetch for an image that is not shown next
is simply never used: it cannot show the wrong picture.
"""

from __future__ import annotations

import io
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from ..errors import ImageError

__all__ = ["Level", "level_for_scale", "level_size", "Pyramid", "DisplayCache", "browser_image"]

MIN_LEVEL_SIDE = 64  # no level is made smaller than this on its longer side
_BROWSER_FORMATS = {"PNG": "png", "JPEG": "jpeg", "GIF": "gif", "WEBP": "webp", "BMP": "bmp"}


def browser_image(data: bytes) -> tuple[bytes, str]:
    """Image bytes a browser shows as the store sees them: the original when it can, else a PNG.

    Re-encoded: formats browsers do not draw (TIFF...) and JPEGs with an EXIF rotation (browsers would
    rotate them; the stored width, height and coordinates are of the unrotated pixels).
    """
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        fmt = _BROWSER_FORMATS.get(im.format or "")
        rotated = im.format in ("JPEG", "MPO") and im.getexif().get(0x0112, 1) != 1
        if im.format == "MPO":
            fmt = "jpeg"
        if fmt is not None and not rotated:
            return data, fmt
        buf = io.BytesIO()
        im.convert("RGBA" if im.mode in ("RGBA", "LA", "P") else "RGB").save(buf, format="PNG")
        return buf.getvalue(), "png"


def max_factor(width: int, height: int) -> int:
    """The coarsest level factor for an image: its longer side stays at least ``MIN_LEVEL_SIDE``."""
    f = 1
    while max(width, height) / (2 * f) >= MIN_LEVEL_SIDE:
        f *= 2
    return f


def level_for_scale(scale: float, width: int, height: int) -> int:
    """The level factor to show an image at view ``scale`` (canvas px per image px).

    The largest power of two ``f <= 1 / scale``: at least one level pixel per screen pixel, so the
    display copy is never blurrier than the screen; zoomed in (``scale >= 1``) that is the image itself.
    """
    if scale <= 0 or not math.isfinite(scale):
        raise ValueError(f"view scale must be a positive number, got {scale}")
    f = 1
    top = max_factor(width, height)
    while f * 2 <= top and f * 2 * scale <= 1.0 + 1e-9:
        f *= 2
    return f


def level_size(width: int, height: int, factor: int) -> tuple[int, int]:
    """Pixel size of level ``factor`` of a ``width`` x ``height`` image."""
    return (max(1, round(width / factor)), max(1, round(height / factor)))


@dataclass(frozen=True)
class Level:
    factor: int
    data: bytes  # encoded, for a W.Image
    format: str  # png / jpeg / ...
    width: int  # level pixels
    height: int


class Pyramid:
    """The display levels of one image, built on first use (thread-safe: one builder per level)."""

    def __init__(self, data: bytes, width: int, height: int, *, quality: int = 90) -> None:
        self.data, self.width, self.height, self.quality = data, int(width), int(height), quality
        self._levels: dict[int, Level] = {}
        self._lock = threading.Lock()
        self.decodes = 0  # how many times the image was decoded (tests: once per level at most)

    def has(self, factor: int) -> bool:
        return factor in self._levels

    def level(self, factor: int) -> Level:
        with self._lock:
            hit = self._levels.get(factor)
            if hit is None:
                hit = self._levels[factor] = self._build(factor)
            return hit

    def _build(self, factor: int) -> Level:
        from PIL import Image

        if factor < 1 or factor & (factor - 1):
            raise ValueError(f"level factor must be a power of two, got {factor}")
        if factor == 1:
            data, fmt = browser_image(self.data)
            return Level(1, data, fmt, self.width, self.height)
        size = level_size(self.width, self.height, factor)
        try:
            with Image.open(io.BytesIO(self.data)) as im:
                if (im.width, im.height) != (self.width, self.height):
                    raise ImageError(
                        f"the image is {im.width} x {im.height} pixels, its record says "
                        f"{self.width} x {self.height}"
                    )
                im.draft("RGB", size)  # JPEG: decode at 1/2, 1/4, 1/8 directly (never below size)
                self.decodes += 1
                alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
                small = im.convert("RGBA" if alpha else "RGB")
                if small.size != size:
                    small = small.resize(
                        size,
                        Image.Resampling.BOX if small.width >= size[0] * 2 else Image.Resampling.BILINEAR,
                    )
        except (OSError, SyntaxError, ValueError) as e:
            raise ImageError(f"cannot show the image: not a readable image ({e})") from None
        buf = io.BytesIO()
        if alpha:
            small.save(buf, format="PNG")
            fmt = "png"
        else:
            small.save(buf, format="JPEG", quality=self.quality)
            fmt = "jpeg"
        return Level(factor, buf.getvalue(), fmt, size[0], size[1])


class DisplayCache:
    """Pyramids of the last ``keep`` images by content hash, and a one-thread prefetcher."""

    def __init__(self, keep: int = 4) -> None:
        self.keep = keep
        self._pyramids: OrderedDict[str, Pyramid] = OrderedDict()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self.pending: Future | None = None
        self.prefetched: list[tuple[str, int]] = []  # (blob, factor) the background thread built

    def pyramid(self, blob: str, load: Callable[[], bytes], width: int, height: int) -> Pyramid:
        """The pyramid of image ``blob`` (``load`` gives its bytes on a miss)."""
        with self._lock:
            p = self._pyramids.get(blob)
            if p is not None:
                self._pyramids.move_to_end(blob)
                return p
        p = Pyramid(load(), width, height)
        with self._lock:
            p = self._pyramids.setdefault(blob, p)
            self._pyramids.move_to_end(blob)
            while len(self._pyramids) > self.keep:
                self._pyramids.popitem(last=False)
        return p

    def cached(self, blob: str) -> bool:
        with self._lock:
            return blob in self._pyramids

    def prefetch(self, blob: str, load: Callable[[], bytes], width: int, height: int, factor: int) -> Future:
        """Build level ``factor`` of image ``blob`` in the background (``load`` runs here, now)."""
        p = self.pyramid(blob, load, width, height)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="wb-display-prefetch")

        def build() -> None:
            if not p.has(factor):
                p.level(factor)
                self.prefetched.append((blob, factor))

        self.pending = self._pool.submit(build)
        return self.pending

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
