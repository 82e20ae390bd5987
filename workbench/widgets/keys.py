"""The canvas key map: one table that the key handler resolves AND the shortcut sheet (``?``) lists.

Keys are named as the browser's ``KeyboardEvent.key`` names them (a letter lower-cased), with ``ctrl+`` and
``shift+`` prefixes where a modifier changes the meaning (Cmd counts as Ctrl). A binding may apply only
while a shape is *deliberately* selected (clicked or reached with Tab) or only while none is: the arrow
keys nudge a selected shape and browse otherwise (CVAT's habit); PageUp / PageDown always browse.

Class keys follow the class list: ``1``..``9`` then ``0`` for the 10th class; more classes are reached
with the type-ahead class picker (``c``). When every class name is a single digit (the digits sample:
"0".."9"), the key IS the name: ``3`` picks class "3", never the third class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..text import escape_html

__all__ = ["Binding", "BINDINGS", "KeyMap", "class_keys", "shortcut_sheet_html", "NUDGE_STEP", "NUDGE_BIG"]

NUDGE_STEP = 1.0  # image px per arrow press on a selected shape
NUDGE_BIG = 10.0  # with Shift


@dataclass(frozen=True)
class Binding:
    keys: tuple[str, ...]
    action: str
    help: str
    group: str
    when: str = "always"  # always | selected (a deliberately selected shape) | unselected


def _arrows(prefix: str, verb: str, big: str) -> list[Binding]:
    out = []
    for key, (dx, dy) in {
        "ArrowLeft": (-1, 0),
        "ArrowRight": (1, 0),
        "ArrowUp": (0, -1),
        "ArrowDown": (0, 1),
    }.items():
        for shift, step in (("", NUDGE_STEP), ("shift+", NUDGE_BIG)):
            out.append(
                Binding(
                    (f"{prefix}{shift}{key}",),
                    f"{verb}:{dx * step:g}:{dy * step:g}",
                    "",
                    "edit",
                    "selected",
                )
            )
    return out


BINDINGS: tuple[Binding, ...] = (
    Binding(("n", "PageDown"), "next", "next image (status unchanged)", "browse"),
    Binding(("ArrowRight",), "next", "next image, when no shape is selected", "browse", "unselected"),
    Binding(("PageUp",), "previous", "previous image (status unchanged)", "browse"),
    Binding(("ArrowLeft",), "previous", "previous image, when no shape is selected", "browse", "unselected"),
    Binding(("u",), "next_new", "next image still new (unlabelled)", "browse"),
    Binding(("g",), "goto_field", "go to an image number (type it, Enter)", "browse"),
    Binding(("Enter",), "done", "done: mark the image annotated (no shapes = a confirmed negative) "
            "and go on; closes a polygon being drawn", "status"),
    Binding(("shift+Enter",), "mark_new", "set the image back to new", "status"),
    Binding(("b",), "tool:box", "box tool", "tools"),
    Binding(("p",), "tool:polygon", "polygon tool", "tools"),
    Binding(("r",), "tool:brush", "brush tool", "tools"),
    Binding(("e",), "tool:eraser", "eraser tool", "tools"),
    Binding(("v",), "tool:select", "select tool", "tools"),
    Binding(("h",), "tool:pan", "pan tool", "tools"),
    Binding((" ",), "pan_hold", "hold Space and drag: pan", "tools"),
    Binding(("f",), "reset_view", "fit the image", "view"),
    Binding(("+", "="), "zoom_in", "zoom in", "view"),
    Binding(("-",), "zoom_out", "zoom out", "view"),
    Binding(("[",), "brush_smaller", "smaller brush", "tools"),
    Binding(("]",), "brush_larger", "larger brush", "tools"),
    Binding(("Tab",), "select_next", "select the next shape", "edit"),
    Binding(("shift+Tab",), "select_previous", "select the previous shape", "edit"),
    Binding(("Escape",), "cancel", "cancel the drawing, else deselect", "edit"),
    Binding(("Delete", "Backspace"), "delete", "delete the selected shape (classification: the label)",
            "edit"),
    Binding(("ctrl+z",), "undo", "undo", "edit"),
    Binding(("ctrl+shift+z", "ctrl+y"), "redo", "redo", "edit"),
    Binding(("ctrl+s",), "retry_save", "save the shapes the store refused (shown dashed, unsaved) again", "edit"),
    *_arrows("", "nudge", ""),
    *_arrows("ctrl+", "grow", ""),
    Binding(("a",), "accept", "accept the selected (or best) proposal", "review"),
    Binding(("x",), "reject", "reject the selected (or best) proposal", "review"),
    Binding(("shift+a",), "accept_all", "accept every proposal", "review"),
    Binding(("c",), "class_picker", "type-ahead class picker", "classes"),
    Binding(("?",), "help", "show / hide this sheet", "view"),
)

_ARROW_HELP = (
    ("arrows (Shift: 10 px)", "move the selected shape by 1 px", "edit"),
    ("Ctrl + arrows (Shift: 10 px)", "resize the selected box: → ↓ grow, ← ↑ shrink", "edit"),
)


def class_keys(names: Sequence[str]) -> dict[str, str]:
    """``key -> class name``: the digits themselves when every name is one digit, else 1..9, 0."""
    if names and all(len(n) == 1 and n.isdigit() for n in names) and len(set(names)) == len(names):
        return {n: n for n in names}
    keys = [*"123456789", "0"]
    return {k: n for k, n in zip(keys, names, strict=False)}


class KeyMap:
    """The bindings of one canvas: the fixed table plus its class keys."""

    def __init__(self, class_names: Sequence[str]) -> None:
        self.classes = class_keys(class_names)
        self.bindings: list[Binding] = [
            *BINDINGS,
            *(Binding((k,), f"class:{n}", f"class {n}", "classes") for k, n in self.classes.items()),
        ]
        self._by_key: dict[str, list[Binding]] = {}
        for b in self.bindings:
            for k in b.keys:
                self._by_key.setdefault(k, []).append(b)

    def key_of_class(self, name: str) -> str | None:
        return next((k for k, n in self.classes.items() if n == name), None)

    def resolve(self, key: str, shift: bool = False, ctrl: bool = False, selected: bool = False) -> str | None:
        """The action bound to a key press, or None. A Shift binding wins; else Shift is ignored."""
        k = key.lower() if len(key) == 1 else key
        prefix = "ctrl+" if ctrl else ""
        names = [prefix + "shift+" + k, prefix + k] if shift else [prefix + k]
        for name in names:
            for b in self._by_key.get(name, ()):
                if b.when == "always" or (b.when == "selected") == selected:
                    return b.action
        return None

    def actions(self) -> set[str]:
        return {b.action for b in self.bindings}


def _key_label(k: str) -> str:
    return {" ": "Space", "ArrowLeft": "←", "ArrowRight": "→", "ArrowUp": "↑", "ArrowDown": "↓"}.get(
        k, k.replace("ctrl+", "Ctrl+").replace("shift+", "Shift+")
    )


def shortcut_sheet_html(keymap: KeyMap, tools: Sequence[str] = ()) -> str:
    """The shortcut sheet: every binding of ``keymap`` (tools this canvas lacks left out), escaped."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for b in keymap.bindings:
        if not b.help:
            continue
        if b.action.startswith("tool:") and b.action[5:] not in tools:
            continue
        if b.action.startswith("brush_") and "brush" not in tools:
            continue
        groups.setdefault(b.group, []).append((" / ".join(_key_label(k) for k in b.keys), b.help))
    for keys, text, group in _ARROW_HELP:
        groups.setdefault(group, []).append((keys, text))
    rows = []
    for group, items in groups.items():
        rows.append(f"<tr><th colspan='2' style='text-align:left;padding-top:6px'>{escape_html(group)}</th></tr>")
        rows += [
            f"<tr><td style='padding-right:12px'><kbd>{escape_html(k)}</kbd></td><td>{escape_html(t)}</td></tr>"
            for k, t in items
        ]
    if not keymap.classes:
        rows.append("<tr><td colspan='2'>no classes yet</td></tr>")
    return "<table class='wb-shortcuts-table' style='font-size:12px'>" + "".join(rows) + "</table>"
