"""WorkbenchApp (the annotate dashboard's tabs): only the canvas is built up front; the other tabs build on
first open, over what the store holds then. The real thing in a browser: tests/browser/test_annotate_dashboard.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from workbench.data import Workspace
from workbench.data.records import Annotation
from workbench.data.transfer import add_sample

HEAVY = ("torch", "plotly", "albumentations", "cv2")


@pytest.fixture
def ds(tmp_path):
    ws = Workspace(tmp_path / "ws")
    d, _ids = add_sample(ws, "shapes", "shapes-detection", count=12, seed=0)
    return d


def test_building_the_app_loads_no_heavy_module(ds):
    """A dashboard shows its canvas without importing plotly, albumentations or torch (seconds of start-up)."""
    code = (
        "import json, sys\n"
        "from workbench import Workspace\n"
        "from workbench.widgets import WorkbenchApp\n"
        f"app = WorkbenchApp(Workspace({str(ds.workspace.home)!r}).dataset('shapes'))\n"
        "assert app.canvas.state.example is not None\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_augment_tab_loads_no_torch(ds):
    """albumentations would import torch (~500 MB) for its tensor transforms: the preview does without, and
    those transforms still import when asked for."""
    code = (
        "import json, sys\n"
        "from workbench import Workspace\n"
        "from workbench.widgets import WorkbenchApp\n"
        f"app = WorkbenchApp(Workspace({str(ds.workspace.home)!r}).dataset('shapes'))\n"
        "app.tabs.selected_index = 1\n"
        "app.tabs.selected_index = 2\n"
        "assert app.grid.state.examples\n"
        "before = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'albumentations', 'plotly'})\n"
        "import albumentations as A\n"
        "from albumentations.pytorch import ToTensorV2\n"
        "print(json.dumps([before, A.ToTensorV2 is ToTensorV2, 'torch' in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [["albumentations", "plotly"], True, True]


def test_tabs_build_on_first_open(ds):
    from workbench.widgets import WorkbenchApp
    from workbench.widgets.augment_grid import AugmentationGrid
    from workbench.widgets.balance import DatasetOverview
    from workbench.widgets.curves import TrainingCurves

    app = WorkbenchApp(ds)
    assert app.built == {"overview": False, "grid": False, "curves": False}
    assert [app.tabs.get_title(i) for i in range(5)] == list(WorkbenchApp.TABS)
    assert app.tabs.children[0] is app.canvas

    app.tabs.selected_index = 1
    assert app.built["overview"] and not app.built["grid"]
    assert isinstance(app.tabs.children[1].children[0], DatasetOverview)
    assert app.tabs.children[1].children[0] is app.overview  # built once

    app.tabs.selected_index = 2
    assert isinstance(app.tabs.children[2].children[0], AugmentationGrid)
    assert app.tabs.children[2].children[0] is app.grid

    app.tabs.selected_index = 3
    train = app.tabs.children[3].children
    assert train[0].children[0] is app.train_button and isinstance(train[1], TrainingCurves)
    app.tabs.selected_index = 1
    app.tabs.selected_index = 3
    assert len(app.tabs.children[3].children) == 2  # reopening does not add a second plot


def test_lazy_views_show_edits_made_before_they_were_built(ds):
    """The overview and grid built late read the store then (not when the app was made)."""
    from workbench.widgets import WorkbenchApp

    app = WorkbenchApp(ds)
    eid = ds.example_ids(split="train", status="annotated")[0]
    before = sum(1 for a in ds.example(eid).annotations if a.bbox is not None)
    ds.add_annotation(eid, Annotation(kind="box", label="circle", bbox=(1.0, 1.0, 10.0, 10.0)))
    app.tabs.selected_index = 2
    shown = {e.example_id: e for e in app.grid.state.examples}
    assert len(shown[eid].boxes) == before + 1
    app.tabs.selected_index = 1
    from workbench.data.stats import dataset_stats

    assert app.overview.report["annotations"] == dataset_stats(ds)["annotations"]


def _open_widgets() -> set[int]:
    from ipywidgets.widgets.widget import _instances  # ipywidgets' registry of open widgets

    return {id(w) for w in _instances.values()}


def test_leaving_a_heavy_tab_closes_its_view(ds):
    """The Dataset and Augment views are closed (out of ipywidgets' registry, which would keep their
    figures and images for the kernel's life) when their tab is left, and built again on return."""
    from workbench.widgets import WorkbenchApp

    app = WorkbenchApp(ds)
    before = _open_widgets()
    app.tabs.selected_index = 1
    overview = app.overview
    assert len(_open_widgets() - before) > 3
    app.tabs.selected_index = 2
    grid = app.grid
    assert not app.built["overview"] and overview.comm is None  # closed
    assert all(c.comm is None for c in overview.children)
    app.tabs.selected_index = 0
    assert not app.built["grid"] and grid.comm is None
    assert _open_widgets() - before == set()  # everything the two tabs opened is closed again
    app.tabs.selected_index = 2
    assert app.grid is not grid and app.panes["Augment"].children[0] is app.grid  # rebuilt on return
    app.tabs.selected_index = 1
    assert app.overview is not overview


def test_an_augment_preview_with_unsaved_edits_is_kept(ds):
    from workbench.widgets import WorkbenchApp

    app = WorkbenchApp(ds)
    app.tabs.selected_index = 2
    grid = app.grid
    grid.toggle(0, not grid.state.config["transforms"][0].get("enabled", True))
    assert grid.state.dirty
    app.tabs.selected_index = 0
    assert app.grid is grid and grid.comm is not None  # its edits are not thrown away
    grid.save()
    app.tabs.selected_index = 2
    app.tabs.selected_index = 0
    assert not app.built["grid"] and grid.comm is None


def test_release_hidden_off_keeps_the_views(ds):
    from workbench.widgets import WorkbenchApp

    app = WorkbenchApp(ds, release_hidden=False)
    app.tabs.selected_index = 1
    overview = app.overview
    app.tabs.selected_index = 0
    assert app.overview is overview and overview.comm is not None
