"""Live training curves: a plotly ``FigureWidget`` over a plain ``CurvesState``.

The state holds the history (epoch records, per-step losses), the best epoch, the overfitting regions and
the throttle (at most ``max_updates_per_s`` redraws a second; an epoch end or the end of the run always
redraws). It is tested with a fake clock, without a kernel. ``TrainingCurves`` subscribes to the trainer's
callbacks (``on_fit_start``, ``on_step``, ``on_epoch_end``, ``on_overfit``, ``on_fit_end``) and updates its
figure in place with ``batch_update()``: no ``clear_output``, no flicker. Its stop button calls
``trainer.request_stop()``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets

from ..errors import ValidationError
from ..runs.folder import RunRecord
from ..runs.records import TIMING_KEYS, EpochRecord
from ..text import escape_html, escape_plotly
from ..train.callbacks import Callback
from .figures import CurveSeries, curve_data, curve_names, curve_shapes, curves_figure
from .static import StaticFallback, figure_bundle, resync_widget_state

__all__ = ["CurvesState", "TrainingCurves", "downsample", "metric_of"]

_LOSS_KEYS = frozenset({"loss", "train_loss", "val_loss"})
# Record keys that are never "the metric".
_NOT_METRICS = frozenset(
    {
        "epoch",
        "loss",
        "train_loss",
        "val_loss",
        "lr",
        "monitor",
        "mode",
        "learning_rate",
        "step",
        "steps",
        "time",
        "seconds",
        "duration",
        "epoch_time",
        "data_time",
        "step_time",
        "best",
        "is_best",
        "stopped",
        "images_per_s",
        "overfitting",
        *TIMING_KEYS,  # a row without ``monitor`` never makes a timing (``images``) its headline metric
    }
)


def metric_of(record: Mapping[str, Any], name: str | None = None) -> tuple[str, float | None]:
    """The headline metric of an epoch record as ``(name, value)``.

    Looks for ``record[name]``; then the key the record's ``monitor`` names (the trainer's records:
    ``{"monitor": "accuracy", "accuracy": 0.91, ...}``); then ``{"metric": name, "value": v}``; then a
    ``metrics`` mapping; then the first other numeric key. Returns ``("", None)`` when the record has none.
    An :class:`EpochRecord` (what the trainer sends) answers from its fields: no guessing.
    """
    if isinstance(record, EpochRecord):
        key = name or record.metric_name
        return (key or "", record.metric(key) if key else None)
    metrics = record.get("metrics")
    if not name and isinstance(record.get("monitor"), str):
        name = record["monitor"]
    if name:
        if name in record:
            return name, _num(record[name], name)
        if isinstance(metrics, Mapping) and name in metrics:
            return name, _num(metrics[name], name)
        if record.get("metric") == name:
            return name, _num(record.get("value", record.get("metric_value")), name)
        return name, None
    if isinstance(record.get("metric"), str):
        key = record["metric"]
        value = record.get("value", record.get("metric_value", record.get(key)))
        if value is None and isinstance(metrics, Mapping):
            value = metrics.get(key)
        return key, _num(value, key)
    if isinstance(metrics, Mapping) and metrics:
        key = next(iter(metrics))
        return str(key), _num(metrics[key], str(key))
    for key, value in record.items():
        if key not in _NOT_METRICS and isinstance(value, int | float) and not isinstance(value, bool):
            return key, _num(value, key)
    return "", None


def _num(value: Any, field_name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)  # numpy / torch scalars
        except (TypeError, ValueError):
            raise ValidationError(f"expected a number, got {value!r}", field=field_name) from None
    f = float(value)
    return f if math.isfinite(f) else None


def downsample(xs: Sequence[float], ys: Sequence[float], max_points: int) -> tuple[list[float], list[float]]:
    """At most ``max_points`` points: consecutive buckets averaged (x and y). Short series pass unchanged."""
    n = len(xs)
    if n <= max_points:
        return list(xs), list(ys)
    size = math.ceil(n / max_points)
    out_x, out_y = [], []
    for i in range(0, n, size):
        bx, by = xs[i : i + size], ys[i : i + size]
        out_x.append(sum(bx) / len(bx))
        out_y.append(sum(by) / len(by))
    return out_x, out_y


@dataclass
class CurvesState:
    """History of one training run, the best epoch, overfitting regions and the redraw throttle.

    ``metric`` names the headline metric in the epoch records (``None``: the record's ``monitor``, else the
    first one found); ``higher_is_better`` says which way it is good. The best epoch is the fit summary's
    ``best_epoch``; else the last record the trainer marked ``"best": true`` (its kept checkpoint); else the
    argmax (argmin) of the metric, else the argmin of val loss, else of loss.
    """

    metric: str | None = None
    higher_is_better: bool = True
    max_updates_per_s: float = 4.0
    clock: Callable[[], float] = time.monotonic
    max_step_points: int = 2000
    title: str = "Training"
    records: list[dict[str, Any]] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    overfit: list[tuple[float, float]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] | None = None
    running: bool = False
    last_step: dict[str, float] = field(default_factory=dict)
    _last_flush: float = -math.inf
    _dirty: bool = False
    flushes: int = 0

    def __post_init__(self) -> None:
        if not self.max_updates_per_s > 0:
            raise ValidationError(
                f"max_updates_per_s must be > 0, got {self.max_updates_per_s}", field="max_updates_per_s"
            )

    # ------------------------------------------------------------------ events (each returns: redraw now?)
    def start(self, config: Mapping[str, Any] | None = None) -> bool:
        self.config = dict(config or {})
        self.records.clear()
        self.steps.clear()
        self.step_loss.clear()
        self.overfit.clear()
        self.summary = None
        self.running = True
        for key in ("monitor", "metric"):
            if self.metric is None and isinstance(self.config.get(key), str):
                self.metric = self.config[key]
        if self.config.get("mode") in ("max", "min"):
            self.higher_is_better = self.config["mode"] == "max"
        elif isinstance(self.config.get("higher_is_better"), bool):
            self.higher_is_better = self.config["higher_is_better"]
        self._dirty = True
        return self.flush_due(force=True)

    def add_step(
        self, step: int | float, loss: float, data_time: float | None = None, step_time: float | None = None
    ) -> bool:
        value = _num(loss, "loss")
        if value is not None:
            self.steps.append(float(step))
            self.step_loss.append(value)
        self.last_step = {"step": float(step), "loss": value if value is not None else math.nan}
        if data_time is not None:
            self.last_step["data_time"] = float(data_time)
        if step_time is not None:
            self.last_step["step_time"] = float(step_time)
        self._dirty = True
        return self.flush_due()

    def add_epoch(self, record: Mapping[str, Any]) -> bool:
        if "epoch" not in record:
            raise ValidationError("epoch record has no 'epoch'", record=len(self.records), field="epoch")
        rec = dict(record.to_json()) if isinstance(record, EpochRecord) else dict(record)
        _num(rec["epoch"], "epoch")
        if self.metric is None:
            name, _ = metric_of(record)
            self.metric = name or None
            if rec.get("mode") in ("max", "min"):
                self.higher_is_better = rec["mode"] == "max"
        self.records.append(rec)
        self._dirty = True
        return self.flush_due(force=True)

    def add_overfit(self, start_epoch: float, end_epoch: float) -> bool:
        """Shade ``[start_epoch, end_epoch]``; a region that overlaps or touches an earlier one extends it."""
        start, end = float(start_epoch), float(end_epoch)
        if end < start:
            raise ValidationError(
                f"overfit region ends ({end}) before it starts ({start})", field="end_epoch"
            )
        regions = sorted([*self.overfit, (start, end)])
        merged: list[tuple[float, float]] = []
        for s, e in regions:
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        self.overfit = merged
        self._dirty = True
        return self.flush_due(force=True)

    def finish(self, summary: Mapping[str, Any] | None = None) -> bool:
        self.summary = dict(summary or {})
        self.running = False
        self._dirty = True
        return self.flush_due(force=True)

    # ------------------------------------------------------------------ throttle
    def flush_due(self, *, force: bool = False) -> bool:
        """True when the view should redraw now; marks the pending changes as drawn.

        Outside ``force`` (epoch end, overfit, fit start/end), redraws come at most ``max_updates_per_s``
        times a second; changes in between stay pending until the next due redraw.
        """
        if not self._dirty:
            return False
        now = self.clock()
        if not force and now - self._last_flush < 1.0 / self.max_updates_per_s - 1e-9:  # float-noise slack
            return False
        self._last_flush = now
        self._dirty = False
        self.flushes += 1
        return True

    @property
    def pending(self) -> bool:
        return self._dirty

    # ------------------------------------------------------------------ derived
    @property
    def epochs(self) -> list[float]:
        return [float(r["epoch"]) for r in self.records]

    def column(self, *keys: str) -> list[float | None]:
        """Per epoch, the first of ``keys`` a record has (``column("loss", "train_loss")``)."""
        out = []
        for r in self.records:
            key = next((k for k in keys if r.get(k) is not None), keys[0])
            out.append(_num(r.get(key), key))
        return out

    @property
    def metric_name(self) -> str:
        """The headline metric shown on the right axis; empty when it is a loss (already drawn)."""
        return "" if self.metric in _LOSS_KEYS else (self.metric or "")

    def metric_values(self) -> list[float | None]:
        if not self.metric_name:
            return [None] * len(self.records)
        return [metric_of(r, self.metric)[1] for r in self.records]

    @property
    def best_epoch(self) -> float | None:
        if self.summary and self.summary.get("best_epoch") is not None:
            return float(self.summary["best_epoch"])
        flagged = [float(r["epoch"]) for r in self.records if r.get("best") is True]
        if flagged:  # the trainer marks the epochs whose checkpoint it kept as the best so far
            return flagged[-1]
        epochs = self.epochs
        for values, maximize in (
            (self.metric_values(), self.higher_is_better),
            (self.column("val_loss"), False),
            (self.column("loss", "train_loss"), False),
        ):
            scored = [(v, e) for v, e in zip(values, epochs, strict=True) if v is not None]
            if scored:
                # first epoch wins a tie: max/min return the first extreme
                pick = max if maximize else min
                return pick(scored, key=lambda t: t[0])[1]
        return None

    def series(self) -> CurveSeries:
        sx, sy = downsample(self.steps, self.step_loss, self.max_step_points)
        return CurveSeries(
            epochs=self.epochs,
            loss=self.column("loss", "train_loss"),
            val_loss=self.column("val_loss"),
            metric_name=self.metric_name,
            metric=self.metric_values(),
            lr=self.column("lr", "learning_rate"),
            steps=sx,
            step_loss=sy,
            best_epoch=self.best_epoch,
            overfit=list(self.overfit),
            title=self.title,
        )

    def status_text(self) -> str:
        parts = []
        if self.records:
            last = self.records[-1]
            parts.append(f"epoch {last['epoch']}")
            for key, label in (("loss", "loss"), ("train_loss", "loss"), ("val_loss", "val loss")):
                v = _num(last.get(key), key)
                if v is not None:
                    parts.append(f"{label} {v:.4g}")
            if self.metric_name:
                name, value = metric_of(last, self.metric)
                if value is not None:
                    parts.append(f"{name} {value:.4g}")
        if self.running and self.last_step:
            s = self.last_step
            text = f"step {s['step']:g} · loss {s['loss']:.4g}"
            if "data_time" in s and "step_time" in s:
                text += f" · data {1000 * s['data_time']:.0f} ms / step {1000 * s['step_time']:.0f} ms"
            parts.append(text)
        best = self.best_epoch
        if best is not None:
            parts.append(f"best epoch {best:g}")
        if self.overfit:
            parts.append("overfitting since epoch " + f"{self.overfit[-1][0]:g}")
        if not self.running and self.summary is not None:
            parts.append(str(self.summary.get("status") or "finished").replace("_", " "))
        elif self.running:
            parts.insert(0, "training")
        return " · ".join(parts) if parts else "waiting for training to start"


class TrainingCurves(StaticFallback, widgets.VBox, Callback):
    """Live loss / val loss / metric / learning-rate curves of a training run, with a stop button.

    A trainer ``Callback``: pass it in the trainer's callbacks (the trainer sets ``.trainer``), or call
    ``attach(trainer)``. Redraws are throttled to ``max_updates_per_s``; epoch ends and the end of the run
    always redraw. The stop button calls ``trainer.request_stop()`` and makes ``should_stop()`` true. In
    papermill / nbconvert output it leaves the plotly figure; when the run ends the stored output is
    rewritten with the final figure.

    The stop button needs the kernel to handle the click while training runs: run the training in a thread
    (or a trainer that runs in the background); a blocking cell queues the click until the cell ends.
    """

    def __init__(
        self,
        trainer: Any = None,
        *,
        metric: str | None = None,
        higher_is_better: bool = True,
        max_updates_per_s: float = 4.0,
        clock: Callable[[], float] = time.monotonic,
        title: str = "Training",
        state: CurvesState | None = None,
    ) -> None:
        from .plotly_widget import FigureWidget

        self.state = state or CurvesState(
            metric=metric,
            higher_is_better=higher_is_better,
            max_updates_per_s=max_updates_per_s,
            clock=clock,
            title=title,
        )
        self._lock = threading.RLock()
        self.trainer: Any = None
        self.stop_requested = False
        self.figure_widget = FigureWidget(curves_figure(self.state.series()))
        self.figure_widget.add_class("wb-curves-plot")
        self.status = widgets.HTML(escape_html(self.state.status_text()))
        self.status.add_class("wb-curves-status")
        self.stop_button = widgets.Button(
            description="Stop",
            icon="stop",
            button_style="danger",
            disabled=True,
            tooltip="stop training after this step",
        )
        self.stop_button.add_class("wb-stop")
        self.stop_button.on_click(self._on_stop)
        super().__init__(children=[widgets.HBox([self.stop_button, self.status]), self.figure_widget])
        self.add_class("wb-curves")
        if trainer is not None:
            self.attach(trainer)

    # ------------------------------------------------------------------ wiring
    def attach(self, trainer: Any) -> TrainingCurves:
        """Stop button -> ``trainer.request_stop()``; registers as a callback when the trainer offers
        ``add_callback`` (otherwise pass this widget in the trainer's callbacks)."""
        self.trainer = trainer
        if hasattr(trainer, "add_callback"):
            trainer.add_callback(self)
        return self

    def _on_stop(self, _button: Any = None) -> None:
        self.stop_requested = True
        if self.trainer is not None and hasattr(self.trainer, "request_stop"):
            self.trainer.request_stop()
        self.stop_button.disabled = True
        self.stop_button.description = "Stopping…"

    def should_stop(self) -> bool:
        return self.stop_requested

    # ------------------------------------------------------------------ trainer callbacks
    def on_fit_start(self, config: Mapping[str, Any] | None = None) -> None:
        with self._lock:
            self._after(self.state.start(config))
            self.stop_requested = False
            self.stop_button.description = "Stop"
            self.stop_button.button_style = "danger"
            self.stop_button.disabled = False

    def on_step(
        self, step: int, loss: float, data_time: float | None = None, step_time: float | None = None
    ) -> None:
        with self._lock:
            self._after(self.state.add_step(step, loss, data_time, step_time))

    def on_epoch_end(self, record: Mapping[str, Any]) -> None:
        with self._lock:
            self._after(self.state.add_epoch(record))

    def on_overfit(self, start_epoch: float, end_epoch: float) -> None:
        with self._lock:
            self._after(self.state.add_overfit(start_epoch, end_epoch))

    def on_fit_end(self, summary: Mapping[str, Any] | None = None) -> None:
        with self._lock:
            self._after(self.state.finish(summary))
            self.stop_button.disabled = True
            self.stop_button.button_style = ""
            status = str((summary or {}).get("status") or "finished")
            self.stop_button.description = (
                "Done" if status == "finished" else status.replace("_", " ").capitalize()
            )
        self.update_static()

    # ------------------------------------------------------------------ drawing
    def _after(self, due: bool) -> None:
        if due:
            self.redraw()

    def redraw(self) -> None:
        """Push the state into the figure in one ``batch_update`` (one message to the browser)."""
        series = self.state.series()
        fw = self.figure_widget
        with fw.batch_update():
            for dst, name, (x, y) in zip(fw.data, curve_names(series), curve_data(series), strict=True):
                dst.x, dst.y = x, y
                if dst.name != name:
                    dst.name = name
            fw.layout.shapes = curve_shapes(series)
            fw.layout.title.text = escape_plotly(series.title)
            fw.layout.yaxis2.title.text = series.metric_name or "metric"
        # a page that connects later (Voilà) must see the run so far, not the figure at construction
        resync_widget_state(fw)
        self.status.value = escape_html(self.state.status_text())

    @property
    def figure(self) -> Any:
        """The current figure as a static ``go.Figure``."""
        return curves_figure(self.state.series())

    def _static_bundle(self) -> dict[str, Any]:
        bundle = figure_bundle(self.figure)
        bundle["text/plain"] = f"TrainingCurves({self.state.status_text()})"
        return bundle

    # ------------------------------------------------------------------ finished runs
    @classmethod
    def from_history(
        cls,
        records: Iterable[Mapping[str, Any]],
        *,
        overfit: Iterable[tuple[float, float]] = (),
        summary: Mapping[str, Any] | None = None,
        metric: str | None = None,
        higher_is_better: bool = True,
        title: str = "Training",
    ) -> TrainingCurves:
        """Curves of a finished run from its epoch records (and overfit regions, summary)."""
        state = CurvesState(metric=metric, higher_is_better=higher_is_better, title=title)
        for rec in records:
            state.add_epoch(rec)
        for start, end in overfit:
            state.add_overfit(start, end)
        state.finish(summary)
        return cls(state=state)

    @classmethod
    def from_run(cls, run: RunRecord, *, title: str | None = None) -> TrainingCurves:
        """Curves of a run folder's records (:func:`workbench.runs.load_run`): its epochs, overfit
        stretches, best epoch and the metric it monitored."""
        params, summary = run.run_params, run.summary
        mode = params.resolved.get("mode") if params else None
        return cls.from_history(
            run.epochs,
            overfit=summary.overfit_ranges if summary else (),
            summary=summary,
            metric=(params.monitor if params else None) or (summary.monitor if summary else None),
            higher_is_better=mode != "min",
            title=title or run.run_id,
        )
