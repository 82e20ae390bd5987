"""The four dataset types and what each one is, in one place.

``TaskType`` is a ``str`` enum: its members equal the strings stored in the database, in run folders and
given on the command line (``TaskType.DETECTION == "detection"``), so old data and flags stay valid.
``TYPE_INFO`` holds the per-type facts the layers above ask about (which annotation kinds a type accepts,
whether its ground truth is one label per image or regions, whether regions carry masks); registries keyed
by type elsewhere (training tasks, models, augmentation presets, mining, proposals, canvas tools) are
checked against ``TaskType`` by ``tests/test_task_types.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..errors import UnknownNameError

__all__ = ["TaskType", "TypeInfo", "TYPE_INFO", "task_type", "type_info"]


class TaskType(StrEnum):
    CLASSIFICATION = "classification"
    DETECTION = "detection"
    SEGMENTATION = "segmentation"
    ANOMALY = "anomaly"


@dataclass(frozen=True)
class TypeInfo:
    """What a dataset type is.

    ``kinds``: the annotation kinds it accepts. ``image_level``: the ground truth is one label per image
    (classification, anomaly), predicted per image. ``regions``: the ground truth is boxes / instances
    with a class, evaluated with COCO. ``masks``: regions carry masks (COCO ``segm`` as well as ``bbox``).
    ``fixed_classes``: the classes every dataset of the type has, which no one adds to (anomaly: good,
    anomalous). ``region_labels``: the image-level label may carry a region (where the anomaly is).
    """

    kinds: tuple[str, ...]
    image_level: bool
    regions: bool
    masks: bool
    fixed_classes: tuple[str, ...] = ()
    region_labels: bool = False

    @property
    def label_kind(self) -> str | None:
        """The annotation kind of an image-level label (``label``, ``anomaly``); None for region types."""
        return self.kinds[0] if self.image_level else None

    @property
    def shapes(self) -> bool:
        """Whether annotations can have a shape drawn on the image (regions, or labels with a region)."""
        return self.regions or self.region_labels


TYPE_INFO: dict[TaskType, TypeInfo] = {
    TaskType.CLASSIFICATION: TypeInfo(("label",), image_level=True, regions=False, masks=False),
    TaskType.DETECTION: TypeInfo(("box",), image_level=False, regions=True, masks=False),
    TaskType.SEGMENTATION: TypeInfo(("polygon", "mask", "box"), image_level=False, regions=True, masks=True),
    TaskType.ANOMALY: TypeInfo(("anomaly",), image_level=True, regions=False, masks=False,
                               fixed_classes=("good", "anomalous"), region_labels=True),
}


def task_type(value: str) -> TaskType:
    """``value`` as a :class:`TaskType`; an :class:`UnknownNameError` listing the valid ones otherwise."""
    try:
        return TaskType(value)
    except ValueError:
        raise UnknownNameError("dataset type", str(value), [t.value for t in TaskType]) from None


def type_info(value: str) -> TypeInfo:
    """The :class:`TypeInfo` of dataset type ``value`` (a :class:`TaskType` or its string)."""
    return TYPE_INFO[task_type(value)]
