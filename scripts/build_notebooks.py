"""Writes the loop's notebooks (notebooks/) and the per-type project templates (templates/<type>/) from
one source, so they never drift apart. Notebooks are written without outputs.

    python scripts/build_notebooks.py          # rewrite
    python scripts/build_notebooks.py --check  # exit 1 when a committed notebook differs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]

# Per dataset type: the sample a template starts from and quick-but-real defaults.
TYPES = {
    "classification": {"sample": "digits", "sample_count": 0, "model": "small-cnn", "epochs": 12,
                       "batch_size": 64, "lr": 0.002, "image_size": 0},
    "detection": {"sample": "shapes-detection", "sample_count": 200, "model": "tiny-frcnn", "epochs": 8,
                  "batch_size": 8, "lr": 0.001, "image_size": 0},
    "segmentation": {"sample": "shapes-segmentation", "sample_count": 150, "model": "tiny-maskrcnn",
                     "epochs": 8, "batch_size": 8, "lr": 0.001, "image_size": 0},
    "anomaly": {"sample": "shapes-anomaly", "sample_count": 200, "model": "conv-ae", "epochs": 10,
                "batch_size": 16, "lr": 0.001, "image_size": 0},
}


def _params(pairs: dict) -> str:
    lines = ["# Parameters (papermill overrides these; empty strings mean 'the default')"]
    lines += [f"{k} = {v!r}" for k, v in pairs.items()]
    return "\n".join(lines)


def _nb(cells: list, params: dict) -> nbformat.NotebookNode:
    nb = new_notebook()
    out = []
    for c in cells:
        if c == "PARAMS":
            cell = new_code_cell(_params(params))
            cell.metadata["tags"] = ["parameters"]
            out.append(cell)
        elif c.startswith("#md "):
            out.append(new_markdown_cell(c[4:]))
        else:
            out.append(new_code_cell(c))
    for i, cell in enumerate(out):
        cell.id = f"cell-{i:02d}"  # stable ids: rebuilding gives the same file
    nb.cells = out
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


OPEN = """from workbench import Workspace
from workbench.data.transfer import add_sample

ws = Workspace(workspace or None)
if ws.has_dataset(dataset):
    ds = ws.dataset(dataset)
else:
    ds, _ = add_sample(ws, dataset, sample, count=sample_count or None, seed=seed)
print(f"{ds.name}: {ds.type}, {ds.count()} examples, classes: {', '.join(c.name for c in ds.classes)}")"""


def quickstart(t: str) -> nbformat.NotebookNode:
    p = TYPES[t]
    return _nb([
        "#md # Workbench quickstart\n\nA built-in sample, the annotation canvas, the dataset overview and the "
        "augmentation preview. Run the cells one by one; every change on the canvas is saved at once.",
        "PARAMS", OPEN,
        "#md ## Annotate\nDraw, select, move and resize boxes; number keys pick the class; Ctrl+Z undoes.",
        "from workbench.widgets import AnnotationCanvas\n\ncanvas = AnnotationCanvas(ds, user='quickstart')\ncanvas",
        "#md ## Check the dataset",
        "from workbench.widgets.app import overview\n\noverview(ds)",
        "#md ## Preview augmentations\nWhat training will see: toggle transforms, re-roll, save.",
        "from workbench.widgets.app import augmentation_grid\n\naugmentation_grid(ds, seed=seed)",
    ], {"workspace": "", "dataset": f"quickstart-{t}", "sample": p["sample"], "sample_count": 60, "seed": 0})


def annotate(t: str) -> nbformat.NotebookNode:
    p = TYPES[t]
    return _nb([
        "#md # 1. Annotate and check\n\nBrings in the data (a built-in sample when the dataset is new), shows "
        "the annotation canvas, checks balance and quality, previews augmentations and freezes a snapshot "
        "for training. Headless (papermill) it does the same work without a person.",
        "PARAMS",
        OPEN + "\nif ds.type != dataset_type:\n    raise ValueError(f'dataset {dataset!r} is {ds.type}, "
               "the notebook expects {dataset_type}')",
        "#md ## Annotate",
        "from workbench.widgets import AnnotationCanvas\n\ncanvas = AnnotationCanvas(ds, user='notebook')\ncanvas",
        "#md ## Check the dataset",
        "from workbench.data.stats import dataset_stats\nfrom workbench.widgets.app import overview\n\n"
        "stats = dataset_stats(ds)\nfor w in stats['warnings']:\n    print(f\"{w['severity']}: {w['message']}\")\n"
        "if not stats['can_train']:\n    raise RuntimeError('the dataset cannot be trained on yet: see the errors above')\n"
        "overview(ds)",
        "#md ## Preview augmentations",
        "from workbench.augment.presets import preset\nfrom workbench.widgets.app import augmentation_grid\n\n"
        "if augment_preset:\n    ds.set_augment_config(preset(augment_preset))\n"
        "augmentation_grid(ds, seed=seed)",
        "#md ## Snapshot",
        "import json\nfrom pathlib import Path\n\nsnap = ds.snapshot('loop: annotate')\n"
        "print(f'snapshot {snap.id}: {snap.examples} examples, {snap.annotations} annotations')\n"
        "if out_dir:\n    Path(out_dir, 'annotate.json').write_text(json.dumps({'dataset': ds.name, "
        "'snapshot': snap.id, 'stats': {k: stats[k] for k in ('examples', 'annotations', 'splits', 'classes')}}, "
        "indent=2))",
    ], {"workspace": "", "out_dir": "", "dataset": t, "dataset_type": t, "sample": p["sample"],
        "sample_count": p["sample_count"], "seed": 0, "augment_preset": ""})


def train(t: str) -> nbformat.NotebookNode:
    p = TYPES[t]
    return _nb([
        "#md # 2. Train\n\nTrains on the snapshot from step 1 (or the one named) with live curves; the run "
        "folder keeps parameters, history, checkpoints and test predictions.",
        "PARAMS",
        "import json\nfrom pathlib import Path\n\nfrom workbench import Workspace\n\nws = Workspace(workspace or None)\n"
        "ds = ws.dataset(dataset)\nif not snapshot and out_dir and Path(out_dir, 'annotate.json').is_file():\n"
        "    snapshot = json.loads(Path(out_dir, 'annotate.json').read_text())['snapshot']\n"
        "print(f'training on {dataset}' + (f' snapshot {snapshot}' if snapshot else ' (live dataset)'))",
        "from workbench.train.config import TrainConfig\n\nconfig = TrainConfig(model=model or None, epochs=epochs, "
        "batch_size=batch_size, lr=lr, seed=seed, image_size=image_size or None,\n"
        "                     augment=augment_preset or ds.augment_config())\nconfig",
        "#md ## Live curves",
        "from workbench.train.from_store import train_dataset\nfrom workbench.train.progress import ProgressCallback\n"
        "from workbench.widgets import TrainingCurves\n\n"
        "curves = TrainingCurves(title=f'{dataset}: {model or \"default model\"}')\ndisplay(curves)\n"
        "# ProgressCallback: step progress on stderr (what `workbench loop` streams while this cell runs)\n"
        "summary = train_dataset(ws, dataset, config, snapshot=snapshot or None, callbacks=[curves, ProgressCallback()])",
        "print(f\"run {summary['run_id']}: {summary['status']} after {summary['epochs_run']} epochs, best epoch "
        "{summary['best_epoch']}\")\nfor k, v in summary['test'].items():\n    if isinstance(v, float):\n"
        "        print(f'  test {k}: {v:.4f}')\nif out_dir:\n    Path(out_dir, 'train.json').write_text("
        "json.dumps({'run_id': summary['run_id'], 'run_dir': summary['run_dir']}, indent=2))",
    ], {"workspace": "", "out_dir": "", "dataset": t, "snapshot": "", "model": p["model"], "epochs": p["epochs"],
        "batch_size": p["batch_size"], "lr": p["lr"], "seed": 0, "image_size": p["image_size"],
        "augment_preset": ""})


def evaluate(t: str) -> nbformat.NotebookNode:
    return _nb([
        "#md # 3. Evaluate and mine the errors\n\nThe test-split metrics, the confusion matrix or per-class AP, "
        "and the examples that would teach the model most, mirrored into the `review` directory with the "
        "model's predictions as proposals to accept or correct on the canvas.",
        "PARAMS",
        "import json\nfrom pathlib import Path\n\nfrom workbench import Workspace\nfrom workbench.train.runs import "
        "load_run\n\nws = Workspace(workspace or None)\nds = ws.dataset(dataset)\n"
        "if not run and out_dir and Path(out_dir, 'train.json').is_file():\n"
        "    run = json.loads(Path(out_dir, 'train.json').read_text())['run_dir']\n"
        "if not run:\n    runs = sorted((ws.runs_dir).glob(f'{dataset}-*'))\n    run = str(runs[-1]) if runs else ''\n"
        "rec = load_run(run)\nprint(f'run {rec.run_id} ({rec.state}) on {rec.dataset}')\n"
        "for k, v in rec.metrics.get('test', {}).items():\n    if isinstance(v, float):\n        print(f'  test {k}: {v:.4f}')",
        "#md ## Where the model goes wrong",
        "from IPython.display import display\nfrom workbench.widgets.app import evaluation_views\n\n"
        "for view in evaluation_views(ds, rec.path):\n    display(view)",
        "#md ## Mine the errors into `review`",
        "from workbench.evaluate import mine_run\nfrom workbench.progress import ProgressPrinter\n"
        "from workbench.widgets.app import error_gallery\n\n"
        "mined = mine_run(ds, rec.path, count=mine_count, progress=ProgressPrinter())\nprint(f\"{len(mined.selected)} examples to review "
        "(directory 'review'); {len(mined.label_errors)} likely label errors\")\nerror_gallery(ds, mined.to_dict())",
        "#md ## Report",
        "test = rec.metrics.get('test', {})\nheadline = {k: test[k] for k in ('accuracy', 'macro_f1', 'mAP', "
        "'mAP50', 'mask_mAP', 'auroc', 'f1') if isinstance(test.get(k), float)}\n"
        "metrics = {'dataset': dataset, 'run_id': rec.run_id, 'run_dir': str(rec.path), 'snapshot': "
        "rec.params.get('source', {}).get('snapshot_id'),\n           'summary': {f'test {k}': round(v, 4) "
        "for k, v in headline.items()}, 'test': test, 'best_epoch': rec.metrics.get('best_epoch'),\n"
        "           'review': {'directory': 'review', 'examples': mined.selected_ids}}\n"
        "if out_dir:\n    Path(out_dir, 'metrics.json').write_text(json.dumps(metrics, indent=2, default=str))\n"
        "metrics['summary']",
    ], {"workspace": "", "out_dir": "", "dataset": t, "run": "", "mine_count": 40})


def dashboard_annotate() -> nbformat.NotebookNode:
    return _nb([
        "#md **Workbench** · pick a dataset: annotate it, look at its balance and augmentations, train and "
        "watch the curves, then review what the model got wrong.",
        "PARAMS",
        "from workbench import Workspace\nfrom workbench.widgets import WorkbenchApp\nfrom workbench.widgets.app "
        "import Picker, UserGate\n\nws = Workspace(workspace or None)\n"
        "# user: this parameter, else $WORKBENCH_USER (workbench serve --user), else a name field\n"
        "UserGate(user, lambda who: Picker(\n"
        "    [d['name'] for d in ws.datasets()], lambda name: WorkbenchApp(ws.dataset(name), user=who),\n"
        "    description='Dataset', value=dataset, css_class='wb-dataset-picker',\n"
        "    empty='No datasets yet: run <code>workbench sample demo shapes-detection</code>'))",
    ], {"workspace": "", "dataset": "", "user": ""})


def dashboard_review() -> nbformat.NotebookNode:
    return _nb([
        "#md # Review a training run\n\nThe test metrics, where the model goes wrong, and the mined examples; "
        "\"open in canvas\" shows one on the annotation canvas to accept or correct the model's proposals.",
        "PARAMS",
        "from workbench import Workspace\nfrom workbench.train.from_store import runs_of\n"
        "from workbench.widgets.app import Picker, ReviewView, UserGate\n\nws = Workspace(workspace or None)\n"
        "runs = [r for r in runs_of(ws) if r.metrics]\n"
        "# user: this parameter, else $WORKBENCH_USER (workbench serve --user), else a name field\n"
        "UserGate(user, lambda who: Picker(\n"
        "    [(f\"{r.run_id} ({r.dataset}, {r.state})\", str(r.path)) for r in runs],\n"
        "    lambda path: ReviewView(ws, path, user=who), description='Run', css_class='wb-run-picker',\n"
        "    empty='No finished runs yet: run <code>workbench train NAME</code>'))",
    ], {"workspace": "", "user": ""})


BUILDERS = {"00_quickstart": quickstart, "01_annotate": annotate, "02_train": train, "03_evaluate": evaluate}


def targets() -> dict[Path, nbformat.NotebookNode]:
    out = {ROOT / "notebooks" / f"{name}.ipynb": fn("classification") for name, fn in BUILDERS.items()}
    out[ROOT / "dashboards" / "annotate.ipynb"] = dashboard_annotate()
    out[ROOT / "dashboards" / "review.ipynb"] = dashboard_review()
    for t in TYPES:
        for name, fn in BUILDERS.items():
            if name != "00_quickstart":
                out[ROOT / "templates" / t / f"{name}.ipynb"] = fn(t)
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
