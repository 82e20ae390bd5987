"""The run folder's records as typed, validated dataclasses: what the trainer writes and every reader takes.

- :class:`RunParams`: ``params.json`` (config, the settings the run resolved, the data it trained on).
- :class:`EpochRecord`: one row of ``history.jsonl`` (and what ``Callback.on_epoch_end`` receives).
- :class:`RunSummary`: ``metrics.json`` (and what ``fit()`` reports to ``Callback.on_fit_end``).
- :class:`Prediction`: one row of ``predictions.json``, whichever dataset type wrote it.

Each has ``from_json`` (checks every field, names file / record / field in a :class:`ValidationError`) and
``to_json`` (the layout the files have always had, so old readers and old folders agree). Records read
the files every earlier version wrote: a history row without ``monitor`` (its metric is then the first
metric it has, never a timing such as ``images``), COCO stat names of other versions (``APs`` is read as
``mAP_small``), a prediction keyed by ``image_id`` (COCO results) or ``example_id``.

The epoch and summary records are read-only mappings of their JSON form too (``record["epoch"]``,
``summary.get("status")``), so callbacks written against the dict records keep working.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from ..data.task_types import TaskType, task_type
from ..errors import UnknownNameError, ValidationError

__all__ = [
    "JSONValue",
    "JSONObject",
    "TIMING_KEYS",
    "RUN_STATES",
    "LEGACY_METRIC_NAMES",
    "RunParams",
    "EpochRecord",
    "RunSummary",
    "Prediction",
    "PREDICTION_ID_KEYS",
    "prediction_example_id",
    "prediction_id_key",
]

JSONValue: TypeAlias = "str | int | float | bool | None | list[JSONValue] | dict[str, JSONValue]"
JSONObject: TypeAlias = "dict[str, JSONValue]"
Number: TypeAlias = "int | float"

RUN_STATES = ("running", "finished", "early_stopped", "stopped", "failed")
# Keys of an epoch row that time the epoch (never "the metric").
TIMING_KEYS = (
    "images",
    "steps",
    "data_time",
    "step_time",
    "train_time",
    "images_per_s",
    "data_share",
    "val_time",
    "epoch_time",
)
# Stat names other versions wrote -> the current ones (evaluate.coco.RUN_STAT_NAMES).
LEGACY_METRIC_NAMES = {
    "AP": "mAP",
    "AP50": "mAP50",
    "AP75": "mAP75",
    "APs": "mAP_small",
    "APm": "mAP_medium",
    "APl": "mAP_large",
    "ARs": "AR_small",
    "ARm": "AR_medium",
    "ARl": "AR_large",
}
_EPOCH_KEYS = ("epoch", "train_loss", "val_loss", "lr", "monitor", "mode", "best", "overfitting")


class _Where:
    """Where a record came from, for error messages."""

    def __init__(self, file: str | None, record: object | None) -> None:
        self.file, self.record = file, record

    def error(self, message: str, field_name: str) -> ValidationError:
        return ValidationError(message, file=self.file, record=self.record, field=field_name)


def _relocate(e: ValidationError, file: str | None, record: object | None) -> ValidationError:
    """``e`` placed in ``file`` and, when known, the record as the file numbers it (its line, its row)."""
    return ValidationError(e.detail, file=file if file is not None else e.file,
                           record=record if record is not None else e.record, field=e.field)


def _as_number(value: object, name: str, where: _Where, *, optional: bool = True) -> Number | None:
    """An int or float (numpy scalars become Python numbers; NaN / inf become None, as JSON stores them)."""
    if value is None:
        if optional:
            return None
        raise where.error("missing", name)
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise where.error(f"expected a number, got {value!r:.60}", name)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _as_int(value: object, name: str, where: _Where, *, optional: bool = False) -> int | None:
    n = _as_number(value, name, where, optional=optional)
    if n is None:
        return None
    if isinstance(n, float) and not n.is_integer():
        raise where.error(f"expected a whole number, got {n!r}", name)
    return int(n)


def _as_str(value: object, name: str, where: _Where, *, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise where.error(f"expected a string, got {value!r:.60}", name)
    return value


def _as_json(value: object, name: str, where: _Where) -> JSONValue:
    """``value`` as plain JSON data (tuples become lists, numpy scalars numbers); anything else refused."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int | float) or hasattr(value, "item"):
        return _as_number(value, name, where)
    if isinstance(value, list | tuple):
        return [_as_json(v, f"{name}[{i}]", where) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {str(k): _as_json(v, f"{name}.{k}", where) for k, v in value.items()}
    if hasattr(value, "tolist"):
        return _as_json(value.tolist(), name, where)
    raise where.error(f"not JSON data: {type(value).__name__}", name)


def _as_object(value: object, name: str, where: _Where) -> JSONObject:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise where.error(f"expected an object, got {value!r:.60}", name)
    out = _as_json(value, name, where)
    assert isinstance(out, dict)
    return out


def _mapping(value: object, where: _Where) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise where.error(f"expected an object, got {type(value).__name__}", "")
    return value


def _metric_name(key: str) -> str:
    for prefix in ("", "mask_"):
        if key.startswith(prefix) and key[len(prefix):] in LEGACY_METRIC_NAMES:
            return prefix + LEGACY_METRIC_NAMES[key[len(prefix):]]
    return key


class _JSONMapping(Mapping[str, JSONValue]):
    """Read-only mapping access to a record's JSON form (for code written against the dict records)."""

    def to_json(self) -> JSONObject:
        raise NotImplementedError

    def __getitem__(self, key: str) -> JSONValue:
        return self.to_json()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_json())

    def __len__(self) -> int:
        return len(self.to_json())


# ---------------------------------------------------------------------------------------------- params
@dataclass(frozen=True)
class RunParams:
    """``params.json``: what was trained on what. ``config`` is the TrainConfig as given, ``resolved`` the
    settings the run really used (model, image size, monitor...), ``source`` the data's description."""

    run_id: str
    created_at: str = ""
    config: JSONObject = field(default_factory=dict)
    resolved: JSONObject = field(default_factory=dict)
    model_config: JSONObject = field(default_factory=dict)
    source: JSONObject = field(default_factory=dict)
    extra: JSONObject = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = _Where(None, self.run_id)
        _as_str(self.run_id, "run_id", where, optional=False)
        _as_str(self.created_at, "created_at", where, optional=False)
        for name in ("config", "resolved", "model_config", "source", "extra"):
            object.__setattr__(self, name, _as_object(getattr(self, name), name, where))
        if self.source.get("dataset_type") is not None:
            try:
                task_type(str(self.source["dataset_type"]))
            except UnknownNameError as e:
                raise where.error(str(e), "source.dataset_type") from None
        freeze = _as_int(self.config.get("freeze_backbone", 0), "config.freeze_backbone", where)
        if freeze is None or freeze < 0:
            raise where.error(f"must be a whole number >= 0, got {freeze!r}", "config.freeze_backbone")
        scale = _as_number(self.config.get("backbone_lr_scale", 1.0), "config.backbone_lr_scale", where)
        if scale is None or scale <= 0:
            raise where.error(f"must be a number > 0, got {scale!r}", "config.backbone_lr_scale")

    @classmethod
    def from_json(cls, data: object, *, file: str | None = None, run_id: str = "") -> RunParams:
        where = _Where(file, run_id or None)
        d = _mapping(data, where)
        known = ("run_id", "created_at", "config", "resolved", "model_config", "source")
        try:
            return cls(
                run_id=_as_str(d.get("run_id", run_id), "run_id", where, optional=False) or "",
                created_at=_as_str(d.get("created_at") or "", "created_at", where) or "",
                config=_as_object(d.get("config"), "config", where),
                resolved=_as_object(d.get("resolved"), "resolved", where),
                model_config=_as_object(d.get("model_config"), "model_config", where),
                source=_as_object(d.get("source"), "source", where),
                extra=_as_object({k: v for k, v in d.items() if k not in known}, "params", where),
            )
        except ValidationError as e:
            raise _relocate(e, file, run_id or None) from None

    def to_json(self) -> JSONObject:
        out: JSONObject = {"run_id": self.run_id, "created_at": self.created_at, "config": self.config,
                           "resolved": self.resolved}
        if self.model_config:
            out["model_config"] = self.model_config
        out["source"] = self.source
        out.update(self.extra)
        return out

    # typed views of what readers ask most
    @property
    def dataset(self) -> str:
        return str(self.source.get("dataset") or "")

    @property
    def dataset_type(self) -> TaskType | None:
        t = self.source.get("dataset_type") or self.resolved.get("dataset_type")
        return task_type(str(t)) if t else None

    @property
    def snapshot_id(self) -> str | None:
        v = self.source.get("snapshot_id")
        return v if isinstance(v, str) else None

    @property
    def directory(self) -> str | None:
        v = self.source.get("directory")
        return v if isinstance(v, str) else None

    @property
    def class_names(self) -> list[str]:
        classes = self.source.get("classes")
        if not isinstance(classes, list):
            return []
        return [str(c["name"]) for c in classes if isinstance(c, dict) and "name" in c]

    @property
    def monitor(self) -> str | None:
        v = self.resolved.get("monitor")
        return v if isinstance(v, str) else None

    @property
    def freeze_backbone(self) -> int:
        """Epochs the backbone stayed frozen (0 for runs that froze nothing, and runs of older versions)."""
        return int(self.config.get("freeze_backbone", 0) or 0)  # type: ignore[arg-type]  # checked above

    @property
    def backbone_lr_scale(self) -> float:
        """The backbone's learning rate as a multiple of ``lr`` (1.0 unless set)."""
        return float(self.config.get("backbone_lr_scale", 1.0) or 1.0)  # type: ignore[arg-type]

    @property
    def weights(self) -> str | None:
        """The local weights file the run started from, if any."""
        v = self.config.get("weights")
        return v if isinstance(v, str) else None


# ---------------------------------------------------------------------------------------------- epochs
@dataclass(frozen=True, eq=True)
class EpochRecord(_JSONMapping):
    """One finished epoch. ``metrics``: the validation metrics (``accuracy``, ``mAP``, ``auroc``...);
    ``monitor`` names the one early stopping and the best checkpoint follow (``None`` in rows of versions
    that did not write it); ``timing``: the :data:`TIMING_KEYS` it has; ``extra``: any other field."""

    epoch: int
    train_loss: float | None = None
    val_loss: float | None = None
    lr: float | None = None
    metrics: dict[str, float | int | None] = field(default_factory=dict)
    monitor: str | None = None
    mode: str | None = None
    best: bool | None = None
    overfitting: bool | None = None
    timing: dict[str, float | int] = field(default_factory=dict)
    extra: JSONObject = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = _Where(None, f"epoch {self.epoch}")
        epoch = _as_int(self.epoch, "epoch", where)
        if epoch is None or epoch < 0:
            raise where.error(f"epoch must be a whole number >= 0, got {self.epoch!r}", "epoch")
        object.__setattr__(self, "epoch", epoch)
        for name in ("train_loss", "val_loss", "lr"):
            v = _as_number(getattr(self, name), name, where)
            object.__setattr__(self, name, None if v is None else float(v))
        object.__setattr__(
            self, "metrics", {str(k): _as_number(v, str(k), where) for k, v in dict(self.metrics).items()}
        )
        timing: dict[str, float | int] = {}
        for k, v in dict(self.timing).items():
            n = _as_number(v, str(k), where)
            if n is not None:
                timing[str(k)] = n
        object.__setattr__(self, "timing", timing)
        _as_str(self.monitor, "monitor", where)
        if self.mode is not None and self.mode not in ("max", "min"):
            raise where.error(f"mode must be max or min, got {self.mode!r}", "mode")
        for name in ("best", "overfitting"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), bool):
                raise where.error(f"expected true or false, got {getattr(self, name)!r}", name)
        object.__setattr__(self, "extra", _as_object(self.extra, "extra", where))

    @classmethod
    def from_json(cls, data: object, *, file: str | None = None, line: int | None = None) -> EpochRecord:
        """A history row (of any version). Numeric fields other than the known ones are metrics; other
        fields are kept in ``extra``."""
        where = _Where(file, f"line {line}" if line is not None else None)
        d = _mapping(data, where)
        if "epoch" not in d:
            raise where.error("an epoch record needs 'epoch'", "epoch")
        metrics: dict[str, float | int | None] = {}
        timing: dict[str, object] = {}
        extra: dict[str, object] = {}
        for k, v in d.items():
            if k in _EPOCH_KEYS:
                continue
            if k in TIMING_KEYS:
                timing[k] = v
            elif v is None or (isinstance(v, int | float) and not isinstance(v, bool)) or (
                hasattr(v, "item") and getattr(v, "ndim", 1) == 0
            ):
                metrics[_metric_name(k)] = _as_number(v, k, where)
            else:
                extra[k] = v
        try:
            return cls(
                epoch=d["epoch"],  # type: ignore[arg-type]  # checked in __post_init__
                train_loss=d.get("train_loss"),  # type: ignore[arg-type]
                val_loss=d.get("val_loss"),  # type: ignore[arg-type]
                lr=d.get("lr"),  # type: ignore[arg-type]
                metrics=metrics,
                monitor=d.get("monitor"),  # type: ignore[arg-type]
                mode=d.get("mode"),  # type: ignore[arg-type]
                best=d.get("best"),  # type: ignore[arg-type]
                overfitting=d.get("overfitting"),  # type: ignore[arg-type]
                timing=timing,  # type: ignore[arg-type]
                extra=extra,  # type: ignore[arg-type]
            )
        except ValidationError as e:
            raise _relocate(e, file, where.record) from None

    def to_json(self) -> JSONObject:
        """The history row, in the trainer's field order."""
        out: JSONObject = {"epoch": self.epoch, "train_loss": self.train_loss, "val_loss": self.val_loss,
                           "lr": self.lr}
        out.update(self.metrics)
        if self.monitor is not None:
            out["monitor"] = self.monitor
        if self.mode is not None:
            out["mode"] = self.mode
        if self.best is not None:
            out["best"] = self.best
        out.update(self.timing)
        if self.overfitting is not None:
            out["overfitting"] = self.overfitting
        out.update(self.extra)
        return out

    @property
    def metric_name(self) -> str | None:
        """The headline metric: the monitored one, else the first validation metric (never a timing)."""
        if self.monitor:
            return self.monitor
        return next(iter(self.metrics), None)

    def metric(self, name: str | None = None) -> float | None:
        """The value of metric ``name`` (default: :attr:`metric_name`); losses answer by their names."""
        name = name or self.metric_name
        if name is None:
            return None
        if name in ("train_loss", "val_loss", "lr"):
            return getattr(self, name)  # type: ignore[no-any-return]
        v = self.metrics.get(name)
        return None if v is None else float(v)


# ---------------------------------------------------------------------------------------------- summary
@dataclass(frozen=True, eq=True)
class RunSummary(_JSONMapping):
    """``metrics.json``: how the run ended and how well the best weights did (``test``; ``val`` is the
    best epoch's row without bookkeeping)."""

    run_id: str
    status: str
    run_dir: str = ""
    epochs_run: int = 0
    best_epoch: int | None = None
    monitor: str | None = None
    best_value: float | None = None
    test: JSONObject = field(default_factory=dict)
    val: JSONObject = field(default_factory=dict)
    overfit_ranges: list[tuple[int, int]] = field(default_factory=list)
    extra: JSONObject = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = _Where(None, self.run_id)
        _as_str(self.run_id, "run_id", where, optional=False)
        if self.status not in RUN_STATES:
            raise where.error(f"status must be one of {', '.join(RUN_STATES)}, got {self.status!r}", "status")
        object.__setattr__(self, "epochs_run", _as_int(self.epochs_run, "epochs_run", where))
        object.__setattr__(self, "best_epoch", _as_int(self.best_epoch, "best_epoch", where, optional=True))
        v = _as_number(self.best_value, "best_value", where)
        object.__setattr__(self, "best_value", None if v is None else float(v))
        _as_str(self.monitor, "monitor", where)
        for name in ("test", "val"):
            obj = _as_object(getattr(self, name), name, where)
            object.__setattr__(self, name, {_metric_name(k): v for k, v in obj.items()})
        ranges = []
        for i, r in enumerate(self.overfit_ranges):
            if not isinstance(r, list | tuple) or len(r) != 2:
                raise where.error(f"expected [start, end], got {r!r:.60}", f"overfit_ranges[{i}]")
            a = _as_int(r[0], f"overfit_ranges[{i}]", where)
            b = _as_int(r[1], f"overfit_ranges[{i}]", where)
            assert a is not None and b is not None
            ranges.append((a, b))
        object.__setattr__(self, "overfit_ranges", ranges)
        object.__setattr__(self, "extra", _as_object(self.extra, "extra", where))

    @classmethod
    def from_json(cls, data: object, *, file: str | None = None, run_id: str = "") -> RunSummary:
        where = _Where(file, run_id or None)
        d = _mapping(data, where)
        known = ("run_id", "status", "run_dir", "epochs_run", "best_epoch", "monitor", "best_value", "test",
                 "val", "overfit_ranges")
        ranges = d.get("overfit_ranges") or []
        if not isinstance(ranges, list):
            raise where.error("expected a list", "overfit_ranges")
        try:
            return cls(
                run_id=str(d.get("run_id") or run_id),
                status=d.get("status", "finished"),  # type: ignore[arg-type]  # checked in __post_init__
                run_dir=str(d.get("run_dir") or ""),
                epochs_run=d.get("epochs_run", 0),  # type: ignore[arg-type]
                best_epoch=d.get("best_epoch"),  # type: ignore[arg-type]
                monitor=d.get("monitor"),  # type: ignore[arg-type]
                best_value=d.get("best_value"),  # type: ignore[arg-type]
                test=d.get("test") or {},  # type: ignore[arg-type]
                val=d.get("val") or {},  # type: ignore[arg-type]
                overfit_ranges=ranges,
                extra={k: v for k, v in d.items() if k not in known},  # type: ignore[misc]
            )
        except ValidationError as e:
            raise _relocate(e, file, run_id or None) from None

    def to_json(self) -> JSONObject:
        out: JSONObject = {
            "run_id": self.run_id,
            "run_dir": self.run_dir,
            "status": self.status,
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "monitor": self.monitor,
            "best_value": self.best_value,
            "test": self.test,
            "val": self.val,
            "overfit_ranges": [[a, b] for a, b in self.overfit_ranges],
        }
        out.update(self.extra)
        return out


# ---------------------------------------------------------------------------------------------- predictions
# Which field of a predictions.json row names its example: COCO results say image_id, per-example rows
# example_id (the same number: the example's id).
PREDICTION_ID_KEYS = ("image_id", "example_id")


def prediction_id_key(row: Mapping[str, object]) -> str:
    """The field naming ``row``'s example (see :data:`PREDICTION_ID_KEYS`)."""
    return next((k for k in PREDICTION_ID_KEYS if k in row), "example_id")


def prediction_example_id(row: object) -> int | None:
    """The example a prediction row is about, or None when the row names none (or not as an integer)."""
    if not isinstance(row, Mapping):
        return None
    v: object = row.get(prediction_id_key(row))
    item = getattr(v, "item", None)
    if callable(item) and getattr(v, "ndim", 1) == 0:  # a numpy integer
        v = item()
    return v if isinstance(v, int) and not isinstance(v, bool) else None


@dataclass(frozen=True)
class Prediction:
    """One test prediction. Image-level types (classification, anomaly): ``label`` (None when no threshold
    was set), ``truth``, ``probabilities`` (classification) or ``score`` (anomaly). Region types: one
    detection, COCO-style: ``category_id`` (class index + 1), ``bbox`` ``(x, y, w, h)`` in the image's
    pixels, ``score``, ``segmentation`` (compressed RLE) for segmentation."""

    example_id: int
    label: str | None = None
    truth: str | None = None
    score: float | None = None
    probabilities: dict[str, float] | None = None
    file_name: str | None = None
    category_id: int | None = None
    bbox: tuple[float, float, float, float] | None = None
    segmentation: JSONObject | None = None

    def __post_init__(self) -> None:
        where = _Where(None, f"example {self.example_id}")
        object.__setattr__(self, "example_id", _as_int(self.example_id, "example_id", where))
        for name in ("label", "truth", "file_name"):
            _as_str(getattr(self, name), name, where)
        s = _as_number(self.score, "score", where)
        object.__setattr__(self, "score", None if s is None else float(s))
        if self.probabilities is not None:
            probs = {}
            for k, v in _mapping(self.probabilities, where).items():
                p = _as_number(v, f"probabilities.{k}", where, optional=False)
                assert p is not None
                probs[str(k)] = float(p)
            object.__setattr__(self, "probabilities", probs)
        object.__setattr__(self, "category_id", _as_int(self.category_id, "category_id", where, optional=True))
        if self.bbox is not None:
            if not isinstance(self.bbox, list | tuple) or len(self.bbox) != 4:
                raise where.error(f"bbox must be 4 numbers (x, y, w, h), got {self.bbox!r:.60}", "bbox")
            nums = [_as_number(v, "bbox", where, optional=False) for v in self.bbox]
            object.__setattr__(self, "bbox", tuple(float(v) for v in nums if v is not None))
        if self.segmentation is not None:
            object.__setattr__(self, "segmentation", _as_object(self.segmentation, "segmentation", where))
        if (self.bbox is None) != (self.category_id is None):
            raise where.error("a detection needs both category_id and bbox", "bbox" if self.bbox is None
                              else "category_id")

    @property
    def is_detection(self) -> bool:
        return self.bbox is not None

    @classmethod
    def from_json(cls, data: object, *, file: str | None = None, index: int | None = None) -> Prediction:
        """A ``predictions.json`` row: COCO results (``image_id``...) or per-example rows (``example_id``)."""
        where = _Where(file, f"prediction {index}" if index is not None else None)
        d = _mapping(data, where)
        key = prediction_id_key(d)
        if key not in d:
            raise where.error("a prediction needs 'example_id' (or COCO's 'image_id')", "example_id")
        try:
            return cls(
                example_id=d[key],  # type: ignore[arg-type]  # checked in __post_init__
                label=d.get("label"),  # type: ignore[arg-type]
                truth=d.get("truth"),  # type: ignore[arg-type]
                score=d.get("score"),  # type: ignore[arg-type]
                probabilities=d.get("probabilities"),  # type: ignore[arg-type]
                file_name=d.get("file_name"),  # type: ignore[arg-type]
                category_id=d.get("category_id"),  # type: ignore[arg-type]
                bbox=d.get("bbox"),  # type: ignore[arg-type]
                segmentation=d.get("segmentation"),  # type: ignore[arg-type]
            )
        except ValidationError as e:
            raise _relocate(e, file, where.record) from None

    def to_json(self) -> JSONObject:
        """The row as ``predictions.json`` holds it (a COCO result for a detection)."""
        if self.bbox is not None:
            out: JSONObject = {"image_id": self.example_id, "category_id": self.category_id,
                               "bbox": list(self.bbox), "score": self.score}
            if self.segmentation is not None:
                out["segmentation"] = self.segmentation
            return out
        out = {"example_id": self.example_id}
        if self.file_name is not None:
            out["file_name"] = self.file_name
        if self.score is not None:
            out["score"] = self.score
        out["label"] = self.label
        if self.probabilities is not None:
            out["probabilities"] = dict(self.probabilities)
        out["truth"] = self.truth
        return out
