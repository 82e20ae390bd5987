"""Keyboard focus for the annotation canvas: a tiny anywidget that lives inside the canvas widget.

ipycanvas has no focus API from Python, and a click on any toolbar button takes the keyboard focus away
from the ``<canvas>`` (Enter then no longer closes a polygon). This widget's script, running in the page:

* in a Voilà dashboard (not in JupyterLab) focuses the canvas when it appears, so the keyboard works at once;
* gives the focus back to the canvas after every click on a button of the same canvas widget (at once, in
  the browser: no round trip to the kernel, so the next key press already reaches the canvas);
* reports the release of Space (ipycanvas sends key presses only), which ends a Space-drag pan;
* on a message from Python, focuses an element of the widget (the class picker, the canvas) or scrolls
  the widget into view ("open in canvas").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anywidget

__all__ = ["FocusKeeper"]

_ESM = r"""
export default {
  render({ model, el }) {
    const root = () => el.closest(".wb-annotation-canvas");
    const canvas = () => { const r = root(); return r ? r.querySelector("canvas.wb-canvas") : null; };
    const focusCanvas = () => { const c = canvas(); if (c) c.focus({ preventScroll: true }); };
    const onClick = (e) => {
      const t = e.target;
      if (!t || !t.closest) return;
      if (t.closest("button") && !t.closest("input, select, textarea")) setTimeout(focusCanvas, 0);
    };
    const onKeyUp = (e) => {
      if (e.key === " " && e.target === canvas()) model.send({ event: "space_up" });
    };
    let attached = null, tries = 0;
    const attach = () => {
      const r = root();
      if (!r) { if (tries++ < 600) setTimeout(attach, 50); return; }
      attached = r;
      r.setAttribute("data-wb-focus", "attached");  // a hook for tests: the script runs
      r.addEventListener("click", onClick);
      r.addEventListener("keyup", onKeyUp, true);
      // a Voila dashboard (not JupyterLab) starts with the keyboard on the canvas: as soon as the canvas
      // is there and nothing else holds the focus (the field the name was typed in may still be leaving)
      if (document.body.hasAttribute("data-voila")) {
        const free = () => { const a = document.activeElement; return !a || a === document.body || !a.isConnected; };
        const tryFocus = (n) => {
          const c = canvas();
          if (c && c.isConnected && free()) c.focus({ preventScroll: true });
          else if (n > 0 && document.activeElement !== c) setTimeout(() => tryFocus(n - 1), 50);
        };
        tryFocus(100);
      }
    };
    attach();
    const onMsg = (msg) => {
      const r = root();
      if (!r) return;
      if (msg.focus === "canvas") focusCanvas();
      else if (msg.focus) {
        const host = r.querySelector(msg.focus);
        const t = host && (host.matches("input, select, textarea") ? host : host.querySelector("input, select, textarea"));
        if (t) { t.focus(); if (t.select) t.select(); }
      }
      if (msg.scroll) r.scrollIntoView({ block: "start" });
    };
    model.on("msg:custom", onMsg);
    return () => {
      model.off("msg:custom", onMsg);
      if (attached) {
        attached.removeEventListener("click", onClick);
        attached.removeEventListener("keyup", onKeyUp, true);
      }
    };
  }
};
"""


class FocusKeeper(anywidget.AnyWidget):
    """Put it inside the ``.wb-annotation-canvas`` widget; ``on_space_up`` is called when Space is released."""

    _esm = _ESM

    def __init__(self, on_space_up: Callable[[], Any] | None = None) -> None:
        super().__init__()
        self.layout.display = "none"  # nothing to see: it only runs its script
        self._on_space_up = on_space_up
        self.on_msg(self._handle)
        self.add_class("wb-focus-keeper")

    def _handle(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "space_up" and self._on_space_up is not None:
            self._on_space_up()

    def focus(self, selector: str = "canvas") -> None:
        """Focus the canvas (``"canvas"``) or the first input inside ``selector`` (a CSS selector)."""
        self.send({"focus": selector})

    def scroll_into_view(self) -> None:
        self.send({"scroll": True})
