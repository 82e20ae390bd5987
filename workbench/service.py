"""The entry points of the loop in one place: import, export, sample, check, train, evaluate, mine, predict.

What the notebooks, the dashboards and a script use::

    from workbench import Workspace
    from workbench.service import add_sample, train_dataset, TrainConfig, load_run, mine_run

Each name is the implementation's own class, or its function with the same signature and docs, loaded on
first use (PEP 562): ``import workbench.service`` stays light. Where an optional library is not installed,
using the name (or calling the function) raises :class:`~workbench.errors.MissingExtraError`, which says the
``pip install 'workbench[EXTRA]'`` that installs it.
"""

from __future__ import annotations

import functools
import inspect
from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import missing_extra

if TYPE_CHECKING:
    from .augment.presets import preset as augmentation_preset
    from .data.stats import dataset_stats
    from .data.transfer import add_sample, export_dataset, export_with_report
    from .data.transfer import import_source as import_dataset
    from .progress import ProgressPrinter
    from .runs import RunRecord, compare_runs, load_run
    from .train.config import TrainConfig
    from .train.defaults import fill_from_table
    from .train.from_store import evaluate_run, find_run, resume_run, runs_of, train_dataset
    from .train.mining import mine_run
    from .train.predict_rows import predict_examples
    from .train.progress import ProgressCallback

__all__ = [
    "import_dataset",
    "export_dataset",
    "export_with_report",
    "add_sample",
    "dataset_stats",
    "augmentation_preset",
    "TrainConfig",
    "fill_from_table",
    "train_dataset",
    "resume_run",
    "evaluate_run",
    "find_run",
    "runs_of",
    "load_run",
    "compare_runs",
    "RunRecord",
    "mine_run",
    "predict_examples",
    "ProgressPrinter",
    "ProgressCallback",
]

# public name -> (module, name there)
_LAZY = {
    "import_dataset": (".data.transfer", "import_source"),
    "export_dataset": (".data.transfer", "export_dataset"),
    "export_with_report": (".data.transfer", "export_with_report"),
    "add_sample": (".data.transfer", "add_sample"),
    "dataset_stats": (".data.stats", "dataset_stats"),
    "augmentation_preset": (".augment.presets", "preset"),
    "TrainConfig": (".train.config", "TrainConfig"),
    "fill_from_table": (".train.defaults", "fill_from_table"),
    "train_dataset": (".train.from_store", "train_dataset"),
    "resume_run": (".train.from_store", "resume_run"),
    "evaluate_run": (".train.from_store", "evaluate_run"),
    "find_run": (".train.from_store", "find_run"),
    "runs_of": (".train.from_store", "runs_of"),
    "load_run": (".runs", "load_run"),
    "compare_runs": (".runs", "compare_runs"),
    "RunRecord": (".runs", "RunRecord"),
    "mine_run": (".train.mining", "mine_run"),
    "predict_examples": (".train.predict_rows", "predict_examples"),
    "ProgressPrinter": (".progress", "ProgressPrinter"),
    "ProgressCallback": (".train.progress", "ProgressCallback"),
}


def _extra_hint(fn: Any) -> Any:
    """``fn`` with a missing optional library (imported when it runs) raised as MissingExtraError."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ModuleNotFoundError as e:
            missing = missing_extra(e)
            if missing is None:
                raise
            raise missing from e

    return call


def lazy_attribute(package: str, module: str, name: str) -> Any:
    """``name`` from ``module`` (relative to ``package``); a missing optional library raises
    :class:`~workbench.errors.MissingExtraError` naming the extra to install, on import or on call."""
    try:
        value = getattr(import_module(module, package), name)
    except ModuleNotFoundError as e:
        missing = missing_extra(e)
        if missing is None:
            raise
        raise missing from e
    return _extra_hint(value) if inspect.isfunction(value) else value


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = lazy_attribute("workbench", *where)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
