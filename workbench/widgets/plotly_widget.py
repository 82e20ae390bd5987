"""A plotly ``FigureWidget`` whose browser side imports plotly once per page, after the model is set up.

plotly's ``FigureWidget`` is an anywidget whose ES module is plotly's whole widget bundle (about 5 MB).
anywidget (0.11) gives a model 2 s to import its module; past that the model drops every later message
from Python (the console says ``[anywidget] Failed to initialize model.``), so a figure updated after the
page opened (live training curves, a refreshed dataset overview) stays frozen at what it first showed.
Measured in headless Chromium on a 2-core machine: one import of the bundle takes 2-3 s, three figures on
one page 7 s.

:class:`FigureWidget` ships a small module instead. It imports the bundle, sent as its own trait, once
per page (shared by every figure) without holding up the model's set-up, then hands the model to plotly's
own widget (``initialize`` / ``render``). plotly's view draws from ``_widget_data`` / ``_widget_layout``,
which ``static.resync_widget_state`` keeps current, so updates made while the bundle loads show too.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import plotly
import plotly.graph_objects as go
import traitlets

__all__ = ["FigureWidget", "LOADER_ESM"]

LOADER_ESM = """
const KEY = Symbol.for("workbench.plotly-widget-bundle");

function bundle(model) {  // one import per page, whichever figure asks first
  if (!globalThis[KEY]) {
    const url = URL.createObjectURL(new Blob([model.get("_plotly_bundle")], { type: "text/javascript" }));
    globalThis[KEY] = import(url).finally(() => URL.revokeObjectURL(url));
  }
  return globalThis[KEY];
}

export default () => {
  let plotlyWidget = null;
  let loaded = null;
  return {
    initialize({ model }) {  // not awaited: anywidget allows a model 2 s to get ready
      loaded = bundle(model).then((mod) => {
        plotlyWidget = mod.default();
        return plotlyWidget.initialize({ model });
      });
      loaded.catch((err) => console.error("plotly widget bundle failed to load", err));
    },
    async render({ model, el }) {
      await loaded;
      return plotlyWidget.render({ model, el });
    },
  };
};
"""


@lru_cache(maxsize=1)
def _bundle() -> str:
    return (Path(plotly.__file__).parent / "package_data" / "widgetbundle.js").read_text(encoding="utf-8")


class FigureWidget(go.FigureWidget):
    """``go.FigureWidget`` with the loader above as its module; use it exactly like plotly's."""

    _esm = LOADER_ESM
    _plotly_bundle = traitlets.Unicode().tag(sync=True)

    @traitlets.default("_plotly_bundle")
    def _default_bundle(self) -> str:
        return _bundle()
