"""Jupyter views over pure-Python state objects.

Importing this package loads no ipywidgets / ipycanvas: the widget classes are imported on first use,
the state objects (``CanvasState``) need numpy and Pillow only.
"""

from __future__ import annotations

from typing import Any

from ..service import lazy_attribute

__all__ = [
    "WorkbenchApp",
    "APView",
    "AugmentGridState",
    "AugmentationGrid",
    "BalancePlot",
    "ConfusionMatrixView",
    "ConfusionState",
    "CurvesState",
    "DatasetOverview",
    "ErrorGallery",
    "GridExample",
    "ThumbnailGallery",
    "TrainingCurves",
    "AnnotationCanvas",
    "AnnotationSink",
    "CanvasSettings",
    "CanvasState",
    "MemoryImage",
    "MemorySink",
    "render_example",
    "render_png",
    "overview",
    "augmentation_grid",
    "evaluation_views",
    "error_gallery",
    "Picker",
    "ReviewView",
    "UserGate",
]

_LAZY = {
    "WorkbenchApp": ".app",
    "BalancePlot": ".balance",
    "DatasetOverview": ".balance",
    "TrainingCurves": ".curves",
    "CurvesState": ".curves",
    "ConfusionMatrixView": ".evaluation",
    "ConfusionState": ".evaluation",
    "APView": ".evaluation",
    "ThumbnailGallery": ".gallery",
    "ErrorGallery": ".gallery",
    "AugmentationGrid": ".augment_grid",
    "GridExample": ".augment_state",
    "AugmentGridState": ".augment_state",
    "AnnotationCanvas": ".canvas",
    "AnnotationSink": ".sink",
    "MemoryImage": ".sink",
    "MemorySink": ".sink",
    "CanvasSettings": ".canvas_state",
    "CanvasState": ".canvas_state",
    "render_example": ".render",
    "render_png": ".render",
    "overview": ".app",
    "augmentation_grid": ".app",
    "evaluation_views": ".app",
    "error_gallery": ".app",
    "Picker": ".app",
    "ReviewView": ".app",
    "UserGate": ".app",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = lazy_attribute(__name__, module, name)  # a missing ipywidgets says: pip install 'workbench[widgets]'
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
