"""Editing annotations on the canvas: every user edit is one undoable command, saved at once.

The mixin below is the half of :class:`~workbench.widgets.canvas_state.CanvasState` that changes
annotations: new shapes from the tools, edits (which accept proposals), class changes, deletion, proposal
accept / reject, undo / redo, and the store calls the commands replay (the ``EditTarget`` of ``undo.py``).
Each edit is exactly one store call, except accepting a classification proposal over an existing label
(delete the old label, then accept: two calls, one undo step, ordered so that undo replays cleanly).
Every update and delete sends the version of the annotation this canvas shows (or last wrote): an edit
made from a stale view is refused by the store (``EditConflictError``), the example is reloaded and the
refusal is said in this canvas; nothing is overwritten.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from ..data.records import Annotation, ClassDef, Example, polygon_area
from ..data.task_types import type_info
from ..errors import EditConflictError, NotFoundError, UnknownNameError, ValidationError, WorkbenchError
from .geometry import rect_polygon
from .masks import apply_stroke, rle_encode, stroke_mask
from .review import SAVE_FAILURES
from .undo import (
    AddCommand,
    AnnRef,
    Command,
    CompositeCommand,
    DeleteCommand,
    History,
    StatusCommand,
    UpdateCommand,
    makes_truth,
)

if TYPE_CHECKING:
    from .canvas_state import CanvasSettings
    from .sink import AnnotationSink

__all__ = ["AnnotationEdits"]


class AnnotationEdits:
    """Annotation edits of the canvas state (a mixin: the state provides the attributes below)."""

    sink: AnnotationSink
    type: str
    user: str
    settings: CanvasSettings
    classes: list[ClassDef]
    current_class: str | None
    example: Example | None
    annotations: list[Annotation]
    selected_id: int | None
    brush_radius: float
    _index: object
    _progress: tuple[int, int] | None

    if TYPE_CHECKING:  # read-only properties of CanvasState

        @property
        def image_size(self) -> tuple[int, int]: ...

        @property
        def history(self) -> History: ...

        @property
        def selected(self) -> Annotation | None: ...

        @property
        def class_names(self) -> list[str]: ...

    annotation: Callable[[int | None], Annotation | None]
    truth: Callable[[], list[Annotation]]
    proposals: Callable[[], list[Annotation]]
    mark: Callable[..., None]
    say: Callable[[str], None]
    select: Callable[..., None]
    _status_changed: Callable[[int, str], None]
    _keep_unsaved: Callable[[object, BaseException], WorkbenchError]
    duplicate_of: Callable[[Annotation], Annotation | None]
    store_status: Callable[[int, str], None]
    status_of: Callable[[int], str]
    _deliberate: bool
    reload: Callable[[], None]
    _cancel_gesture: Callable[[], bool]

    # ------------------------------------------------------------------ edits (each one undoable command)
    def _execute(self, cmd: Command) -> None:
        ex = self.example
        if ex is None:
            raise NotFoundError("no example is open")
        if ex.status == "new" and makes_truth(cmd):  # undoing it must give the example back its "new"
            cmd = CompositeCommand([cmd, StatusCommand(ex.id, "new", "annotated")], label=cmd.label)
        try:
            self.history.execute(cmd, self)
        except EditConflictError as e:  # someone else changed it: show theirs, say so, write nothing
            self.reload()
            self.say(str(e))
            raise
        except SAVE_FAILURES as e:  # locked database, full disk...: said, and the new shape stays on screen
            self._edited()
            raise self._keep_unsaved(cmd, e) from e
        self._edited()

    def _edited(self) -> None:
        self._index, self._progress = None, None
        if self.annotation(self.selected_id) is None:
            self.selected_id = None
        self.mark("annotations", "interaction", "toolbar")

    def _class_for_new(self) -> str:
        if self.current_class is None or self.current_class not in self.class_names:
            raise ValidationError("add a class first: new shapes take the current class", field="label")
        return self.current_class

    def _add(self, ann: Annotation) -> None:
        ref = AnnRef()
        self._execute(AddCommand(ref, ann, self.user))
        self.select(ref.id, deliberate=False)  # shown as current; class keys leave it alone

    def commit_edit(self, orig: Annotation, new: Annotation) -> None:
        """Replace ``orig`` by ``new``; editing a proposal accepts it (it becomes this user's)."""
        if orig.id is None:
            raise ValidationError("only stored annotations can be edited", field="id")
        if orig.proposal:
            new = replace(new, proposal=False, score=None)
        if new.content() == orig.content():
            return
        self._execute(UpdateCommand(self.history.ref(orig.id, orig.version), orig, new, self.user))

    def commit_new_box(self, box: tuple[float, float, float, float]) -> None:
        if type_info(self.type).region_labels:
            self._anomaly_region(box=box)
        elif "box" in type_info(self.type).kinds:
            self._add(Annotation("box", self._class_for_new(), bbox=box))
        else:
            raise ValidationError(f"a {self.type} dataset has no boxes", field="kind")

    def commit_new_polygon(self, points: Sequence[tuple[float, float]]) -> None:
        flat = tuple(float(v) for p in points for v in p)
        if len(points) < 3 or polygon_area(flat) < self.settings.min_box_px**2 / 2:
            self.say("the polygon has no area; it was not kept")
            return
        if type_info(self.type).region_labels:
            self._anomaly_region(polygon=flat)
        elif "polygon" in type_info(self.type).kinds:
            self._add(Annotation("polygon", self._class_for_new(), polygons=(flat,)))
        else:
            raise ValidationError(f"a {self.type} dataset has no polygons", field="kind")

    def commit_stroke(
        self, points: Sequence[tuple[float, float]], *, erase: bool, target: Annotation | None
    ) -> None:
        """A finished brush stroke: painted into ``target`` (or a new mask), or erased from it."""
        if "mask" not in type_info(self.type).kinds:
            raise ValidationError(f"a {self.type} dataset has no masks", field="kind")
        w, h = self.image_size
        stroke = stroke_mask(points, self.brush_radius, h, w)
        if target is None:
            if erase:
                self.say("nothing to erase here: select a mask first")
            elif stroke.any():
                self._add(Annotation("mask", self._class_for_new(), mask=rle_encode(stroke)))
            return
        assert target.mask is not None
        rle = apply_stroke(target.mask, stroke, erase=erase)
        if rle is None:
            self._delete(target)
        elif rle != target.mask:
            self.commit_edit(target, replace(target, mask=rle, bbox=None))
            self.select(target.id, deliberate=self._deliberate)

    def _anomaly_region(self, box=None, polygon=None) -> None:
        region = (
            {"bbox": box, "polygons": None} if box is not None else {"bbox": None, "polygons": (polygon,)}
        )
        existing = self._truth_label() or self._best_proposal()
        if existing is None:
            self._add(Annotation("anomaly", "anomalous", **region))
            return
        if existing.label == "good" or existing.bbox is None:
            new = replace(existing, label="anomalous", mask=None, **region)
        else:  # a second region: keep both, as polygons
            polys = list(existing.polygons or (rect_polygon(existing.bbox),))
            polys.append(polygon if polygon is not None else rect_polygon(box))
            new = replace(existing, label="anomalous", polygons=tuple(polys), bbox=None, mask=None)
        self.commit_edit(existing, new)
        self.select(existing.id, deliberate=False)

    def _truth_label(self) -> Annotation | None:
        kind = {"classification": "label", "anomaly": "anomaly"}.get(self.type)
        return next((a for a in self.annotations if a.kind == kind and not a.proposal), None)

    def _best_proposal(self) -> Annotation | None:
        props = self.proposals()
        return max(props, key=lambda a: a.score or 0.0) if props else None

    def set_class(self, name: str) -> None:
        """Class keys and class buttons: the example's class (classification / anomaly), or the class of
        the NEXT shape and of a DELIBERATELY selected one (detection / segmentation): the shape just
        drawn, selected by the canvas, keeps its class."""
        if name not in self.class_names:
            raise UnknownNameError("class", name, self.class_names)
        self.current_class = name
        self.mark("toolbar")
        if self.example is None:
            return
        kind = type_info(self.type).label_kind
        if kind is not None:
            existing = self._truth_label() or self._best_proposal()
            if existing is None:
                self._add(Annotation(kind, name))
                return
            new = replace(existing, label=name)
            if name == "good":
                new = replace(new, bbox=None, polygons=None, mask=None)
            self.commit_edit(existing, new)
            return
        sel = self.selected
        if sel is not None and self._deliberate and (sel.label != name or sel.proposal):
            self.commit_edit(sel, replace(sel, label=name))

    def _delete(self, ann: Annotation) -> None:
        assert ann.id is not None
        self._execute(DeleteCommand(self.history.ref(ann.id, ann.version), ann, self.user))

    def delete_selected(self) -> bool:
        """Delete the selection (classification / anomaly: the example's class when nothing is selected)."""
        target = self.selected or (
            self._truth_label() if type_info(self.type).image_level else None
        )
        if target is None:
            self.say("nothing selected to delete")
            return False
        self._delete(target)
        if target.id != self.selected_id and target.kind in ("label", "anomaly"):
            self.say(f"deleted the example's class {target.label!r} (Ctrl+Z brings it back)")
        return True

    def _proposal_target(self) -> Annotation | None:
        sel = self.selected
        return sel if sel is not None and sel.proposal else self._best_proposal()

    def accept_proposal(self) -> bool:
        """Make the selected (or best) proposal a real annotation by this user."""
        prop = self._proposal_target()
        if prop is None:
            self.say("no proposal to accept")
            return False
        dup = self.duplicate_of(prop)
        if dup is not None:  # already labelled: merge (the person's shape stays), never a duplicate
            self._delete(prop)
            self.say(f"already labelled: the {prop.label} proposal was merged into the shape there")
            return True
        truth = self._truth_label() if type_info(self.type).image_level else None
        if truth is not None and truth.label == prop.label:
            self._delete(prop)  # the example already says so
        elif truth is not None:  # replace the label by the proposal: old label out first (undo replays back)
            accepted = replace(prop, proposal=False, score=None)
            h = self.history
            self._execute(
                CompositeCommand(
                    [
                        DeleteCommand(h.ref(truth.id, truth.version), truth, self.user),
                        UpdateCommand(h.ref(prop.id, prop.version), prop, accepted, self.user),
                    ],
                    label="accept",
                )
            )
        else:
            self.commit_edit(prop, prop)
        return True

    def reject_proposal(self) -> bool:
        prop = self._proposal_target()
        if prop is None:
            self.say("no proposal to reject")
            return False
        self._delete(prop)
        return True

    def accept_all(self) -> int:
        """Accept every proposal of the example as one undo step (detection / segmentation)."""
        if type_info(self.type).image_level:
            return int(self.accept_proposal())
        props = self.proposals()
        if props:
            h = self.history
            dups = {p.id for p in props if self.duplicate_of(p) is not None}
            self._execute(
                CompositeCommand(
                    [
                        DeleteCommand(h.ref(p.id, p.version), p, self.user)
                        if p.id in dups
                        else UpdateCommand(h.ref(p.id, p.version), p, replace(p, proposal=False, score=None),
                                           self.user)
                        for p in props
                    ],
                    label="accept all",
                )
            )
            if dups:
                self.say(f"accepted {len(props) - len(dups)}; {len(dups)} already labelled, merged")
        return len(props)

    def undo(self) -> None:
        self._replay(History.undo, "undid")

    def redo(self) -> None:
        self._replay(History.redo, "redid")

    def _replay(self, step: Callable[[History, AnnotationEdits], Command | None], verb: str) -> None:
        self._cancel_gesture()
        if self.example is None:
            return
        try:
            cmd = step(self.history, self)
        except WorkbenchError as e:
            self.reload()
            self.say(f"could not replay the change ({e}); the example was reloaded")
            raise
        if cmd is not None:
            self._edited()
            self.say(f"{verb} {cmd.label}")

    def add_class(self, name: str, color: str | None = None) -> ClassDef:
        c = self.sink.add_class(name, color)
        self.classes = list(self.sink.classes)
        if type_info(self.type).regions:
            self.current_class = c.name
        self.mark("toolbar", "annotations")
        return c

    # ------------------------------------------------------------------ EditTarget: store calls
    def store_add(self, ann: Annotation, author: str) -> Annotation:
        assert self.example is not None
        label = ann.kind in ("label", "anomaly") and not ann.proposal and ann.bbox is None
        seen = label and any(a.kind == ann.kind and not a.proposal and a.bbox is None for a in self.annotations)
        saved = self.sink.add_annotation(  # a label over one this canvas never saw is refused, not overwritten
            self.example.id, replace(ann, author=author), author, actor=self.user, replace_label=seen or not label
        )
        if (
            ann.kind in ("label", "anomaly") and not ann.proposal and ann.bbox is None
        ):  # the store replaced it
            self.annotations = [
                a for a in self.annotations if not (a.kind == ann.kind and not a.proposal and a.bbox is None)
            ]
        self.annotations.append(saved)
        self._truth_saved(ann)
        return saved

    def store_update(self, annotation_id: int, ann: Annotation, author: str) -> Annotation:
        saved = self.sink.update_annotation(
            annotation_id, replace(ann, id=annotation_id, author=author), author, actor=self.user
        )
        self.annotations = [saved if a.id == annotation_id else a for a in self.annotations]
        self._truth_saved(ann)
        return saved

    def _truth_saved(self, ann: Annotation) -> None:
        ex = self.example
        if ex is not None and ex.status == "new" and not ann.proposal:
            self._status_changed(ex.id, "annotated")  # as the store does

    def store_delete(self, annotation_id: int) -> None:
        version = self.history.ref(annotation_id).version  # what this canvas last wrote or read
        self.sink.delete_annotation(annotation_id, version=version, author=self.user)
        self.annotations = [a for a in self.annotations if a.id != annotation_id]

    def rebind(self, ref: AnnRef, new_id: int) -> None:
        old = ref.id
        self.history.rebind(ref, new_id)
        if old is not None and self.selected_id == old:
            self.selected_id = new_id
