"""The loop as people run it: papermill-chained notebooks, templates, and Voilà dashboards."""

from .params import DEFAULTS, QUICK, STEPS, load_params
from .runner import LoopResult, StepFailed, run_loop, run_sweep

__all__ = ["DEFAULTS", "QUICK", "STEPS", "LoopResult", "StepFailed", "load_params", "run_loop", "run_sweep"]
