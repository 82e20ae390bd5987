"""Source of notebooks/00_quickstart.ipynb:
cells in the percent format (``# %%``), written to .ipynb by scripts/build_notebooks.py;
edit this file, not the notebook."""

# ruff: noqa: E402, B018 (a notebook: imports in their cells, a last expression is shown)


# %% [markdown]
# # Workbench quickstart
#
# A built-in sample, the annotation canvas, the dataset overview and the augmentation preview. Run the cells one by one; every change on the canvas is saved at once.

# %% tags=["parameters"]
# Parameters (papermill overrides these; empty strings mean 'the default')
workspace = ''
dataset = 'quickstart-classification'
sample = 'digits'
sample_count = 60
seed = 0

# %%
from workbench import Workspace
from workbench.service import add_sample

ws = Workspace(workspace or None)
if ws.has_dataset(dataset):
    ds = ws.dataset(dataset)
else:
    ds, _ = add_sample(ws, dataset, sample, count=sample_count or None, seed=seed)
print(f"{ds.name}: {ds.type}, {ds.count()} examples, classes: {', '.join(c.name for c in ds.classes)}")

# %% [markdown]
# ## Annotate
# Draw, select, move and resize boxes; number keys pick the class; Ctrl+Z undoes.

# %%
from workbench.widgets import AnnotationCanvas

canvas = AnnotationCanvas(ds, user='quickstart')
canvas

# %% [markdown]
# ## Check the dataset

# %%
from workbench.widgets import overview

overview(ds)

# %% [markdown]
# ## Preview augmentations
# What training will see: toggle transforms, re-roll, save.

# %%
from workbench.widgets import augmentation_grid

augmentation_grid(ds, seed=seed)
