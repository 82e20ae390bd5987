"""Pointer tools of the annotation canvas: what a press, a drag and a release mean for each tool.

Tools receive CANVAS coordinates (what the browser sends) and turn them into image pixels through the
state's view transform straight away; nothing they keep or store is in canvas units except the screen
distances used for "was this a click or a drag" and "is this near a handle". Tools keep only the gesture in
progress; every change to annotations goes through the state (``commit_*``), which records an undoable
command and writes to the store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..data.records import Annotation
from .geometry import (
    clamp_box,
    clamp_point,
    hit_handle,
    normalize_box,
    resize_box,
    translate_box,
    translate_polygons,
)
from .masks import rle_translate

if TYPE_CHECKING:
    from .canvas_state import CanvasState

__all__ = ["Interaction", "Tool", "BoxTool", "SelectTool", "PolygonTool", "BrushTool", "PanTool", "TOOLS", "moved_by"]

Point = tuple[float, float]


@dataclass
class Interaction:
    """The gesture in progress, as the interaction layer draws it (image px unless said otherwise)."""

    rubber: tuple[float, float, float, float] | None = None  # box being drawn
    preview: Annotation | None = None  # shape being moved / resized ...
    editing_id: int | None = None  # ... and the id of the stored one it replaces (hidden meanwhile)
    polygon: list[Point] = field(default_factory=list)  # vertices placed so far
    stroke: list[Point] = field(default_factory=list)  # brush path
    stroke_erase: bool = False
    hover: Point | None = None  # last pointer position, CANVAS px

    def idle(self) -> bool:
        return self.rubber is None and self.preview is None and not self.polygon and not self.stroke


def _dist(a: Point, b: Point) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def _has_box_geometry(a: Annotation) -> bool:
    return a.bbox is not None and a.polygons is None and a.mask is None


def moved_by(ann: Annotation, dx: float, dy: float, width: int, height: int) -> Annotation | None:
    """``ann`` translated by ``(dx, dy)`` image px, kept inside the image; None if nothing is left."""
    if ann.polygons is not None:
        return replace(ann, polygons=translate_polygons(ann.polygons, dx, dy, width, height), bbox=None)
    if ann.mask is not None:
        m = rle_translate(ann.mask, dx, dy)
        return None if m is None else replace(ann, mask=m, bbox=None)
    if ann.bbox is not None:
        return replace(ann, bbox=translate_box(ann.bbox, dx, dy, width, height))
    return None


class Tool:
    """Base tool: ignores everything. Subclasses override the gestures they use."""

    name = ""

    def down(self, s: CanvasState, cx: float, cy: float) -> None:
        pass

    def move(self, s: CanvasState, cx: float, cy: float, pressed: bool) -> None:
        pass

    def up(self, s: CanvasState, cx: float, cy: float) -> None:
        pass

    def cancel(self, s: CanvasState) -> bool:
        """Drop the gesture in progress; True if there was one."""
        return False

    def key(self, s: CanvasState, action: str) -> bool:
        """Handle a key action before the canvas does (True when handled)."""
        return False


@dataclass
class _Drag:
    mode: str  # draw | move | resize | pan
    start: Point  # canvas px
    last: Point  # canvas px
    orig: Annotation | None = None
    handle: str | None = None


class _EditingTool(Tool):
    """Shared by the box and select tools: click selects, drag on the selection moves or resizes it."""

    empty_drag = "draw"  # what a drag that starts on nothing does

    def __init__(self) -> None:
        self.drag: _Drag | None = None

    def _grab(self, s: CanvasState, cx: float, cy: float) -> _Drag | None:
        x, y = s.view.to_image(cx, cy)
        sel = s.selected
        if sel is not None and sel.bbox is not None and sel.id is not None:
            if _has_box_geometry(sel):
                h = hit_handle(sel.bbox, x, y, s.tolerance(s.settings.handle_tolerance_px))
                if h is not None:
                    return _Drag("resize", (cx, cy), (cx, cy), sel, h)
            bx, by, bw, bh = sel.bbox
            inside = _has_box_geometry(sel) and bx <= x <= bx + bw and by <= y <= by + bh
            if self._movable(sel) and (inside or s.hit_annotation(x, y) == sel.id):
                return _Drag("move", (cx, cy), (cx, cy), sel)  # inside the selection: move, not a new box
        return None

    def _movable(self, ann: Annotation) -> bool:
        return _has_box_geometry(ann)

    def down(self, s: CanvasState, cx: float, cy: float) -> None:
        grabbed = self._grab(s, cx, cy)
        if grabbed is not None and grabbed.orig is not None:
            s.select(grabbed.orig.id)  # grabbing a shape to move / resize it is a deliberate selection
        self.drag = grabbed or _Drag(self.empty_drag, (cx, cy), (cx, cy))

    def move(self, s: CanvasState, cx: float, cy: float, pressed: bool) -> None:
        d = self.drag
        if d is None or not pressed:
            return
        if d.mode == "pan":
            s.pan_by(cx - d.last[0], cy - d.last[1])
            d.last = (cx, cy)
            return
        d.last = (cx, cy)
        if _dist(d.start, d.last) < s.settings.click_tolerance_px:
            return
        x, y = s.view.to_image(cx, cy)
        w, h = s.image_size
        if d.mode == "draw":
            x0, y0 = clamp_point(*s.view.to_image(*d.start), w, h)
            x1, y1 = clamp_point(x, y, w, h)
            s.interaction.rubber = normalize_box(x0, y0, x1, y1)
            s.mark("interaction")
        elif d.orig is not None:
            preview = self._edited(s, d, x, y)
            if preview is not None:
                if s.interaction.editing_id is None:
                    s.mark("annotations")  # hide the stored shape while it is being edited
                s.interaction.preview = preview
                s.interaction.editing_id = d.orig.id
                s.mark("interaction")

    def _edited(self, s: CanvasState, d: _Drag, x: float, y: float) -> Annotation | None:
        assert d.orig is not None and d.orig.bbox is not None
        w, h = s.image_size
        if d.mode == "resize":
            assert d.handle is not None
            box = resize_box(d.orig.bbox, d.handle, x, y, w, h)
            if box[2] < s.settings.min_box_px or box[3] < s.settings.min_box_px:
                return None
            return replace(d.orig, bbox=box)
        sx, sy = s.view.to_image(*d.start)
        return moved_by(d.orig, x - sx, y - sy, w, h)

    def up(self, s: CanvasState, cx: float, cy: float) -> None:
        if self.drag is None:
            return
        self.move(s, cx, cy, True)
        d, self.drag = self.drag, None
        inter = s.interaction
        rubber, preview = inter.rubber, inter.preview
        was_editing = inter.editing_id is not None
        inter.rubber, inter.preview, inter.editing_id = None, None, None
        s.mark("interaction")
        if was_editing:
            s.mark("annotations")
        if d.mode == "pan":
            return
        if _dist(d.start, (cx, cy)) < s.settings.click_tolerance_px:
            s.click_select(*s.view.to_image(cx, cy))
            return
        if d.mode == "draw" and rubber is not None:
            box = clamp_box(rubber, *s.image_size)
            if box is not None and min(box[2], box[3]) >= s.settings.min_box_px:
                s.commit_new_box(box)
        elif d.orig is not None and preview is not None:
            s.commit_edit(d.orig, preview)

    def cancel(self, s: CanvasState) -> bool:
        if self.drag is None:
            return False
        self.drag = None
        editing = s.interaction.editing_id is not None
        s.interaction.rubber, s.interaction.preview, s.interaction.editing_id = None, None, None
        s.mark("interaction")
        if editing:
            s.mark("annotations")
        return True


class BoxTool(_EditingTool):
    """Drag to draw a box; click to select; drag the selected box's handles or body to resize or move it."""

    name = "box"


class SelectTool(_EditingTool):
    """Click to select any shape, drag it to move it (boxes also resize); drag on nothing pans."""

    name = "select"
    empty_drag = "pan"

    def _movable(self, ann: Annotation) -> bool:
        return ann.bbox is not None

    def down(self, s: CanvasState, cx: float, cy: float) -> None:
        grabbed = self._grab(s, cx, cy)
        if grabbed is None:
            hit = s.hit_annotation(*s.view.to_image(cx, cy))
            if hit is not None:  # press on another shape: select it and drag it in one gesture
                s.select(hit)
                grabbed = self._grab(s, cx, cy)
        self.drag = grabbed or _Drag("pan", (cx, cy), (cx, cy))


class PolygonTool(Tool):
    """Click to place vertices; click the first vertex again (or press Enter) to close; Escape cancels."""

    name = "polygon"

    def down(self, s: CanvasState, cx: float, cy: float) -> None:
        pts = s.interaction.polygon
        if len(pts) >= 3:
            first = s.view.to_canvas(*pts[0])
            if _dist(first, (cx, cy)) <= s.settings.close_tolerance_px:
                self._close(s)
                return
        pts.append(clamp_point(*s.view.to_image(cx, cy), *s.image_size))
        s.mark("interaction")

    def move(self, s: CanvasState, cx: float, cy: float, pressed: bool) -> None:
        s.interaction.hover = (cx, cy)
        if s.interaction.polygon:
            s.mark("interaction")  # the rubber-band edge follows the pointer

    def _close(self, s: CanvasState) -> None:
        pts = list(s.interaction.polygon)
        s.interaction.polygon.clear()
        s.mark("interaction")
        s.commit_new_polygon(pts)

    def cancel(self, s: CanvasState) -> bool:
        if not s.interaction.polygon:
            return False
        s.interaction.polygon.clear()
        s.mark("interaction")
        return True

    def key(self, s: CanvasState, action: str) -> bool:
        pts = s.interaction.polygon
        if not pts:
            return False
        if action in ("close", "done"):
            if len(pts) >= 3:
                self._close(s)
            else:
                s.say("a polygon needs at least 3 points")
            return True
        if action in ("delete", "undo"):  # while drawing, these take back the last vertex
            pts.pop()
            s.mark("interaction")
            return True
        return False


class BrushTool(Tool):
    """Paint a mask with a round brush (radius in image px); the stroke is saved on release."""

    name = "brush"
    erase = False

    def __init__(self) -> None:
        self.target: Annotation | None = None

    def down(self, s: CanvasState, cx: float, cy: float) -> None:
        p = clamp_point(*s.view.to_image(cx, cy), *s.image_size)
        sel = s.selected
        self.target = sel if sel is not None and sel.mask is not None else None
        if self.target is None and self.erase:
            hit = s.hit_annotation(*p)
            ann = s.annotation(hit) if hit is not None else None
            self.target = ann if ann is not None and ann.mask is not None else None
        s.interaction.stroke = [p]
        s.interaction.stroke_erase = self.erase
        s.mark("interaction")

    def move(self, s: CanvasState, cx: float, cy: float, pressed: bool) -> None:
        s.interaction.hover = (cx, cy)
        stroke = s.interaction.stroke
        if pressed and stroke:
            p = clamp_point(*s.view.to_image(cx, cy), *s.image_size)
            if _dist(p, stroke[-1]) >= max(s.brush_radius / 4.0, 0.5):
                stroke.append(p)
        s.mark("interaction")  # the brush outline follows the pointer

    def up(self, s: CanvasState, cx: float, cy: float) -> None:
        stroke = s.interaction.stroke
        if not stroke:
            return
        self.move(s, cx, cy, True)
        points = list(stroke)
        stroke.clear()
        s.mark("interaction")
        target, self.target = self.target, None
        s.commit_stroke(points, erase=self.erase, target=target)

    def cancel(self, s: CanvasState) -> bool:
        if not s.interaction.stroke:
            return False
        s.interaction.stroke.clear()
        self.target = None
        s.mark("interaction")
        return True


class EraserTool(BrushTool):
    """Erase from the selected mask (or the mask under the first point of the stroke)."""

    name = "eraser"
    erase = True


class PanTool(Tool):
    """Drag to move the image; the wheel zooms with every tool."""

    name = "pan"

    def __init__(self) -> None:
        self.last: Point | None = None

    def down(self, s: CanvasState, cx: float, cy: float) -> None:
        self.last = (cx, cy)

    def move(self, s: CanvasState, cx: float, cy: float, pressed: bool) -> None:
        if pressed and self.last is not None:
            s.pan_by(cx - self.last[0], cy - self.last[1])
            self.last = (cx, cy)

    def up(self, s: CanvasState, cx: float, cy: float) -> None:
        self.move(s, cx, cy, True)
        self.last = None

    def cancel(self, s: CanvasState) -> bool:
        was = self.last is not None
        self.last = None
        return was


TOOLS: dict[str, type[Tool]] = {
    t.name: t for t in (BoxTool, SelectTool, PolygonTool, BrushTool, EraserTool, PanTool)
}
