"""The package's public surface and its import cost."""

from __future__ import annotations

import subprocess
import sys

import workbench


def test_exported_members():
    assert sorted(workbench.__all__) == sorted(
        ["Annotation", "ClassDef", "Dataset", "Example", "Workspace", "WorkbenchError", "__version__"]
    )
    for name in workbench.__all__:
        assert hasattr(workbench, name)


def test_import_loads_no_heavy_library():
    code = ("import sys, workbench, workbench.cli, workbench.data; "
            "heavy = {'torch', 'torchvision', 'plotly', 'ipywidgets', 'ipycanvas', 'cv2', 'albumentations', "
            "'sklearn', 'pycocotools'}; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_public_api_names():
    """The curated surface the notebooks, dashboards and README use: adding or dropping a name is a decision."""
    import workbench.service
    import workbench.widgets

    assert sorted(workbench.service.__all__) == sorted([
        "import_dataset", "export_dataset", "export_with_report", "add_sample", "dataset_stats",
        "augmentation_preset", "TrainConfig", "fill_from_table", "train_dataset", "resume_run", "evaluate_run", "find_run",
        "runs_of", "load_run", "compare_runs", "RunRecord", "mine_run", "predict_examples",
        "ProgressPrinter", "ProgressCallback"])
    assert sorted(workbench.widgets.__all__) == sorted([
        "WorkbenchApp", "APView", "AugmentGridState", "AugmentationGrid", "BalancePlot", "ConfusionMatrixView",
        "ConfusionState", "CurvesState", "DatasetOverview", "ErrorGallery", "GridExample", "ThumbnailGallery",
        "TrainingCurves", "AnnotationCanvas", "AnnotationSink", "CanvasSettings", "CanvasState", "MemoryImage",
        "MemorySink", "render_example", "render_png", "overview", "augmentation_grid", "evaluation_views",
        "error_gallery", "Picker", "ReviewView", "UserGate"])
    for module in (workbench.service, workbench.widgets):
        for name in module.__all__:
            assert getattr(module, name) is not None, name
    from workbench.data.transfer import import_source

    assert workbench.service.import_dataset.__wrapped__ is import_source  # the implementation, not a copy


def test_notebooks_use_only_the_public_api():
    """Every ``workbench`` import in the notebook sources is from a curated module."""
    import ast
    from pathlib import Path

    public = {"workbench", "workbench.service", "workbench.widgets"}
    sources = sorted((Path(workbench.__file__).parent / "notebooks" / "_source").glob("*.py"))
    assert len(sources) == 6
    for src in sources:
        for node in ast.walk(ast.parse(src.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("workbench"):
                assert node.module in public, f"{src.name}: from {node.module} import ..."
            elif isinstance(node, ast.Import):
                assert not [a.name for a in node.names if a.name.startswith("workbench.")], src.name



def _without(*modules: str) -> str:
    """Code that makes ``import MODULE`` fail as it does when MODULE is not installed (ModuleNotFoundError
    with its name), by a finder placed first on the import path."""
    return ("import sys\n"
            "class _Missing:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            f"        if name.split('.')[0] in {modules!r}:\n"
            "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
            "sys.meta_path.insert(0, _Missing())\n")


_NO_TORCH = _without("torch", "torchvision")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_missing_extra_in_python_names_the_pip_command(tmp_path):
    code = (_NO_TORCH + "from workbench.errors import MissingExtraError\n"
            "import workbench.service as s\nfrom workbench import Workspace\n"
            f"ws = Workspace({str(tmp_path)!r}); s.add_sample(ws, 'd', 'digits', count=20)\n"
            "try:\n    s.train_dataset(ws, 'd', s.TrainConfig(epochs=1))\n"
            "except MissingExtraError as e:\n    print('raised:', e)\n")
    p = _run(code)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "raised: torch is not installed: pip install 'workbench[train]'"


def test_missing_extra_on_the_command_line(tmp_path):
    code = (_NO_TORCH + "import os; os.environ['WORKBENCH_HOME'] = " + repr(str(tmp_path)) + "\n"
            "from workbench.cli import main\n"
            "assert main(['sample', 'd', 'digits', '--count', '20']) == 0\n"
            "sys.exit(main(['train', 'd', '--epochs', '1']))\n")
    p = _run(code)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert p.stderr.strip().splitlines()[-1] == "error: torch is not installed: pip install 'workbench[train]'"


def test_missing_widgets_extra():
    p = _run(_without("ipywidgets") + "import workbench.widgets as w\n"
             "try:\n    w.WorkbenchApp\nexcept ImportError as e:\n    print(type(e).__name__, e)\n")
    assert p.stdout.strip() == ("MissingExtraError ipywidgets is not installed: pip install 'workbench[widgets]'"), p.stderr


def test_version_is_one_string():
    """``workbench.__version__`` (from the bottom-layer ``_version`` module that run folders record) is the
    version pyproject.toml builds."""
    import tomllib
    from pathlib import Path

    from workbench._version import __version__

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    assert workbench.__version__ == __version__ == project["version"]
