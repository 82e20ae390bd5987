"""The notebooks, per-type project templates and dashboards shipped inside the package, found with
:mod:`importlib.resources` (a checkout, an editable install and a wheel install alike)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import ValidationError

__all__ = ["ASSETS", "asset_dir"]

# Each asset folder and a file that must be in it (a half-installed package fails here, by name).
ASSETS = {
    "notebooks": "01_annotate.ipynb",
    "templates": "classification/01_annotate.ipynb",
    "dashboards": "annotate.ipynb",
}


def asset_dir(name: str) -> Path:
    """The folder ``workbench/<name>`` on disk: Voilà and papermill need real files, so a package that is
    not unpacked (a zip) is refused with the folder named."""
    if name not in ASSETS:
        raise ValidationError(f"no Workbench asset folder {name!r}; valid: {', '.join(ASSETS)}")
    folder = resources.files("workbench").joinpath(name)
    path = Path(str(folder))
    if not isinstance(folder, Path) or not (path / ASSETS[name]).is_file():
        raise ValidationError(f"the Workbench {name} are missing from the installed package ({path}): "
                              "reinstall workbench")
    return path
