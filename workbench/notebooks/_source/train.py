"""Source of notebooks/02_train.ipynb and templates/<type>/02_train.ipynb:
cells in the percent format (``# %%``), written to .ipynb by scripts/build_notebooks.py;
edit this file, not the notebook. The template variants take the parameters of their type."""

# ruff: noqa: E402, B018 (a notebook: imports in their cells, a last expression is shown)


# %% [markdown]
# # 2. Train
#
# Trains on the snapshot from step 1 (or the one named) with live curves; the run folder keeps parameters, history, checkpoints and test predictions. Epochs, batch size, learning rate, schedule and image size left at 0 / '' come from the defaults table by dataset type and training-set size (the same table as `workbench train`); the cell below prints what it chose and why.

# %% tags=["parameters"]
# Parameters (papermill overrides these; empty strings mean 'the default')
workspace = ''
out_dir = ''
dataset = 'classification'
snapshot = ''
model = 'small-cnn'
epochs = 0
batch_size = 0
lr = 0.0
schedule = ''
seed = 0
image_size = 0
augment_preset = ''
weights = ''
freeze_backbone = 0
backbone_lr_scale = 1.0

# %%
import json
from pathlib import Path

from workbench import Workspace

ws = Workspace(workspace or None)
ds = ws.dataset(dataset)
if not snapshot and out_dir and Path(out_dir, 'annotate.json').is_file():
    snapshot = json.loads(Path(out_dir, 'annotate.json').read_text())['snapshot']
print(f'training on {dataset}' + (f' snapshot {snapshot}' if snapshot else ' (live dataset)'))

# %%
from workbench.service import TrainConfig, fill_from_table

# 0 / '': the defaults table's, by the dataset's type and the size of the training split
given = {'epochs': epochs, 'batch_size': batch_size, 'lr': lr, 'schedule': schedule, 'image_size': image_size}
chosen, defaults = fill_from_table(ds, {k: v or None for k, v in given.items()}, snapshot=snapshot or None)
print(defaults['note'])
config = TrainConfig(model=model or None, **chosen, seed=seed, augment=augment_preset or ds.augment_config(),
                     weights=weights or None, freeze_backbone=freeze_backbone, backbone_lr_scale=backbone_lr_scale,
                     extra={'defaults': defaults})
config

# %% [markdown]
# ## Live curves

# %%
from IPython.display import display

from workbench.service import ProgressCallback, train_dataset
from workbench.widgets import TrainingCurves

curves = TrainingCurves(title=f'{dataset}: {model or "default model"}')
display(curves)
# ProgressCallback: step progress on stderr (what `workbench loop` streams while this cell runs)
summary = train_dataset(ws, dataset, config, snapshot=snapshot or None, callbacks=[curves, ProgressCallback()])

# %%
print(f"run {summary['run_id']}: {summary['status']} after {summary['epochs_run']} epochs, best epoch {summary['best_epoch']}")
for k, v in summary['test'].items():
    if isinstance(v, float):
        print(f'  test {k}: {v:.4f}')
if out_dir:
    Path(out_dir, 'train.json').write_text(json.dumps({'run_id': summary['run_id'], 'run_dir': summary['run_dir'],
                                                       'defaults': defaults}, indent=2))
