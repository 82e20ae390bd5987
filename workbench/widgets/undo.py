"""Undo / redo as commands that replay against the store.

Every edit is a command with ``do`` and ``undo``, and each of those is exactly the store calls it needs:
undoing an add deletes the stored annotation, undoing a delete adds it again. The store then hands out a
NEW id, so commands never hold raw ids: they hold an :class:`AnnRef`, a handle whose ``id`` is re-bound
whenever the annotation is stored again, and every command about the same annotation shares the handle.

Versions: the handle also carries the store ``version`` this canvas last wrote or read for the annotation;
every replayed update / delete sends it, so the store refuses an undo or redo when someone else changed the
annotation since (``EditConflictError``). When a fresh edit starts from a version this canvas did not write
(it reloaded someone else's change), the handle's ``epoch`` moves on and the older commands on it can no
longer be replayed: undo never overwrites someone else's later edit.

A :class:`History` belongs to one example (the canvas keeps the histories of recently visited examples,
see ``canvas_state.py``). Its stacks are bounded; a new edit clears the redo stack.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from typing import Protocol

from ..data.records import Annotation
from ..errors import ConflictError

__all__ = [
    "AnnRef",
    "EditTarget",
    "Command",
    "AddCommand",
    "UpdateCommand",
    "DeleteCommand",
    "CompositeCommand",
    "StatusCommand",
    "makes_truth",
    "History",
]


class AnnRef:
    """A stable handle on one annotation whose store id may change (delete + re-add)."""

    __slots__ = ("id", "version", "epoch")

    def __init__(self, id: int | None = None, version: int | None = None) -> None:
        self.id = id
        self.version = version  # the store version this canvas last wrote or read (None: unknown / deleted)
        self.epoch = 0  # moves on when someone else's change is taken over (older commands are then stale)

    def seen(self, version: int | None) -> AnnRef:
        """A new edit starts from ``version`` (what the canvas shows): if that is not the version this canvas
        last wrote, someone else changed the annotation in between and older commands on it go stale."""
        if version is not None and self.version is not None and version != self.version:
            self.epoch += 1
        if version is not None:
            self.version = version
        return self

    def __repr__(self) -> str:
        return f"AnnRef({self.id}, v{self.version})"


class EditTarget(Protocol):
    """What commands act on: the canvas state, which calls the store and keeps its own list in step."""

    def store_add(self, ann: Annotation, author: str) -> Annotation: ...

    def store_update(self, annotation_id: int, ann: Annotation, author: str) -> Annotation: ...

    def store_delete(self, annotation_id: int) -> None: ...

    def rebind(self, ref: AnnRef, new_id: int) -> None: ...

    def store_status(self, example_id: int, status: str) -> None: ...

    def status_of(self, example_id: int) -> str: ...


class Command(Protocol):
    label: str

    def do(self, target: EditTarget) -> None: ...

    def undo(self, target: EditTarget) -> None: ...


def _content(ann: Annotation) -> Annotation:
    """The annotation without its store identity (what to send when adding it again)."""
    return replace(ann, id=None, created_at="", version=None)


def _current(cmd: UpdateCommand | AddCommand | DeleteCommand) -> None:
    """Refuse to replay ``cmd`` when someone else's change to its annotation came after it."""
    if cmd.epoch != cmd.ref.epoch:
        raise ConflictError(
            f"annotation {cmd.ref.id} was changed by someone else after this {cmd.label}: replaying it would "
            "overwrite their change, so it was not replayed")


def _stored(ref: AnnRef, saved: Annotation) -> None:
    ref.version = saved.version


def _require(ref: AnnRef) -> int:
    if ref.id is None:
        raise RuntimeError("annotation handle is not bound to a stored annotation")
    return ref.id


@dataclass
class AddCommand:
    ref: AnnRef
    ann: Annotation
    author: str
    label: str = "add"
    epoch: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.epoch = self.ref.epoch

    def do(self, target: EditTarget) -> None:
        _current(self)
        saved = target.store_add(_content(self.ann), self.author)
        assert saved.id is not None
        target.rebind(self.ref, saved.id)
        _stored(self.ref, saved)

    def undo(self, target: EditTarget) -> None:
        _current(self)
        target.store_delete(_require(self.ref))  # the target sends ref.version: refused if changed since
        self.ref.version = None


@dataclass
class UpdateCommand:
    ref: AnnRef
    before: Annotation
    after: Annotation
    author: str
    label: str = "edit"
    epoch: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.epoch = self.ref.epoch

    def do(self, target: EditTarget) -> None:
        _current(self)
        ann = replace(_content(self.after), version=self.ref.version)
        _stored(self.ref, target.store_update(_require(self.ref), ann, self.author))

    def undo(self, target: EditTarget) -> None:
        _current(self)
        ann = replace(_content(self.before), version=self.ref.version)
        _stored(self.ref, target.store_update(_require(self.ref), ann, self.before.author or self.author))


@dataclass
class DeleteCommand:
    ref: AnnRef
    before: Annotation
    author: str
    label: str = "delete"
    epoch: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.epoch = self.ref.epoch

    def do(self, target: EditTarget) -> None:
        _current(self)
        target.store_delete(_require(self.ref))  # the target sends ref.version: refused if changed since
        self.ref.version = None

    def undo(self, target: EditTarget) -> None:
        _current(self)
        saved = target.store_add(_content(self.before), self.before.author or self.author)
        assert saved.id is not None
        target.rebind(self.ref, saved.id)
        _stored(self.ref, saved)


@dataclass
class CompositeCommand:
    """Several commands as one user action (accept all proposals, replace a label by a proposal)."""

    commands: list[Command]
    label: str = "group"

    def do(self, target: EditTarget) -> None:
        done: list[Command] = []
        try:
            for c in self.commands:
                c.do(target)
                done.append(c)
        except BaseException:
            for c in reversed(done):  # all or nothing, as far as the store lets us
                c.undo(target)
            raise

    def undo(self, target: EditTarget) -> None:
        for c in reversed(self.commands):
            c.undo(target)


@dataclass
class StatusCommand:
    """An example's status set by the labeller ("done", "back to new"), or the status a first truth shape
    gave a ``new`` example (then its ``do`` finds the status already set and writes nothing, and its
    ``undo`` puts ``new`` back, so undoing that shape leaves no "annotated" example with no shapes)."""

    example_id: int
    before: str
    after: str
    label: str = "status"

    def do(self, target: EditTarget) -> None:
        if target.status_of(self.example_id) != self.after:
            target.store_status(self.example_id, self.after)

    def undo(self, target: EditTarget) -> None:
        if target.status_of(self.example_id) != self.before:
            target.store_status(self.example_id, self.before)


def makes_truth(cmd: object) -> bool:
    """Does ``cmd`` save a truth (non-proposal) annotation? (The store then marks a new example annotated.)"""
    if isinstance(cmd, AddCommand):
        return not cmd.ann.proposal
    if isinstance(cmd, UpdateCommand):
        return not cmd.after.proposal
    if isinstance(cmd, CompositeCommand):
        return any(makes_truth(c) for c in cmd.commands)
    return False


@dataclass
class History:
    """The undo and redo stacks of one example, and the handles of its annotations."""

    limit: int = 200
    _undo: deque = field(default_factory=deque)
    _redo: list = field(default_factory=list)
    _refs: dict[int, AnnRef] = field(default_factory=dict)

    def ref(self, annotation_id: int | None, version: int | None = None) -> AnnRef:
        """The shared handle of a stored annotation (a fresh unbound one for ``None``); ``version``: the
        one the canvas shows now, for a new edit (see :meth:`AnnRef.seen`)."""
        if annotation_id is None:
            return AnnRef()
        r = self._refs.get(annotation_id)
        if r is None:
            r = self._refs[annotation_id] = AnnRef(annotation_id, version)
        return r.seen(version)

    def rebind(self, ref: AnnRef, new_id: int) -> None:
        if ref.id is not None and self._refs.get(ref.id) is ref:
            del self._refs[ref.id]
        ref.id = new_id
        self._refs[new_id] = ref

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def __len__(self) -> int:
        return len(self._undo)

    def execute(self, cmd: Command, target: EditTarget) -> None:
        """Run ``cmd`` and record it; nothing is recorded when the store refuses it."""
        cmd.do(target)
        self._undo.append(cmd)
        while len(self._undo) > self.limit:
            self._undo.popleft()
        self._redo.clear()

    def undo(self, target: EditTarget) -> Command | None:
        """Undo the last command. If the store refuses (someone else changed it), the command is dropped."""
        if not self._undo:
            return None
        cmd = self._undo.pop()
        cmd.undo(target)
        self._redo.append(cmd)
        return cmd

    def redo(self, target: EditTarget) -> Command | None:
        if not self._redo:
            return None
        cmd = self._redo.pop()
        cmd.do(target)
        self._undo.append(cmd)
        return cmd

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
