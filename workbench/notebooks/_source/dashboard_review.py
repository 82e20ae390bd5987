"""Source of dashboards/review.ipynb:
cells in the percent format (``# %%``), written to .ipynb by
scripts/build_notebooks.py; edit this file, not the notebook."""
# ruff: noqa: E402


# %% [markdown]
# # Review a training run
#
# The test metrics, where the model goes wrong, and the mined examples; "open in canvas" shows one on the annotation canvas to accept or correct the model's proposals.

# %% tags=["parameters"]
# Parameters (papermill overrides these; empty strings mean 'the default')
workspace = ''
user = ''

# %%
from workbench import Workspace
from workbench.service import runs_of
from workbench.widgets import Picker, ReviewView, UserGate

ws = Workspace(workspace or None)
runs = [r for r in runs_of(ws) if r.metrics]
# user: this parameter, else $WORKBENCH_USER (workbench serve --user), else a name field
UserGate(user, lambda who: Picker(
    [(f"{r.run_id} ({r.dataset}, {r.state})", str(r.path)) for r in runs],
    lambda path: ReviewView(ws, path, user=who), description='Run', css_class='wb-run-picker',
    empty='No finished runs yet: run <code>workbench train NAME</code>'))
