"""Run folders: moved to :mod:`workbench.runs` (torch-free, below training); kept here for old imports."""

from __future__ import annotations

from ..runs.folder import *  # noqa: F403 - the same names, listed once in runs.folder
from ..runs.folder import __all__ as __all__
