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
