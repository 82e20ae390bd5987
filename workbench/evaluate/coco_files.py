"""COCO files straight into the backend's own loader, when a few bulk checks prove them clean.

``coco_metrics`` on two JSON files spent two thirds of its time parsing them with Python's ``json`` and
checking every record as a Python object. hotcoco parses COCO JSON in Rust, and its typed reader already
rejects most bad input (a wrong type, a NaN or null number, a box that is not 4 numbers, a missing
``image_id`` / ``category_id`` / image ``id`` / category ``id``, a segmentation that is neither polygons nor
RLE). What it accepts and ``coco.py``'s rules do not (an unknown id, a missing ``id`` (read as 0; so an
annotation id 0 also takes the slow path) / ``bbox`` / ``area`` / ``score`` / ``segmentation``, a
negative box size in a detection, a non-list detection file) is caught here in bulk: the backend's load
warnings, its id lists, one ``bytes.count`` per key over the raw bytes of each file, a numpy look at the
values after those keys' colons where a file holds a ``null`` at all, and a look at each '-' of a
detection file (negative sizes). The byte scan runs in a thread beside hotcoco's reading and evaluation;
the numbers count only once it has passed. A missing ``iscrowd`` reads as 0 in hotcoco, which is
``coco.py``'s rule too.

``fast_file_eval`` returns ``None`` whenever any check is not passed cleanly, and ``coco_metrics`` then
takes the record-by-record path, which names the file, record and field of the first bad record (or, for
input that is only unusual, e.g. a negative box corner or missing areas to fill, evaluates it). So this
module never decides that input is bad; it only decides that it is plainly good.

Key counts: hotcoco parsed the file (valid JSON, no key twice in one object), and ``"key":`` is a key
(a string value is never followed by ``:``), so a count of ``"bbox":`` equal to the number of annotations
means each has one -- unless the same key also sits in other objects of the file (extra fields on
images, say) *and* exactly as many annotations lack it, or a key name ends in an escaped ``\\"bbox``.
Detection files hold only detections, so there only the last, contrived case remains.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .coco_backends import RawEval, quiet, run_cocoeval

__all__ = ["FastEval", "fast_file_eval"]


class FastEval(NamedTuple):
    """What the fast path hands back: the evaluator's output and what ``CocoResult`` needs from the gt."""

    raw: RawEval
    categories: dict[Any, dict[str, Any]]  # id -> {"id", "name", ...}
    gt_counts: Callable[[], dict[Any, int]]  # category id -> non-crowd ground-truth objects (on demand)


def _key_counts(data: bytes, keys: list[bytes]) -> dict[bytes, int] | None:
    """How often each ``"key":`` appears in ``data`` (a string value is never followed by ``:``), from one
    numpy pass over the colons; ``None`` when one of them has a ``null`` value (hotcoco reads it as
    absent; coco.py's rules want a value) or a value that does not start within 2 bytes of its colon."""
    arr = np.frombuffer(data, np.uint8)
    width = max(len(k) for k in keys) + 2
    colons = np.flatnonzero(arr == ord(":"))
    colons = colons[(colons >= width) & (colons < len(arr) - 2)]
    colons = colons[arr[colons - 1] == ord('"')]  # a colon right after a closing quote: after a key
    first, second = arr[colons + 1], arr[colons + 2]
    blank1 = (first == 32) | (first == 9) | (first == 10) | (first == 13)
    blank2 = (second == 32) | (second == 9) | (second == 10) | (second == 13)
    if (blank1 & blank2).any():
        return None
    nulls = colons[np.where(blank1, second, first) == ord("n")]  # values that start with n: null
    counts = {}
    for key in keys:
        token = np.frombuffer(b'"' + key + b'"', np.uint8)
        at = colons
        for back, byte in enumerate(token[::-1], start=1):  # narrow down one byte at a time
            at = at[arr[at - back] == byte]
        counts[key] = len(at)
        if len(nulls) and np.isin(nulls, at).any():
            return None
    return counts


def _counts(data: bytes, keys: list[bytes]) -> dict[bytes, int] | None:
    """``bytes.count`` of each ``"key":`` (one C pass each: faster than numpy here); the numpy pass over the
    colons only where the file holds a ``null`` somewhere, to see whether it is one of these keys' values."""
    if b"null" in data:
        return _key_counts(data, keys)
    return {key: data.count(b'"' + key + b'":') for key in keys}


def _negative_size(data: bytes) -> bool:
    """Whether a detection box's width or height starts with '-' (the reader made sure a box is 4
    numbers; a '-' in an RLE string cannot be, its characters are 48..111)."""
    start = data.find(b"-")
    while start != -1:
        if data[start - 1 : start] not in (b"e", b"E"):  # not an exponent's sign
            open_ = data.rfind(b"[", 0, start)
            key = data[max(open_ - 16, 0) : open_].rstrip()
            if open_ > data.rfind(b"]", 0, start) and key.endswith(b'"bbox":'):
                if data.count(b",", open_, start) >= 2:
                    return True
        start = data.find(b"-", start + 1)
    return False


def fast_file_eval(gt_path: str | Path, dt_path: str | Path, iou_type: str) -> FastEval | None:
    """Evaluate with hotcoco reading the files itself, or ``None`` where any bulk check fails.

    The scan of the raw bytes runs in a second thread while hotcoco reads and evaluates (both release
    the GIL for their long loops); the evaluation only counts once the scan and the id checks pass."""
    try:
        import hotcoco  # noqa: PLC0415
    except ImportError:
        return None
    scan: list[tuple[dict[bytes, int], dict[bytes, int]] | None] = [None]
    worker = threading.Thread(target=lambda: scan.__setitem__(0, _scan(gt_path, dt_path, iou_type)))
    worker.start()
    try:
        with quiet():
            coco_gt = hotcoco.COCO(str(gt_path))
            coco_dt = coco_gt.load_res(str(dt_path))
            ev = hotcoco.COCOeval(coco_gt, coco_dt, iou_type)
            raw = run_cocoeval(ev)
    except Exception:  # noqa: BLE001 - any refusal by the backend's reader: the located path says why
        return None
    finally:
        worker.join()
    if scan[0] is None or not _clean(coco_gt, coco_dt, *scan[0]):
        return None

    def gt_counts() -> dict[Any, int]:
        per_category = coco_gt.stats()["per_category"]
        return {c["id"]: int(c["ann_count"]) - int(c["crowd_count"]) for c in per_category}

    return FastEval(raw, dict(coco_gt.cats), gt_counts)


def _scan(
    gt_path: str | Path, dt_path: str | Path, iou_type: str
) -> tuple[dict[bytes, int], dict[bytes, int]] | None:
    """Key counts of both files (and whether no detection box has a negative size), or ``None``."""
    try:
        gt_bytes = Path(gt_path).read_bytes()
        dt_bytes = Path(dt_path).read_bytes()
    except OSError:
        return None
    if gt_bytes.lstrip()[:1] != b"{" or dt_bytes.lstrip()[:1] != b"[":
        return None
    gt_keys = [b"bbox", b"area"]
    dt_keys = [b"score"]
    if iou_type == "segm":
        gt_keys.append(b"segmentation")
        dt_keys.append(b"segmentation")
    else:
        dt_keys.append(b"bbox")
    gt_counts, dt_counts = _counts(gt_bytes, gt_keys), _counts(dt_bytes, dt_keys)
    if gt_counts is None or dt_counts is None or (iou_type == "bbox" and _negative_size(dt_bytes)):
        return None
    return gt_counts, dt_counts


def _clean(coco_gt: Any, coco_dt: Any, gt_counts: dict[bytes, int], dt_counts: dict[bytes, int]) -> bool:
    if coco_gt.load_warnings or coco_dt.load_warnings:  # duplicate ids, unknown image / category ids
        return False
    img_ids, cat_ids, ann_ids = coco_gt.get_img_ids(), coco_gt.get_cat_ids(), coco_gt.get_ann_ids()
    n_ann, n_dt = len(ann_ids), len(coco_dt.get_ann_ids())
    if not (img_ids and cat_ids and n_ann):  # a missing list reads as empty: let the located path look
        return False
    if 0 in set(ann_ids):  # a missing annotation id reads as 0
        return False
    if len(coco_gt.get_ann_ids(img_ids=img_ids, cat_ids=cat_ids)) != n_ann:  # unknown image / category
        return False
    return all(n == n_ann for n in gt_counts.values()) and all(n == n_dt for n in dt_counts.values())
