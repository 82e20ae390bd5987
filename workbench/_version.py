"""The package's version, in a module of the bottom layer: run folders record it (``runs.folder``) without
importing the package root. ``pyproject.toml`` holds the same string."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
