"""Source of dashboards/annotate.ipynb:
cells in the percent format (``# %%``), written to .ipynb by
scripts/build_notebooks.py; edit this file, not the notebook."""
# ruff: noqa: E402


# %% [markdown]
# **Workbench** · pick a dataset: annotate it, look at its balance and augmentations, train and watch the curves, then review what the model got wrong.

# %% tags=["parameters"]
# Parameters (papermill overrides these; empty strings mean 'the default')
workspace = ''
dataset = ''
user = ''

# %%
from workbench import Workspace
from workbench.widgets import Picker, UserGate, WorkbenchApp

ws = Workspace(workspace or None)
# user: this parameter, else $WORKBENCH_USER (workbench serve --user), else a name field
UserGate(user, lambda who: Picker(
    [d['name'] for d in ws.datasets()], lambda name: WorkbenchApp(ws.dataset(name), user=who),
    description='Dataset', value=dataset, css_class='wb-dataset-picker',
    empty='No datasets yet: run <code>workbench sample demo shapes-detection</code>'))
