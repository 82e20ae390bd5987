"""The annotation canvas as a pure-Python state object: navigation, tools, selection, zoom, undo, proposals.

No ipywidgets or ipycanvas here. The view (``canvas.py``) forwards browser events in CANVAS pixels
(``pointer_down/move/up``, ``wheel``, ``key_down``) and toolbar clicks (``do(action)``), then asks
``take_dirty()`` which layers to redraw: ``image``, ``annotations``, ``interaction`` or ``toolbar``.

Rules this object keeps:

* every stored coordinate is in IMAGE pixels, clamped to the image; canvas -> image goes through the
  explicit :class:`~workbench.widgets.geometry.ViewTransform` (zoom around the cursor, pan);
* every user action is one undoable command and (almost always) exactly one store call, made at once:
  there is no save button. Accepting a classification proposal over an existing label is the exception
  (delete the old label, accept the proposal: two calls, one undo step);
* undo history is KEPT PER EXAMPLE (the last ``settings.histories_kept`` examples visited, each bounded
  to ``settings.undo_limit`` commands): come back to an example and Ctrl+Z still undoes your last edit
  there. An undo the store refuses (someone else deleted the annotation meanwhile) drops that command and
  reloads the example;
* opening an example loads that example only (its record; its image bytes when the view asks);
* browsing never writes and keys mean what they show: see ``navigation.py`` (status is explicit: "done",
  "back to new"), ``selection.py`` (deliberate selections, Tab, nudge / resize by key) and ``keys.py``
  (the one key table the handler and the shortcut sheet share).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..data.records import TASK_TYPES, Annotation, ClassDef, Example
from ..data.task_types import type_info
from ..errors import NotFoundError, UnknownNameError, ValidationError
from .edits import AnnotationEdits
from .geometry import ShapeIndex, ViewTransform
from .keys import KeyMap
from .navigation import Navigation
from .review import ReviewFlow
from .scene import TAG_MODES
from .selection import Selection
from .sink import AnnotationSink
from .tools import TOOLS, Interaction, PanTool, Tool
from .undo import History

__all__ = ["LAYERS", "TOOLS_FOR_TYPE", "CanvasSettings", "CanvasState"]

LAYERS = ("image", "annotations", "interaction", "toolbar")

# The tools each dataset type offers, the first one active on start.
TOOLS_FOR_TYPE: dict[str, tuple[str, ...]] = {
    "classification": ("pan",),
    "detection": ("box", "select", "pan"),
    "segmentation": ("polygon", "brush", "eraser", "box", "select", "pan"),
    "anomaly": ("box", "polygon", "select", "pan"),
}

_SINK_METHODS = (
    "classes",
    "type",
    "example_ids",
    "example",
    "load_bytes",
    "add_annotation",
    "update_annotation",
    "delete_annotation",
    "set_status",
    "add_class",
    "statuses",
)


@dataclass(frozen=True)
class CanvasSettings:
    canvas_width: int = 800  # canvas size in CSS px (= canvas px: the view sets both)
    canvas_height: int = 600
    handle_tolerance_px: float = 6.0  # screen px around a resize handle that grab it
    close_tolerance_px: float = 8.0  # screen px around a polygon's first vertex that close it
    click_tolerance_px: float = 4.0  # a press and release closer than this is a click, not a drag
    min_box_px: float = 1.0  # smallest box side kept, image px
    brush_radius: float = 8.0  # image px
    fill_opacity: float = 0.15  # polygon fills (masks, which have no outline, are drawn stronger)
    tags: str = "auto"  # class tags next to shapes: auto (shrink with zoom, hide on tiny boxes), show, hide
    wheel_zoom: float = 0.0015  # zoom factor per wheel delta unit: exp(-delta * wheel_zoom)
    undo_limit: int = 200
    histories_kept: int = 20
    advance_on_class: bool = True  # classification: a class key labels the example and opens the next one
    advance_on_done: bool = True  # "done" (Enter) opens the next example
    merge_iou: float = 0.5  # a proposal over a same-class shape with this IoU is "already labelled"


class CanvasState(Navigation, Selection, ReviewFlow, AnnotationEdits):
    """Everything the annotation canvas knows and does, minus the drawing."""

    def __init__(
        self,
        sink: AnnotationSink,
        *,
        directory: str | None = None,
        split: str | None = None,
        user: str = "annotator",
        settings: CanvasSettings | None = None,
    ) -> None:
        missing = [m for m in _SINK_METHODS if not hasattr(sink, m)]
        if missing:
            raise ValidationError(
                f"{type(sink).__name__} is not a dataset: it lacks {', '.join(missing)}", field="dataset"
            )
        if sink.type not in TASK_TYPES:
            raise UnknownNameError("dataset type", sink.type, TASK_TYPES)
        if not user:
            raise ValidationError("the canvas needs a user name for the annotations it makes", field="user")
        self.sink = sink
        self.type: str = sink.type
        self.directory, self.split, self.user = directory, split, user
        self.settings = settings or CanvasSettings()
        self.classes: list[ClassDef] = list(sink.classes)
        self.tools = TOOLS_FOR_TYPE[self.type]
        self._tools: dict[str, Tool] = {name: TOOLS[name]() for name in self.tools}
        self.tool = self.tools[0]
        self.current_class: str | None = self.classes[0].name if self.classes else None
        self.brush_radius = self.settings.brush_radius
        self.fill_opacity = self.settings.fill_opacity
        self.tags = self.settings.tags
        self.view = ViewTransform()
        self.interaction = Interaction()
        self.example: Example | None = None
        self.annotations: list[Annotation] = []
        self.selected_id: int | None = None
        self._deliberate = False  # the selection was made by the user (click / Tab), not by the canvas
        self.keymap = KeyMap(self.class_names)
        self.show_help = False  # the shortcut sheet is open
        self.requests: list[str] = []  # what the view should do in the browser (focus the class picker...)
        self.space_pan = False  # Space held: the pointer pans whatever the tool
        self._pan = PanTool()
        self._statuses: dict[int, str] | None = None
        self._unsaved: dict[int, list[Annotation]] = {}  # example id -> new shapes the store did not take
        self._advanced_from: int | None = None
        self.message = ""
        self.pointer: tuple[float, float] | None = None
        self.pressed = False
        self.position: int | None = None
        self._histories: OrderedDict[int, History] = OrderedDict()
        self._index: ShapeIndex | None = None
        self._progress: tuple[int, int] | None = None  # kept for the edits mixin; progress is in navigation
        self._image_bytes: bytes | None = None
        self._dirty: set[str] = set(LAYERS)
        self._actions: dict[str, Callable[[], object]] = {
            "next": self.next,
            "previous": self.previous,
            "skip": self.skip,
            "next_new": self.next_new,
            "done": self.done,
            "mark_new": self.mark_new,
            "select_next": self.select_next,
            "select_previous": self.select_previous,
            "pan_hold": lambda: self.set_space_pan(True),
            "help": self.toggle_help,
            "class_picker": lambda: self.request("picker"),
            "goto_field": lambda: self.request("goto"),
            "retry_save": self.retry_save,
            "delete": self.delete_selected,
            "cancel": self.cancel,
            "close": lambda: None,
            "undo": self.undo,
            "redo": self.redo,
            "accept": self.accept_proposal,
            "reject": self.reject_proposal,
            "accept_all": self.accept_all,
            "reset_view": self.reset_view,
            "zoom_in": lambda: self.zoom_at(*self._zoom_centre(), 1.25),
            "zoom_out": lambda: self.zoom_at(*self._zoom_centre(), 0.8),
            "brush_smaller": lambda: self.set_brush_radius(self.brush_radius / 1.25),
            "brush_larger": lambda: self.set_brush_radius(self.brush_radius * 1.25),
        }
        self._prefixed: dict[str, Callable[[str], object]] = {
            "class": self.class_key,
            "tool": self.tool_key,
            "nudge": lambda arg: self.nudge(*map(float, arg.split(":"))),
            "grow": lambda arg: self.grow(*map(float, arg.split(":"))),
        }
        self.ids: list[int] = list(sink.example_ids(split=split, directory=directory))
        if self.ids:
            self.open_index(0)

    # ------------------------------------------------------------------ small queries
    @property
    def image_size(self) -> tuple[int, int]:
        return (self.example.width, self.example.height) if self.example else (1, 1)

    @property
    def history(self) -> History:
        if self.example is None:
            return History(limit=self.settings.undo_limit)
        eid = self.example.id
        h = self._histories.get(eid)
        if h is None:
            h = self._histories[eid] = History(limit=self.settings.undo_limit)
            while len(self._histories) > self.settings.histories_kept:
                self._histories.popitem(last=False)
        self._histories.move_to_end(eid)
        return h

    @property
    def selected(self) -> Annotation | None:
        return self.annotation(self.selected_id) if self.selected_id is not None else None

    def annotation(self, annotation_id: int | None) -> Annotation | None:
        for a in self.annotations:
            if a.id == annotation_id:
                return a
        return None

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    def class_color(self, name: str) -> str:
        for c in self.classes:
            if c.name == name:
                return c.color
        return "#888888"

    def tolerance(self, screen_px: float) -> float:
        """A distance the user feels in screen px, as image px at the current zoom."""
        return screen_px / self.view.scale

    @property
    def can_undo(self) -> bool:
        return self.example is not None and self.history.can_undo

    @property
    def can_redo(self) -> bool:
        return self.example is not None and self.history.can_redo

    def truth(self) -> list[Annotation]:
        return [a for a in self.annotations if not a.proposal]

    def proposals(self) -> list[Annotation]:
        return [a for a in self.annotations if a.proposal]

    def image_bytes(self) -> bytes:
        """The current example's encoded image (loaded on first use, for this example only)."""
        if self.example is None:
            raise NotFoundError("no example is open")
        if self._image_bytes is None:
            self._image_bytes = self.sink.load_bytes(self.example.blob)
        return self._image_bytes

    def hit_annotation(self, x: float, y: float) -> int | None:
        """Id of the annotation under image point ``(x, y)``: the smallest containing shape, then topmost."""
        if self._index is None:
            self._index = ShapeIndex(self.annotations)
        pos = self._index.hit(x, y, self.tolerance(self.settings.click_tolerance_px))
        return None if pos is None else self.annotations[pos].id

    # ------------------------------------------------------------------ dirty layers
    def mark(self, *layers: str) -> None:
        for layer in layers:
            if layer not in LAYERS:
                raise UnknownNameError("canvas layer", layer, LAYERS)
        self._dirty.update(layers)

    def take_dirty(self) -> set[str]:
        """The layers changed since the last call (and forget them)."""
        out, self._dirty = self._dirty, set()
        return out

    def say(self, message: str) -> None:
        self.message = message
        self.mark("toolbar")

    # ------------------------------------------------------------------ reload
    def reload(self) -> None:
        """Read the classes and the current example again from the store (keeps the view and the history)."""
        self.classes = list(self.sink.classes)
        self.keymap = KeyMap(self.class_names)
        self._statuses = None
        self.mark("toolbar", "annotations")
        if self.example is None:
            return
        self._cancel_gesture()
        ex = self.sink.example(self.example.id)
        self.example, self.annotations = ex, list(ex.annotations)
        if self.annotation(self.selected_id) is None:
            self.selected_id = None
        self._index, self._progress = None, None
        self.mark("annotations", "interaction", "toolbar")

    # ------------------------------------------------------------------ view
    def _zoom_centre(self) -> tuple[float, float]:
        return self.pointer or (self.settings.canvas_width / 2, self.settings.canvas_height / 2)

    def _set_view(self, view: ViewTransform) -> None:
        w, h = self.image_size
        self.view = view.kept_visible(w, h, self.settings.canvas_width, self.settings.canvas_height)
        self.mark("image", "annotations", "interaction")

    def zoom_at(self, cx: float, cy: float, factor: float) -> None:
        self._set_view(self.view.zoomed_at(cx, cy, factor))

    def wheel(self, delta_y: float, cx: float | None = None, cy: float | None = None) -> None:
        """Zoom for a wheel turn (browser ``deltaY``), around ``(cx, cy)`` or the last pointer position."""
        if cx is None or cy is None:
            cx, cy = self._zoom_centre()
        d = max(-600.0, min(600.0, float(delta_y)))
        self.zoom_at(cx, cy, math.exp(-d * self.settings.wheel_zoom))

    def pan_by(self, dx: float, dy: float) -> None:
        self._set_view(self.view.panned(dx, dy))

    def resize(self, width: int, height: int) -> None:
        """The canvas got a new size (css px): a fitted view is fitted again, a zoomed one keeps its scale
        and the image point at the canvas centre."""
        width, height = int(width), int(height)
        if width < 1 or height < 1:
            raise ValidationError(f"a canvas size must be positive, got {width} x {height}", field="size")
        old_w, old_h = self.settings.canvas_width, self.settings.canvas_height
        if (width, height) == (old_w, old_h):
            return
        w, h = self.image_size
        was_fit = self.view == ViewTransform.fit(w, h, old_w, old_h)
        centre = self.view.to_image(old_w / 2, old_h / 2)
        self.settings = replace(self.settings, canvas_width=width, canvas_height=height)
        if was_fit:
            self.reset_view()
        else:
            s = self.view.scale
            self._set_view(ViewTransform(s, width / 2 - centre[0] * s, height / 2 - centre[1] * s))
        if self.pointer is not None and not (
            0 <= self.pointer[0] <= width and 0 <= self.pointer[1] <= height
        ):
            self.pointer = None
        self.mark(*LAYERS)

    def set_fill_opacity(self, opacity: float) -> None:
        self.fill_opacity = min(max(float(opacity), 0.0), 1.0)
        self.mark("annotations", "interaction")

    def set_tags(self, mode: str) -> None:
        if mode not in TAG_MODES:
            raise UnknownNameError("tag mode", mode, TAG_MODES)
        self.tags = mode
        self.mark("annotations", "toolbar")

    def reset_view(self) -> None:
        w, h = self.image_size
        self._set_view(ViewTransform.fit(w, h, self.settings.canvas_width, self.settings.canvas_height))

    # ------------------------------------------------------------------ tools and events
    def set_tool(self, name: str) -> None:
        if name not in self.tools:
            raise UnknownNameError(f"tool for {self.type}", name, self.tools)
        self._cancel_gesture()
        self.tool = name
        self.mark("interaction", "toolbar")

    def set_brush_radius(self, radius: float) -> None:
        self.brush_radius = min(max(float(radius), 1.0), 256.0)
        self.mark("interaction", "toolbar")

    def _active(self) -> Tool:
        return self._pan if self.space_pan else self._tools[self.tool]

    def set_space_pan(self, held: bool) -> None:
        """Space held (the view reports the release): the pointer pans, whatever the tool."""
        if held != self.space_pan:
            if not self.pressed:
                self._pan.cancel(self)
            self.space_pan = held

    def toggle_help(self) -> None:
        self.show_help = not self.show_help
        self.mark("toolbar")

    def request(self, what: str) -> None:
        """Ask the view to do something only the browser can (focus the class picker, scroll into view)."""
        self.requests.append(what)
        self.mark("toolbar")

    def take_requests(self) -> list[str]:
        out, self.requests = self.requests, []
        return out

    def _clear_message(self) -> None:
        if self.message:
            self.message = ""
            self.mark("toolbar")

    def _cancel_gesture(self) -> bool:
        cancelled = any([t.cancel(self) for t in self._tools.values()])  # every tool, no short cut
        self.pressed = False
        return cancelled

    def pointer_down(self, cx: float, cy: float) -> None:
        self._clear_message()  # messages are about the last action: a new one clears them
        self.pointer, self.pressed = (cx, cy), True
        if self.example is not None:
            self._active().down(self, cx, cy)

    def pointer_move(self, cx: float, cy: float) -> None:
        self.pointer = (cx, cy)
        if self.example is not None:
            self._active().move(self, cx, cy, self.pressed)

    def pointer_up(self, cx: float, cy: float) -> None:
        self.pointer = (cx, cy)
        if not self.pressed:
            return
        self.pressed = False
        if self.example is not None:
            self._active().up(self, cx, cy)

    def pointer_out(self, cx: float, cy: float) -> None:
        """The pointer left the canvas: a drag in progress ends there (clamped to the image)."""
        self.pointer_up(cx, cy)
        if self.interaction.hover is not None:
            self.interaction.hover = None
            self.mark("interaction")

    def key_down(self, key: str, shift: bool = False, ctrl: bool = False, meta: bool = False) -> bool:
        """Handle a key press; False when the key means nothing here."""
        action = self.keymap.resolve(key, shift, ctrl or meta, selected=self.deliberate)
        if action is None:
            return False
        self.do(action)
        return True

    def do(self, action: str) -> None:
        """Run a named action (keys and toolbar buttons both come here)."""
        self._clear_message()
        if self._active().key(self, action):
            return
        if action != "pan_hold":
            self.space_pan = False  # any other key: Space is no longer held (the view reports releases)
        prefix, sep, arg = action.partition(":")
        if sep and prefix in self._prefixed:
            self._prefixed[prefix](arg)
            return
        fn = self._actions.get(action)
        if fn is None:
            raise UnknownNameError("canvas action", action, [*self._actions, *(f"{p}:..." for p in self._prefixed)])
        if action == "undo" and self._advanced_from is not None and not self.can_undo:
            back, self._advanced_from = self._advanced_from, None
            self.goto(back)  # undo right after an action moved on: go back and undo it there
        fn()

    def class_key(self, name: str) -> None:
        """A class key: the class of the next shape (and of a deliberately selected one); classification
        labels the example and, with ``settings.advance_on_class``, opens the next one."""
        before = self.example.id if self.example is not None else None
        self.set_class(name)
        if (
            type_info(self.type).image_level
            and not type_info(self.type).region_labels  # an anomaly may get its region drawn next
            and self.settings.advance_on_class
            and before is not None
            and self.next()
        ):
            self._advanced_from = before

    def tool_key(self, name: str) -> None:
        if name not in self.tools:
            self.say(f"a {self.type} dataset has no {name} tool (tools: {', '.join(self.tools)})")
            return
        self.set_tool(name)

    def cancel(self) -> None:
        """Escape: drop the gesture in progress, or else the selection (or close the shortcut sheet)."""
        if self.show_help:
            self.toggle_help()
        elif not self._cancel_gesture():
            self.select(None)
