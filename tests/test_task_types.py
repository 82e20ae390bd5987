"""One ``TaskType``: every registry keyed by dataset type covers every type, and the enum's values are the
strings stored and given on the command line."""

from __future__ import annotations

import json

import pytest

from workbench.data.records import KINDS_FOR_TYPE, TASK_TYPES
from workbench.data.task_types import TYPE_INFO, TaskType, task_type, type_info
from workbench.errors import UnknownNameError

ALL = {t.value for t in TaskType}


def _registries() -> dict[str, object]:
    """Every table keyed by dataset type, light and heavy layers alike (the heavy ones when installed)."""
    from workbench.augment import presets
    from workbench.cli import TYPES
    from workbench.evaluate.mining import RANKERS
    from workbench.evaluate.review import PROPOSERS

    out: dict[str, object] = {
        "data.task_types.TYPE_INFO": TYPE_INFO,
        "data.records.KINDS_FOR_TYPE": KINDS_FOR_TYPE,
        "data.records.TASK_TYPES": TASK_TYPES,
        "cli.TYPES (--type choices)": TYPES,
        "augment.presets._DEFAULTS": presets._DEFAULTS,
        "augment.presets (a preset per type)": {t for t in ALL if presets.preset_names(t)},
        "evaluate.mining.RANKERS": RANKERS,
        "evaluate.review.PROPOSERS": PROPOSERS,
    }
    try:
        from workbench.widgets.canvas_state import TOOLS_FOR_TYPE

        out["widgets.canvas_state.TOOLS_FOR_TYPE"] = TOOLS_FOR_TYPE
    except ImportError:  # pragma: no cover - widgets extra not installed
        pass
    try:
        from workbench.train import data, export, from_store, models, tasks
    except ImportError:  # pragma: no cover - train extra not installed
        return out
    out.update(
        {
            "train.tasks.TASKS": tasks.TASKS,
            "train.models.DEFAULTS": models.DEFAULTS,
            "train.models (a model per type)": {s.dataset_type for s in models.MODELS.values()},
            "train.data._NO_TRUTH": data._NO_TRUTH,
            "train.data._TRUTH": data._TRUTH,
            "train.data._TARGETS": data._TARGETS,
            "train.data._COLLATE": data._COLLATE,
            "train.export._spec": {t for t in ALL if export._spec(t)},
            "train.from_store.EVALUATORS": from_store.EVALUATORS,
        }
    )
    return out


@pytest.mark.parametrize("name", sorted(_registries()))
def test_every_registry_covers_every_type(name):
    keys = _registries()[name]
    assert {str(k) for k in keys} == ALL, name  # type: ignore[attr-defined]


def test_values_are_the_stored_strings():
    assert [t.value for t in TaskType] == ["classification", "detection", "segmentation", "anomaly"]
    assert TaskType.DETECTION == "detection" and json.dumps(TaskType.SEGMENTATION) == '"segmentation"'
    assert {"detection": 1}[TaskType.DETECTION] == 1  # a str-keyed table answers the enum and the string
    assert task_type("anomaly") is TaskType.ANOMALY


def test_facts_per_type():
    assert [t for t in TaskType if type_info(t).regions] == [TaskType.DETECTION, TaskType.SEGMENTATION]
    assert [t for t in TaskType if type_info(t).image_level] == [TaskType.CLASSIFICATION, TaskType.ANOMALY]
    assert [t for t in TaskType if type_info(t).masks] == [TaskType.SEGMENTATION]
    for t in TaskType:
        assert type_info(t).regions != type_info(t).image_level


def test_facts_the_widgets_and_training_ask():
    """The facts that replaced inline type comparisons in widgets/, train/, augment/ (issue 16, item 4)."""
    from workbench.data.records import ANOMALY_CLASSES

    assert [t for t in TaskType if type_info(t).fixed_classes] == [TaskType.ANOMALY]
    assert type_info(TaskType.ANOMALY).fixed_classes == ANOMALY_CLASSES  # the store's fixed classes
    assert [t for t in TaskType if type_info(t).region_labels] == [TaskType.ANOMALY]
    assert [type_info(t).label_kind for t in TaskType] == ["label", None, None, "anomaly"]
    assert [t for t in TaskType if not type_info(t).shapes] == [TaskType.CLASSIFICATION]
    assert [t for t in TaskType if "polygon" in type_info(t).kinds] == [TaskType.SEGMENTATION]


@pytest.mark.parametrize("bad", ["Detection", "keypoints", "", "detection "])
def test_unknown_type_lists_the_valid_ones(bad):
    with pytest.raises(UnknownNameError) as e:
        task_type(bad)
    assert "classification" in str(e.value) and "anomaly" in str(e.value)
