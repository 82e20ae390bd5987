"""A static picture of an example with its annotations in class colours (PIL only).

Used wherever a live canvas cannot be: the image/png next to the widget view (what papermill and nbconvert
keep), reports, and the error-mining grid. Boxes are outlined, polygons and masks are filled see-through
and outlined, proposals are dashed, a classification / anomaly class is a banner in the top-left corner.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..data.records import Annotation, ClassDef
from ..errors import ImageError
from .masks import rle_decode

__all__ = ["render_example", "render_png", "UNKNOWN_COLOR"]

UNKNOWN_COLOR = "#888888"
_FILL_ALPHA = 70  # of 255, for polygons and masks
_DASH = (8.0, 5.0)


def _rgb(color: str) -> tuple[int, int, int]:
    return (int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16))


def _colors(classes: Sequence[ClassDef] | Mapping[str, str]) -> dict[str, str]:
    if isinstance(classes, Mapping):
        return dict(classes)
    return {c.name: c.color for c in classes}


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _dashed(draw, points: Sequence[tuple[float, float]], fill, width: int) -> None:
    """An open polyline drawn dashed (PIL has no dash pattern)."""
    on, off = _DASH[0] * max(1, width / 2), _DASH[1] * max(1, width / 2)
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        length = math.hypot(x1 - x0, y1 - y0)
        if length == 0:
            continue
        t = 0.0
        while t < length:
            t1 = min(t + on, length)
            draw.line(
                [
                    (x0 + (x1 - x0) * t / length, y0 + (y1 - y0) * t / length),
                    (x0 + (x1 - x0) * t1 / length, y0 + (y1 - y0) * t1 / length),
                ],
                fill=fill,
                width=width,
            )
            t = t1 + off


def _outline(draw, points: list[tuple[float, float]], fill, width: int, dashed: bool) -> None:
    closed = [*points, points[0]]
    if dashed:
        _dashed(draw, closed, fill, width)
    else:
        draw.line(closed, fill=fill, width=width, joint="curve")


def render_example(
    image: bytes | np.ndarray,
    annotations: Sequence[Annotation],
    classes: Sequence[ClassDef] | Mapping[str, str],
    *,
    max_size: int | None = None,
    show_proposals: bool = True,
    tags: bool = True,
    min_size: int = 128,
):
    """The image with ``annotations`` drawn in their class colours, as a PIL RGB image.

    ``image`` is encoded bytes (what the store holds) or an ``(H, W, 3)`` uint8 array. With ``max_size``
    the picture is scaled down so its longer side is at most that many pixels; an image whose longer side
    is under ``min_size`` is scaled up by a whole factor (nearest neighbour). Coordinates follow.
    """
    from PIL import Image, ImageDraw

    if isinstance(image, (bytes, bytearray, memoryview)):
        try:
            with Image.open(io.BytesIO(bytes(image))) as im:
                base = im.convert("RGB")
        except (OSError, SyntaxError, ValueError) as e:
            raise ImageError(f"cannot draw the example: not a readable image ({e})") from None
    else:
        base = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")
    src_w, src_h = base.size
    s = 1.0
    if max_size is not None and max(src_w, src_h) > max_size:
        s = max_size / max(src_w, src_h)
        base = base.resize((max(1, round(src_w * s)), max(1, round(src_h * s))), Image.Resampling.BILINEAR)
    elif max(src_w, src_h) < min_size:  # tiny images (8x8 digits): whole pixels, big enough to see
        s = float(max(1, min_size // max(src_w, src_h)))
        base = base.resize((round(src_w * s), round(src_h * s)), Image.Resampling.NEAREST)
    colors = _colors(classes)
    anns = [a for a in annotations if show_proposals or not a.proposal]
    lw = max(2, round(max(base.size) / 300))
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    odraw = ImageDraw.Draw(overlay)
    for a in anns:  # see-through fills first, composited once
        rgb = _rgb(colors.get(a.label, UNKNOWN_COLOR))
        if a.mask is not None:
            m = rle_decode(a.mask)
            mimg = Image.fromarray((m * _FILL_ALPHA).astype(np.uint8), "L")
            if s != 1.0:
                mimg = mimg.resize(base.size, Image.Resampling.NEAREST)
            layer = Image.new("RGBA", base.size, (*rgb, 0))
            layer.putalpha(mimg)
            overlay = Image.alpha_composite(overlay, layer)
            odraw = ImageDraw.Draw(overlay)
        elif a.polygons is not None:
            for p in a.polygons:
                odraw.polygon(
                    [(x * s, y * s) for x, y in zip(p[0::2], p[1::2], strict=True)], fill=(*rgb, _FILL_ALPHA)
                )
    out = Image.alpha_composite(base.convert("RGBA"), overlay).convert("RGB")
    draw = ImageDraw.Draw(out)
    font = _font(max(11, round(max(base.size) / 45)))
    shapes = [a for a in anns if a.bbox is not None]
    for a in shapes:
        assert a.bbox is not None
        rgb = _rgb(colors.get(a.label, UNKNOWN_COLOR))
        if a.polygons is not None:
            for p in a.polygons:
                _outline(
                    draw, [(x * s, y * s) for x, y in zip(p[0::2], p[1::2], strict=True)], rgb, lw, a.proposal
                )
        elif a.mask is None:
            x, y, w, h = (v * s for v in a.bbox)
            x1, y1 = max(x, x + w - 1), max(y, y + h - 1)  # PIL rectangles include their far edge
            if a.proposal:
                _outline(draw, [(x, y), (x1, y), (x1, y1), (x, y1)], rgb, lw, True)
            else:
                draw.rectangle((x, y, x1, y1), outline=rgb, width=lw)
    if tags and len(shapes) <= 100:
        for a in shapes:
            assert a.bbox is not None
            color = colors.get(a.label, UNKNOWN_COLOR)
            text = a.label + ("?" if a.proposal else "")
            _banner(
                draw,
                text,
                a.bbox[0] * s,
                max(0.0, a.bbox[1] * s - getattr(font, "size", 11) - 4),
                color,
                font,
            )
    y = 2.0
    for a in anns:
        if a.kind in ("label", "anomaly"):
            color = colors.get(a.label, UNKNOWN_COLOR)
            text = (
                a.label
                if not a.proposal
                else f"{a.label}? {a.score:.2f}"
                if a.score is not None
                else f"{a.label}?"
            )
            y = _banner(draw, text, 2.0, y, color, font) + 2.0
    return out


def _banner(draw, text: str, x: float, y: float, color: str, font) -> float:
    """A class-coloured tag with ``text``; returns its bottom edge."""
    rgb = _rgb(color)
    left, top, right, bottom = draw.textbbox((x + 3, y + 2), text, font=font)
    draw.rectangle((x, y, right + 3, bottom + 2), fill=rgb)
    luminance = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    draw.text((x + 3, y + 2), text, fill=(0, 0, 0) if luminance > 150 else (255, 255, 255), font=font)
    return float(bottom + 2)


def render_png(
    image: bytes | np.ndarray,
    annotations: Sequence[Annotation],
    classes: Sequence[ClassDef] | Mapping[str, str],
    **kwargs,
) -> bytes:
    """:func:`render_example` encoded as PNG bytes."""
    buf = io.BytesIO()
    render_example(image, annotations, classes, **kwargs).save(buf, format="PNG")
    return buf.getvalue()
