"""Workbench: the dataset-to-model loop for computer vision, inside Jupyter.

``import workbench`` is light: it loads no torch, plotly, ipywidgets or OpenCV. Those load when a
feature that needs them is used.
"""

from .data import Annotation, ClassDef, Dataset, Example, Workspace
from .errors import WorkbenchError

__version__ = "0.1.0"

__all__ = ["Annotation", "ClassDef", "Dataset", "Example", "Workspace", "WorkbenchError", "__version__"]
