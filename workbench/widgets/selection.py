"""Selection and keyboard editing of the selected shape, as a mixin of the canvas state.

A selection is *deliberate* when the user made it (a click, a press with the select tool, Tab / Shift+Tab).
The shape the canvas selects by itself (the one just drawn) is shown as current but is not deliberate: a
class key then sets the class of the NEXT shape and leaves the drawn one alone, and the arrow keys browse.
With a deliberate selection a class key relabels it, the arrows nudge it (Shift: 10 px) and Ctrl + arrows
resize a box (right / bottom edge). Each nudge or resize is one undoable command, saved at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from ..data.records import Annotation
from ..data.task_types import type_info
from ..errors import NotFoundError
from .geometry import clamp_box
from .tools import _moved

if TYPE_CHECKING:
    from .canvas_state import CanvasSettings

__all__ = ["Selection"]


class Selection:
    """Selecting shapes (by pointer or Tab) and moving / resizing the selection by key."""

    type: str
    settings: CanvasSettings
    annotations: list[Annotation]
    selected_id: int | None
    current_class: str | None
    _deliberate: bool

    if TYPE_CHECKING:

        @property
        def selected(self) -> Annotation | None: ...

        @property
        def class_names(self) -> list[str]: ...

        @property
        def image_size(self) -> tuple[int, int]: ...

    annotation: Callable[[int | None], Annotation | None]
    hit_annotation: Callable[[float, float], int | None]
    mark: Callable[..., None]
    say: Callable[[str], None]
    commit_edit: Callable[[Annotation, Annotation], None]

    @property
    def deliberate(self) -> bool:
        """True when a shape is selected and the user selected it (click / Tab), not the canvas."""
        return self.selected_id is not None and self._deliberate

    def select(self, annotation_id: int | None, deliberate: bool = True) -> None:
        if annotation_id is not None and self.annotation(annotation_id) is None:
            raise NotFoundError(f"no annotation {annotation_id} on this example")
        if annotation_id != self.selected_id:
            self.selected_id = annotation_id
            self.mark("interaction", "toolbar")
        self._deliberate = deliberate and annotation_id is not None
        sel = self.selected
        if (
            sel is not None
            and self._deliberate
            and type_info(self.type).regions
            and sel.label in self.class_names
            and sel.label != self.current_class
        ):
            self.current_class = sel.label
            self.mark("toolbar")

    def click_select(self, x: float, y: float) -> None:
        self.select(self.hit_annotation(x, y))

    def _cycle(self, delta: int) -> None:
        shapes = [a for a in self.annotations if a.bbox is not None or a.polygons or a.mask is not None]
        if not shapes:
            self.say("no shape to select on this example")
            return
        ids = [a.id for a in shapes]
        here = ids.index(self.selected_id) if self.selected_id in ids else (-1 if delta > 0 else 0)
        self.select(ids[(here + delta) % len(ids)])

    def select_next(self) -> None:
        self._cycle(+1)

    def select_previous(self) -> None:
        self._cycle(-1)

    def nudge(self, dx: float, dy: float) -> None:
        """Move the selected shape by ``(dx, dy)`` image px (kept inside the image)."""
        sel = self.selected
        if sel is None:
            return
        moved = _moved(sel, dx, dy, *self.image_size)
        if moved is None:
            self.say("this shape cannot move by key")
            return
        self.commit_edit(sel, moved)
        self._keep(sel)

    def grow(self, dw: float, dh: float) -> None:
        """Resize the selected box by moving its right / bottom edge by ``(dw, dh)`` image px."""
        sel = self.selected
        if sel is None:
            return
        if sel.bbox is None or sel.polygons is not None or sel.mask is not None:
            self.say("only boxes resize by key")
            return
        x, y, w, h = sel.bbox
        m = self.settings.min_box_px
        box = clamp_box((x, y, max(w + dw, m), max(h + dh, m)), *self.image_size)
        if box is None:
            return
        self.commit_edit(sel, replace(sel, bbox=box))
        self._keep(sel)

    def _keep(self, sel: Annotation) -> None:
        """Keep the edited shape selected (an edited proposal is accepted and keeps its id)."""
        if self.annotation(sel.id) is not None:
            self.select(sel.id, deliberate=self._deliberate)
