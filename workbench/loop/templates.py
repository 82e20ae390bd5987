"""``workbench new``: a project folder from the per-type template (notebooks, params.yaml, README)."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import yaml

from ..errors import AlreadyExistsError, ValidationError
from .assets import asset_dir
from .params import STEPS

__all__ = ["templates_dir", "new_project"]

README = """# {name}

A Workbench project for a {dtype} dataset, made by `workbench new`.

Run the whole loop headless (annotate -> train -> evaluate), outputs in `runs/<time>/`:

```bash
workbench loop --notebooks . --params params.yaml
```

Or open the notebooks in JupyterLab and run them cell by cell: `01_annotate.ipynb` (canvas, balance,
augmentations, snapshot), `02_train.ipynb` (live curves), `03_evaluate.ipynb` (metrics, mined errors in the
`review` directory). `params.yaml` sets the dataset, the sample it starts from, the model and the training
settings; epochs, batch_size, lr, schedule and image_size left at 0 / '' come from the defaults table by
dataset type and training-set size (as for `workbench train`; the train step prints what it chose and why).
Point `sample` at your own data by importing it first (`workbench import {name} DATA --format ...`).
"""

PARAMS_HEADER = """# Loop parameters (workbench loop --notebooks . --params params.yaml). epochs, batch_size, lr, schedule and
# image_size at 0 / '': the defaults table's, by dataset type and training-set size (a value here wins).
"""


def templates_dir() -> Path:
    """The per-type project templates (``workbench/templates/<type>`` inside the package)."""
    return asset_dir("templates")


def new_project(project: str | Path, dataset_type: str) -> list[Path]:
    import papermill

    src = templates_dir() / dataset_type
    if not src.is_dir():
        valid = sorted(p.name for p in templates_dir().iterdir() if p.is_dir())
        raise ValidationError(f"no template for {dataset_type!r}; valid: {', '.join(valid)}", field="type")
    dest = Path(project)
    if dest.exists() and any(dest.iterdir()):
        raise AlreadyExistsError(f"{dest} exists and is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    files = []
    for step in STEPS:
        files.append(Path(shutil.copy2(src / f"{step}.ipynb", dest / f"{step}.ipynb")))
    params: dict = {}
    for f in files:
        for k, v in papermill.inspect_notebook(str(f)).items():
            if k not in ("workspace", "out_dir", "snapshot", "run"):
                params[k] = ast.literal_eval(v["default"])
    params["dataset"] = dest.name
    (dest / "params.yaml").write_text(PARAMS_HEADER + yaml.safe_dump(params, sort_keys=False))
    (dest / "README.md").write_text(README.format(name=dest.name, dtype=dataset_type))
    return [*files, dest / "params.yaml", dest / "README.md"]
