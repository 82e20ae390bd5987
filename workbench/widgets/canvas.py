"""The annotation canvas widget: a toolbar and a 3-layer ipycanvas over :class:`CanvasState`.

The view is thin: browser events go to the state (in canvas pixels; the state converts to image
pixels), then the layers the state reports as changed are redrawn inside one ``hold_canvas`` (a single
message per event). Every layer is redrawn when a browser view connects (``on_client_ready``); without
that the canvas is blank in Voila, whose page connects after the notebook ran.

Stable CSS classes for browser tests: ``wb-annotation-canvas`` (the whole widget), ``wb-canvas`` (the
``<canvas>`` element: ipycanvas draws a MultiCanvas as ONE element that takes the events, so the class
goes on the MultiCanvas), ``wb-toolbar``, ``wb-tool-<name>``, ``wb-class`` and ``wb-class-<name>`` (class
name lower-cased, anything but letters, digits, ``-`` and ``_`` turned into ``-``), ``wb-new-class``,
``wb-add-class``, ``wb-prev``, ``wb-next``, ``wb-skip``, ``wb-undo``, ``wb-redo``, ``wb-accept``,
``wb-reject``, ``wb-accept-all``, ``wb-delete``, ``wb-zoom-reset``, ``wb-progress``, ``wb-title``,
``wb-message``, ``wb-done``, ``wb-mark-new``, ``wb-next-new``, ``wb-goto``, ``wb-class-picker``,
``wb-help``, ``wb-shortcuts`` (the shortcut sheet, from the same key table the handler uses).

Keyboard focus: after any toolbar click the focus goes back to the canvas (``focus.py``), so keys keep
working; the shortcut sheet (``?``) lists the real key map of this canvas.

Displayed outside a live kernel (papermill, nbconvert), the output also carries an ``image/png`` of the
example with its annotations (``render.py``), so the saved notebook shows a picture, never nothing.
"""

from __future__ import annotations

import base64
import io
import os
import re
import sqlite3
from collections.abc import Callable
from functools import partial
from typing import Any

import ipywidgets as W
import numpy as np
from ipycanvas import Canvas, MultiCanvas, hold_canvas

from ..data.task_types import type_info
from ..errors import ValidationError, WorkbenchError
from .canvas_state import LAYERS, CanvasSettings, CanvasState
from .display import browser_image
from .focus import FocusKeeper
from .image_layer import ImageLayer
from .masks import mask_rgba
from .render import render_png
from .review import review_overlay
from .scene import DASH, TAG_MODES, Scene, annotation_scene, interaction_scene, mask_alpha
from .sink import AnnotationSink
from .toolbar import CanvasToolbar, css_name
from .viewport import ViewportProbe, fit_canvas_size

__all__ = ["AnnotationCanvas", "css_name", "browser_image"]

_STORE_ERRORS = (WorkbenchError, sqlite3.Error, OSError)  # a refused or failed save: said, never raised


CANVAS_SIZE_ENV = "WORKBENCH_CANVAS_SIZE"


def _size_from_env() -> tuple[int | None, int | None]:
    """A fixed canvas size from ``WORKBENCH_CANVAS_SIZE`` (``WIDTHxHEIGHT`` in css px; for a kiosk
    screen, or tests that pin the layout), or (None, None) when unset: fit the screen."""
    raw = os.environ.get(CANVAS_SIZE_ENV, "").strip()
    if not raw:
        return None, None
    m = re.fullmatch(r"(\d{2,5})\s*[xX]\s*(\d{2,5})", raw)
    if m is None:
        raise ValidationError(
            f"must be WIDTHxHEIGHT in pixels (like 800x600), got {raw!r}", field=CANVAS_SIZE_ENV
        )
    return int(m.group(1)), int(m.group(2))


class AnnotationCanvas(CanvasToolbar, W.VBox):
    """Annotate the examples of a dataset (or of one directory / split) in place; every edit is saved."""

    def __init__(
        self,
        dataset_like: AnnotationSink,
        *,
        directory: str | None = None,
        split: str | None = None,
        user: str = "annotator",
        width: int | None = None,
        height: int | None = None,
        settings: CanvasSettings | None = None,
    ) -> None:
        from dataclasses import replace

        # no size given: the size in WORKBENCH_CANVAS_SIZE ("800x600") if set, else the browser reports the
        # room there is and the canvas takes it (viewport.py)
        if width is None and height is None:
            width, height = _size_from_env()
        self.fit_screen = width is None and height is None
        settings = settings or CanvasSettings()
        settings = replace(
            settings,
            canvas_width=int(width if width is not None else settings.canvas_width),
            canvas_height=int(height if height is not None else settings.canvas_height),
        )
        self.state = CanvasState(dataset_like, directory=directory, split=split, user=user, settings=settings)
        self.multicanvas = MultiCanvas(
            3,
            width=settings.canvas_width,
            height=settings.canvas_height,
            layout=W.Layout(width=f"{settings.canvas_width}px", height=f"{settings.canvas_height}px"),
        )
        self.multicanvas.add_class("wb-canvas")
        self.layers: dict[str, Canvas] = dict(zip(LAYERS[:3], self.multicanvas._canvases, strict=True))
        mc = self.multicanvas
        mc.on_mouse_down(self._guard(self.state.pointer_down))
        mc.on_mouse_move(self._guard(self.state.pointer_move))
        mc.on_mouse_up(self._guard(self.state.pointer_up))
        mc.on_mouse_out(self._guard(self.state.pointer_out))
        mc.on_mouse_wheel(self._guard(lambda _dx, dy: self.state.wheel(dy)))  # ipycanvas sends deltaX, deltaY
        mc.on_key_down(
            self._guard(lambda key, shift, ctrl, meta: self.state.key_down(key, shift, ctrl, meta))
        )
        for name, layer in self.layers.items():  # a new browser view starts blank: replay that layer
            layer.on_client_ready(partial(self._on_client_ready, name))
        self.image_layer = ImageLayer(
            self.layers["image"],
            self.state,
            on_ready=lambda: self.redraw({"image"}, refill=True),
            on_new_image=self._forget_masks,
        )
        self._mask_cache: dict[int, tuple[Any, W.Image, tuple[float, float, float, float]]] = {}
        self.probe = ViewportProbe()  # the room on screen, and the wheel: page scroll unless focused / Ctrl
        self.probe.observe(lambda _change: self._fit_to_room(), names="room")
        self.focus = FocusKeeper(on_space_up=lambda: self.state.set_space_pan(False))
        self._build_toolbar()
        super().__init__([self.probe, self.toolbar, self.shortcuts, self.multicanvas, self.message, self.focus])
        self.add_class("wb-annotation-canvas")
        self.redraw()

    # ------------------------------------------------------------------ toolbar
    def _build_view_controls(self) -> W.HBox:
        """Fill opacity and class tags: how annotations look, never what they are."""
        s = self.state
        self.opacity_slider = W.FloatSlider(
            value=s.fill_opacity,
            min=0.0,
            max=1.0,
            step=0.05,
            description="Fill",
            readout_format=".2f",
            continuous_update=True,
            layout=W.Layout(width="190px"),
            style={"description_width": "28px"},
        )
        self.opacity_slider.add_class("wb-fill-opacity")
        self.opacity_slider.observe(
            lambda ch: self._act(partial(s.set_fill_opacity, ch["new"])), names="value"
        )
        self.tags_toggle = W.ToggleButtons(
            options=[(m.capitalize(), m) for m in TAG_MODES],
            value=s.tags,
            tooltips=[
                "tags shrink as you zoom out; none on boxes too small to carry one",
                "every shape's class tag, full size",
                "no class tags",
            ],
            style={"button_width": "56px"},
        )
        self.tags_toggle.add_class("wb-tags")
        self.tags_toggle.observe(lambda ch: self._act(partial(s.set_tags, ch["new"])), names="value")
        shown: list[W.Widget] = []
        if type_info(s.type).shapes:  # class tags and fills belong to shapes
            shown += [W.Label("Tags"), self.tags_toggle]
        if type_info(s.type).masks or type_info(s.type).region_labels:  # a fill is for polygons and masks
            shown.append(self.opacity_slider)
        return W.HBox(shown)

    def _fit_to_room(self) -> None:
        """Resize the canvas to what the browser reported (only when no size was given)."""
        room = self.probe.reported()
        if not self.fit_screen or room is None:
            return
        w, h = fit_canvas_size(room)
        self._act(partial(self.resize, w, h))

    def resize(self, width: int, height: int) -> None:
        """Give the canvas a new size in css px (= canvas px); every layer is drawn again."""
        s = self.state
        s.resize(width, height)
        mc = self.multicanvas
        w, h = s.settings.canvas_width, s.settings.canvas_height
        if (mc.width, mc.height) != (w, h):
            mc.width, mc.height = w, h
            mc.layout.width, mc.layout.height = f"{w}px", f"{h}px"
        s.mark(*LAYERS)

    # ------------------------------------------------------------------ events
    def _act(self, action: Callable[[], object], clear: bool = False) -> None:
        """Run a state action; a refused edit becomes a message, and the view is redrawn either way.
        ``clear``: a button press is a new action, so the last message goes."""
        if clear:
            self.state._clear_message()
        try:
            action()
        except _STORE_ERRORS as e:
            self.state.say(str(e) if isinstance(e, WorkbenchError) else f"not saved: {type(e).__name__}: {e}")
        finally:
            self.redraw()

    def _guard(self, handler: Callable[..., object]) -> Callable[..., None]:
        def run(*args: Any) -> None:
            self._act(lambda: handler(*args))

        return run

    def _on_client_ready(self, layer: str) -> None:
        self.redraw({layer} | ({"toolbar"} if layer == "interaction" else set()), refill=layer == "image")

    # ------------------------------------------------------------------ drawing
    def redraw(self, layers: set[str] | None = None, *, refill: bool = False) -> None:
        """Redraw the layers the state marked as changed (or ``layers``), in one message; ``refill``: send
        the image to the buffer again (a browser view that just connected has an empty one).

        A zoom that needs another pyramid level of the same image is two messages: the level shown now,
        stretched to the new view, with the other layers (the browser paints it at once), then the new
        level, built and sent while the first is on screen."""
        dirty = self.state.take_dirty() if layers is None else set(layers)
        sharper: Callable[[], None] | None = None
        with hold_canvas():
            if "image" in dirty:
                sharper = self.image_layer.draw(force=refill)
            if "annotations" in dirty:
                self._draw_scene(self.layers["annotations"], review_overlay(self.state, annotation_scene(self.state)))
            if "interaction" in dirty:
                self._draw_scene(self.layers["interaction"], interaction_scene(self.state))
        if sharper is not None:
            with hold_canvas():
                sharper()
        if "toolbar" in dirty:
            self._update_toolbar()
        for req in self.state.take_requests():
            if req == "picker":
                self.focus.focus(".wb-class-picker")
            elif req == "goto":
                self.focus.focus(".wb-goto")
            elif req == "scroll":
                self.focus.scroll_into_view()
        if "image" in dirty:
            self.image_layer.prefetch_next()

    def _forget_masks(self) -> None:
        for _ann, w, _r in self._mask_cache.values():
            w.close()
        self._mask_cache.clear()

    def _mask_image(self, ann, color: str) -> tuple[W.Image, tuple[float, float, float, float]]:
        hit = self._mask_cache.get(ann.id)
        if hit is not None and hit[0] is ann:
            return hit[1], hit[2]
        from PIL import Image

        rgba, (ox, oy) = mask_rgba(ann.mask, color, alpha=255)  # drawn at the fill opacity
        buf = io.BytesIO()
        Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
        if hit is not None:
            hit[1].close()
        widget = W.Image(value=buf.getvalue(), format="png")
        rect = (float(ox), float(oy), float(rgba.shape[1]), float(rgba.shape[0]))
        self._mask_cache[ann.id] = (ann, widget, rect)
        return widget, rect

    def _draw_scene(self, c: Canvas, scene: Scene) -> None:
        c.clear()
        style: dict[str, Any] = {}

        def put(name: str, value: Any) -> None:  # set a context attribute only when it changes
            if style.get(name) != value:
                style[name] = value
                if name == "dash":
                    c.set_line_dash(list(value))
                else:
                    setattr(c, name, value)

        def stroke(st) -> None:
            put("stroke_style", st.color)
            put("line_width", st.width)
            put("dash", DASH if st.dashed else ())

        v = self.state.view
        put("image_smoothing_enabled", False)
        if scene.masks:
            put("global_alpha", mask_alpha(self.state.fill_opacity))
        for m in scene.masks:
            widget, rect = self._mask_image(m.ann, m.color)
            c.draw_image(widget, *v.to_canvas_box(rect))
        put("global_alpha", 1.0)
        for p in scene.polys:
            if p.style.fill_alpha > 0:
                put("global_alpha", p.style.fill_alpha)
                put("fill_style", p.style.color)
                c.fill_polygons(p.polygons)
                put("global_alpha", 1.0)
            stroke(p.style)
            c.stroke_polygons(p.polygons)
        for r in scene.rects:
            if r.filled:
                put("fill_style", r.style.color)
                c.fill_rects(r.x, r.y, r.w, r.h)
            else:
                stroke(r.style)
                c.stroke_rects(r.x, r.y, r.w, r.h)
        for ln in scene.lines:
            stroke(ln.style)
            put("line_cap", "round" if ln.round else "butt")
            put("line_join", "round" if ln.round else "miter")
            put("global_alpha", ln.alpha)
            c.stroke_lines(ln.points)
            put("global_alpha", 1.0)
        for ci in scene.circles:
            if ci.filled:
                put("fill_style", ci.style.color)
                c.fill_circles(ci.x, ci.y, ci.r)
            else:
                stroke(ci.style)
                c.stroke_circles(ci.x, ci.y, ci.r)
        if not scene.texts:
            return
        put("text_baseline", "top")
        tags: dict[str, list] = {}  # tag backgrounds: one batched call per colour
        for t in scene.texts:
            if t.background is not None:
                k = t.size / 12.0  # the box follows the font size (7 px per character at 12 px)
                tags.setdefault(t.background, []).append(
                    (t.x, t.y, k * (7.0 * len(t.text) + 6.0), t.size + 4.0)
                )
        for color, rects in tags.items():
            put("fill_style", color)
            c.fill_rects(*(np.array(col) for col in zip(*rects, strict=True)))
        for t in sorted(scene.texts, key=lambda t: (t.size, t.color)):
            put("font", f"{t.size:g}px sans-serif")
            put("fill_style", t.color)
            c.fill_text(t.text, t.x + 3.0 * t.size / 12.0, t.y + 2.0)

    def close(self) -> None:
        """Close the widget, its off-screen buffer and images, and stop the prefetch thread."""
        self.image_layer.close()
        self._forget_masks()
        super().close()

    # ------------------------------------------------------------------ static fallback
    def snapshot_png(self, max_size: int | None = None) -> bytes:
        """The current example with its annotations as PNG (what headless outputs keep)."""
        s = self.state
        size = max_size or max(s.settings.canvas_width, s.settings.canvas_height)
        if s.example is None:
            from PIL import Image, ImageDraw

            im = Image.new("RGB", (s.settings.canvas_width, 60), (240, 240, 240))
            ImageDraw.Draw(im).text((10, 20), "no examples to annotate", fill=(60, 60, 60))
            buf = io.BytesIO()
            im.save(buf, format="PNG")
            return buf.getvalue()
        return render_png(s.image_bytes(), s.annotations, s.classes, max_size=size)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        data = super()._repr_mimebundle_(**kwargs)
        if data is None:  # closed widget
            return None
        data["image/png"] = base64.b64encode(self.snapshot_png()).decode("ascii")
        return data
