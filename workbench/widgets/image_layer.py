"""The canvas' image layer: pyramid levels (``display.py``) drawn through two off-screen buffers.

ipycanvas decodes an ``Image`` widget again on every ``draw_image``; an ipycanvas ``Canvas`` that is
never displayed keeps its pixels in the browser's model instead. So each level is sent once, as an
``Image`` drawn into an off-screen buffer canvas (the browser decodes it there, once), and every zoom
or pan copies that buffer onto the image layer over the rectangle of the image it shows: the view
transform alone says where every pixel goes, so clicks land on the same image pixels whatever the level.

A zoom that needs another level paints the level on screen at once, moved to the new view (blurry or
cut for a moment), and sends the new one in a second message into the other buffer, which then becomes
the one shown. A big photo (over ``REGION_MIN_PIXELS``) at full size is sent as the part in view plus
room to pan (``region_for_view``); panning past it sends another part. The next page's level is built in
a background thread (``DisplayCache.prefetch``), and so is the next sharper step of the image shown.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as W
from ipycanvas import Canvas

from .canvas_state import CanvasState
from .display import REGION_MIN_PIXELS, DisplayCache, Level, covers, level_for_scale, region_for_view
from .geometry import ViewTransform

__all__ = ["ImageLayer"]

Box = tuple[float, float, float, float]


class ImageLayer:
    """Draws the current example's image on ``layer`` for ``state``'s view."""

    def __init__(
        self,
        layer: Canvas,
        state: CanvasState,
        *,
        on_ready: Callable[[], None],
        on_new_image: Callable[[], None],
    ) -> None:
        self.layer, self.state = layer, state
        self.display = DisplayCache()
        self.buffers = (Canvas(width=1, height=1), Canvas(width=1, height=1))
        self.front = 0  # the buffer shown; the other one receives the next level
        self.buffers[0].on_client_ready(on_ready)
        self.shown: tuple[str, int, Box] | None = None  # (blob, level factor, image rectangle) in front
        self.images: list[W.Image] = []  # the last level images sent (older ones are closed)
        self._prefetched_for: int | None = None
        self._on_new_image = on_new_image

    def close(self) -> None:
        """Stop the background thread; close the buffers and the images sent."""
        self.display.close()
        for w in [*self.images, *self.buffers]:
            w.close()
        self.images.clear()

    def _fill_buffer(
        self, buf: Canvas, level: Level, key: tuple[str, int, tuple[float, float, float, float]]
    ) -> None:
        """Put ``level`` in off-screen buffer ``buf``: the browser decodes it there once, and every zoom
        or pan then copies canvas to canvas (ipycanvas decodes an Image widget again on every
        ``draw_image``)."""
        if self.shown is None or key[0] != self.shown[0]:  # another image: its masks go too
            if self.shown is not None:  # and the decoded whole of the one before (36 MB for 12 MP)
                self.display.release_full(self.shown[0])
            self._on_new_image()
        if not self.images or key != self.shown:
            self.images.append(W.Image(value=level.data, format=level.format))
            while len(self.images) > 4:  # a message still queued in the browser may name the last ones
                self.images.pop(0).close()
        if (buf.width, buf.height) != (level.width, level.height):
            buf.width, buf.height = level.width, level.height
        else:
            buf.clear()
        buf.draw_image(self.images[-1], 0, 0)
        self.shown = key

    def _paint(self, buf: Canvas, factor: int, box: tuple[float, float, float, float]) -> None:
        """The image layer: buffer ``buf`` (level ``factor``, showing image rectangle ``box``) over that
        rectangle's place on the canvas: the view transform alone says where every pixel goes."""
        c = self.layer
        c.clear()
        # zoomed in past 2 screen px per level px: show the pixels
        c.image_smoothing_enabled = self.state.view.scale * factor < 2.0
        c.draw_image(buf, *self.state.view.to_canvas_box(box))

    def prefetch_next(self) -> None:
        """Build the next example's display level in the background (its record and bytes are read here,
        on the kernel's thread; only the decoding runs in the other thread)."""
        s = self.state
        if s.position is None or s.position + 1 >= len(s.ids) or self._prefetched_for == s.position:
            return
        self._prefetched_for = s.position
        nxt = s.sink.example(s.ids[s.position + 1])
        view = ViewTransform.fit(nxt.width, nxt.height, s.settings.canvas_width, s.settings.canvas_height)
        factor = level_for_scale(view.scale, nxt.width, nxt.height)
        self.display.prefetch(nxt.blob, lambda: s.sink.load_bytes(nxt.blob), nxt.width, nxt.height, factor)

    def draw(self, force: bool = False) -> Callable[[], None] | None:
        """Draw the image layer (inside the caller's ``hold_canvas``); returns what is still to send
        in a second message (the sharper level, after the level on screen was moved at once) or None.
        ``force``: send the level again (a browser view that just connected has empty buffers)."""
        s = self.state
        ex = s.example
        if ex is None:
            c = self.layer
            c.clear()
            c.fill_style = "#444444"
            c.font = "16px sans-serif"
            c.fill_text("no examples to annotate", 20, 40)
            return None
        pyr = self.display.pyramid(ex.blob, s.image_bytes, ex.width, ex.height)
        factor = level_for_scale(s.view.scale, ex.width, ex.height)
        shown = self.shown if self.shown is not None and self.shown[0] == ex.blob else None
        front = self.buffers[self.front]
        build: Callable[[], Level]
        if (
            factor == 1 and ex.width * ex.height > REGION_MIN_PIXELS
        ):  # a big photo at full size: the part in view
            cw, ch = s.settings.canvas_width, s.settings.canvas_height
            x0, y0 = s.view.to_image(0.0, 0.0)
            x1, y1 = s.view.to_image(float(cw), float(ch))
            x0, y0 = max(x0, 0.0), max(y0, 0.0)
            visible = (x0, y0, max(min(x1, ex.width) - x0, 1.0), max(min(y1, ex.height) - y0, 1.0))
            if shown is not None and shown[1] == 1 and covers(shown[2], visible) and not force:
                self._paint(front, 1, shown[2])
                return None
            box = region_for_view(visible, ex.width, ex.height)

            def build() -> Level:
                return pyr.region(box)
        else:
            box = (0.0, 0.0, float(ex.width), float(ex.height))
            if shown is not None and shown[1:] == (factor, box) and not force:
                self._paint(front, factor, box)
                return None

            def build() -> Level:
                return pyr.level(factor)

        key = (ex.blob, factor, box)
        if factor > 1:  # zooming in goes on to the next sharper step: have it ready
            finer = factor // 2
            self.display.warm(pyr, finer, finer == 1 and ex.width * ex.height > REGION_MIN_PIXELS)
        if shown is not None and not force:
            self._paint(front, shown[1], shown[2])  # at once: what is shown now, moved to the new view

            def sharper() -> None:
                back = 1 - self.front
                self._fill_buffer(self.buffers[back], build(), key)
                self.front = back
                self._paint(self.buffers[back], factor, box)

            return sharper
        self._fill_buffer(front, build(), key)  # another image, or a view that just connected
        self._paint(front, factor, box)
        return None
