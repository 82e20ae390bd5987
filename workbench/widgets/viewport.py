"""How big the canvas can be on this screen, and who gets the mouse wheel (a tiny anywidget + pure maths).

The browser knows the room there is; the kernel does not. :class:`ViewportProbe` is a zero-height
anywidget placed inside the canvas widget: its script reports the width of the widget's container, the
visible height of what scrolls the page (the window; in JupyterLab the notebook panel), where the canvas
starts in it (scrolled to the top) and the height of the toolbar and of the message line, again on every
window or container resize. :func:`fit_canvas_size` turns that
into the canvas size (kept here, without a browser, so tests pin the rules):

* the width is the container's width (a wide window gets a wide canvas);
* the height lets the whole canvas be seen: if the canvas fits below the page's header with the page
  scrolled to the top, that much; when the header leaves too little room (under 60% of a window), the
  window's height less the toolbar and the message line, so scrolling the toolbar to the top of the
  window shows the whole canvas;
* never smaller than ``MIN_SIZE`` (the page scrolls rather than the canvas shrinking to nothing).

The wheel: ipycanvas' script calls ``preventDefault`` on every wheel event over its canvas (and turns it
into a zoom), so a page with a canvas cannot be scrolled with the mouse wheel over the canvas. The probe
puts a capturing wheel listener on the window: over this widget's canvas, a wheel with neither Ctrl nor
Cmd held, unless the user gave the canvas the focus with a click on it, is stopped there
(``stopPropagation``, no ``preventDefault``): it never reaches ipycanvas, and the browser scrolls the page.
With Ctrl/Cmd held, or once the user clicked the canvas (until a press elsewhere), ipycanvas gets the wheel
and the canvas zooms. Focus given by script (a Voilà dashboard focuses its canvas so the keyboard works at
once; the focus keeper gives it back after a toolbar click) leaves the wheel to the page.
A press on the canvas focuses it without scrolling (``focus({preventScroll: true})``): the browser
would otherwise scroll a canvas that is partly off screen into view, under the pointer, mid-drag.
"""

from __future__ import annotations

from dataclasses import dataclass

import anywidget
import traitlets

__all__ = ["MIN_SIZE", "Room", "fit_canvas_size", "ViewportProbe"]

MIN_SIZE = (320, 240)  # css px
MARGIN = 8  # css px kept free under the canvas
HEADER_ROOM = 0.6  # below this share of the scrolled-to-toolbar height, the header is scrolled away


@dataclass(frozen=True)
class Room:
    """What the browser reports, in CSS px."""

    width: float  # the container's width
    window_height: float  # the visible height of what scrolls the page (the window, Lab's notebook panel)
    canvas_top: float  # the canvas' top in what scrolls, scrolled to the top
    toolbar_height: float  # from the widget's top to the canvas' top
    below: float  # what the widget shows under the canvas (the message line)


def fit_canvas_size(room: Room, minimum: tuple[int, int] = MIN_SIZE) -> tuple[int, int]:
    """The canvas size (css px = canvas px) that ``room`` allows (rules in the module's docstring)."""
    width = int(room.width)
    at_top = room.window_height - room.canvas_top - room.below - MARGIN
    scrolled = room.window_height - room.toolbar_height - room.below - MARGIN
    height = int(at_top if at_top >= HEADER_ROOM * scrolled else scrolled)
    return (max(width, minimum[0]), max(height, minimum[1]))


_ESM = r"""
function render({ model, el }) {
  el.style.cssText = "width:100%;height:0;margin:0;padding:0;overflow:hidden";
  let frame = 0;
  const root = () => el.closest(".wb-annotation-canvas");
  const canvas = () => { const r = root(); return r ? r.querySelector("canvas.wb-canvas") : null; };
  const measure = () => {
    frame = 0;
    const r = root(), c = canvas();
    if (!r || !c || !el.isConnected) { frame = requestAnimationFrame(measure); return; }
    const rb = r.getBoundingClientRect(), cb = c.getBoundingClientRect();
    const msg = r.querySelector(".wb-message");
    // The page scrolls the window, or a panel of fixed height (JupyterLab's notebook): the room is what
    // shows of it, the canvas' top is measured from its content's top. (Only these known panels: an
    // element that grows with its content would make the canvas chase its own size.)
    const panel = c.closest(".jp-WindowedPanel-outer, .jp-NotebookPanel-notebook");
    const o = panel ? getComputedStyle(panel).overflowY : "";
    const box = (o === "auto" || o === "scroll") && panel.clientHeight > 0 ? panel : null;
    let scrolled = window.scrollY;  // any element between may scroll too (Voila scrolls one): add them
    for (let p = c.parentElement; p && p !== box; p = p.parentElement) scrolled += p.scrollTop;
    const view = box
      ? { top: box.getBoundingClientRect().top, height: Math.min(box.clientHeight, window.innerHeight),
          scrolled: scrolled + box.scrollTop }
      : { top: 0, height: window.innerHeight, scrolled: scrolled };
    const room = {
      width: Math.floor(el.getBoundingClientRect().width),
      window_height: view.height,
      canvas_top: cb.top - view.top + view.scrolled,
      toolbar_height: cb.top - rb.top,
      below: msg ? msg.getBoundingClientRect().height : 0,
    };
    if (room.width <= 0) return;  // hidden (another tab): measured again when shown
    const old = model.get("room") || {};
    if (Object.keys(room).some((k) => Math.abs((old[k] || 0) - room[k]) >= 1)) {
      model.set("room", room);
      model.save_changes();
    }
  };
  const later = () => { if (!frame) frame = requestAnimationFrame(measure); };
  const ro = new ResizeObserver(later);
  ro.observe(el);
  window.addEventListener("resize", later);
  // Focus the user gave with the pointer: a dashboard focuses its canvas by script (so the keyboard works
  // at once) and after every toolbar click, which must not turn the wheel into a zoom.
  let pointerFocus = false;
  const wheel = (e) => {
    const c = canvas();
    if (!c || e.target !== c || !model.get("wheel_needs_focus")) return;
    if (e.ctrlKey || e.metaKey || (pointerFocus && document.activeElement === c)) return;  // ipycanvas zooms
    e.stopPropagation();  // never reaches ipycanvas (which would preventDefault): the page scrolls
  };
  window.addEventListener("wheel", wheel, { capture: true, passive: true });
  // A click gives the canvas the focus, and the browser would scroll a canvas that is not wholly on
  // screen into view: the canvas would move under the pointer in the middle of a drag. Focus it first,
  // without scrolling.
  const press = (e) => {
    const c = canvas();
    pointerFocus = !!c && e.target === c;  // a press anywhere else: the wheel scrolls the page again
    if (pointerFocus && document.activeElement !== c) c.focus({ preventScroll: true });
  };
  window.addEventListener("mousedown", press, { capture: true });
  const leave = (e) => { if (e.target === canvas()) pointerFocus = false; };  // focus gone: given back by script is not by the user
  window.addEventListener("focusout", leave, { capture: true });
  later();
  return () => {
    ro.disconnect();
    window.removeEventListener("resize", later);
    window.removeEventListener("wheel", wheel, { capture: true });
    window.removeEventListener("mousedown", press, { capture: true });
    window.removeEventListener("focusout", leave, { capture: true });
    if (frame) cancelAnimationFrame(frame);
  };
}
export default { render };
"""


class ViewportProbe(anywidget.AnyWidget):
    """Reports the room around the canvas (``room``: a :class:`Room` as a dict) and gates the wheel."""

    _esm = _ESM
    room = traitlets.Dict().tag(sync=True)
    wheel_needs_focus = traitlets.Bool(True).tag(sync=True)

    def reported(self) -> Room | None:
        """The last room the browser reported, or None (no browser yet, or a malformed report)."""
        r = self.room
        try:
            return Room(*(float(r[k]) for k in Room.__dataclass_fields__))
        except (KeyError, TypeError, ValueError):
            return None
