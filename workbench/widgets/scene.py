"""What each canvas layer shows, as display lists in CANVAS pixels (pure Python + numpy).

The state knows annotations in image pixels; this module applies the view transform, groups shapes by
style (one batched draw call per class colour and per solid/dashed, so 1,000 boxes cost a handful of
commands), leaves out what lies off screen, and describes the interaction layer (selection, handles,
gesture in progress). ``canvas.py`` turns these lists into ipycanvas calls; tests and the benchmark can
look at them without a browser.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..data.records import Annotation
from .geometry import handle_points

if TYPE_CHECKING:
    from .canvas_state import CanvasState

__all__ = [
    "Style",
    "Rects",
    "Polys",
    "Polyline",
    "Circles",
    "Text",
    "MaskDraw",
    "Scene",
    "image_rect",
    "annotation_scene",
    "one_rect",
    "text_tag",
    "interaction_scene",
    "DASH",
    "LABEL_TAGS_MAX",
    "TAG_MODES",
    "TAG_FONT_PX",
    "tag_font",
    "mask_alpha",
]

DASH = (6.0, 4.0)  # proposals are drawn dashed
LABEL_TAGS_MAX = 100  # class name tags are drawn next to shapes only up to this many shapes
HANDLE_SIZE = 7.0  # px
TAG_MODES = ("auto", "show", "hide")
TAG_FONT_PX = 12.0  # a tag's font size, full size
TAG_MIN_FONT_PX = 8.0  # auto: tags shrink down to this, then go
MASK_STRENGTH = 110 / 255 / 0.15  # masks have no outline: drawn this much stronger than polygon fills


def tag_font(mode: str, box_w: float, box_h: float) -> float | None:
    """Font size (px) of the class tag of a box ``box_w`` x ``box_h`` canvas px on screen; None: no tag.

    ``show``: always full size; ``hide``: never; ``auto``: a quarter of the box's smaller side on screen,
    at most full size, so tags shrink as you zoom out and dense scenes stay visible; a box too small on
    screen to carry an 8 px tag (under 2 x 8 px) gets none (zoom in to read it).
    """
    if mode == "hide":
        return None
    if mode == "show":
        return TAG_FONT_PX
    side = min(box_w, box_h)
    if side < 2 * TAG_MIN_FONT_PX:
        return None
    return min(TAG_FONT_PX, max(TAG_MIN_FONT_PX, side / 4.0))


def mask_alpha(fill_opacity: float) -> float:
    """Opacity a mask is drawn at for a fill opacity (0.15, the default, keeps masks at 110 / 255)."""
    return min(1.0, max(0.0, fill_opacity * MASK_STRENGTH))


@dataclass(frozen=True)
class Style:
    color: str
    width: float = 2.0
    dashed: bool = False
    fill_alpha: float = 0.0  # > 0: also filled with the colour at this opacity


@dataclass
class Rects:
    style: Style
    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    h: np.ndarray
    filled: bool = False


@dataclass
class Polys:
    style: Style
    polygons: list[np.ndarray]  # each (n, 2)


@dataclass
class Polyline:
    style: Style
    points: np.ndarray  # (n, 2), open
    round: bool = False  # round caps and joins (brush strokes)
    alpha: float = 1.0


@dataclass
class Circles:
    style: Style
    x: np.ndarray
    y: np.ndarray
    r: np.ndarray
    filled: bool = False


@dataclass
class Text:
    text: str
    x: float
    y: float
    color: str
    background: str | None = None
    size: float = TAG_FONT_PX  # font px


@dataclass
class MaskDraw:
    ann: Annotation
    color: str
    dashed: bool


@dataclass
class Scene:
    rects: list[Rects] = field(default_factory=list)
    polys: list[Polys] = field(default_factory=list)
    masks: list[MaskDraw] = field(default_factory=list)
    lines: list[Polyline] = field(default_factory=list)
    circles: list[Circles] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)

    def count(self) -> int:
        """Number of shapes described (for tests and the benchmark)."""
        return (
            sum(len(r.x) for r in self.rects)
            + sum(len(p.polygons) for p in self.polys)
            + len(self.masks)
            + len(self.lines)
            + sum(len(c.x) for c in self.circles)
            + len(self.texts)
        )


def image_rect(state: CanvasState) -> tuple[float, float, float, float]:
    """Where the image goes on the canvas: x, y, width, height in canvas px."""
    w, h = state.image_size
    return state.view.to_canvas_box((0.0, 0.0, float(w), float(h)))


def one_rect(style: Style, box: tuple[float, float, float, float]) -> Rects:
    x, y, w, h = box
    return Rects(style, np.array([x]), np.array([y]), np.array([w]), np.array([h]))


def _text_color(background: str) -> str:
    r, g, b = (int(background[i : i + 2], 16) for i in (1, 3, 5))
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "#ffffff"


def text_tag(text: str, x: float, y: float, color: str, size: float = TAG_FONT_PX) -> Text:
    return Text(text, x, y, _text_color(color), background=color, size=size)


def _shape_style(state: CanvasState, a: Annotation, width: float = 2.0, fill: float = 0.0) -> Style:
    return Style(state.class_color(a.label), width, a.proposal, fill)


def _add_shapes(
    state: CanvasState,
    scene: Scene,
    anns: list[Annotation],
    *,
    width: float = 2.0,
    fill: float | None = None,
    cull: bool = True,
) -> None:
    """Boxes, polygons and masks of ``anns`` into ``scene``, batched by style."""
    v = state.view
    fill = state.fill_opacity if fill is None else fill
    cw, ch = state.settings.canvas_width, state.settings.canvas_height
    boxes: dict[Style, list[tuple[float, float, float, float]]] = defaultdict(list)
    polys: dict[Style, list[np.ndarray]] = defaultdict(list)
    for a in anns:
        if a.mask is not None:
            scene.masks.append(MaskDraw(a, state.class_color(a.label), a.proposal))
        elif a.polygons is not None:
            style = _shape_style(state, a, width, fill)
            polys[style].extend(v.points_to_canvas(p) for p in a.polygons)
        elif a.bbox is not None:
            boxes[_shape_style(state, a, width)].append(a.bbox)
    for style, bl in boxes.items():
        b = np.asarray(bl, dtype=np.float64)
        x = b[:, 0] * v.scale + v.offset_x
        y = b[:, 1] * v.scale + v.offset_y
        w, h = b[:, 2] * v.scale, b[:, 3] * v.scale
        if cull:
            keep = (x + w >= 0) & (y + h >= 0) & (x <= cw) & (y <= ch)
            x, y, w, h = x[keep], y[keep], w[keep], h[keep]
        if len(x):
            scene.rects.append(Rects(style, x, y, w, h))
    for style, pl in polys.items():
        scene.polys.append(Polys(style, pl))


def annotation_scene(state: CanvasState) -> Scene:
    """The annotations layer: every stored shape (the one being edited is left to the interaction layer)."""
    scene = Scene()
    if state.example is None:
        return scene
    hidden = state.interaction.editing_id
    anns = [a for a in state.annotations if a.id != hidden or hidden is None]
    shapes = [a for a in anns if a.bbox is not None]
    _add_shapes(state, scene, shapes)
    if len(shapes) <= LABEL_TAGS_MAX and state.tags != "hide":
        for a in shapes:
            assert a.bbox is not None
            x, y, w, h = state.view.to_canvas_box(a.bbox)
            size = tag_font(state.tags, w, h)
            if size is None:
                continue
            name = a.label + (
                f" {a.score:.2f}?" if a.proposal and a.score is not None else "?" if a.proposal else ""
            )
            scene.texts.append(text_tag(name, x, max(y - size - 2.0, 0.0), state.class_color(a.label), size))
    # classification / anomaly: the example's class as a banner (proposals with their score, dashed tag)
    y = 4.0
    for a in anns:
        if a.kind in ("label", "anomaly"):
            text = (
                a.label
                if not a.proposal
                else f"{a.label}? {a.score:.2f}"
                if a.score is not None
                else f"{a.label}?"
            )
            scene.texts.append(text_tag(text, 4.0, y, state.class_color(a.label)))
            y += 20.0
    return scene


def interaction_scene(state: CanvasState) -> Scene:
    """The interaction layer: selection and handles, the gesture in progress, the brush outline."""
    scene = Scene()
    if state.example is None:
        return scene
    v = state.view
    inter = state.interaction
    cur = state.class_color(state.current_class) if state.current_class else "#ffffff"
    sel = state.selected
    strong = min(1.0, state.fill_opacity + 0.1) if state.fill_opacity > 0 else 0.0  # selected, previewed
    if inter.preview is not None:
        _add_shapes(state, scene, [inter.preview], width=3.0, fill=strong, cull=False)
    elif sel is not None and sel.bbox is not None:
        if sel.mask is not None:  # a mask's outline is its box
            scene.rects.append(
                one_rect(Style(state.class_color(sel.label), 1.0, True), v.to_canvas_box(sel.bbox))
            )
        else:
            _add_shapes(state, scene, [sel], width=4.0, fill=strong, cull=False)
        if sel.polygons is None and sel.mask is None:
            pts = np.array([v.to_canvas(*p) for p in handle_points(sel.bbox).values()])
            s = HANDLE_SIZE
            scene.rects.append(
                Rects(
                    Style("#ffffff", 1.0),
                    pts[:, 0] - s / 2,
                    pts[:, 1] - s / 2,
                    np.full(len(pts), s),
                    np.full(len(pts), s),
                    filled=True,
                )
            )
            scene.rects.append(
                Rects(
                    Style("#000000", 1.0),
                    pts[:, 0] - s / 2,
                    pts[:, 1] - s / 2,
                    np.full(len(pts), s),
                    np.full(len(pts), s),
                )
            )
    if inter.rubber is not None:
        scene.rects.append(one_rect(Style(cur, 2.0, True), v.to_canvas_box(inter.rubber)))
    if inter.polygon:
        pts = np.array([v.to_canvas(*p) for p in inter.polygon])
        line = pts if inter.hover is None else np.vstack([pts, [inter.hover]])
        scene.lines.append(Polyline(Style(cur, 2.0), line))
        r = np.full(len(pts), 3.5)
        r[0] = state.settings.close_tolerance_px if len(pts) >= 3 else 3.5  # where a click closes it
        scene.circles.append(Circles(Style(cur, 1.5), pts[:, 0], pts[:, 1], r, filled=False))
    if inter.stroke:
        pts = np.array([v.to_canvas(*p) for p in inter.stroke])
        color = "#ffffff" if inter.stroke_erase else cur
        scene.lines.append(
            Polyline(Style(color, 2 * state.brush_radius * v.scale), pts, round=True, alpha=0.5)
        )
    if state.tool in ("brush", "eraser") and inter.hover is not None:
        hx, hy = inter.hover
        scene.circles.append(
            Circles(
                Style(cur, 1.0, state.tool == "eraser"),
                np.array([hx]),
                np.array([hy]),
                np.array([state.brush_radius * v.scale]),
            )
        )
        # the brush size under the cursor, in image px (what the stroke will paint)
        rad = float(state.brush_radius * v.scale)
        scene.texts.append(
            Text(
                f"{state.brush_radius:.0f} px",
                float(hx) + rad * 0.71 + 4.0,
                float(hy) + rad * 0.71 + 2.0,
                "#ffffff",
                "#000000",
                10.0,
            )
        )
    return scene
