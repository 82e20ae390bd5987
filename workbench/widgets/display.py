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
from functools import partial
from typing import Any

from ..errors import ImageError

__all__ = [
    "Level",
    "level_for_scale",
    "level_size",
    "region_for_view",
    "covers",
    "REGION_MIN_PIXELS",
    "Pyramid",
    "DisplayCache",
    "browser_image",
]

MIN_LEVEL_SIDE = 64  # no level is made smaller than this on its longer side
REGION_MIN_PIXELS = 4_000_000  # at full size, an image past this many pixels is sent as the part in view
REGION_MARGIN = 0.5  # a region is the part in view grown by this share of its size on each side

Box = tuple[float, float, float, float]  # x, y, w, h in image pixels
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


def region_for_view(visible: Box, width: int, height: int, margin: float = REGION_MARGIN) -> Box:
    """The part of a ``width`` x ``height`` image to send at full size for the ``visible`` part: grown by
    ``margin`` of its size on each side (room to pan), in whole pixels, inside the image, never empty."""
    x, y, w, h = visible
    x0 = max(0, math.floor(x - margin * w))
    y0 = max(0, math.floor(y - margin * h))
    x1 = min(width, math.ceil(x + w + margin * w))
    y1 = min(height, math.ceil(y + h + margin * h))
    x0, y0 = min(x0, width - 1), min(y0, height - 1)
    return (float(x0), float(y0), float(max(x1, x0 + 1) - x0), float(max(y1, y0 + 1) - y0))


def covers(outer: Box, inner: Box) -> bool:
    """Whether rectangle ``outer`` contains ``inner`` (both x, y, w, h)."""
    return (
        outer[0] <= inner[0]
        and outer[1] <= inner[1]
        and inner[0] + inner[2] <= outer[0] + outer[2]
        and inner[1] + inner[3] <= outer[1] + outer[3]
    )


@dataclass(frozen=True)
class Level:
    factor: int  # image px per level px
    data: bytes  # encoded, for a W.Image
    format: str  # png / jpeg / ...
    width: int  # level pixels
    height: int
    box: Box  # the image rectangle it shows (the whole image, or a full-size region)


class Pyramid:
    """The display levels of one image, built on first use (thread-safe: one builder per level, and a
    level being built in the background never holds up another one)."""

    def __init__(self, data: bytes, width: int, height: int, *, quality: int = 90) -> None:
        self.data, self.width, self.height, self.quality = data, int(width), int(height), quality
        self._levels: dict[int, Level] = {}
        self._full: Any = None  # the decoded PIL image, for regions (kept while the pyramid is)
        self._locks: dict[object, threading.Lock] = {}
        self._meta = threading.Lock()
        self.decodes = 0  # how many times the image was decoded (tests: once per level at most)

    def _lock(self, what: object) -> threading.Lock:
        with self._meta:
            return self._locks.setdefault(what, threading.Lock())

    def has(self, factor: int) -> bool:
        return factor in self._levels

    def level(self, factor: int) -> Level:
        with self._lock(factor):
            hit = self._levels.get(factor)
            if hit is None:
                hit = self._levels[factor] = self._build(factor)
            return hit

    def decoded(self) -> Any:
        """The whole image decoded (once; regions are cut from it)."""
        with self._lock("full"):
            if self._full is None:
                self._full = self._decode(None)
            return self._full

    def release_full(self) -> None:
        """Drop the decoded whole image (regions decode it again when asked)."""
        with self._lock("full"):
            self._full = None

    def region(self, box: Box) -> Level:
        """The full-size pixels of ``box`` (whole pixels inside the image, as :func:`region_for_view`
        gives): the image is decoded once for all regions, each region is encoded on its own."""
        x0, y0 = int(box[0]), int(box[1])
        x1, y1 = x0 + int(box[2]), y0 + int(box[3])
        if not (0 <= x0 < x1 <= self.width and 0 <= y0 < y1 <= self.height) or box != (
            float(x0),
            float(y0),
            float(x1 - x0),
            float(y1 - y0),
        ):
            raise ValueError(
                f"region {box} is not whole pixels inside the {self.width} x {self.height} image"
            )
        data, fmt = self._encode(self.decoded().crop((x0, y0, x1, y1)))
        return Level(1, data, fmt, x1 - x0, y1 - y0, box)

    def _decode(self, size: tuple[int, int] | None):
        """The image as RGB(A), decoded straight at ``size`` or above when the format can (JPEG)."""
        from PIL import Image

        try:
            with Image.open(io.BytesIO(self.data)) as im:
                if (im.width, im.height) != (self.width, self.height):
                    raise ImageError(
                        f"the image is {im.width} x {im.height} pixels, its record says "
                        f"{self.width} x {self.height}"
                    )
                if size is not None:
                    im.draft("RGB", size)  # JPEG: decode at 1/2, 1/4, 1/8 directly (never below size)
                self.decodes += 1
                alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
                out = im.convert("RGBA" if alpha else "RGB")
                if size is not None and out.size != size:
                    out = out.resize(
                        size,
                        Image.Resampling.BOX if out.width >= size[0] * 2 else Image.Resampling.BILINEAR,
                    )
                return out
        except (OSError, SyntaxError, ValueError) as e:
            raise ImageError(f"cannot show the image: not a readable image ({e})") from None

    def _encode(self, im) -> tuple[bytes, str]:
        buf = io.BytesIO()
        if im.mode == "RGBA":
            im.save(buf, format="PNG")
            return buf.getvalue(), "png"
        im.save(buf, format="JPEG", quality=self.quality)
        return buf.getvalue(), "jpeg"

    def _build(self, factor: int) -> Level:
        if factor < 1 or factor & (factor - 1):
            raise ValueError(f"level factor must be a power of two, got {factor}")
        whole = (0.0, 0.0, float(self.width), float(self.height))
        if factor == 1:
            data, fmt = browser_image(self.data)
            return Level(1, data, fmt, self.width, self.height, whole)
        size = level_size(self.width, self.height, factor)
        data, fmt = self._encode(self._decode(size))
        return Level(factor, data, fmt, size[0], size[1], whole)


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

    def release_full(self, blob: str) -> None:
        """Forget the decoded whole image of ``blob`` (its encoded levels stay)."""
        with self._lock:
            p = self._pyramids.get(blob)
        if p is not None:
            p.release_full()

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

    def warm(self, pyramid: Pyramid, factor: int, region: bool) -> Future:
        """Get the next sharper step ready in the background: level ``factor``, or (``region``) the whole
        image decoded, which full-size regions are cut from. Queued after any page prefetch."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="wb-display-prefetch")
        return self._pool.submit(pyramid.decoded if region else partial(pyramid.level, factor))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
