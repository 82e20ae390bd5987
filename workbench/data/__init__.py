"""The data layer: workspace store, records, formats, splits, snapshots, samples and quality checks.

Imports no torch, plotly or ipywidgets.
"""

from .dataset import Dataset
from .import_report import ImportReport
from .records import Annotation, ClassDef, Example, ImportBatch, ImportItem
from .snapshots import Snapshot, SnapshotInfo
from .splits import SplitSettings
from .workspace import Workspace, default_home

__all__ = [
    "Annotation",
    "ClassDef",
    "Dataset",
    "Example",
    "ImportBatch",
    "ImportItem",
    "ImportReport",
    "Snapshot",
    "SnapshotInfo",
    "SplitSettings",
    "Workspace",
    "default_home",
]
