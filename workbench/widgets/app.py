"""Widgets wired to a store dataset, and the small Workbench app that puts them in tabs.

The views in this package take plain data and callables; these builders connect them to a
:class:`~workbench.data.Dataset` and a run folder, for notebooks and Voilà dashboards.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from ..data.dataset import Dataset
from ..data.task_types import type_info
from ..text import escape_html
from .static import StaticFallback

__all__ = [
    "thumbnail_fn",
    "overview",
    "augmentation_grid",
    "grid_examples",
    "training_curves",
    "evaluation_views",
    "error_gallery",
    "WorkbenchApp",
    "Picker",
    "ReviewView",
    "UserGate",
    "annotator_name",
    "USER_ENV",
]

USER_ENV = "WORKBENCH_USER"  # set by ``workbench serve --user NAME`` for its kernels
_MAX_NAME = 100


def thumbnail_fn(ds: Dataset, size: int = 160) -> Callable[[int], Any]:
    """``example_id -> PIL image`` with the example's annotations drawn in class colours."""
    from .render import render_example

    def thumb(example_id: int):
        ex = ds.example(int(example_id))
        return render_example(ds.load_bytes(ex.blob), ex.annotations, ds.classes, max_size=size, tags=False)

    return thumb


def overview(ds: Dataset, directory: str | None = None):
    """The DatasetOverview of a dataset (or directory); ``refresh()`` re-reads the store."""
    from ..data.stats import dataset_stats
    from .balance import DatasetOverview

    return DatasetOverview(lambda: dataset_stats(ds, directory=directory), lambda: ds.classes,
                           title=f"{ds.name}{' / ' + directory if directory else ''}: dataset overview")


def augmentation_grid(ds: Dataset, *, examples: int = 4, draws: int = 4, seed: int = 0, split: str = "train",
                      preset: str | None = None):
    """The dataset's augmentation pipeline over ``examples`` annotated examples; saving stores it."""
    from ..augment.presets import default_preset
    from ..augment.presets import preset as get_preset
    from .augment_grid import AugmentationGrid

    config = get_preset(preset) if preset else (ds.augment_config() or get_preset(default_preset(ds.type)))
    return AugmentationGrid(config, ds.type, grid_examples(ds, examples=examples, split=split), ds.classes,
                            draws=draws, base_seed=seed, on_save=ds.set_augment_config)


def grid_examples(ds: Dataset, *, examples: int = 4, split: str = "train") -> list:
    """The examples the augmentation preview shows, read from the store now (annotated ones first)."""
    from .augment_state import GridExample

    ids = ds.example_ids(split=split, status="annotated")[:examples] or ds.example_ids()[:examples]
    return [GridExample.from_example(e, ds.load_bytes(e.blob), ds.type) for e in ds.examples(ids=ids)]


def training_curves(title: str = "Training"):
    from .curves import TrainingCurves

    return TrainingCurves(title=title)


def _run_record(run: str | Path | Any):
    from ..runs import RunRecord, load_run

    return run if isinstance(run, RunRecord) else load_run(run)


def evaluation_views(ds: Dataset, run: str | Path | Any, *, on_open: Callable[[int], Any] | None = None) -> list:
    """The evaluation of a run on its test split: confusion matrix (classification / anomaly) or per-class
    AP bars and PR curves (detection / segmentation)."""
    rec = _run_record(run)
    rows = rec.predictions()
    names = (rec.run_params.class_names if rec.run_params else []) or [c.name for c in ds.classes]
    thumbs = thumbnail_fn(ds)
    if type_info(ds.type).image_level:
        from .evaluation import ConfusionMatrixView, ConfusionState

        triples = [(r["example_id"], r.get("truth"), r.get("label")) for r in rows
                   if r.get("truth") is not None and r.get("label") is not None]
        state = ConfusionState.from_predictions(triples, names)
        return [ConfusionMatrixView(state, thumbs, on_open=on_open)]
    from ..data.formats.coco_convert import ground_truth
    from ..evaluate import coco_metrics
    from .evaluation import APView

    examples = rec_examples(ds, rec)
    views = []
    gt = ground_truth(examples, names)
    views.append(APView(coco_metrics(gt, [r for r in rows if "bbox" in r], "bbox", per_class=True, gt_checked=True),
                        ds.classes, metric_name="AP50"))
    return views


def rec_examples(ds: Dataset, rec: Any) -> list:
    """The test examples a run was evaluated on (from its snapshot when it has one)."""
    from ..train.from_store import source_from_dataset

    params = rec.run_params
    return source_from_dataset(ds, snapshot=params.snapshot_id if params else None,
                               directory=params.directory if params else None, require_train=False).split("test")


def error_gallery(ds: Dataset, mined: Any, *, on_open: Callable[[int], Any] | None = None):
    """The mined examples (a MiningResult, its dict, or a run folder with ``mined.json``)."""
    import json

    from .gallery import ErrorGallery

    if isinstance(mined, (str, Path)):
        mined = json.loads((Path(mined) / "mined.json").read_text())
    items = mined.get("examples", []) if isinstance(mined, dict) else [m.to_dict() for m in mined.selected]
    return ErrorGallery(items, thumbnail_fn(ds), on_open=on_open)


def annotator_name(user: str | None = "") -> str:
    """The name edits are recorded under: ``user`` if given, else ``$WORKBENCH_USER``, else "" (ask)."""
    name = (user or "").strip() or os.environ.get(USER_ENV, "").strip()
    return name[:_MAX_NAME]


class UserGate(StaticFallback, widgets.VBox):
    """Who is annotating: ``build(name)`` at once when the name is known (the notebook parameter or
    ``$WORKBENCH_USER``), else a name field first (every edit is stored under that name)."""

    def __init__(self, user: str | None, build: Callable[[str], Any]) -> None:
        self.build = build
        self.user = annotator_name(user)
        self.view: Any = None
        self._preview: Any = None
        self.name = widgets.Text(placeholder="your name", description="Annotator", continuous_update=False)
        self.name.add_class("wb-user-name")
        self.start = widgets.Button(description="Start", button_style="primary")
        self.start.add_class("wb-user-start")
        self.note = widgets.HTML()
        self.note.add_class("wb-user-note")
        self.start.on_click(lambda _b: self.submit(self.name.value))
        self.name.observe(self._typed, names="value")
        super().__init__()
        self.add_class("wb-user-gate")
        if self.user:
            self._open()
        else:
            self.children = [widgets.HTML("<b>Who is annotating?</b> Your name goes with every edit."),
                             widgets.HBox([self.name, self.start]), self.note]

    def _typed(self, change: dict) -> None:
        if change["new"]:
            self.submit(change["new"])

    def submit(self, name: str) -> None:
        if self.view is not None:  # Enter in the field, then a click on Start: one app
            return
        name = (name or "").strip()
        if not name:
            self.note.value = "<span style='color:#d62728'>type your name first</span>"
            return
        if len(name) > _MAX_NAME:
            self.note.value = f"<span style='color:#d62728'>a name has at most {_MAX_NAME} characters</span>"
            return
        self.user = name
        self._open()

    def _open(self) -> None:
        self.view = self.build(self.user)
        who = widgets.HTML(f"annotating as <b>{escape_html(self.user)}</b>")
        who.add_class("wb-user")
        self.children = [who, self.view]

    def _static_bundle(self) -> dict[str, Any]:
        # Headless (papermill / nbconvert) nobody types a name: the saved output still shows the picture of
        # what the page would open, from a view that is never displayed and so never edits anything.
        view = self.view
        if view is None:
            if self._preview is None:
                self._preview = self.build("preview (headless output)")
            view = self._preview
        bundle = dict(view.static_bundle()) if isinstance(view, StaticFallback) else {}
        if self.view is None:
            bundle["text/plain"] = "annotator name needed (a picture of the dataset below)"
        return bundle


class Picker(StaticFallback, widgets.VBox):
    """A dropdown and the view it picks (``build(value) -> widget``); in static output it leaves the picture
    of the view on show."""

    def __init__(self, options: list, build: Callable[[Any], Any], *, description: str, value: Any = None,
                 css_class: str = "wb-picker", empty: str = "nothing to show yet") -> None:
        # ``empty`` is the caller's own markup (a constant in the dashboards), never data; options are text.
        self.build = build
        self.empty = empty
        values = [o[1] if isinstance(o, tuple) else o for o in options]
        self.dropdown = widgets.Dropdown(options=options, description=description,
                                         value=value if value in values else (values[0] if values else None),
                                         layout=widgets.Layout(width="600px"))
        self.dropdown.add_class(css_class)
        self.view: Any = None
        super().__init__([self.dropdown])
        self.dropdown.observe(lambda ch: self.show(ch["new"]), names="value")
        self.show(self.dropdown.value)

    def show(self, value: Any) -> None:
        self.view = self.build(value) if value is not None else widgets.HTML(self.empty)
        self.children = [self.dropdown, self.view]

    def _static_bundle(self) -> dict[str, Any]:
        view = self.view
        if isinstance(view, StaticFallback):
            return view.static_bundle()
        return {"text/plain": self.empty}


class WorkbenchApp(StaticFallback, widgets.VBox):
    """One dataset in tabs: annotate, dataset overview, augmentations, train (live curves), evaluate and
    review (the mined errors; "open in canvas" jumps to the Annotate tab on that example).

    Only the Annotate tab is built up front: the overview (plotly), the augmentation preview (albumentations)
    and the training curves are built the first time their tab is opened (or their attribute is read), so a
    dashboard shows its canvas without importing them. Leaving the Dataset or Augment tab closes its view
    (``release``; ``release_hidden=False`` keeps them). Training runs in a child process (``train_in_kernel``
    for a thread of this kernel instead).
    """

    TABS = ("Annotate", "Dataset", "Augment", "Train", "Evaluate")

    def __init__(self, ds: Dataset, *, user: str = "annotator", directory: str | None = None,
                 train_config: Any = None, train_in_kernel: bool = False,
                 release_hidden: bool = True) -> None:
        from .canvas import AnnotationCanvas

        self.ds = ds
        self.directory = directory
        self.train_config = train_config
        self.canvas = AnnotationCanvas(ds, directory=directory, user=user)
        self._overview: Any = None
        self._grid: Any = None
        self._grid_version = -1
        self._curves: Any = None
        self.train_button = widgets.Button(description="Train", button_style="primary", icon="play")
        self.train_button.add_class("wb-train")
        self.train_status = widgets.HTML()
        self.train_status.add_class("wb-train-status")
        self.train_button.on_click(lambda _b: self.start_training())
        self.evaluation = widgets.VBox()
        self.evaluation.add_class("wb-evaluation")
        self.run_dir: str | None = None
        self.thread: threading.Thread | None = None
        self.train_in_kernel = train_in_kernel
        self.release_hidden = release_hidden  # close the Dataset / Augment views when their tab is left
        self.process: Any = None  # the TrainingProcess of the last run started in a child
        self._build_lock = threading.RLock()  # the training thread and a tab click may both build the curves
        self._opening = {name: widgets.HTML(f"<i>opening {name.lower()}...</i>") for name in ("Dataset", "Augment")}
        self.panes = {name: widgets.VBox([self._opening[name]]) for name in ("Dataset", "Augment")}
        self.panes["Train"] = widgets.VBox([widgets.HBox([self.train_button, self.train_status])])
        self.tabs = widgets.Tab(children=[self.canvas, self.panes["Dataset"], self.panes["Augment"],
                                          self.panes["Train"], self.evaluation])
        for i, t in enumerate(self.TABS):
            self.tabs.set_title(i, t)
        self.tabs.observe(self._on_tab, names="selected_index")
        super().__init__([widgets.HTML(f"<h3>Workbench: {escape_html(ds.name)} ({escape_html(ds.type)})</h3>"), self.tabs])
        self.add_class("wb-app")

    @property
    def built(self) -> dict[str, bool]:
        """Which of the lazily built views exist yet."""
        return {"overview": self._overview is not None, "grid": self._grid is not None,
                "curves": self._curves is not None}

    @property
    def overview(self) -> Any:
        """The Dataset tab's overview (built on first use)."""
        with self._build_lock:
            if self._overview is None:
                self._overview = overview(self.ds, self.directory)
                self.panes["Dataset"].children = [self._overview]
            return self._overview

    @property
    def grid(self) -> Any:
        """The Augment tab's preview grid (built on first use, over the store's current annotations)."""
        with self._build_lock:
            if self._grid is None:
                self._grid_version = self.ds.version
                self._grid = augmentation_grid(self.ds)
                self.panes["Augment"].children = [self._grid]
            return self._grid

    @property
    def curves(self) -> Any:
        """The Train tab's live curves (built on first use)."""
        with self._build_lock:
            if self._curves is None:
                self._curves = training_curves()
                self.panes["Train"].children = [*self.panes["Train"].children, self._curves]
            return self._curves

    def _on_tab(self, change: dict) -> None:
        name = self.TABS[change["new"]] if change["new"] is not None else None
        left = self.TABS[change["old"]] if change.get("old") is not None else None
        if left != name and left in ("Dataset", "Augment") and self.release_hidden:
            self.release(left)
        if name == "Dataset":
            if self._overview is None:
                _ = self.overview  # built from the store now: no refresh needed
            else:
                self._overview.refresh()
        elif name == "Augment":
            self.refresh_grid()
        elif name == "Train":
            _ = self.curves

    def release(self, tab: str) -> bool:
        """Give back what the Dataset or Augment tab holds (its figure, images, the albumentations pipeline's
        draws): the view is closed and built again, from the store, when its tab is opened next. An
        augmentation preview with unsaved changes is kept (its edits would be lost). True if released."""
        from .memory import close_tree, trim

        with self._build_lock:
            if tab == "Dataset" and self._overview is not None:
                view, self._overview = self._overview, None
            elif tab == "Augment" and self._grid is not None and not self._grid.state.dirty:
                view, self._grid = self._grid, None
            else:
                return False
            self.panes[tab].children = [self._opening[tab]]
            close_tree(view)
            del view
        trim()
        return True

    def refresh_grid(self) -> None:
        """Redraw the augmentation preview over the store's current annotations (keeping the pipeline being
        edited and the seed) when the dataset changed since it was drawn; builds it the first time."""
        if self._grid is None:
            _ = self.grid
            return
        version = self.ds.version
        if version != self._grid_version:
            self._grid_version = version
            self._grid.state.examples = grid_examples(self.ds, examples=len(self._grid.state.examples) or 4)
            self._grid.render()

    def open_example(self, example_id: int) -> None:
        """Show ``example_id`` on the canvas (from the gallery's "open in canvas") and bring it into view."""
        self.canvas.state.goto(int(example_id))
        self.canvas.state.request("scroll")
        self.tabs.selected_index = 0
        self.canvas.redraw()

    def start_training(self, wait: bool = False) -> None:
        """Train without blocking the page: in a child process (the default; see
        :class:`~workbench.train.process.TrainingProcess`: this kernel never imports torch and outlives a
        crash of training) or, with ``train_in_kernel=True``, in a thread of this kernel. The curves update
        and the stop button works meanwhile."""
        from ..train.config import TrainConfig

        if self.thread is not None and self.thread.is_alive():
            return
        note = ""
        cfg = self.train_config
        if cfg is None:  # what `workbench train` would choose: the defaults table, by type and size
            from ..train.defaults import fill_from_table

            try:
                chosen, why = fill_from_table(self.ds, {})
            except Exception as e:  # noqa: BLE001 - shown on the page, like a failed run
                self.train_status.value = f"<span style='color:#d62728'>training failed: {escape_html(e)}</span>"
                return
            cfg, note = TrainConfig(**chosen, extra={"defaults": why}), f" ({why['note']})"
        curves = self.curves  # built here, on the caller's thread, not in the training thread
        self.train_status.value = escape_html(f"training...{note}")
        if self.train_in_kernel:
            self.thread = threading.Thread(target=self._train_here, args=(cfg, curves), daemon=True)
            self.thread.start()
        else:
            from ..runs.folder import new_run_id
            from ..train.process import TrainingProcess

            ws = self.ds.workspace
            self.process = TrainingProcess(ws.home, self.ds.name, cfg.to_dict(), ws.runs_dir / new_run_id(self.ds.name),
                                           callbacks=[curves], on_end=self._trained)
            curves.trainer = self.process  # the stop button asks the child to stop
            self.process.start()
            self.thread = self.process.thread
        if wait and self.thread is not None:
            self.thread.join()

    def _train_here(self, cfg: Any, curves: Any) -> None:
        """``train_in_kernel``: the trainer in a thread of this kernel (torch and the model then live here)."""
        from ..train.from_store import train_dataset

        try:
            summary = train_dataset(self.ds.workspace, self.ds.name, cfg, callbacks=[curves])
            self.run_dir = summary["run_dir"]
            self.train_status.value = escape_html(f"run {summary['run_id']}: {summary['status']}")
            self.show_evaluation(self.run_dir)
        except Exception as e:  # shown to the person, not swallowed
            self.train_status.value = f"<span style='color:#d62728'>training failed: {escape_html(e)}</span>"

    def _trained(self, outcome: Any) -> None:
        """The child's run ended: its result (read from the run folder), or what went wrong."""
        if not outcome.ok:
            what = "training died" if outcome.state == "died" else "training failed"
            self.train_status.value = f"<span style='color:#d62728'>{what}: {escape_html(outcome.error)}</span>"
            return
        try:
            self.run_dir = str(outcome.run_dir)
            self.train_status.value = escape_html(f"run {outcome.run_id}: {outcome.state}")
            self.show_evaluation(self.run_dir, mine=False)  # the child mined: mined.json
        except Exception as e:
            self.train_status.value = (f"<span style='color:#d62728'>run {escape_html(outcome.run_id)} ended, "
                                       f"but showing it failed: {escape_html(e)}</span>")

    def show_evaluation(self, run_dir: str | Path, *, mine: bool = True) -> None:
        """The run's evaluation views and its mined examples (mined now with ``mine``, else read from the
        run's ``mined.json`` when it has one)."""
        children = list(evaluation_views(self.ds, run_dir, on_open=self.open_example))
        if mine:
            from ..service import mine_run

            result = mine_run(self.ds, run_dir, count=40)
            children.append(error_gallery(self.ds, result.to_dict(), on_open=self.open_example))
        elif (Path(run_dir) / "mined.json").is_file():
            children.append(error_gallery(self.ds, run_dir, on_open=self.open_example))
        self.evaluation.children = children

    def _static_bundle(self) -> dict[str, Any]:  # the canvas picture stands for the app in static output
        from .static import PNG_MIME

        return {PNG_MIME: base64.b64encode(self.canvas.snapshot_png()).decode("ascii")}


class ReviewView(StaticFallback, widgets.VBox):
    """One run reviewed: test metrics, evaluation views, the mined examples, and a canvas on the ``review``
    directory; "open in canvas" shows that example there."""

    def __init__(self, ws: Any, run_dir: str | Path, *, user: str = "reviewer") -> None:
        from ..runs import load_run
        from .canvas import AnnotationCanvas

        self.record = rec = load_run(run_dir)
        self.ds = ds = ws.dataset(rec.dataset)
        has_review = "review" in [d["name"] for d in ds.directories()]
        self.canvas = AnnotationCanvas(ds, directory="review" if has_review else None, user=user)
        self.views = evaluation_views(ds, rec.path, on_open=self.open_example)
        self.gallery = (error_gallery(ds, rec.path, on_open=self.open_example)
                        if (rec.path / "mined.json").is_file() else None)
        test = rec.summary.test if rec.summary else {}
        head = ", ".join(f"{k} {v:.3f}" for k, v in test.items() if isinstance(v, float))
        parts = [widgets.HTML(f"<b>{escape_html(rec.run_id)}</b> on {escape_html(rec.dataset)}: test "
                              f"{escape_html(head)}"), *self.views]
        if self.gallery is not None:
            parts.append(self.gallery)
        parts.append(self.canvas)
        super().__init__(parts)
        self.add_class("wb-review")

    def open_example(self, example_id: int) -> None:
        """Show ``example_id`` on the review canvas and scroll the canvas into view."""
        self.canvas.state.goto(int(example_id))
        self.canvas.state.request("scroll")
        self.canvas.redraw()

    def _static_bundle(self) -> dict[str, Any]:
        bundle: dict[str, Any] = {}
        for v in self.views:  # the first view's plot, and the gallery's picture
            bundle.update(v.static_bundle())
            break
        if self.gallery is not None:
            bundle.update({k: v for k, v in self.gallery.static_bundle().items() if k == "image/png"})
        return bundle
