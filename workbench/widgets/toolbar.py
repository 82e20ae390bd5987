"""The annotation canvas's toolbar: buttons, class buttons, the class picker, the image-number field and
the shortcut sheet, as a mixin of :class:`~workbench.widgets.canvas.AnnotationCanvas`.

Every button says its key in its tooltip, read from the same key table the key handler resolves
(``keys.py``); every press goes through the canvas's ``_act`` (a refused edit becomes a message) and clears
the last message. After a click the page gives the keyboard back to the canvas (``focus.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import ipywidgets as W

from ..data.task_types import type_info
from .keys import shortcut_sheet_html

if TYPE_CHECKING:
    from .canvas_state import CanvasState
    from .focus import FocusKeeper

__all__ = ["CanvasToolbar", "css_name"]

_TOOL_LABELS = {
    "box": "Box",
    "select": "Select",
    "polygon": "Polygon",
    "brush": "Brush",
    "eraser": "Eraser",
    "pan": "Pan",
}


def css_name(name: str) -> str:
    """A class name as it appears in CSS classes (``wb-class-<css_name>``)."""
    return re.sub(r"[^a-z0-9_-]", "-", name.lower())



class CanvasToolbar:
    """The toolbar half of the canvas widget (a mixin: the widget provides the attributes below)."""

    state: CanvasState
    focus: FocusKeeper
    _act: Callable[..., None]
    _build_view_controls: Callable[[], W.HBox]

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
        if not type_info(s.type).fixed_classes:
            edit += [self.new_class, self.add_class_button]
        edit += [self.delete_button, self.accept_button, self.reject_button]
        if type_info(s.type).regions:
            edit.append(self.accept_all_button)
        edit.append(self._build_view_controls())
        for row in (nav, edit_row := W.HBox(edit)):  # wrap on a narrow window rather than overflow
            row.layout.flex_flow = "row wrap"
        self.toolbar = W.VBox([nav, edit_row])
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
        if type_info(s.type).image_level:  # the example's own class, not the last one used
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
