"""Workbench: the dataset-to-model loop for computer vision, inside Jupyter.

``import workbench`` is light: it loads no torch, plotly, ipywidgets or OpenCV, and not even the data
layer until a name below is first used (``workbench.Workspace`` imports it then). Heavy libraries load when
a feature that needs them is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._version import __version__
    from .data import Annotation, ClassDef, Dataset, Example, Workspace
    from .errors import WorkbenchError

__all__ = ["Annotation", "ClassDef", "Dataset", "Example", "Workspace", "WorkbenchError", "__version__"]

_LAZY = {"Annotation": ".data", "ClassDef": ".data", "Dataset": ".data", "Example": ".data",
         "Workspace": ".data", "WorkbenchError": ".errors", "__version__": "._version"}


def __getattr__(name: str) -> Any:
    """``workbench.Workspace`` and the others, imported on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
