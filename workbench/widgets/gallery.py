"""Galleries of example thumbnails: paged, captioned, with an "open in canvas" button per example.

A thin view over ``GalleryState`` (the items and the page on screen). Thumbnails come from a
``thumbnail_fn(example_id)`` the caller supplies (a PIL image, encoded image bytes or an RGB array, e.g.
``render.render_example`` over the store's bytes): the view never touches the store itself, and loads only
the page on screen.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets

from ..errors import ImageError, NotFoundError, ValidationError
from ..text import escape_html
from .static import StaticFallback, compose_grid, png_bundle

__all__ = [
    "ThumbnailFn",
    "GalleryItem",
    "GalleryState",
    "ThumbnailGallery",
    "ErrorGallery",
    "error_caption",
]

ThumbnailFn = Callable[[int], Any]


# ---------------------------------------------------------------------------------------------- gallery
@dataclass(frozen=True)
class GalleryItem:
    example_id: int
    caption: str = ""
    flagged: bool = False


@dataclass
class GalleryState:
    """The items a gallery shows and which page of them is on screen."""

    items: list[GalleryItem] = field(default_factory=list)
    page_size: int = 24
    page: int = 0
    title: str = ""

    def __post_init__(self) -> None:
        if self.page_size < 1:
            raise ValidationError(f"page_size must be at least 1, got {self.page_size}", field="page_size")

    def set_items(self, items: Iterable[GalleryItem], title: str = "") -> None:
        self.items = list(items)
        self.page = 0
        self.title = title

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.items) // self.page_size))

    def page_items(self) -> list[GalleryItem]:
        start = self.page * self.page_size
        return self.items[start : start + self.page_size]

    def go(self, delta: int) -> bool:
        """Move ``delta`` pages (clamped); True when the page changed."""
        new = min(max(self.page + delta, 0), self.pages - 1)
        changed = new != self.page
        self.page = new
        return changed

    def summary(self) -> str:
        if not self.items:
            return f"{self.title}: no examples" if self.title else "no examples"
        start = self.page * self.page_size
        end = start + len(self.page_items())
        head = f"{self.title} · " if self.title else ""
        return f"{head}{start + 1}–{end} of {len(self.items)}"


def _to_pil(thumb: Any, example_id: int) -> Any:
    from PIL import Image

    if isinstance(thumb, Image.Image):
        return thumb
    if isinstance(thumb, bytes | bytearray):
        try:
            img = Image.open(io.BytesIO(thumb))
            img.load()
            return img
        except OSError as exc:
            raise ImageError(f"thumbnail bytes are not an image: {exc}", record=example_id) from None
    try:  # numpy array (H, W, 3) uint8
        return Image.fromarray(thumb)
    except (TypeError, AttributeError):
        raise ValidationError(
            f"thumbnail_fn returned {type(thumb).__name__}; expected a PIL image, image bytes or an array",
            record=example_id,
        ) from None


def _placeholder(size: int, text: str) -> Any:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), "#dddddd")
    ImageDraw.Draw(img).text((8, size // 2 - 6), text, fill="#555555")
    return img


class ThumbnailGallery(StaticFallback, widgets.VBox):
    """Thumbnails of examples in a grid with captions, paged, and an "open in canvas" button per item.

    ``thumbnail_fn(example_id)`` returns a PIL image, encoded image bytes or an RGB array; an example it
    cannot load (``NotFoundError``, ``ImageError``) shows a grey tile naming the problem. ``on_open`` is
    called with the example id when its button is pressed (no button without it).
    """

    def __init__(
        self,
        thumbnail_fn: ThumbnailFn,
        *,
        on_open: Callable[[int], Any] | None = None,
        columns: int = 6,
        thumb_size: int = 160,
        page_size: int = 24,
        cache_size: int = 256,
    ) -> None:
        self.thumbnail_fn = thumbnail_fn
        self.on_open = on_open
        self.columns = columns
        self.thumb_size = thumb_size
        self.state = GalleryState(page_size=page_size)
        self._cache: OrderedDict[int, Any] = OrderedDict()
        self._cache_size = cache_size
        self.header = widgets.HTML()
        self.header.add_class("wb-gallery-header")
        self.prev_button = widgets.Button(description="◀", layout=widgets.Layout(width="40px"))
        self.next_button = widgets.Button(description="▶", layout=widgets.Layout(width="40px"))
        self.prev_button.add_class("wb-gallery-prev")
        self.next_button.add_class("wb-gallery-next")
        self.prev_button.on_click(lambda _b: self._page(-1))
        self.next_button.on_click(lambda _b: self._page(+1))
        self.grid = widgets.GridBox(
            layout=widgets.Layout(
                grid_template_columns=f"repeat({columns}, {thumb_size + 12}px)", grid_gap="6px"
            )
        )
        self.opened: list[int] = []
        super().__init__(
            children=[widgets.HBox([self.prev_button, self.next_button, self.header]), self.grid]
        )
        self.add_class("wb-gallery")
        self._render()

    # ------------------------------------------------------------------ state changes
    def show(self, items: Iterable[GalleryItem | int | Mapping[str, Any]], title: str = "") -> None:
        """Show these items (GalleryItems, example ids, or dicts with ``example_id`` and ``caption``)."""
        self.state.set_items((_item(x) for x in items), title)
        self._render()

    def _page(self, delta: int) -> None:
        if self.state.go(delta):
            self._render()

    @property
    def example_ids(self) -> list[int]:
        """Ids of every item (all pages)."""
        return [it.example_id for it in self.state.items]

    # ------------------------------------------------------------------ drawing
    def thumbnail(self, example_id: int) -> Any:
        """The thumbnail of ``example_id`` as a PIL image (cached)."""
        if example_id in self._cache:
            self._cache.move_to_end(example_id)
            return self._cache[example_id]
        try:
            img = _to_pil(self.thumbnail_fn(example_id), example_id)
        except (NotFoundError, ImageError) as exc:
            img = _placeholder(self.thumb_size, type(exc).__name__.replace("Error", " error"))
        img = img.convert("RGB")
        img.thumbnail((self.thumb_size, self.thumb_size))
        self._cache[example_id] = img
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return img

    def _tile(self, item: GalleryItem) -> Any:
        buf = io.BytesIO()
        self.thumbnail(item.example_id).save(buf, format="JPEG", quality=85)
        image = widgets.Image(
            value=buf.getvalue(), format="jpeg", layout=widgets.Layout(max_width=f"{self.thumb_size}px")
        )
        caption = widgets.HTML(
            f"<div style='font-size:11px;line-height:1.2'>#{item.example_id}"
            f"{' · ' + _escape(item.caption) if item.caption else ''}</div>"
        )
        parts = [image, caption]
        if self.on_open is not None:
            button = widgets.Button(
                description="open in canvas",
                icon="pencil",
                layout=widgets.Layout(width=f"{self.thumb_size}px"),
            )
            button.add_class("wb-open-in-canvas")
            button.on_click(lambda _b, eid=item.example_id: self.open_example(eid))
            parts.append(button)
        tile = widgets.VBox(
            parts,
            layout=widgets.Layout(
                border="2px solid #e00000" if item.flagged else "1px solid #ddd", padding="4px"
            ),
        )
        tile.add_class("wb-gallery-item")
        tile.add_class(f"wb-example-{item.example_id}")
        return tile

    def open_example(self, example_id: int) -> None:
        """What the "open in canvas" button does: ``on_open(example_id)``."""
        self.opened.append(example_id)
        if self.on_open is not None:
            self.on_open(example_id)

    def _render(self) -> None:
        self.grid.children = [self._tile(it) for it in self.state.page_items()]
        self.header.value = _escape(self.state.summary())
        self.prev_button.disabled = self.state.page == 0
        self.next_button.disabled = self.state.page >= self.state.pages - 1

    def contact_sheet(self) -> Any:
        """The current page as one PIL image (what papermill output keeps)."""
        items = self.state.page_items()
        return compose_grid(
            [self.thumbnail(it.example_id) for it in items] or [_placeholder(self.thumb_size, "no examples")],
            columns=self.columns,
            cell=(self.thumb_size, self.thumb_size),
            captions=[f"#{it.example_id} {it.caption}".strip() for it in items] or ["no examples"],
            flags=[it.flagged for it in items] or [False],
        )

    def _static_bundle(self) -> dict[str, Any]:
        bundle: dict[str, Any] = png_bundle(self.contact_sheet())
        bundle["text/plain"] = f"{type(self).__name__}({self.state.summary()})"
        return bundle


def _escape(text: str) -> str:
    return escape_html(text)


def _item(x: GalleryItem | int | Mapping[str, Any]) -> GalleryItem:
    if isinstance(x, GalleryItem):
        return x
    if isinstance(x, Mapping):
        if "example_id" not in x:
            raise ValidationError("gallery item has no example_id", record=dict(x), field="example_id")
        return GalleryItem(int(x["example_id"]), str(x.get("caption", "")), bool(x.get("flagged", False)))
    if isinstance(x, int) and not isinstance(x, bool):
        return GalleryItem(x)
    raise ValidationError(f"gallery item must be an example id or a mapping, got {x!r}", field="example_id")


def error_caption(item: Mapping[str, Any]) -> str:
    """``"likely label error · score 0.83 · true cat · predicted dog"`` from a mined example's dict."""
    parts = [str(item.get("reason", "")).replace("_", " ")]
    score = item.get("score")
    if isinstance(score, int | float) and not isinstance(score, bool):
        parts.append(f"score {score:.3g}")
    for key in ("true", "pred", "predicted", "label"):
        if item.get(key) is not None:
            parts.append(f"{key} {item[key]}")
    return " · ".join(p for p in parts if p)


def _error_dict(error: Any) -> Mapping[str, Any]:
    return error.to_dict() if hasattr(error, "to_dict") else error


class ErrorGallery(ThumbnailGallery):
    """The mined examples (``MinedExample`` objects or their dicts ``{example_id, reason, score, ...}``), in
    the order given (the miner ranks them), each captioned with its reason, score and classes, likely label
    errors framed red, and an "open in canvas" button calling ``on_open(example_id)``."""

    def __init__(
        self,
        errors: Sequence[Any],
        thumbnail_fn: ThumbnailFn,
        *,
        on_open: Callable[[int], Any] | None = None,
        title: str = "Examples to review",
        **kwargs: Any,
    ) -> None:
        super().__init__(thumbnail_fn, on_open=on_open, **kwargs)
        self.add_class("wb-error-gallery")
        self.errors = [_error_dict(e) for e in errors]
        items = []
        for e in self.errors:
            flagged = "likely_label_error" in (e.get("reasons") or [e.get("reason")])
            items.append(GalleryItem(_item(e).example_id, error_caption(e), flagged))
        self.show(items, title)
