"""Detections as columns: ``coco_metrics`` without a Python dict per detection.

A model's predictions are arrays already (boxes, scores, labels per image). ``DetectionColumns`` holds
them as one column each -- ``image_id``, ``category_id``, ``score``, ``bbox`` (``x, y, w, h``) and, for
``segm``, one RLE per row -- checked on construction over whole columns (integer ids, finite scores, 4
finite numbers per box, no negative size); ``coco_metrics`` then checks the ids against the ground truth
with one ``isin`` per column and hands hotcoco its ``load_res`` array (rows ``[image_id, x, y, w, h,
score, category_id]``, plus the RLE list for ``segm``). A failed check raises the ``ValidationError`` the
record-by-record path raises, naming the detection by its row (``detection 7``) and the field.

``round_like_python`` rounds a column exactly as ``round(float(v), n)`` rounds each value (what
``detection_json`` writes to ``predictions.json``), so the in-training numbers equal those recomputed
from the written file.

Also here: ``detection_columns``, the same columns taken from a list of result dicts when every check
passes over whole columns (else ``coco_metrics`` goes record by record), and ``to_compressed_rle``, the
conversion of a polygon or an uncompressed RLE to what the backends read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from operator import itemgetter
from typing import Any

import numpy as np

from ..errors import ValidationError

__all__ = [
    "DetectionColumns",
    "check_mask_sizes",
    "round_like_python",
    "check_known",
    "rows_to_convert",
    "detection_columns",
    "checked_columns",
    "to_compressed_rle",
    "mask_utils",
]

_EXACT = 2.0**52  # past this a double has no fraction: the scale-rint-unscale shortcut is not exact


def round_like_python(values: Any, decimals: int) -> np.ndarray:
    """``round(float(v), decimals)`` of every value, as float64 (same shape).

    numpy's ``rint(v * 10**d) / 10**d`` gives the double nearest the same decimal as Python's correctly
    rounded ``round`` unless ``v * 10**d`` lies within its rounding error of a half (or is too large to
    have a fraction, or is not finite): those few values are rounded by Python."""
    v = np.asarray(values, dtype=np.float64)
    scale = 10.0**decimals
    y = v * scale
    r = np.rint(y)
    out = r / scale
    if not y.size:
        return out
    largest = float(np.abs(y).max())  # NaN when one is: the per-value look below
    if largest < _EXACT:
        r -= y
        np.abs(r, out=r)
        r -= 0.5
        near = np.abs(r, out=r) <= largest * 1e-14 + 1e-9  # rint's choice was close to a tie
    else:
        with np.errstate(invalid="ignore"):
            near = ~((np.abs(np.abs(y - r) - 0.5) > np.abs(y) * 1e-14 + 1e-9) & (np.abs(y) < _EXACT))
    if near.any():
        flat_out, flat_v = out.reshape(-1), v.reshape(-1)
        for i in np.flatnonzero(near.reshape(-1)):
            flat_out[i] = round(float(flat_v[i]), decimals)
    return out


def _num(v: Any) -> bool:
    return (
        isinstance(v, (int, float, np.integer, np.floating))
        and not isinstance(v, (bool, np.bool_))
        and math.isfinite(v)
    )


def _column(values: Any, name: str, n: int | None, *, integer: bool, width: int = 0) -> np.ndarray:
    """``values`` as a 1-d (``width`` 0) or ``n x width`` numeric array; a column of the wrong kind or
    length raises, naming the field (and the first row at fault where there is one)."""
    arr = np.asarray(values)
    if arr.size == 0 and arr.ndim in (1, 2):  # no detections: any empty array will do
        arr = arr.astype(np.int64 if integer else np.float64).reshape((0, width) if width else (0,))
    shape = (arr.shape[0],) if width == 0 and arr.ndim == 1 else None
    if width and arr.ndim == 2 and arr.shape[1] == width:
        shape = arr.shape
    if shape is None:
        want = f"{n if n is not None else 'N'} x {width}" if width else "one value per detection"
        raise ValidationError(f"{name} must be an array of {want}, got shape {arr.shape}", field=name)
    if n is not None and arr.shape[0] != n:
        raise ValidationError(
            f"{name} has {arr.shape[0]} rows for {n} detections (image_id's length)",
            record=f"detection {min(n, arr.shape[0])}",
            field=name,
        )
    kinds = "iu" if integer else "iuf"
    if arr.dtype.kind not in kinds:
        rows = arr.reshape(len(arr), -1)
        bad = next((i for i, row in enumerate(rows) if not all(_num(v) for v in row)), None)
        what = "integers" if integer else "numbers"
        if bad is None or integer:
            raise ValidationError(
                f"{name} must hold {what}, got dtype {arr.dtype}",
                record=None if bad is None else f"detection {bad}",
                field=name,
            )
        got = rows[bad].tolist() if width else rows[bad][0]
        raise ValidationError(
            f"{name} must be {'4 finite numbers' if width else 'a finite number'}, got {got!r}",
            record=f"detection {bad}",
            field=name,
        )
    return arr


@dataclass(frozen=True, eq=False)
class DetectionColumns:
    """N detections as columns (what ``coco_metrics`` takes in place of a list of result dicts).

    ``image_id``, ``category_id``: N integers (the ground truth's ids). ``score``: N finite numbers.
    ``bbox``: N x 4 ``x, y, w, h`` (finite, no negative width or height); may be ``None`` for ``segm``
    only. ``segmentation``: N masks for ``segm``, each compressed RLE ``{"size": [h, w], "counts": str}``
    (uncompressed RLE and polygons are converted, row by row). For ``segm`` a detection's area (its area
    range) is its box's, else its mask's: pycocotools' ``loadRes`` rule for results with and without
    boxes. Checked on construction; the ids are checked against the ground truth by ``coco_metrics``.
    """

    image_id: np.ndarray
    category_id: np.ndarray
    score: np.ndarray
    bbox: np.ndarray | None = None
    segmentation: Sequence[Any] | None = None

    def __post_init__(self) -> None:
        image_id = _column(self.image_id, "image_id", None, integer=True)
        n = len(image_id)
        category_id = _column(self.category_id, "category_id", n, integer=True)
        score = _column(self.score, "score", n, integer=False).astype(np.float64, copy=False)
        finite = np.isfinite(score)
        if not finite.all():
            i = int(np.argmin(finite))
            raise ValidationError(
                f"score must be a finite number, got {score[i]!r}", record=f"detection {i}", field="score"
            )
        bbox = None
        if self.bbox is not None:
            bbox = _column(self.bbox, "bbox", n, integer=False, width=4).astype(np.float64, copy=False)
            bad = ~np.isfinite(bbox).all(axis=1)
            if bad.any():
                i = int(np.argmax(bad))
                raise ValidationError(
                    f"bbox must be 4 finite numbers, got {bbox[i].tolist()!r}",
                    record=f"detection {i}",
                    field="bbox",
                )
            negative = (bbox[:, 2:] < 0).any(axis=1)
            if negative.any():
                i = int(np.argmax(negative))
                raise ValidationError(
                    f"bbox has negative size {bbox[i].tolist()}", record=f"detection {i}", field="bbox"
                )
        if self.segmentation is not None:
            if isinstance(self.segmentation, (str, bytes, dict)):
                raise ValidationError(
                    "segmentation must be a list of one mask per detection", field="segmentation"
                )
            if len(self.segmentation) != n:
                raise ValidationError(
                    f"segmentation has {len(self.segmentation)} masks for {n} detections (image_id's length)",
                    record=f"detection {min(n, len(self.segmentation))}",
                    field="segmentation",
                )
            object.__setattr__(self, "segmentation", list(self.segmentation))
        object.__setattr__(self, "image_id", image_id)
        object.__setattr__(self, "category_id", category_id)
        object.__setattr__(self, "score", score)
        object.__setattr__(self, "bbox", bbox)

    def __len__(self) -> int:
        return len(self.image_id)

    def hotcoco_rows(self) -> np.ndarray:
        """The ``[image_id, x, y, w, h, score, category_id]`` float rows of hotcoco's ``load_res`` (a
        missing box column gives zero boxes: ``segm`` matches by the masks, and the areas are then set
        from them)."""
        boxes = self.bbox if self.bbox is not None else np.zeros((len(self), 4))
        return np.column_stack([self.image_id, boxes, self.score, self.category_id]).astype(np.float64)

    def exact_as_floats(self) -> bool:
        """Whether every id survives hotcoco's float rows (below 2**53 in size)."""
        ids = (self.image_id, self.category_id)
        return not len(self) or all(int(np.abs(c.astype(np.float64)).max()) < 2**53 for c in ids)

    def records(self, iou_type: str) -> list[dict[str, Any]]:
        """One result dict per row (for a backend that takes only those): ids, score and the box (``bbox``)
        or the mask (``segm``)."""
        img, cat, score = self.image_id.tolist(), self.category_id.tolist(), self.score.tolist()
        if iou_type == "segm":
            segs = self.segmentation or []
            rows = [
                {"image_id": i, "category_id": c, "score": s, "segmentation": m}
                for i, c, s, m in zip(img, cat, score, segs, strict=True)
            ]
            if self.bbox is not None:  # the areas are then the boxes', as hotcoco's rows give them
                for row, b in zip(rows, self.bbox.tolist(), strict=True):
                    row["bbox"] = b
            return rows
        boxes = self.bbox.tolist() if self.bbox is not None else []
        return [
            {"image_id": i, "category_id": c, "score": s, "bbox": b}
            for i, c, s, b in zip(img, cat, score, boxes, strict=True)
        ]


def check_known(column: np.ndarray, known: Any, field: str, message: str, file: str | None = None) -> None:
    """Every value of ``column`` is in ``known`` (ids of the ground truth), else the first row that is not
    raises ``message.format(value)`` naming it."""
    known = list(known)
    ids = np.array(known, dtype=np.int64) if _all_int(known) else np.array(known + [None], dtype=object)[:-1]
    if ids.dtype == object:  # ground truth with non-integer ids: no integer detection id can be in it
        found = np.isin(column.astype(object), ids)
    else:
        found = np.isin(column, ids)
    if not found.all():
        i = int(np.argmin(found))
        raise ValidationError(
            message.format(column[i].item()), file=file, record=f"detection {i}", field=field
        )


def _all_int(values: Any) -> bool:
    return all(type(v) is int and -(2**63) <= v < 2**63 for v in values)


def rows_to_convert(segs: list[Any], *, strict: bool = False) -> list[int]:
    """The rows of ``segs`` that are not compressed RLE (a dict with text ``counts``): those go through the
    row-by-row conversion, which converts or names them. Quick (``strict=False``): over whole columns,
    leaving the ``size`` to hotcoco's typed reader (a refusal there brings the strict look, which also
    wants a ``size`` of two ints)."""
    if not strict:
        try:
            if set(map(type, segs)) <= {dict} and set(map(type, map(itemgetter("counts"), segs))) <= {str}:
                return []
        except KeyError:
            pass
    return [
        i
        for i, s in enumerate(segs)
        if not (
            type(s) is dict
            and type(s.get("counts")) is str
            and type(size := s.get("size")) is list
            and len(size) == 2
            and type(size[0]) is int
            and type(size[1]) is int
        )
    ]


def detection_columns(dt: list[Any], gt: dict[str, Any], iou_type: str) -> DetectionColumns | None:
    """The detection dicts as columns, when every check passes over whole columns (int ids known to the
    ground truth, finite scores; 4 finite numbers per box, no negative size; for ``segm`` compressed RLE
    with text counts, boxes only where every detection has one); ``None`` sends them through the per-record path, which names the
    first bad record (or converts what is only unusual: polygons, uncompressed RLE, a box from a mask)."""
    if not dt:
        return None
    try:
        img = list(map(itemgetter("image_id"), dt))
        cat = list(map(itemgetter("category_id"), dt))
        score = list(map(itemgetter("score"), dt))
        box: list[Any] | None = list(map(itemgetter("bbox"), dt)) if iou_type == "bbox" else None
        segs = list(map(itemgetter("segmentation"), dt)) if iou_type == "segm" else None
    except (KeyError, TypeError, IndexError):
        return None
    if not (set(map(type, img)) == {int} and set(map(type, cat)) == {int}):
        return None
    if not set(map(type, score)) <= {int, float}:  # a bool is refused, as per record
        return None
    if not (set(img) <= {i["id"] for i in gt["images"]} and set(cat) <= {c["id"] for c in gt["categories"]}):
        return None
    if segs is not None:
        if rows_to_convert(segs):
            return None
        box = [d.get("bbox") for d in dt]  # areas from the boxes when every detection has one
        box = None if any(b is None for b in box) else box
    try:
        return DetectionColumns(
            np.array(img), np.array(cat), np.array(score), None if box is None else np.array(box), segs
        )
    except (ValueError, TypeError, OverflowError):  # ValidationError included: the per-record path names it
        return None


def checked_columns(
    cols: DetectionColumns, gt: dict[str, Any], iou_type: str, file: str | None, *, strict: bool = False
) -> DetectionColumns:
    """Columns whose ids are the ground truth's, with what ``iou_type`` needs (for ``segm`` every mask as
    compressed RLE: the other forms converted row by row, see ``rows_to_convert``); a failure names the
    detection's row."""
    check_known(
        cols.image_id,
        [img["id"] for img in gt["images"]],
        "image_id",
        "image_id {!r} is not in the ground truth; detections must be for its images",
        file,
    )
    check_known(
        cols.category_id,
        [c["id"] for c in gt["categories"]],
        "category_id",
        "category_id {!r} is not a ground-truth category",
        file,
    )
    if iou_type == "bbox":
        if cols.bbox is None:
            raise ValidationError("bbox evaluation needs a box per detection", file=file, field="bbox")
        return cols
    if cols.segmentation is None:
        raise ValidationError(
            "segm evaluation needs a segmentation per detection", file=file, field="segmentation"
        )
    todo = rows_to_convert(list(cols.segmentation), strict=strict)
    if not todo:
        return cols
    images = {img["id"]: img for img in gt["images"]}
    segs = list(cols.segmentation)
    for i in todo:
        try:
            segs[i] = to_compressed_rle(segs[i], images[cols.image_id[i].item()], f"detection {i}")
        except ValidationError as exc:
            raise exc.located(file=file) from None
    return replace(cols, segmentation=segs)


def check_mask_sizes(image_ids: Sequence[Any], segmentations: Sequence[Any], images: dict[Any, dict[str, Any]],
                     records: Sequence[str] | None, file: str | None, *, what: str = "detection") -> None:
    """Every RLE mask is as large as its image (``[height, width]``, where the ground truth gives both as
    integers): pycocotools refuses a pair of masks of different sizes, hotcoco scores it as no overlap without a
    word. Polygons are drawn at their image's size. ``records``: the record each row is named by (default
    ``"{what} {row}"``)."""
    for i, (iid, seg) in enumerate(zip(image_ids, segmentations, strict=True)):
        if not isinstance(seg, dict):
            continue
        size, img = seg.get("size"), images.get(iid)
        if img is None or not isinstance(size, (list, tuple)) or len(size) != 2:
            continue
        h, w = img.get("height"), img.get("width")
        if type(h) is int and type(w) is int and (size[0] != h or size[1] != w):
            raise ValidationError(
                f"mask size {list(size)} is not the size of image {iid!r} ([{h}, {w}]): it would score as no overlap",
                file=file, record=records[i] if records is not None else f"{what} {i}", field="segmentation")


def mask_utils() -> Any:
    from pycocotools import mask  # noqa: PLC0415 - C extension, only when masks are involved

    return mask


def to_compressed_rle(seg: Any, img: dict[str, Any], rec: str | None) -> dict[str, Any]:
    """Polygon(s) / uncompressed RLE / compressed RLE -> one compressed RLE with str counts."""
    mu = mask_utils()
    h, w = img.get("height"), img.get("width")
    try:
        if isinstance(seg, list):
            if not (isinstance(h, int) and isinstance(w, int)):
                raise ValueError("a polygon needs its image's width and height in the ground truth")
            rle = mu.merge(mu.frPyObjects(seg, h, w))
        elif isinstance(seg, dict) and isinstance(seg.get("counts"), list):
            size = seg["size"]
            rle = mu.frPyObjects(seg, size[0], size[1])
        elif isinstance(seg, dict) and isinstance(seg.get("counts"), (str, bytes)):
            rle = {"size": list(seg["size"]), "counts": seg["counts"]}
        else:
            raise ValueError(f"expected a polygon list or an RLE dict, got {type(seg).__name__}")
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ValidationError(f"bad segmentation: {exc}", record=rec, field="segmentation") from None
    counts = rle["counts"]
    return {
        "size": [int(s) for s in rle["size"]],
        "counts": counts.decode() if isinstance(counts, bytes) else counts,
    }
