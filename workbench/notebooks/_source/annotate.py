"""Source of notebooks/01_annotate.ipynb and templates/<type>/01_annotate.ipynb:
cells in the percent format (``# %%``), written to .ipynb by scripts/build_notebooks.py;
edit this file, not the notebook. The template variants take the parameters of their type."""

# ruff: noqa: E402, B018 (a notebook: imports in their cells, a last expression is shown)


# %% [markdown]
# # 1. Annotate and check
#
# Brings in the data (a built-in sample when the dataset is new), shows the annotation canvas, checks balance and quality, previews augmentations and freezes a snapshot for training. Headless (papermill) it does the same work without a person.

# %% tags=["parameters"]
# Parameters (papermill overrides these; empty strings mean 'the default')
workspace = ''
out_dir = ''
dataset = 'classification'
dataset_type = 'classification'
sample = 'digits'
sample_count = 0
seed = 0
augment_preset = ''

# %%
from workbench import Workspace
from workbench.service import add_sample

ws = Workspace(workspace or None)
if ws.has_dataset(dataset):
    ds = ws.dataset(dataset)
else:
    ds, _ = add_sample(ws, dataset, sample, count=sample_count or None, seed=seed)
print(f"{ds.name}: {ds.type}, {ds.count()} examples, classes: {', '.join(c.name for c in ds.classes)}")
if ds.type != dataset_type:
    raise ValueError(f'dataset {dataset!r} is {ds.type}, the notebook expects {dataset_type}')

# %% [markdown]
# ## Annotate

# %%
from workbench.widgets import AnnotationCanvas

canvas = AnnotationCanvas(ds, user='notebook')
canvas

# %% [markdown]
# ## Check the dataset

# %%
from workbench.service import dataset_stats
from workbench.widgets import overview

stats = dataset_stats(ds)
for w in stats['warnings']:
    print(f"{w['severity']}: {w['message']}")
if not stats['can_train']:
    raise RuntimeError('the dataset cannot be trained on yet: see the errors above')
overview(ds)

# %% [markdown]
# ## Preview augmentations

# %%
from workbench.service import augmentation_preset
from workbench.widgets import augmentation_grid

if augment_preset:
    ds.set_augment_config(augmentation_preset(augment_preset))
augmentation_grid(ds, seed=seed)

# %% [markdown]
# ## Snapshot

# %%
import json
from pathlib import Path

snap = ds.snapshot('loop: annotate')
print(f'snapshot {snap.id}: {snap.examples} examples, {snap.annotations} annotations')
if out_dir:
    Path(out_dir, 'annotate.json').write_text(json.dumps({'dataset': ds.name, 'snapshot': snap.id, 'stats': {k: stats[k] for k in ('examples', 'annotations', 'splits', 'classes')}}, indent=2))
