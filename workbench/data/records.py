"""The canonical record types of the data layer, validated on construction.

Coordinates are image pixels everywhere: a box is ``(x, y, w, h)`` with its top-left corner at ``(x, y)``
(COCO's convention), a polygon is a flat ``(x0, y0, x1, y1, ...)`` tuple, a mask is COCO's uncompressed
RLE (column-major counts, starting with a run of zeros). Formats convert to and from these at the edges.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import InitVar, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from ..errors import ValidationError
from ..text import check_author, check_name
from .images import ImageCheck
from .import_report import ImportReport
from .task_types import TYPE_INFO, TaskType

__all__ = [
    "TASK_TYPES",
    "ANNOTATION_KINDS",
    "SPLITS",
    "STATUSES",
    "ANOMALY_CLASSES",
    "ClassDef",
    "Annotation",
    "Example",
    "ImportItem",
    "ImportBatch",
    "PendingChecks",
    "ImportReport",
    "MAX_ATTRIBUTES_BYTES",
    "json_map",
    "DEFAULT_PALETTE",
    "default_color",
    "validate_color",
]

TASK_TYPES = tuple(t.value for t in TaskType)
ANNOTATION_KINDS = ("label", "box", "polygon", "mask", "anomaly")
SPLITS = ("train", "val", "test")
STATUSES = ("new", "annotated", "reviewed")
ANOMALY_CLASSES = TYPE_INFO[TaskType.ANOMALY].fixed_classes  # ("good", "anomalous")

# Which annotation kinds each dataset type accepts.
KINDS_FOR_TYPE: dict[str, tuple[str, ...]] = {t.value: info.kinds for t, info in TYPE_INFO.items()}

# Tableau-like palette: distinct, readable on photos and on white.
DEFAULT_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#8c6d31", "#7b4173", "#3182bd",
    "#e6550d", "#31a354", "#756bb1", "#636363",
)


def default_color(index: int) -> str:
    """The palette colour for the class at ``index`` (wraps around)."""
    return DEFAULT_PALETTE[index % len(DEFAULT_PALETTE)]


def validate_color(color: str, *, field_name: str = "color") -> str:
    c = color.strip().lower()
    if len(c) == 7 and c[0] == "#" and all(ch in "0123456789abcdef" for ch in c[1:]):
        return c
    raise ValidationError(f"colour must look like #rrggbb, got {color!r}", field=field_name)


MAX_ATTRIBUTES_BYTES = 64 * 1024  # an annotation's attributes (or an example's / class's origin) as JSON


_PLAIN = (str, int, bool, type(None))


def _flat_size(value: Mapping[str, Any]) -> int | None:
    """An upper bound of the JSON size of a map whose values are all strings, ints, bools, None or finite
    floats (escaping counted at its worst, 6 bytes a byte); None when a value is anything else."""
    size = 2
    for k, v in value.items():
        t = type(v)
        if t is str:
            size += 6 * (len(k.encode()) + len(v.encode())) + 8
        elif t in _PLAIN or (t is float and math.isfinite(v)):
            size += 6 * len(k.encode()) + 32
        else:
            return None
    return size


def _check_json_keys(v: Any, field_name: str, depth: int) -> None:
    """Nested objects need string keys too (``json`` would turn ``{2.5: 1}`` into ``{"2.5": 1}`` silently)."""
    if depth > 32:
        raise ValidationError("values are nested too deeply", field=field_name)
    if isinstance(v, Mapping):
        for k, x in v.items():
            if not isinstance(k, str):
                raise ValidationError(f"keys must be strings, got {k!r}", field=field_name)
            _check_json_keys(x, field_name, depth + 1)
    elif isinstance(v, (list, tuple)):
        for x in v:
            _check_json_keys(x, field_name, depth + 1)


def json_map(value: Any, *, field_name: str, max_bytes: int = MAX_ATTRIBUTES_BYTES) -> dict[str, Any]:
    """``value`` as a plain JSON object: string keys, JSON values (finite numbers), at most ``max_bytes`` as
    compact JSON. Returned as it reads back from JSON (tuples become lists), so it compares equal after a
    round trip through the store. Raises ValidationError naming ``field_name``."""
    if value is None or (isinstance(value, dict) and not value):
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(f"must be a mapping of string keys to JSON values, got {type(value).__name__}",
                              field=field_name)
    for k in value:
        if not isinstance(k, str) or not k:
            raise ValidationError(f"keys must be non-empty strings, got {k!r}", field=field_name)
    flat = _flat_size(value)
    if flat is not None and flat <= max_bytes:  # the common case (occluded, difficult, pose...): no JSON trip
        return dict(value)
    _check_json_keys(value, field_name, 0)
    try:
        text = json.dumps(dict(value), allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise ValidationError(f"values must be JSON (strings, finite numbers, booleans, null, lists, "
                              f"objects with string keys): {e}", field=field_name) from None
    except RecursionError:
        raise ValidationError("values are nested too deeply", field=field_name) from None
    size = len(text.encode())
    if size > max_bytes:
        raise ValidationError(f"is {size} bytes as JSON, over the {max_bytes} byte limit", field=field_name)
    return dict(json.loads(text))


@dataclass(frozen=True)
class ClassDef:
    """A class: a name (at most 200 characters, no control characters or bidi controls, no , or =) and a
    ``#rrggbb`` colour. ``stored=True`` (read back from the store) skips the name checks added after a
    workspace may have been written, so an old workspace still opens."""

    name: str
    color: str
    # Where the class came from in its source (``{"id": 3, "supercategory": "animal"}`` for COCO); not part
    # of what makes two classes equal.
    origin: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    stored: InitVar[bool] = False

    def __post_init__(self, stored: bool) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValidationError("class name must be a non-empty string", field="name")
        if not stored:
            if self.name != self.name.strip() or any(ch in self.name for ch in "\n\r\t,="):
                raise ValidationError(
                    f"class name {self.name!r} has surrounding spaces or one of , = tab newline", field="name"
                )
            check_name(self.name, what="class")
        object.__setattr__(self, "color", validate_color(self.color))
        object.__setattr__(self, "origin", json_map(self.origin, field_name="origin"))


def _finite(values: Iterable[Any], field_name: str) -> tuple[float, ...]:
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValidationError(f"expected a number, got {v!r}", field=field_name)
        f = float(v)
        if not math.isfinite(f):
            raise ValidationError(f"coordinate is not finite ({v!r})", field=field_name)
        out.append(f)
    return tuple(out)


def _rle_area(counts: Sequence[int]) -> int:
    return int(sum(counts[1::2]))


@dataclass(frozen=True)
class Annotation:
    """One annotation on one example.

    ``kind`` is one of ``label`` (classification), ``box``, ``polygon``, ``mask`` or ``anomaly``
    (``label`` is then ``good`` or ``anomalous``; ``bbox`` / ``polygons`` optionally mark the region).
    ``score`` is set on model proposals; ``author`` is a person's name or ``run:<id>``.
    ``attributes`` holds what the source says beyond geometry and class (VOC ``difficult`` / ``truncated``
    / ``occluded`` / ``pose``, CVAT attributes, COCO keypoints and extra fields), written back on export;
    ``iscrowd`` marks a COCO crowd region (not trained on as an object, matched as crowd in evaluation).
    ``source_id`` is the annotation's id in the file it came from (a COCO annotation id), reused on export
    while unique; like ``id``, ``author`` and ``created_at`` it is not part of :meth:`content`.
    """

    kind: str
    label: str
    bbox: tuple[float, float, float, float] | None = None
    polygons: tuple[tuple[float, ...], ...] | None = None
    mask: dict[str, Any] | None = None  # {"size": [h, w], "counts": [int, ...]} uncompressed RLE
    score: float | None = None
    proposal: bool = False
    author: str = ""
    created_at: str = ""
    id: int | None = None
    version: int | None = field(default=None, compare=False)  # the store's edit counter of this annotation when it was read (stale edits refused)
    stored: InitVar[bool] = False  # read back from the store: checks added after it was written are skipped
    attributes: dict[str, Any] = field(default_factory=dict, hash=False)
    iscrowd: bool = False
    source_id: int | str | None = None

    def __post_init__(self, stored: bool) -> None:
        if self.kind not in ANNOTATION_KINDS:
            raise ValidationError(
                f"unknown annotation kind {self.kind!r}; valid: {', '.join(ANNOTATION_KINDS)}", field="kind"
            )
        if not isinstance(self.label, str) or not self.label:
            raise ValidationError("annotation needs a class name", field="label")
        if self.kind == "anomaly" and self.label not in ANOMALY_CLASSES:
            raise ValidationError(f"anomaly label must be good or anomalous, got {self.label!r}", field="label")
        if self.bbox is not None:
            b = _finite(self.bbox, "bbox")
            if len(b) != 4:
                raise ValidationError(f"bbox needs 4 numbers (x, y, w, h), got {len(b)}", field="bbox")
            if b[2] <= 0 or b[3] <= 0:
                raise ValidationError(f"bbox has non-positive width or height {b}", field="bbox")
            object.__setattr__(self, "bbox", b)
        if self.polygons is not None:
            polys: list[tuple[float, ...]] = []
            for poly in self.polygons:
                p = _finite(poly, "polygons")
                if len(p) < 6 or len(p) % 2:
                    raise ValidationError(
                        f"a polygon needs at least 3 points as x,y pairs, got {len(p)} numbers", field="polygons"
                    )
                if not stored and polygon_area(p) <= 0:  # older workspaces may hold such polygons
                    raise ValidationError(
                        f"polygon {len(polys)} encloses no area (its points lie on one line)", field="polygons"
                    )
                polys.append(p)
            if not polys:
                raise ValidationError("polygon annotation has no polygon", field="polygons")
            object.__setattr__(self, "polygons", tuple(polys))
        if self.mask is not None:
            self._check_mask()
        if self.kind == "box" and self.bbox is None:
            raise ValidationError("box annotation needs a bbox", field="bbox")
        if self.kind == "polygon" and self.polygons is None:
            raise ValidationError("polygon annotation needs polygons", field="polygons")
        if self.kind == "mask" and self.mask is None:
            raise ValidationError("mask annotation needs a mask", field="mask")
        if self.kind == "label" and (self.bbox or self.polygons or self.mask):
            raise ValidationError("a class label carries no geometry", field="kind")
        if self.score is not None:
            s = _finite([self.score], "score")[0]
            if not 0.0 <= s <= 1.0:
                raise ValidationError(f"score must be within [0, 1], got {s}", field="score")
            object.__setattr__(self, "score", s)
        if self.author and not stored:  # a stored author was checked when it was written
            check_author(self.author)
        object.__setattr__(self, "attributes", json_map(self.attributes, field_name="attributes"))
        if not isinstance(self.iscrowd, bool):
            raise ValidationError(f"iscrowd must be True or False, got {self.iscrowd!r}", field="iscrowd")
        sid = self.source_id
        if sid is not None and (isinstance(sid, bool) or not isinstance(sid, (int, str))
                                or (isinstance(sid, str) and not 0 < len(sid) <= 200)):
            raise ValidationError(f"source_id must be an integer or a short string, got {sid!r:.60}",
                                  field="source_id")
        if self.iscrowd and self.kind not in ("box", "polygon", "mask"):
            raise ValidationError(f"only regions (box, polygon, mask) can be crowd, not {self.kind}",
                                  field="iscrowd")
        if self.polygons is not None and self.bbox is None:
            object.__setattr__(self, "bbox", polygons_bbox(self.polygons))
        if self.mask is not None and self.bbox is None:
            object.__setattr__(self, "bbox", rle_bbox(self.mask))

    def _check_mask(self) -> None:
        m = self.mask
        if not isinstance(m, dict) or "size" not in m or "counts" not in m:
            raise ValidationError("mask must be {'size': [h, w], 'counts': [...]}", field="mask")
        size = m["size"]
        counts = m["counts"]
        if (not isinstance(size, (list, tuple)) or len(size) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
            raise ValidationError(f"mask size must be [h, w] positive ints, got {size!r}", field="mask")
        if not isinstance(counts, (list, tuple)) or not all(
            isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts
        ):
            raise ValidationError("mask counts must be non-negative ints (uncompressed RLE)", field="mask")
        if sum(counts) != size[0] * size[1]:
            raise ValidationError(
                f"mask counts sum to {sum(counts)}, expected h*w = {size[0] * size[1]}", field="mask"
            )
        if _rle_area(counts) == 0:
            raise ValidationError("mask is empty", field="mask")
        object.__setattr__(self, "mask", {"size": [int(size[0]), int(size[1])], "counts": [int(c) for c in counts]})

    # ------------------------------------------------------------------ geometry helpers
    @property
    def area(self) -> float:
        if self.mask is not None:
            return float(_rle_area(self.mask["counts"]))
        if self.polygons is not None:
            return float(sum(polygon_area(p) for p in self.polygons))
        if self.bbox is not None:
            return self.bbox[2] * self.bbox[3]
        return 0.0

    @classmethod
    def checked_box(cls, label: str, bbox: tuple[float, float, float, float], *, iscrowd: bool = False,
                    source_id: int | str | None = None) -> Annotation:
        """A box whose values the caller checked already (finite floats, positive size, a non-empty label, a
        valid ``source_id``): equal to ``Annotation("box", label, bbox=bbox, ...)`` without checking again
        (a reader making 1,000,000 of them checks them in bulk)."""
        ann = object.__new__(cls)
        put = object.__setattr__  # field by field, in their order: the instance keeps the class's shared keys
        put(ann, "kind", "box")  # written out: a loop over (name, value) pairs took half again as long
        put(ann, "label", label)
        put(ann, "bbox", bbox)
        put(ann, "polygons", None)
        put(ann, "mask", None)
        put(ann, "score", None)
        put(ann, "proposal", False)
        put(ann, "author", "")
        put(ann, "created_at", "")
        put(ann, "id", None)
        put(ann, "version", None)
        put(ann, "attributes", {})
        put(ann, "iscrowd", iscrowd)
        put(ann, "source_id", source_id)
        return ann

    def check_inside(self, width: int, height: int, *, tolerance: float = 0.5) -> None:
        """Raise ValidationError when geometry lies outside a ``width`` x ``height`` image."""
        if self.bbox is not None:
            x, y, w, h = self.bbox
            if x < -tolerance or y < -tolerance or x + w > width + tolerance or y + h > height + tolerance:
                raise ValidationError(
                    f"box {tuple(round(v, 2) for v in self.bbox)} lies outside the {width}x{height} image",
                    field="bbox",
                )
        if self.polygons is not None:
            for p in self.polygons:
                xs, ys = p[0::2], p[1::2]
                if min(xs) < -tolerance or min(ys) < -tolerance or max(xs) > width + tolerance or max(
                    ys
                ) > height + tolerance:
                    raise ValidationError(
                        f"polygon lies outside the {width}x{height} image", field="polygons"
                    )
        if self.mask is not None and list(self.mask["size"]) != [height, width]:
            raise ValidationError(
                f"mask size {self.mask['size']} does not match the image ({height}x{width})", field="mask"
            )

    def clipped(self, width: int, height: int) -> Annotation | None:
        """This annotation with its box clipped to the image; None when nothing is left."""
        if self.bbox is None or self.kind != "box":
            return self
        x, y, w, h = self.bbox
        x0, y0 = max(0.0, x), max(0.0, y)
        x1, y1 = min(float(width), x + w), min(float(height), y + h)
        if x1 - x0 <= 0 or y1 - y0 <= 0:
            return None
        return replace(self, bbox=(x0, y0, x1 - x0, y1 - y0))

    def content(self) -> dict[str, Any]:
        """What the annotation says, without who made it or when (used for hashing and diffs)."""
        d: dict[str, Any] = {"kind": self.kind, "label": self.label}
        if self.bbox is not None:
            d["bbox"] = [round(v, 4) for v in self.bbox]
        if self.polygons is not None:
            d["polygons"] = [[round(v, 4) for v in p] for p in self.polygons]
        if self.mask is not None:
            d["mask"] = self.mask
        if self.score is not None:
            d["score"] = round(self.score, 6)
        if self.proposal:
            d["proposal"] = True
        if self.iscrowd:  # absent when false / empty: content (and snapshot ids) of older data unchanged
            d["iscrowd"] = True
        if self.attributes:
            d["attributes"] = self.attributes
        return d

    def to_dict(self) -> dict[str, Any]:
        d = self.content()
        d["author"] = self.author
        d["created_at"] = self.created_at
        if self.id is not None:
            d["id"] = self.id
        if self.source_id is not None:
            d["source_id"] = self.source_id
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Annotation:
        return cls(
            kind=d["kind"],
            label=d["label"],
            bbox=tuple(d["bbox"]) if d.get("bbox") is not None else None,  # type: ignore[arg-type]
            polygons=tuple(tuple(p) for p in d["polygons"]) if d.get("polygons") is not None else None,
            mask=d.get("mask"),
            score=d.get("score"),
            proposal=bool(d.get("proposal", False)),
            author=d.get("author", ""),
            created_at=d.get("created_at", ""),
            id=d.get("id"),
            attributes=d.get("attributes") or {},
            iscrowd=bool(d.get("iscrowd", False)),
            source_id=d.get("source_id"),
        )


def polygon_area(flat: Sequence[float]) -> float:
    xs, ys = flat[0::2], flat[1::2]
    n = len(xs)
    s = 0.0
    for i in range(n):
        j = (i + 1) % n
        s += xs[i] * ys[j] - xs[j] * ys[i]
    return abs(s) / 2.0


def polygons_bbox(polys: Sequence[Sequence[float]]) -> tuple[float, float, float, float]:
    xs = [v for p in polys for v in p[0::2]]
    ys = [v for p in polys for v in p[1::2]]
    x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
    return (x0, y0, max(x1 - x0, 1e-6), max(y1 - y0, 1e-6))


def rle_bbox(mask: dict[str, Any]) -> tuple[float, float, float, float]:
    """Bounding box of an uncompressed column-major RLE, in pixels (like pycocotools.toBbox)."""
    h, _w = mask["size"]
    pos = 0
    xs0, ys0, xs1, ys1 = [], [], [], []
    for i, c in enumerate(mask["counts"]):
        if i % 2 == 1 and c > 0:
            start, end = pos, pos + c - 1
            cs, ce = divmod(start, h), divmod(end, h)
            xs0.append(cs[0])
            xs1.append(ce[0])
            if cs[0] == ce[0]:
                ys0.append(cs[1])
                ys1.append(ce[1])
            else:  # spans whole columns
                ys0.append(0)
                ys1.append(h - 1)
        pos += c
    x0, x1, y0, y1 = min(xs0), max(xs1), min(ys0), max(ys1)
    return (float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1))


@dataclass(frozen=True)
class Example:
    """An image in a dataset with its annotations, as the store hands it out."""

    id: int
    dataset: str
    blob: str  # sha256 of the image bytes
    file_name: str
    width: int
    height: int
    split: str
    status: str
    source: str = ""
    annotations: tuple[Annotation, ...] = ()
    # The source's own ids for this image (``{"id": 397133, "file_name": "val2017/000000397133.jpg"}`` for
    # COCO): reused on export while still unique.
    origin: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def label(self) -> str | None:
        """The class of a classification or anomaly example (None when not annotated)."""
        for a in self.annotations:
            if a.kind in ("label", "anomaly") and not a.proposal:
                return a.label
        return None

    def truth(self) -> tuple[Annotation, ...]:
        """Annotations made by people or accepted; model proposals left out."""
        return tuple(a for a in self.annotations if not a.proposal)

    def targets(self) -> tuple[Annotation, ...]:
        """Truth annotations that are training targets: crowd regions left out (COCO's convention)."""
        return tuple(a for a in self.annotations if not a.proposal and not a.iscrowd)

    def proposals(self) -> tuple[Annotation, ...]:
        return tuple(a for a in self.annotations if a.proposal)


@dataclass
class ImportItem:
    """One image to bring into a dataset, with its annotations, from a format reader or a sampler.

    Exactly one of ``path`` or ``data`` gives the image bytes. ``record`` is how the source names this
    item (a COCO image id, a label file name) so errors can point at it. ``origin`` keeps the source's own
    ids (JSON-able: a COCO image id, the file name with its sub-folder) on the stored example.
    """

    file_name: str
    path: Path | None = None
    data: bytes | None = None
    annotations: list[Annotation] = field(default_factory=list)
    split: str | None = None
    source: str = ""
    record: object | None = None
    status: str | None = None
    origin: dict[str, Any] = field(default_factory=dict)
    # what one decode found (size, format, sha256, pHash), set when the batch is checked (image_pool)
    checked: ImageCheck | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.path is None) == (self.data is None):
            raise ValidationError("an import item needs exactly one of path or data", record=self.record)
        try:
            self.origin = json_map(self.origin, field_name="origin")
        except ValidationError as e:
            raise e.located(record=self.record) from None
        if self.split is not None and self.split not in SPLITS:
            raise ValidationError(
                f"unknown split {self.split!r}; valid: {', '.join(SPLITS)}", record=self.record, field="split"
            )

    def read_bytes(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        return Path(self.path).read_bytes()


@dataclass
class ImportBatch:
    """What a format reader returns: the classes it found (in order) and the items.

    ``info`` is what the source says about the dataset as a whole (COCO ``info`` and ``licenses``), kept
    with the dataset and written back on export. ``report`` counts what the reader skipped, clipped or kept
    only in attributes, and its notes; the import summary prints it.
    """

    items: list[ImportItem]
    classes: list[ClassDef] = field(default_factory=list)
    type: str | None = None  # dataset type the source implies, when it does
    source: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    report: ImportReport = field(default_factory=ImportReport)
    # the image checks still running when the reader returned (a reader within ``formats.defer_checks``:
    # an import writes rows while they run); None once every item is checked
    checks: PendingChecks | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.type is not None:  # a TaskType as its plain string: records pickle and load anywhere
            self.type = str(self.type)
        self.info = json_map(self.info, field_name="info", max_bytes=16 << 20)

    def finish_checks(self) -> None:
        """Wait for the image checks still running, if any: afterwards every item is checked (``checked``),
        or the error the reader would have raised is raised."""
        if self.checks is not None:
            checks, self.checks = self.checks, None
            checks.wait(len(self.items))

    def stop_checks(self) -> None:
        """After a failure elsewhere: stop the image checks still running and wait for them (no error)."""
        if self.checks is not None:
            checks, self.checks = self.checks, None
            checks.stop()


class PendingChecks(Protocol):
    """A batch's image checks, still running (``ImportBatch.checks``; made by ``formats._common``)."""

    def wait(self, end: int) -> None:
        """Return once items ``[0, end)`` are checked and passed the reader's checks of the decoded image;
        raise what the reader would have raised (the first bad image in item order, then the first wrong
        declared size), whichever item it is about."""

    def drain(self) -> None:
        """Before raising an error found in the items after their check: wait for every check and raise
        the reader's error instead if there is one (it comes first, as when the reader waited)."""

    def stop(self) -> None:
        """Stop handing images out, wait for those being checked; raises nothing."""

    def finished(self) -> bool:
        """Whether no check runs any more (all done, or stopped by an error), without waiting: what the
        checks had to say to ``progress`` has been said."""

    def join_quietly(self) -> None:
        """Wait until no check runs any more (as :meth:`finished` would then say); raises nothing."""
