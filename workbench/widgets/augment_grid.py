"""The augmentation preview: the dataset's pipeline as toggles and sliders over a grid of seeded draws.

Rows are examples, columns are draws: the original first, then draw ``j`` made with the seed training uses
for that example at epoch ``first_epoch + j`` (``draw_seed(base_seed, epoch, example_id)``), so the grid
shows exactly what the network will see. Boxes and masks are drawn in the class colours, each draw is
captioned with the parameters that fired, and draws that lost boxes (dropped) or cut them at the border
(clipped) get a red frame. Re-roll moves to a new base seed; save hands the edited config to a callback.

``AugmentGridState`` holds all of it without widgets (tested without a kernel); ``AugmentationGrid`` is
the view: one composed PNG in an ``ipywidgets.Image`` (fast to update), plus captions as text.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import ipywidgets as widgets
import numpy as np

from ..augment.specs import ParamSpec, transform_spec
from ..data.records import Annotation, ClassDef
from ..errors import ValidationError, WorkbenchError
from ..text import escape_html
from .augment_state import (
    AugmentGridState,
    Draw,
    GridExample,
    Sampler,
    SliderSpec,
    sample_annotations,
    slider_specs,
)
from .static import StaticFallback, compose_grid, png_bundle

__all__ = ["AugmentationGrid"]


# ---------------------------------------------------------------------------------------------- view
def _original_annotations(ex: GridExample, dataset_type: str) -> list[Annotation]:
    orig = SimpleNamespace(
        boxes=ex.boxes if ex.boxes is not None else np.zeros((0, 4)), labels=ex.labels, masks=ex.masks
    )
    return sample_annotations(orig, dataset_type, ex.label)


class AugmentationGrid(StaticFallback, widgets.VBox):
    """Toggles and sliders for the pipeline, the grid of draws, re-roll and save.

    ``on_save(config)`` stores the edited pipeline (for example with the dataset); the button is off until
    something changed. ``classes`` give the colours.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        dataset_type: str,
        examples: Sequence[GridExample],
        classes: Sequence[ClassDef] | Mapping[str, str] = (),
        *,
        draws: int = 4,
        base_seed: int = 0,
        first_epoch: int = 1,
        on_save: Callable[[dict[str, Any]], Any] | None = None,
        cell_size: int = 200,
        sampler: Sampler | None = None,
    ) -> None:
        self.state = AugmentGridState(
            config,
            dataset_type,
            examples,
            draws=draws,
            base_seed=base_seed,
            first_epoch=first_epoch,
            sampler=sampler,
        )
        self.classes = classes
        self.on_save = on_save
        self.cell_size = cell_size
        self.rows: list[list[Draw]] = []
        self.renders = 0
        self.toggles: dict[int, widgets.Checkbox] = {}
        self.sliders: dict[tuple[int, str], widgets.Widget] = {}
        self._syncing = False
        self.reroll_button = widgets.Button(description="Re-roll", icon="random", tooltip="new random draws")
        self.reroll_button.add_class("wb-reroll")
        self.reroll_button.on_click(lambda _b: self.reroll())
        self.save_button = widgets.Button(
            description="Save pipeline", icon="save", button_style="primary", disabled=True
        )
        self.save_button.add_class("wb-save-pipeline")
        self.save_button.on_click(lambda _b: self.save())
        self.status = widgets.HTML()
        self.status.add_class("wb-aug-status")
        # the live picture is a JPEG (a tenth of the PNG's bytes on every edit); the static one a PNG
        self.image = widgets.Image(format="jpeg")
        self.image.add_class("wb-aug-grid")
        self.captions = widgets.HTML()
        self.captions.add_class("wb-aug-captions")
        self.controls = widgets.VBox(self._build_controls())
        self.controls.add_class("wb-aug-controls")
        super().__init__(
            children=[
                widgets.HBox([self.reroll_button, self.save_button, self.status]),
                widgets.HBox([self.controls, widgets.VBox([self.image, self.captions])]),
            ]
        )
        self.add_class("wb-augment")
        self.render()

    # controls ---------------------------------------------------------------------------------------
    def _build_controls(self) -> list[Any]:
        by_entry: dict[int, list[SliderSpec]] = {}
        for s in slider_specs(self.state.config):
            by_entry.setdefault(s.index, []).append(s)
        rows = []
        for i, entry in enumerate(self.state.config["transforms"]):
            box = widgets.Checkbox(
                value=entry["enabled"],
                description=entry["name"],
                indent=False,
                tooltip=transform_spec(entry["name"]).doc,
            )
            box.add_class("wb-aug-toggle")
            box.add_class(f"wb-aug-toggle-{i}")
            box.observe(lambda ch, i=i: self._on_toggle(i, ch["new"]), names="value")
            self.toggles[i] = box
            sliders = []
            for s in by_entry.get(i, []):
                w = self._slider(s, entry["params"][s.param])
                w.observe(lambda ch, s=s: self._on_slider(s, ch["new"]), names="value")
                self.sliders[(i, s.param)] = w
                sliders.append(w)
            rows.append(widgets.VBox([box, *sliders], layout=widgets.Layout(border_bottom="1px solid #eee")))
        return rows

    @staticmethod
    def _slider(s: SliderSpec, value: Any) -> Any:
        common = {
            "description": s.param,
            "continuous_update": False,
            "readout": True,
            "tooltip": s.doc,
            "style": {"description_width": "120px"},
            "layout": widgets.Layout(width="340px"),
        }
        if s.kind == "int_range":
            return widgets.IntRangeSlider(
                value=[int(v) for v in value], min=int(s.lo), max=int(s.hi), step=int(s.step), **common
            )
        if s.kind == "range":
            return widgets.FloatRangeSlider(
                value=[float(v) for v in value],
                min=s.lo,
                max=s.hi,
                step=s.step,
                readout_format=".3g",
                **common,
            )
        return widgets.FloatSlider(
            value=float(value), min=s.lo, max=s.hi, step=s.step, readout_format=".3g", **common
        )

    def _on_toggle(self, index: int, enabled: bool) -> None:
        if not self._syncing:
            self.toggle(index, enabled)

    def _on_slider(self, s: SliderSpec, value: Any) -> None:
        if not self._syncing:
            self.set_param(s.index, s.param, value)

    # actions ----------------------------------------------------------------------------------------
    def toggle(self, index: int, enabled: bool) -> None:
        """Switch transform entry ``index`` and redraw."""
        self._edit(lambda: self.state.toggle(index, enabled))

    def set_param(self, index: int, param: str, value: Any) -> None:
        """Set a parameter and redraw; a value the spec refuses is shown and the control is reset."""
        if isinstance(value, tuple | list) and len(value) == 2:
            ps: ParamSpec = transform_spec(self.state.config["transforms"][index]["name"]).params[param]
            if ps.odd:  # a slider step of 2 from an odd minimum keeps odd values; snap anyway
                value = [int(v) | 1 for v in value]
        self._edit(lambda: self.state.set_param(index, param, value))

    def _edit(self, change: Callable[[], Any]) -> None:
        try:
            change()
        except ValidationError as exc:
            self.status.value = f"<span style='color:#b00020'>{escape_html(str(exc))}</span>"
            self._sync_controls()
            return
        self.render()

    def _sync_controls(self) -> None:
        self._syncing = True
        try:
            for i, entry in enumerate(self.state.config["transforms"]):
                self.toggles[i].value = entry["enabled"]
                for (j, param), w in self.sliders.items():
                    if j == i:
                        v = entry["params"][param]
                        w.value = list(v) if isinstance(v, list) else v
        finally:
            self._syncing = False

    def reroll(self) -> None:
        """New seeds, new draws."""
        self.state.reroll()
        self.render()

    def save(self) -> None:
        """Hand the edited config to ``on_save``; mark it saved."""
        if self.on_save is None:
            return
        self.on_save(self.state.config)
        self.state.mark_saved()
        self._update_status()

    # drawing ----------------------------------------------------------------------------------------
    def render(self) -> None:
        """Draw every example again with the current config and seeds; update the grid image."""
        try:
            self.rows = self.state.draw_all()
        except WorkbenchError as exc:
            self.status.value = f"<span style='color:#b00020'>{escape_html(str(exc))}</span>"
            return
        self.renders += 1
        buf = io.BytesIO()
        self.grid_image().save(buf, format="JPEG", quality=88)
        self.image.value = buf.getvalue()
        self.captions.value = self._captions_html()
        self._update_status()

    def _update_status(self) -> None:
        n_flag = sum(d.flagged for row in self.rows for d in row)
        flag = f" · <span style='color:#b00020'>{n_flag} draws lost or clipped boxes</span>" if n_flag else ""
        unsaved = " · unsaved changes" if self.state.dirty else ""
        self.status.value = (
            f"seed {self.state.base_seed} · epochs {self.state.epochs()[0]}–"
            f"{self.state.epochs()[-1]}{flag}{unsaved}"
        )
        self.save_button.disabled = self.on_save is None or not self.state.dirty

    def grid_image(self) -> Any:
        """The grid as one PIL image: per example, the original then the draws."""
        from .render import render_example

        images, captions, flags = [], [], []
        for ex, row in zip(self.state.examples, self.rows, strict=True):
            images.append(
                render_example(
                    _rgb(ex.image),
                    _original_annotations(ex, self.state.dataset_type),
                    self.classes,
                    max_size=self.cell_size,
                )
            )
            captions.append(f"#{ex.example_id} original")
            flags.append(False)
            for d in row:
                anns = sample_annotations(d.sample, self.state.dataset_type, ex.label)
                images.append(
                    render_example(_rgb(d.sample.image), anns, self.classes, max_size=self.cell_size)
                )
                captions.append(f"epoch {d.epoch}: {d.caption}")
                flags.append(d.flagged)
        if not images:
            from PIL import Image

            return Image.new("RGB", (self.cell_size, 40), "white")
        return compose_grid(
            images,
            columns=self.state.draws + 1,
            cell=(self.cell_size, self.cell_size),
            captions=captions,
            flags=flags,
            caption_lines=3,
        )

    def _captions_html(self) -> str:
        items = []
        for row in self.rows:
            for d in row:
                cls = "wb-aug-caption wb-flagged" if d.flagged else "wb-aug-caption"
                items.append(
                    f"<li class='{cls}' data-seed='{d.seed}'>#{d.example_id} epoch {d.epoch} "
                    f"(seed {d.seed}): {escape_html(d.caption)}</li>"
                )
        return f"<ul style='font-size:11px;margin:0;padding-left:16px'>{''.join(items)}</ul>"

    def _static_bundle(self) -> dict[str, Any]:
        bundle: dict[str, Any] = png_bundle(self.grid_image()) if self.rows else {}
        bundle["text/plain"] = (
            f"AugmentationGrid({len(self.state.examples)} examples x {self.state.draws} "
            f"draws, seed {self.state.base_seed})"
        )
        return bundle


def _rgb(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=2)
    return a
