"""Static pictures for widgets: what a notebook keeps where no browser renders the live widget.

papermill, nbconvert and a notebook opened without its kernel show only a cell's stored outputs. Every
Workbench widget therefore adds a static entry next to its live view in its mimebundle: the plotly figure
(``application/vnd.plotly.v1+json`` + ``text/html``) for plots, ``image/png`` for image grids. JupyterLab,
Notebook 7 and Voilà prefer the live widget view; the others fall back to the static entry.

``StaticFallback`` is the mixin that does it for an ipywidgets container. It also displays with a display id,
so ``update_static()`` can rewrite the stored output once the picture is final (a finished training run),
instead of leaving the empty plot it had when the cell first displayed it.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "PLOTLY_MIME",
    "PNG_MIME",
    "WIDGET_MIME",
    "STATIC_PLOTLYJS",
    "figure_bundle",
    "png_bundle",
    "png_bytes",
    "StaticFallback",
    "compose_grid",
    "figure_html",
    "sync_figure_widget",
    "resync_widget_state",
]

PLOTLY_MIME = "application/vnd.plotly.v1+json"
PNG_MIME = "image/png"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

# How the static HTML loads plotly.js: "cdn" keeps each output small (a script tag); True embeds the
# 3.5 MB bundle in every output (works offline). Change it before displaying for offline reports.
STATIC_PLOTLYJS: str | bool = "cdn"


_CONFIG = {"displaylogo": False, "responsive": True}


def figure_html(fig: Any, *, include_plotlyjs: str | bool | None = None) -> str:
    """A ``<div>`` drawing the figure (plotly.js from ``STATIC_PLOTLYJS`` unless told otherwise)."""
    import plotly.io as pio

    return pio.to_html(
        fig,
        include_plotlyjs=STATIC_PLOTLYJS if include_plotlyjs is None else include_plotlyjs,
        full_html=False,
        validate=False,
        config=_CONFIG,
    )


def figure_bundle(fig: Any, *, include_plotlyjs: str | bool | None = None) -> dict[str, Any]:
    """The static mimebundle of a plotly figure: its JSON (for renderers with plotly) and HTML."""
    import plotly.io as pio

    spec = json.loads(pio.to_json(fig, validate=False))
    spec.setdefault("layout", {})
    spec["config"] = dict(_CONFIG)
    return {PLOTLY_MIME: spec, "text/html": figure_html(fig, include_plotlyjs=include_plotlyjs)}


def resync_widget_state(fw: Any) -> None:
    """Make a ``go.FigureWidget``'s synced model state equal to its current figure.

    plotly sends later changes to the browser as deltas and leaves the model's full-state traits as they
    were at construction; a browser that connects afterwards (Voilà runs the notebook before the page
    attaches, a reloaded page, a second view) builds its view from that stale state. Re-assigning the traits
    keeps it current; views already on screen ignore it (their handlers for it do nothing).
    """
    from copy import deepcopy

    fw._widget_data = deepcopy(fw._data)
    fw._widget_layout = deepcopy(fw._layout_obj._props)


def sync_figure_widget(fw: Any, fig: Any) -> None:
    """Make the live ``fw`` show ``fig`` in one ``batch_update`` (one message), then resync its state.

    Traces are updated in place when ``fig`` has the same trace types in the same order; otherwise they
    are replaced. The layout is merged (the template is kept).
    """
    same = len(fw.data) == len(fig.data) and all(
        a.type == b.type for a, b in zip(fw.data, fig.data, strict=True)
    )
    layout = fig.layout.to_plotly_json()
    layout.pop("template", None)
    for key in ("shapes", "annotations"):
        layout.setdefault(key, [])
    if same:
        with fw.batch_update():
            for dst, src in zip(fw.data, fig.data, strict=True):
                props = src.to_plotly_json()
                props.pop("type", None)
                props.pop("uid", None)
                dst.update(props, overwrite=True)
            fw.update_layout(layout, overwrite=False)
            fw.layout.shapes = layout["shapes"]
            fw.layout.annotations = layout["annotations"]
    else:
        fw.data = ()
        fw.add_traces(list(fig.data))
        with fw.batch_update():
            fw.update_layout(layout)
            fw.layout.shapes = layout["shapes"]
            fw.layout.annotations = layout["annotations"]
    resync_widget_state(fw)


def png_bytes(image: Any) -> bytes:
    """PNG bytes of a PIL image."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def png_bundle(image: Any) -> dict[str, str]:
    """The static mimebundle of a PIL image (base64, as Jupyter stores ``image/png``)."""
    return {PNG_MIME: base64.b64encode(png_bytes(image)).decode("ascii")}


class StaticFallback:
    """Mixin for an ipywidgets widget: its mimebundle carries a static picture too.

    Subclasses implement ``_static_bundle()`` (a dict of mimetype -> data; ``text/plain`` is optional).
    Put the mixin before the ipywidgets base class: ``class View(StaticFallback, widgets.VBox)``.
    """

    _static_handles: list[Any]

    def _static_bundle(self) -> Mapping[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def static_bundle(self) -> dict[str, Any]:
        """The static picture of this view (mimetype -> data), as its mimebundle carries it."""
        return dict(self._static_bundle())

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(super()._repr_mimebundle_(**kwargs) or {})  # type: ignore[misc]
        bundle.update(self._static_bundle())
        return bundle

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if self._repr_mimebundle_ is None:  # type: ignore[truthy-function]  # ipywidgets' close() unsets it
            return
        handle = display(self._repr_mimebundle_(), raw=True, display_id=True)
        if handle is not None:
            if not hasattr(self, "_static_handles"):
                self._static_handles = []
            self._static_handles.append(handle)

    def update_static(self) -> int:
        """Rewrite every output this widget was displayed in with its current static picture.

        Returns how many outputs were updated. The live view re-renders once; call it at moments where the
        picture is final (a run ended, a report was refreshed), not on every change.
        """
        handles = getattr(self, "_static_handles", [])
        if not handles or self._repr_mimebundle_ is None:  # type: ignore[truthy-function]  # closed
            return 0
        bundle = self._repr_mimebundle_()
        for handle in handles:
            handle.update(bundle, raw=True)
        return len(handles)


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def compose_grid(
    images: list[Any],
    *,
    columns: int,
    cell: tuple[int, int] = (192, 192),
    captions: list[str] | None = None,
    flags: list[bool] | None = None,
    caption_lines: int = 2,
    background: str = "#ffffff",
) -> Any:
    """One PIL image holding ``images`` in a grid: each scaled to fit ``cell`` (width, height) and
    centred, its caption underneath (up to ``caption_lines`` lines), a red frame where ``flags`` is true.
    """
    from PIL import Image, ImageDraw

    if columns < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    n = len(images)
    captions = captions or [""] * n
    flags = flags or [False] * n
    font = _font(11)
    line_h = 14
    pad = 6
    cw, ch = cell
    cap_h = line_h * caption_lines if any(captions) else 0
    rows = max(1, -(-n // columns))
    cols = min(columns, max(n, 1))
    sheet = Image.new("RGB", (cols * (cw + pad) + pad, rows * (ch + cap_h + pad) + pad), background)
    draw = ImageDraw.Draw(sheet)
    for k, img in enumerate(images):
        r, c = divmod(k, columns)
        x0, y0 = pad + c * (cw + pad), pad + r * (ch + cap_h + pad)
        thumb = _fit(img.convert("RGB"), cw, ch)
        sheet.paste(thumb, (x0 + (cw - thumb.width) // 2, y0 + (ch - thumb.height) // 2))
        if flags[k]:
            draw.rectangle([x0 - 2, y0 - 2, x0 + cw + 1, y0 + ch + 1], outline="#e00000", width=3)
        lines = _wrap(captions[k], font, cw, caption_lines, draw)
        for i, text in enumerate(lines):
            draw.text(
                (x0, y0 + ch + 1 + i * line_h), text, fill="#b00000" if flags[k] else "#222222", font=font
            )
    return sheet


def _fit(img: Any, width: int, height: int) -> Any:
    """``img`` scaled (down or up) to fit ``width`` x ``height``; small images are enlarged with nearest
    neighbour so their pixels stay crisp (an 8x8 digit stays readable)."""
    from PIL import Image

    scale = min(width / img.width, height / img.height)
    if scale == 1.0:
        return img
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    method = Image.Resampling.NEAREST if scale >= 2 else Image.Resampling.BILINEAR
    return img.resize(size, method)


def _wrap(text: str, font: Any, width: int, max_lines: int, draw: Any) -> list[str]:
    words = []
    for word in text.split():  # a word wider than the cell is cut into pieces that fit
        while draw.textlength(word, font=font) > width and len(word) > 1:
            cut = len(word) - 1
            while cut > 1 and draw.textlength(word[:cut], font=font) > width:
                cut -= 1
            words.append(word[:cut])
            word = word[cut:]
        words.append(word)
    lines: list[str] = []
    cur = ""
    for word in words:
        trial = f"{cur} {word}".strip()
        if draw.textlength(trial, font=font) <= width or not cur:
            cur = trial
        else:
            lines.append(cur)
            cur = word
    if cur:
        lines.append(cur)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        while last and draw.textlength(last + "…", font=font) > width:
            last = last[:-1]
        lines[-1] = last + "…"
    return lines
