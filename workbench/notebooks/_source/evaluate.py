"""Source of notebooks/03_evaluate.ipynb and templates/<type>/03_evaluate.ipynb:
cells in the percent format (``# %%``), written to .ipynb by scripts/build_notebooks.py;
edit this file, not the notebook. The template variants take the parameters of their type."""

# ruff: noqa: E402, B018 (a notebook: imports in their cells, a last expression is shown)


# %% [markdown]
# # 3. Evaluate and mine the errors
#
# The test-split metrics, the confusion matrix or per-class AP, and the examples that would teach the model most, mirrored into the `review` directory with the model's predictions as proposals to accept or correct on the canvas.

# %% tags=["parameters"]
# Parameters (papermill overrides these; empty strings mean 'the default')
workspace = ''
out_dir = ''
dataset = 'classification'
run = ''
mine_count = 40

# %%
import json
from pathlib import Path

from workbench import Workspace
from workbench.service import load_run

ws = Workspace(workspace or None)
ds = ws.dataset(dataset)
if not run and out_dir and Path(out_dir, 'train.json').is_file():
    run = json.loads(Path(out_dir, 'train.json').read_text())['run_dir']
if not run:
    runs = sorted((ws.runs_dir).glob(f'{dataset}-*'))
    run = str(runs[-1]) if runs else ''
rec = load_run(run)
print(f'run {rec.run_id} ({rec.state}) on {rec.dataset}')
for k, v in rec.metrics.get('test', {}).items():
    if isinstance(v, float):
        print(f'  test {k}: {v:.4f}')

# %% [markdown]
# ## Where the model goes wrong

# %%
from IPython.display import display

from workbench.widgets import evaluation_views

for view in evaluation_views(ds, rec.path):
    display(view)

# %% [markdown]
# ## Mine the errors into `review`

# %%
from workbench.service import ProgressPrinter, mine_run
from workbench.widgets import error_gallery

mined = mine_run(ds, rec.path, count=mine_count, progress=ProgressPrinter())
print(f"{len(mined.selected)} of {mine_count} asked examples to review (directory 'review'); "
      f"{len(mined.label_errors)} likely label errors; by reason: {mined.by_reason}")
for note in mined.notes:  # e.g. fewer examples could be judged than were asked for
    print(f"note: {note}")
error_gallery(ds, mined.to_dict())

# %% [markdown]
# ## Report

# %%
test = rec.metrics.get('test', {})
headline = {k: test[k] for k in ('accuracy', 'macro_f1', 'mAP', 'mAP50', 'mask_mAP', 'auroc', 'f1') if isinstance(test.get(k), float)}
metrics = {'dataset': dataset, 'run_id': rec.run_id, 'run_dir': str(rec.path), 'snapshot': rec.params.get('source', {}).get('snapshot_id'),
           'summary': {f'test {k}': round(v, 4) for k, v in headline.items()}, 'test': test, 'best_epoch': rec.metrics.get('best_epoch'),
           'review': {'directory': 'review', 'examples': mined.selected_ids}}
if out_dir:
    Path(out_dir, 'metrics.json').write_text(json.dumps(metrics, indent=2, default=str))
metrics['summary']
