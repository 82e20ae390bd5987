"""Writes the loop's notebooks (workbench/notebooks/), the per-type project templates
(workbench/templates/<type>/) and the dashboards (workbench/dashboards/) from their sources, plain Python
files in the percent format (workbench/notebooks/_source/*.py, linted and type-checked with the package),
so they never drift apart. Notebooks are written without outputs.

    python scripts/build_notebooks.py          # rewrite
    python scripts/build_notebooks.py --check  # exit 1 when a committed notebook differs
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]

# Per dataset type: the sample a template starts from and its model. Epochs, batch size, lr, schedule and image
# size stay the train notebook's 0 / '': the defaults table's (workbench/train/defaults.py, by type and size),
# as for `workbench train` with no flags.
TYPES = {
    "classification": {"sample": "digits", "sample_count": 0, "model": "small-cnn"},
    "detection": {"sample": "shapes-detection", "sample_count": 200, "model": "tiny-frcnn"},
    "segmentation": {"sample": "shapes-segmentation", "sample_count": 150, "model": "tiny-maskrcnn"},
    "anomaly": {"sample": "shapes-anomaly", "sample_count": 200, "model": "patchcore-valid"},
}


SOURCE = ROOT / "workbench" / "notebooks" / "_source"
# Each notebook: its source, where it is written, and whether templates/<type>/ get a copy per type.
NOTEBOOKS = {
    "quickstart": ("notebooks/00_quickstart.ipynb", False),
    "annotate": ("notebooks/01_annotate.ipynb", True),
    "train": ("notebooks/02_train.ipynb", True),
    "evaluate": ("notebooks/03_evaluate.ipynb", True),
    "dashboard_annotate": ("dashboards/annotate.ipynb", False),
    "dashboard_review": ("dashboards/review.ipynb", False),
}
PARAMS_HEADER = "# Parameters (papermill overrides these; empty strings mean 'the default')"


def read_cells(path: Path) -> list[tuple[str, str]]:
    """The cells of a percent-format source as (kind, text), kind "markdown", "parameters" or "code".
    Text before the first ``# %%`` (the file's docstring and lint directives) is not a cell."""
    cells: list[tuple[str, list[str]]] = []
    for line in path.read_text().splitlines():
        if line.startswith("# %%"):
            marker = line[4:].strip()
            kind = {"[markdown]": "markdown", 'tags=["parameters"]': "parameters", "": "code"}.get(marker)
            if kind is None:
                raise SystemExit(f"{path}: unknown cell marker {line!r}")
            cells.append((kind, []))
        elif cells:
            kind, lines = cells[-1]
            if kind == "markdown" and line and not line.startswith("#"):
                raise SystemExit(f"{path}: a markdown cell line must start with '#': {line!r}")
            lines.append(line[2:] if kind == "markdown" and line.startswith("# ") else
                         "" if kind == "markdown" and line == "#" else line)
    return [(kind, "\n".join(lines).strip("\n")) for kind, lines in cells]


def _params(text: str, overrides: dict) -> str:
    """The parameters cell with ``overrides`` applied to the names it assigns (no other name is added)."""
    values = {}
    for node in ast.parse(text).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise SystemExit(f"the parameters cell holds only NAME = LITERAL lines, got {ast.unparse(node)!r}")
        values[node.targets[0].id] = ast.literal_eval(node.value)
    values.update({k: v for k, v in overrides.items() if k in values})
    return "\n".join([PARAMS_HEADER] + [f"{k} = {v!r}" for k, v in values.items()])


def _nb(cells: list[tuple[str, str]], overrides: dict) -> nbformat.NotebookNode:
    nb = new_notebook()
    out = []
    for kind, text in cells:
        if kind == "parameters":
            cell = new_code_cell(_params(text, overrides))
            cell.metadata["tags"] = ["parameters"]
        elif kind == "markdown":
            cell = new_markdown_cell(text)
        else:
            cell = new_code_cell(text)
        out.append(cell)
    for i, cell in enumerate(out):
        cell.id = f"cell-{i:02d}"  # stable ids: rebuilding gives the same file
    nb.cells = out
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def targets() -> dict[Path, nbformat.NotebookNode]:
    out = {}
    pkg = ROOT / "workbench"
    for name, (dest, per_type) in NOTEBOOKS.items():
        cells = read_cells(SOURCE / f"{name}.py")
        out[pkg / dest] = _nb(cells, {})
        if per_type:
            for t, p in TYPES.items():
                out[pkg / "templates" / t / Path(dest).name] = _nb(cells, {"dataset": t, "dataset_type": t, **p})
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    stale = []
    for path, nb in targets().items():
        text = nbformat.writes(nb) + "\n"
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("out of date:", *map(str, stale), sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
