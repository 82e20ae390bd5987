"""Moving between examples and their status, as a mixin of the canvas state.

Rules kept here:

* browsing (next / previous / PageUp / PageDown / arrows / jumps) NEVER writes: an example's status changes
  only when a truth shape or label is saved (the store marks it ``annotated``), when the labeller says
  "done" (an example with no shapes becomes a confirmed negative; in the ``review`` directory it becomes
  ``reviewed``), or when the labeller sets it back to ``new``. "Done" and "back to new" are undoable
  commands of that example's history;
* after an action that moved on by itself ("done", a classification key), Ctrl+Z on the next example
  (whose history is empty) goes back and undoes that action;
* progress counts new / annotated / reviewed over the canvas's own examples (split and directory), from
  one store query, kept up to date from the canvas's own writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from ..data.records import STATUSES, Annotation, Example
from ..data.task_types import type_info
from ..errors import NotFoundError, UnknownNameError, ValidationError
from .geometry import ViewTransform
from .undo import History, StatusCommand

if TYPE_CHECKING:
    from .canvas_state import CanvasSettings
    from .sink import AnnotationSink

__all__ = ["Navigation"]

_RANK = {"new": 0, "annotated": 1, "reviewed": 2}


class Navigation:
    """Opening examples, browsing, jumps, "done" / "back to new", progress (a mixin of CanvasState)."""

    sink: AnnotationSink
    type: str
    settings: CanvasSettings
    directory: str | None
    split: str | None
    ids: list[int]
    position: int | None
    example: Example | None
    annotations: list[Annotation]
    selected_id: int | None
    message: str
    _index: object
    _image_bytes: bytes | None
    _statuses: dict[int, str] | None
    _advanced_from: int | None
    _deliberate: bool

    if TYPE_CHECKING:

        @property
        def history(self) -> History: ...

    mark: Callable[..., None]
    say: Callable[[str], None]
    _cancel_gesture: Callable[[], bool]
    _execute: Callable[..., None]
    _truth_label: Callable[[], Annotation | None]

    # ------------------------------------------------------------------ opening
    def open_index(self, position: int) -> None:
        if not 0 <= position < len(self.ids):
            raise NotFoundError(f"no example at position {position}: the canvas has {len(self.ids)}")
        self._cancel_gesture()
        ex = self.sink.example(self.ids[position])
        self.position, self.example = position, ex
        self.annotations = list(ex.annotations)
        self.selected_id, self._deliberate = None, False
        self._index, self._image_bytes = None, None
        self.view = ViewTransform.fit(
            ex.width, ex.height, self.settings.canvas_width, self.settings.canvas_height
        )
        self.message = ""
        self._advanced_from = None
        if self._statuses is not None:
            self._statuses[ex.id] = ex.status
        _ = self.history  # a visit: this example's undo history becomes the most recent one kept
        self.mark("image", "annotations", "interaction", "toolbar")

    def goto(self, example_id: int) -> None:
        try:
            self.open_index(self.ids.index(example_id))
        except ValueError:
            raise NotFoundError(
                f"example {example_id} is not among the {len(self.ids)} on this canvas"
            ) from None

    def goto_number(self, number: int) -> None:
        """Open the ``number``-th example of the canvas (1-based, as the title shows it)."""
        if not 1 <= int(number) <= len(self.ids):
            raise ValidationError(
                f"image number {number} is out of range: this canvas has 1 to {len(self.ids)}", field="number"
            )
        self.open_index(int(number) - 1)

    # ------------------------------------------------------------------ browsing (never writes)
    def next(self) -> bool:
        """Open the next example (False at the end). Never changes any status."""
        return self.example is not None and self._step(+1)

    def skip(self) -> bool:
        """The same as :meth:`next` (kept for callers of the old API: browsing never marks anything)."""
        return self.next()

    def previous(self) -> bool:
        return self.example is not None and self._step(-1)

    def _step(self, delta: int) -> bool:
        assert self.position is not None
        target = self.position + delta
        if not 0 <= target < len(self.ids):
            self.say("this is the last example" if delta > 0 else "this is the first example")
            return False
        self.open_index(target)
        return True

    def jump(self, status: str = "new") -> bool:
        """Open the next example (after this one, wrapping round) whose status is ``status``."""
        if status not in STATUSES:
            raise UnknownNameError("status", status, STATUSES)
        if self.example is None:
            return False
        st = self.statuses
        n, here = len(self.ids), self.position or 0
        for k in range(1, n + 1):
            pos = (here + k) % n
            if st.get(self.ids[pos]) == status and pos != here:
                self.open_index(pos)
                return True
        self.say(f"no other example is {status}")
        return False

    def next_new(self) -> bool:
        return self.jump("new")

    # ------------------------------------------------------------------ status (explicit, undoable)
    def _done_status(self) -> str:
        return "reviewed" if self.directory == "review" else "annotated"

    def done(self) -> bool:
        """The labeller is done with this example: mark it annotated (reviewed in ``review``), then move on
        (``settings.advance_on_done``). An example with no shapes becomes a confirmed negative; a
        classification / anomaly example needs its class first."""
        ex = self.example
        if ex is None:
            return False
        if type_info(self.type).image_level and self._truth_label() is None:
            self.say("pick a class first: an example is done once it has its class")
            return False
        target = self._done_status()
        if _RANK.get(ex.status, 0) < _RANK[target]:
            self._execute(StatusCommand(ex.id, ex.status, target))
        here = ex.id
        if self.settings.advance_on_done and self.next():
            self._advanced_from = here
            self.say(f"{ex.file_name} marked {target}")
        else:
            self.say(f"marked {target}")
        return True

    def mark_new(self) -> bool:
        """Set this example back to ``new`` (undoable)."""
        ex = self.example
        if ex is None or ex.status == "new":
            return False
        self._execute(StatusCommand(ex.id, ex.status, "new"))
        self.say("set back to new")
        return True

    def store_status(self, example_id: int, status: str) -> None:
        """EditTarget: write a status (and keep the canvas's copy in step)."""
        self.sink.set_status(example_id, status)
        self._status_changed(example_id, status)

    def _status_changed(self, example_id: int, status: str) -> None:
        ex = self.example
        if ex is not None and ex.id == example_id:
            self.example = replace(ex, status=status)
        if self._statuses is not None and example_id in self._statuses:
            self._statuses[example_id] = status
        self.mark("toolbar")

    def status_of(self, example_id: int) -> str:
        ex = self.example
        if ex is not None and ex.id == example_id:
            return ex.status
        return self.statuses.get(example_id, "new")

    # ------------------------------------------------------------------ progress
    @property
    def statuses(self) -> dict[int, str]:
        """``{example id: status}`` of the canvas's examples (one store query, then kept in step)."""
        if self._statuses is None:
            got = self.sink.statuses(split=self.split, directory=self.directory)
            self._statuses = {i: got.get(i, "new") for i in self.ids}
        return self._statuses

    @property
    def status_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for s in self.statuses.values():
            counts[s] = counts.get(s, 0) + 1
        return counts

    @property
    def progress(self) -> tuple[int, int]:
        """(examples annotated or reviewed, examples) on this canvas."""
        c = self.status_counts
        return len(self.ids) - c["new"], len(self.ids)

    @property
    def progress_text(self) -> str:
        done, total = self.progress
        c = self.status_counts
        return f"{done} / {total} annotated · new {c['new']} · annotated {c['annotated']} · reviewed {c['reviewed']}"
