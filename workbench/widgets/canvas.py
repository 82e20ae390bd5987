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
import re
import sqlite3
from collections.abc import Callable
from functools import partial
from typing import Any

import ipywidgets as W
import numpy as np
from ipycanvas import Canvas, MultiCanvas, hold_canvas

from ..errors import WorkbenchError
from .canvas_state import LAYERS, CanvasSettings, CanvasState
from .focus import FocusKeeper
from .keys import shortcut_sheet_html
from .masks import mask_rgba
from .render import render_png
from .review import review_overlay
from .scene import DASH, Scene, annotation_scene, image_rect, interaction_scene
from .sink import AnnotationSink

__all__ = ["AnnotationCanvas", "css_name", "browser_image"]

_STORE_ERRORS = (WorkbenchError, sqlite3.Error, OSError)  # a refused or failed save: said, never raised
_TOOL_LABELS = {
    "box": "Box",
    "select": "Select",
    "polygon": "Polygon",
    "brush": "Brush",
    "eraser": "Eraser",
    "pan": "Pan",
}
_BROWSER_FORMATS = {"PNG": "png", "JPEG": "jpeg", "GIF": "gif", "WEBP": "webp", "BMP": "bmp"}


def css_name(name: str) -> str:
    """A class name as it appears in CSS classes (``wb-class-<css_name>``)."""
    return re.sub(r"[^a-z0-9_-]", "-", name.lower())


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


class AnnotationCanvas(W.VBox):
    """Annotate the examples of a dataset (or of one directory / split) in place; every edit is saved."""

    def __init__(
        self,
        dataset_like: AnnotationSink,
        *,
        directory: str | None = None,
        split: str | None = None,
        user: str = "annotator",
        width: int = 800,
        height: int = 600,
        settings: CanvasSettings | None = None,
    ) -> None:
        from dataclasses import replace

        settings = replace(settings or CanvasSettings(), canvas_width=int(width), canvas_height=int(height))
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
        self._image_widget: W.Image | None = None
        self._image_for: int | None = None
        self._mask_cache: dict[int, tuple[Any, W.Image, tuple[float, float, float, float]]] = {}
        self.focus = FocusKeeper(on_space_up=lambda: self.state.set_space_pan(False))
        self._build_toolbar()
        super().__init__([self.toolbar, self.shortcuts, self.multicanvas, self.message, self.focus])
        self.add_class("wb-annotation-canvas")
        self.redraw()

    # ------------------------------------------------------------------ toolbar
    def _button(
        self, description: str, css: str, action: Callable[[], object], tooltip: str = "", width: str = "auto"
    ) -> W.Button:
        b = W.Button(description=description, tooltip=tooltip or description, layout=W.Layout(width=width))
        b.add_class(css)
        b.on_click(lambda _b: self._act(action, clear=True))
        return b

    def _keys_of(self, action: str) -> str:
        keys = [k for bd in self.state.keymap.bindings if bd.action == action for k in bd.keys]
        return f" ({', '.join(keys)})" if keys else ""

    def _build_toolbar(self) -> None:
        s = self.state
        k = self._keys_of
        self.tool_buttons = {
            t: self._button(_TOOL_LABELS[t], f"wb-tool-{t}", partial(s.set_tool, t), f"{t}{k('tool:' + t)}")
            for t in s.tools
        }
        self.prev_button = self._button("◀ Prev", "wb-prev", s.previous, f"previous example{k('previous')}")
        self.next_button = self._button("Next ▶", "wb-next", s.next, f"next example, status unchanged{k('next')}")
        self.next_new_button = self._button("Next new", "wb-next-new", s.next_new, f"next unlabelled{k('next_new')}")
        self.done_button = self._button(
            "Done ✓", "wb-done", s.done, f"mark done and go on (no shapes: a confirmed negative){k('done')}"
        )
        self.mark_new_button = self._button("Mark new", "wb-mark-new", s.mark_new, f"set back to new{k('mark_new')}")
        self.undo_button = self._button("Undo", "wb-undo", partial(s.do, "undo"), "undo (Ctrl+Z)")
        self.redo_button = self._button("Redo", "wb-redo", partial(s.do, "redo"), "redo (Ctrl+Shift+Z)")
        self.zoom_button = self._button("Fit", "wb-zoom-reset", s.reset_view, f"fit the image{k('reset_view')}")
        self.accept_button = self._button(
            "Accept", "wb-accept", partial(s.do, "accept"), f"accept proposal{k('accept')}"
        )
        self.reject_button = self._button(
            "Reject", "wb-reject", partial(s.do, "reject"), f"reject proposal{k('reject')}"
        )
        self.accept_all_button = self._button("Accept all", "wb-accept-all", s.accept_all, f"accept all{k('accept_all')}")
        self.delete_button = self._button(
            "Delete", "wb-delete", partial(s.do, "delete"), f"delete selection{k('delete')}"
        )
        self.help_button = self._button("?", "wb-help", s.toggle_help, "keyboard shortcuts (?)")
        self.goto = W.BoundedIntText(
            value=1, min=1, max=max(1, len(s.ids)), description="#", continuous_update=False,
            layout=W.Layout(width="120px"), style={"description_width": "initial"}, tooltip="go to image number",
        )
        self.goto.add_class("wb-goto")
        self.goto.observe(lambda ch: self._act(lambda: self._goto_number(ch["new"])), names="value")
        self.class_picker = W.Combobox(
            placeholder="class… (c)",
            options=s.class_names,
            ensure_option=True,
            continuous_update=False,  # picked on Enter: typing "c12" never stops at "c1"
            layout=W.Layout(width="140px"),
        )
        self.class_picker.add_class("wb-class-picker")
        self.class_picker.observe(lambda ch: self._act(lambda: self._pick_class(ch["new"])), names="value")
        self.shortcuts = W.HTML(layout=W.Layout(display="none"))
        self.shortcuts.add_class("wb-shortcuts")
        self.progress_label = W.Label(layout=W.Layout(margin="0 0 0 12px"))
        self.progress_label.add_class("wb-progress")
        self.title = W.Label(layout=W.Layout(margin="0 0 0 12px"))
        self.title.add_class("wb-title")
        self.new_class = W.Text(placeholder="new class", layout=W.Layout(width="120px"))
        self.new_class.add_class("wb-new-class")
        self.add_class_button = self._button("Add class", "wb-add-class", self._add_class)
        self.class_box = W.HBox()
        self.message = W.Label()
        self.message.add_class("wb-message")
        nav = W.HBox(
            [
                *self.tool_buttons.values(),
                self.zoom_button,
                self.undo_button,
                self.redo_button,
                self.prev_button,
                self.next_button,
                self.next_new_button,
                self.goto,
                self.done_button,
                self.mark_new_button,
                self.help_button,
                self.progress_label,
                self.title,
            ],
            layout=W.Layout(flex_flow="row wrap"),  # never squeezed: buttons wrap to a second line
        )
        edit = [self.class_box, self.class_picker]
        if s.type != "anomaly":
            edit += [self.new_class, self.add_class_button]
        edit += [self.delete_button, self.accept_button, self.reject_button]
        if s.type in ("detection", "segmentation"):
            edit.append(self.accept_all_button)
        self.toolbar = W.VBox([nav, W.HBox(edit, layout=W.Layout(flex_flow="row wrap"))])
        self.toolbar.add_class("wb-toolbar")
        self._build_class_buttons()

    def _build_class_buttons(self) -> None:
        buttons = []
        for c in self.state.classes:
            k = self.state.keymap.key_of_class(c.name)
            key = f" ({k})" if k is not None else " (c: class picker)"
            b = self._button(
                c.name,
                f"wb-class-{css_name(c.name)}",
                partial(self.state.set_class, c.name),
                f"{c.name}{key}",
            )
            b.add_class("wb-class")
            b.style.button_color = c.color
            r, g, bl = (int(c.color[k : k + 2], 16) for k in (1, 3, 5))
            b.style.text_color = "black" if 0.299 * r + 0.587 * g + 0.114 * bl > 150 else "white"
            buttons.append(b)
        self.class_buttons = {c.name: b for c, b in zip(self.state.classes, buttons, strict=True)}
        self._built_classes = list(self.state.classes)
        self.class_box.children = buttons
        if hasattr(self, "class_picker"):
            self.class_picker.options = self.state.class_names
        self.shortcuts.value = shortcut_sheet_html(self.state.keymap, self.state.tools)

    def _goto_number(self, number: int) -> None:
        s = self.state
        if not getattr(self, "_syncing", False) and s.position is not None and number != s.position + 1:
            s.goto_number(number)
            self.focus.focus("canvas")

    def _pick_class(self, name: str) -> None:
        if name in self.state.class_names:
            self.state.class_key(name)
            self.class_picker.value = ""
            self.focus.focus("canvas")

    def _add_class(self) -> None:
        name = self.new_class.value.strip()
        if not name:
            self.state.say("type a class name first")
            return
        self.state.add_class(name)
        self.new_class.value = ""

    def _update_toolbar(self) -> None:
        s = self.state
        if s.classes != self._built_classes:  # a class was added (here or elsewhere, seen on reload)
            self._build_class_buttons()
        for t, b in self.tool_buttons.items():
            b.button_style = "info" if t == s.tool else ""
        shown = s.current_class
        if s.type in ("classification", "anomaly"):  # the example's own class, not the last one used
            label = s._truth_label()
            shown = label.label if label is not None else None
        for name, b in self.class_buttons.items():
            b.layout.border = "3px solid #222" if name == shown else ""
        self.undo_button.disabled = not s.can_undo
        self.redo_button.disabled = not s.can_redo
        has_props = bool(s.proposals())
        self.accept_button.disabled = self.reject_button.disabled = not has_props
        self.accept_all_button.disabled = not has_props
        self.prev_button.disabled = not s.position
        self.next_button.disabled = s.position is None or s.position + 1 >= len(s.ids)
        self.done_button.disabled = s.example is None
        self.mark_new_button.disabled = s.example is None or s.example.status == "new"
        self.goto.max = max(1, len(s.ids))
        if s.position is not None and self.goto.value != s.position + 1:
            self._syncing = True
            try:
                self.goto.value = s.position + 1
            finally:
                self._syncing = False
        unsaved = s.unsaved_count
        self.progress_label.value = s.progress_text + (f" · {unsaved} UNSAVED (Ctrl+S)" if unsaved else "")
        self.shortcuts.layout.display = "block" if s.show_help else "none"
        ex = s.example
        self.title.value = (
            f"{ex.file_name} — {s.position + 1} / {len(s.ids)}"  # type: ignore[operator]
            if ex is not None
            else "no examples"
        )
        self.message.value = s.message

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
        self.redraw({layer} | ({"toolbar"} if layer == "interaction" else set()))

    # ------------------------------------------------------------------ drawing
    def redraw(self, layers: set[str] | None = None) -> None:
        """Redraw the layers the state marked as changed (or ``layers``), in one message."""
        dirty = self.state.take_dirty() if layers is None else set(layers)
        with hold_canvas():
            if "image" in dirty:
                self._draw_image()
            if "annotations" in dirty:
                self._draw_scene(self.layers["annotations"], review_overlay(self.state, annotation_scene(self.state)))
            if "interaction" in dirty:
                self._draw_scene(self.layers["interaction"], interaction_scene(self.state))
        if "toolbar" in dirty:
            self._update_toolbar()
        for req in self.state.take_requests():
            if req == "picker":
                self.focus.focus(".wb-class-picker")
            elif req == "goto":
                self.focus.focus(".wb-goto")
            elif req == "scroll":
                self.focus.scroll_into_view()

    def _image(self) -> W.Image | None:
        ex = self.state.example
        if ex is None:
            return None
        if self._image_for != ex.id:
            data, fmt = browser_image(self.state.image_bytes())
            if self._image_widget is not None:
                self._image_widget.close()
            for _ann, w, _r in self._mask_cache.values():
                w.close()
            self._mask_cache.clear()
            self._image_widget = W.Image(value=data, format=fmt)
            self._image_for = ex.id
        return self._image_widget

    def _draw_image(self) -> None:
        c = self.layers["image"]
        c.clear()
        img = self._image()
        if img is None:
            c.fill_style = "#444444"
            c.font = "16px sans-serif"
            c.fill_text("no examples to annotate", 20, 40)
            return
        c.image_smoothing_enabled = self.state.view.scale < 2.0  # zoomed in: show the pixels
        c.draw_image(img, *image_rect(self.state))

    def _mask_image(self, ann, color: str) -> tuple[W.Image, tuple[float, float, float, float]]:
        hit = self._mask_cache.get(ann.id)
        if hit is not None and hit[0] is ann:
            return hit[1], hit[2]
        from PIL import Image

        rgba, (ox, oy) = mask_rgba(ann.mask, color)
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
        for m in scene.masks:
            widget, rect = self._mask_image(m.ann, m.color)
            c.draw_image(widget, *v.to_canvas_box(rect))
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
        put("font", "12px sans-serif")
        put("text_baseline", "top")
        tags: dict[str, list] = {}  # tag backgrounds: one batched call per colour
        for t in scene.texts:
            if t.background is not None:
                tags.setdefault(t.background, []).append((t.x, t.y, 7.0 * len(t.text) + 6.0, 16.0))
        for color, rects in tags.items():
            put("fill_style", color)
            c.fill_rects(*(np.array(col) for col in zip(*rects, strict=True)))
        for t in sorted(scene.texts, key=lambda t: t.color):
            put("fill_style", t.color)
            c.fill_text(t.text, t.x + 3.0, t.y + 2.0)

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
