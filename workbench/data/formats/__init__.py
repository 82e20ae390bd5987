"""Format adapters: readers turn a folder or file in a known layout into an ImportBatch; writers turn
examples back into that layout. Looked up by name in a registry, never by an if-chain.

    batch = get_reader("coco").read(Path("annotations.json"))
    files = get_writer("yolo").write(out, examples, classes, "detection", load_bytes)

Readers validate everything and raise on the first problem (ImportFormatError, ImageError or
UnsafePathError naming file, record and field). Lenient options (``clip_boxes``, ``skip_missing``)
exist on the readers that need them and are never on by default.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import UnknownNameError, ValidationError
from ...progress import ProgressFn
from ..image_pool import check_items
from ..records import ClassDef, Example, ImportBatch
from ..task_types import REGION_TYPES, TaskType
from . import (
    anomaly_folder,
    coco,
    cvat,
    image_files,
    imagefolder,
    label_studio,
    labelme,
    mvtec,
    video,
    voc,
    yolo,
)
from ._common import ChainedChecks, check_progress, defer_checks, probe_log

__all__ = ["Reader", "Writer", "READERS", "WRITERS", "get_reader", "get_writer", "defer_checks", "ChainedChecks"]


def _check_options(kind: str, name: str, fn: Callable[..., Any], options: dict[str, Any]) -> None:
    params = inspect.signature(fn).parameters
    valid = [p for p, v in params.items() if v.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValidationError(
            f"the {name} {kind} has no option {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(valid) or 'none'}",
            field=unknown[0],
        )


@dataclass(frozen=True)
class Reader:
    """A named format reader. ``types``: dataset types its sources can hold."""

    name: str
    func: Callable[..., ImportBatch]
    types: tuple[str, ...]
    summary: str

    def read(self, src: Path | str, *, progress: ProgressFn | None = None, **options: Any) -> ImportBatch:
        """The batch in ``src``, every image decoded and hashed once (in parallel for large batches);
        ``progress`` hears of the checking (:mod:`workbench.progress`)."""
        _check_options("reader", self.name, self.func, options)
        with probe_log() as where, check_progress(progress):
            batch = self.func(Path(src), **options)
        if batch.checks is None:  # (a deferred batch: its reader's checks cover every item; see defer_checks)
            check_items(batch.items, where=where, progress=progress)
        return batch

    @property
    def options(self) -> tuple[str, ...]:
        params = inspect.signature(self.func).parameters
        return tuple(p for p, v in params.items() if v.kind is inspect.Parameter.KEYWORD_ONLY)


@dataclass(frozen=True)
class Writer:
    """A named format writer. ``types``: dataset types it can write."""

    name: str
    func: Callable[..., list[Path]]
    types: tuple[str, ...]
    summary: str

    def write(
        self,
        out: Path | str,
        examples: Sequence[Example],
        classes: Sequence[ClassDef],
        dataset_type: str,
        load_bytes: Callable[[str], bytes],
        **options: Any,
    ) -> list[Path]:
        _check_options("writer", self.name, self.func, options)
        return self.func(Path(out), examples, classes, dataset_type, load_bytes, **options)

    @property
    def options(self) -> tuple[str, ...]:
        params = inspect.signature(self.func).parameters
        return tuple(p for p, v in params.items() if v.kind is inspect.Parameter.KEYWORD_ONLY)


READERS: dict[str, Reader] = {
    r.name: r
    for r in (
        Reader("coco", coco.read, REGION_TYPES, "COCO annotation JSON + image folder"),
        Reader(
            "yolo",
            yolo.read,
            REGION_TYPES,
            "Ultralytics YOLO data.yaml or images/ + labels/",
        ),
        Reader("voc", voc.read, (TaskType.DETECTION,), "Pascal VOC Annotations/*.xml + JPEGImages/"),
        Reader(
            "imagefolder",
            imagefolder.read,
            (TaskType.CLASSIFICATION,),
            "root/<class>/<image> (optionally per split)",
        ),
        Reader(
            "anomaly-folder", anomaly_folder.read, (TaskType.ANOMALY,), "root/good, root/anomalous, optional masks/"
        ),
        Reader("labelme", labelme.read, REGION_TYPES, "LabelMe: one JSON per image"),
        Reader("label-studio", label_studio.read, (*REGION_TYPES, TaskType.CLASSIFICATION),
               "Label Studio JSON export + local images"),
        Reader("cvat", cvat.read, REGION_TYPES, "CVAT for images 1.1 XML + images/"),
        Reader("mvtec", mvtec.read, (TaskType.ANOMALY,), "MVTec AD: train/good, test/<defect>, ground_truth/ masks"),
        Reader("images", image_files.read, (), "an image file or a folder of images, no annotations"),
        Reader("video", video.read, (), "frames sampled from a video file"),
    )
}

WRITERS: dict[str, Writer] = {
    w.name: w
    for w in (
        Writer("coco", coco.write, REGION_TYPES, "OUT/annotations.json + OUT/images/"),
        Writer(
            "yolo",
            yolo.write,
            REGION_TYPES,
            "OUT/data.yaml + images/<split> + labels/<split>",
        ),
        Writer("voc", voc.write, (TaskType.DETECTION,), "OUT/Annotations, JPEGImages, ImageSets/Main"),
        Writer("labelme", labelme.write, REGION_TYPES, "OUT/<split>/<image> + <stem>.json"),
        Writer("cvat", cvat.write, REGION_TYPES, "OUT/annotations.xml + OUT/images/<Subset>/"),
        Writer("mvtec", mvtec.write, (TaskType.ANOMALY,), "OUT/train|test/good|<defect> + ground_truth/<defect>/"),
        Writer("label-studio", label_studio.write, (*REGION_TYPES, TaskType.CLASSIFICATION),
               "OUT/tasks.json + OUT/images/ + OUT/label_config.xml"),
        Writer("imagefolder", imagefolder.write, (TaskType.CLASSIFICATION,), "OUT/<split>/<class>/<image>"),
        Writer("anomaly-folder", anomaly_folder.write, (TaskType.ANOMALY,), "OUT/<split>/good|anomalous (+ masks/)"),
    )
}


def get_reader(name: str) -> Reader:
    try:
        return READERS[name]
    except KeyError:
        raise UnknownNameError("format", name, list(READERS)) from None


def get_writer(name: str) -> Writer:
    try:
        return WRITERS[name]
    except KeyError:
        valid = list(WRITERS)
        if name in READERS:
            raise UnknownNameError("writable format", name, valid) from None
        raise UnknownNameError("format", name, valid) from None
