"""The review flow of the canvas: proposals that repeat a labelled shape, and edits the store did not take.

* A proposal whose box overlaps a truth shape of the SAME class with IoU >= ``settings.merge_iou`` is
  "already labelled": it is tagged so on the canvas, and accepting it merges it into that shape (the
  person's shape stays, the proposal goes: one store call, undoable) instead of making a duplicate.
  Polygons and masks are compared by their bounding boxes.
* A new shape the store refuses to save for a reason outside the labeller's control (``sqlite3`` errors
  such as "database is locked", ``OSError`` such as a full disk) stays on the canvas, drawn dashed and
  tagged "unsaved", with a message; ``retry_save`` (Ctrl+S) tries to save it again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from ..data.records import Annotation, Example
from ..data.task_types import type_info
from ..errors import WorkbenchError
from .undo import AddCommand, CompositeCommand

if TYPE_CHECKING:
    from .canvas_state import CanvasSettings, CanvasState
    from .scene import Scene

__all__ = ["ReviewFlow", "SAVE_FAILURES", "box_iou", "review_overlay"]

SAVE_FAILURES = (sqlite3.Error, OSError)  # what a store write can fail with besides a WorkbenchError
UNSAVED_COLOR = "#d62728"


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


class ReviewFlow:
    """Merge-on-accept and unsaved shapes (a mixin of CanvasState)."""

    type: str
    settings: CanvasSettings
    annotations: list[Annotation]
    example: Example | None
    _unsaved: dict[int, list[Annotation]]

    truth: Callable[[], list[Annotation]]
    proposals: Callable[[], list[Annotation]]
    mark: Callable[..., None]
    say: Callable[[str], None]
    _add: Callable[[Annotation], None]

    def duplicate_of(self, prop: Annotation) -> Annotation | None:
        """The truth shape of the same class that ``prop`` repeats (IoU >= ``settings.merge_iou``), if any."""
        if not type_info(self.type).regions or prop.bbox is None:
            return None
        best, best_iou = None, self.settings.merge_iou
        for t in self.truth():
            if t.label == prop.label and t.bbox is not None:
                iou = box_iou(t.bbox, prop.bbox)
                if iou >= best_iou:
                    best, best_iou = t, iou
        return best

    @property
    def unsaved(self) -> list[Annotation]:
        """The new shapes of the open example that the store did not take (drawn dashed, "unsaved")."""
        return list(self._unsaved.get(self.example.id, [])) if self.example is not None else []

    @unsaved.setter
    def unsaved(self, shapes: list[Annotation]) -> None:
        if self.example is None:
            return
        if shapes:
            self._unsaved[self.example.id] = list(shapes)
        else:
            self._unsaved.pop(self.example.id, None)

    @property
    def unsaved_count(self) -> int:
        """Unsaved shapes on every example of the canvas (the toolbar says so while there are any)."""
        return sum(len(v) for v in self._unsaved.values())

    def already_labelled(self) -> list[Annotation]:
        return [p for p in self.proposals() if self.duplicate_of(p) is not None]

    # ------------------------------------------------------------------ unsaved shapes
    def _keep_unsaved(self, cmd: object, error: BaseException) -> WorkbenchError:
        """After a failed save: keep the new shapes of ``cmd`` on screen; the error to show."""
        new = _new_shapes(cmd)
        self.unsaved = [*self.unsaved, *new]
        self.mark("annotations")
        kept = f"; {len(new)} new shape(s) kept on screen as unsaved (Ctrl+S saves again)" if new else ""
        return WorkbenchError(f"not saved ({type(error).__name__}: {error}){kept}")

    def retry_save(self) -> int:
        """Save the unsaved shapes again (each one undoable); how many were saved."""
        pending, self.unsaved = self.unsaved, []
        saved = 0
        try:
            for k, ann in enumerate(pending):
                self.unsaved = pending[k + 1 :]
                self._add(ann)  # a failure keeps it (and the rest) unsaved again
                saved += 1
        finally:
            self.mark("annotations")
        self.say(f"saved {saved} shape(s)" if saved else "nothing unsaved to save")
        return saved


def _new_shapes(cmd: object) -> list[Annotation]:
    if isinstance(cmd, AddCommand):  # a shape to keep on screen (a class label has no place to be drawn)
        return [replace(cmd.ann, id=None)] if cmd.ann.bbox is not None else []
    if isinstance(cmd, CompositeCommand):
        return [a for c in cmd.commands for a in _new_shapes(c)]
    return []


def review_overlay(state: CanvasState, scene: Scene) -> Scene:
    """Add to the annotations layer: "already labelled" tags on proposals, unsaved shapes dashed in red."""
    from .scene import Style, _one_rect, _tag

    v = state.view
    for p in state.already_labelled():
        assert p.bbox is not None
        x, y = v.to_canvas(p.bbox[0], p.bbox[1] + p.bbox[3])
        scene.texts.append(_tag("already labelled", x, y + 2.0, state.class_color(p.label)))
    for a in state.unsaved:
        if a.bbox is None:
            continue
        scene.rects.append(_one_rect(Style(UNSAVED_COLOR, 2.0, True), v.to_canvas_box(a.bbox)))
        x, y = v.to_canvas(a.bbox[0], a.bbox[1])
        scene.texts.append(_tag(f"{a.label} (unsaved)", x, max(y - 14.0, 0.0), UNSAVED_COLOR))
    return scene
