"""COCO files straight into the backend's own loader, when a few bulk checks prove them clean.

``coco_metrics`` on two JSON files spent two thirds of its time parsing them with Python's ``json`` and
checking every record as a Python object. hotcoco parses COCO JSON in Rust, and its typed reader already
rejects most bad input (a wrong type, a NaN or null number, a box that is not 4 numbers, a missing
``image_id`` / ``category_id`` / image ``id`` / category ``id``, a segmentation that is neither polygons nor
RLE). What it accepts and ``coco.py``'s rules do not (an unknown id, a missing ``id`` (read as 0; so an
annotation id 0 also takes the slow path) / ``bbox`` / ``area`` / ``score`` / ``segmentation``, a
negative box size in a detection, a non-list detection file) is caught here in bulk: the backend's load
warnings, its id lists (an annotation with an unknown image or category, or without an area -- hotcoco's
area-range filter leaves those out, null included -- is missing from ``get_ann_ids(img_ids, cat_ids,
area_rng=[-inf, inf])``), and one numpy pass over the raw bytes of each file (below).

Two threads, no second parse of the JSON: the calling thread has hotcoco read and evaluate the files;
a worker thread (from a small pool kept between calls) maps their bytes and scans them with numpy (whose
loops release the GIL; hotcoco holds it while it reads a file and releases it while it evaluates, so the
scan mostly runs beside the evaluation), then waits for hotcoco's loaders and checks their id lists and
warnings, also during the evaluation. The numbers count only once the worker says the files are clean.
A missing ``iscrowd`` reads as 0 in hotcoco, which is ``coco.py``'s rule too.

``fast_file_eval`` returns ``None`` whenever any check is not passed cleanly (or the worker fails), and
``coco_metrics`` then takes the record-by-record path, which names the file, record and field of the
first bad record (or, for input that is only unusual, e.g. a negative box corner or missing areas to
fill, evaluates it). So this module never decides that input is bad; it only decides that it is plainly
good.

The byte scan: a key ``"bbox":`` is looked for from one of its letters past ``o`` (``x``; ``s`` for
``score`` and ``segmentation``): no RLE string holds such a letter, so one ``nonzero`` per file gives few
candidates, and the 8 or 16 bytes from each candidate's would-be opening quote are compared as 64-bit
words. ``"key":`` is a key (hotcoco parsed the file: valid JSON, no key twice in one object, and a string
value is never followed by ``:``); one after an escaped quote (``\\"bbox":`` inside a longer key) is not
counted. A count of ``"bbox":`` equal to the number of annotations means each has one -- unless the same
key also sits in other objects of the file (extra fields on images, say) *and* exactly as many
annotations lack it. Detection files hold only detections, so there that case does not arise. The first
byte of each such key's value must not start a ``null`` (hotcoco reads a null as absent; ``coco.py``'s
rules want a value), and must sit within 2 bytes of its colon (more whitespace: the located path looks).
A ``-`` (not an exponent's) between a detection's ``"bbox":`` and the first ``]`` after it, past its
second comma, is a negative width or height. ``segm`` detections may all have a box (it then gives the
area) or none; boxes on only some send the file to the located path.
"""

from __future__ import annotations

import functools
import math
import mmap
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .coco_backends import RawEval, quiet, run_cocoeval

__all__ = ["FastEval", "fast_file_eval"]

_BLANK = np.zeros(256, dtype=bool)
_BLANK[[9, 10, 13, 32]] = True  # JSON whitespace
_BOX_BYTES = 256  # a box's key, its 4 numbers and their blanks fit in this many bytes (else: located path)


class FastEval(NamedTuple):
    """What the fast path hands back: the evaluator's output and what ``CocoResult`` needs from the gt."""

    raw: RawEval
    categories: dict[Any, dict[str, Any]]  # id -> {"id", "name", ...}
    gt_counts: Callable[[], dict[Any, int]]  # category id -> non-crowd ground-truth objects (on demand)


def _token(key: bytes) -> bytes:
    return b'"' + key + b'":'


def _anchor(token: bytes) -> int:
    """The index of the token's first byte past ``o`` (no RLE string holds one: few hits in a file)."""
    return next((k for k, byte in enumerate(token) if byte > ord("o")), len(token) - 3)


def _positions(arr: np.ndarray, wanted: bytes) -> dict[int, np.ndarray]:
    """The sorted positions of each byte of ``wanted`` in ``arr``, from one pass of ``nonzero``."""
    mask = arr == wanted[0]
    for byte in set(wanted[1:]) - {wanted[0]}:
        mask |= arr == byte
    at = np.flatnonzero(mask)
    value = arr[at]
    return {byte: at[value == byte] for byte in set(wanted)}


def _read(path: str | Path) -> np.ndarray:
    """The bytes of a file as a read-only array over the page cache (no copy)."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return np.zeros(0, np.uint8)
        return np.frombuffer(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), np.uint8)


def _anchors(keys: list[bytes]) -> bytes:
    return bytes(token[_anchor(token)] for token in map(_token, keys))


def _key_colons(
    arr: np.ndarray, keys: list[bytes], found: dict[int, np.ndarray]
) -> dict[bytes, np.ndarray] | None:
    """The position of the colon after each ``"key":`` in ``arr`` (the bytes of a JSON file hotcoco
    parsed), per key; ``None`` where one of their values is ``null`` or starts more than 2 bytes after
    its colon. Each key is found from one of its letters past ``o`` (``found``: their positions; no RLE
    string holds one: few hits); the bytes from each hit's would-be opening quote are compared 8 at a
    time as 64-bit words."""
    out = {}
    for key in keys:
        token = _token(key)
        width = -(-len(token) // 8) * 8
        anchor = _anchor(token)
        at = found[token[anchor]] - anchor  # where the token would start
        at = at[(at >= 1) & (at + width + 2 <= len(arr))]
        words = sliding_window_view(arr, width)[at].view("<u8")  # [hits, width / 8]
        expected = np.frombuffer(token.ljust(width, b"\0"), "<u8")
        mask = np.frombuffer((b"\xff" * len(token)).ljust(width, b"\0"), "<u8")
        at = at[((words & mask) == expected).all(axis=1)]
        at = at[arr[at - 1] != ord("\\")] + len(token) - 1  # not after an escaped quote; the colon
        value = arr[at + 1]
        blank = _BLANK[value]
        value = np.where(blank, arr[at + 2], value)
        if _BLANK[value[blank]].any() or (value == ord("n")).any():
            return None
        out[key] = at
    return out


def _negative_size(arr: np.ndarray, boxes: np.ndarray, found: dict[int, np.ndarray]) -> bool:
    """Whether a ``-`` sits in a detection box after its second comma (a negative width or height), or a
    box is too spread out to tell (``True`` sends the file to the located path too); ``boxes``: the sorted
    colon positions of the ``"bbox":`` keys (hotcoco made sure each box is 4 numbers, so the first ``]``
    after a box key closes that box; ``found``: the positions of the ``-`` and ``]``)."""
    minus, closes = found[ord("-")], found[ord("]")]
    minus = minus[(arr[minus - 1] | 32) != ord("e")]  # not an exponent's sign
    owner = np.searchsorted(boxes, minus) - 1  # the last box key before each sign
    minus, start = minus[owner >= 0], boxes[owner[owner >= 0]]
    if not len(minus):
        return False
    end = closes[np.minimum(np.searchsorted(closes, start), len(closes) - 1)]
    inside = minus < end  # the sign is in its box
    minus, start = minus[inside], start[inside]
    if not len(minus):
        return False
    width = int((minus - start).max())
    if width > _BOX_BYTES:  # a box spread over more blanks than that: let the located path look
        return True
    offsets = np.arange(width)
    window = arr[start[:, None] + offsets]  # from the box key to the sign
    commas = ((window == ord(",")) & (offsets < (minus - start)[:, None])).sum(axis=1)
    return bool((commas >= 2).any())


def fast_file_eval(
    gt_path: str | Path, dt_path: str | Path, iou_type: str, *, counts: bool = False
) -> FastEval | None:
    """Evaluate with hotcoco reading the files itself, or ``None`` where any bulk check fails.

    The calling thread runs hotcoco; a worker thread (of a small pool kept between calls) scans the bytes and, once hotcoco has loaded both
    files, checks its id lists (and, with ``counts``, takes the per-class ground-truth counts), while
    hotcoco evaluates. The evaluation only counts once the worker has found the files clean."""
    try:
        import hotcoco  # noqa: PLC0415
    except ImportError:
        return None
    loaded: list[Any] = []  # [coco_gt, coco_dt] once hotcoco has read both files
    ready = threading.Event()
    verdict: list[Any] = [None]  # the per-class counts (or {}) when the files are clean
    worker = _workers(os.getpid()).submit(_check, gt_path, dt_path, iou_type, counts, loaded, ready, verdict)
    try:
        with quiet():
            coco_gt = hotcoco.COCO(str(gt_path))
            coco_dt = coco_gt.load_res(str(dt_path))
            loaded += [coco_gt, coco_dt]
            ready.set()
            raw = run_cocoeval(hotcoco.COCOeval(coco_gt, coco_dt, iou_type))
    except Exception:  # noqa: BLE001 - any refusal by the backend's reader: the located path says why
        return None
    finally:
        ready.set()
        crashed = worker.exception() is not None  # waits for the worker; a crash there: not plainly clean
    found = verdict[0]
    if found is None or crashed:
        return None

    def gt_counts() -> dict[Any, int]:
        return found if counts else _category_counts(coco_gt)

    return FastEval(raw, dict(coco_gt.cats), gt_counts)


@functools.cache
def _workers(pid: int) -> ThreadPoolExecutor:
    """The scanning threads of process ``pid``, started on first use and kept (a new thread per call
    waits to be scheduled before ``start`` returns: milliseconds on a busy machine). Keyed by process:
    a forked child has none of its parent's threads, so it starts its own."""
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="coco-scan")


def _check(
    gt_path: str | Path,
    dt_path: str | Path,
    iou_type: str,
    counts: bool,
    loaded: list[Any],
    ready: threading.Event,
    verdict: list[Any],
) -> None:
    """The worker: byte scan, then (once hotcoco has loaded) the id checks; ``verdict[0]`` stays ``None``
    unless every check passes."""
    try:
        scan = _scan(gt_path, dt_path, iou_type)
    except (IndexError, ValueError):  # a file too odd for the scan's fixed offsets: the located path looks
        scan = None
    ready.wait()
    if scan is None or len(loaded) != 2:
        return
    coco_gt, coco_dt = loaded
    gt_counts, dt_counts, masks = scan
    if _clean(coco_gt, coco_dt, gt_counts, dt_counts) and (not masks or _mask_sizes_match(coco_gt, coco_dt, masks)):
        verdict[0] = _category_counts(coco_gt) if counts else {}


def _mask_sizes_match(coco_gt: Any, coco_dt: Any, masks: list[tuple[np.ndarray, np.ndarray]]) -> bool:
    """Every RLE mask of both files is the size of its image (``masks``: :func:`_rle_sizes`' answer for the
    ground truth, by image id, and for the detections, by place): hotcoco compares masks of other sizes
    without a word (a detection made on a resized image scores as a miss), where the located path names the
    record. hotcoco numbers detections 1, 2, ... in file order: the one in place k is id k + 1."""
    (gt_ids, gt_hw), (dt_places, dt_hw) = masks
    if not len(gt_ids) and not len(dt_places):
        return True
    img_ids = coco_gt.get_img_ids()
    images = coco_gt.load_imgs(img_ids)
    order = np.array([im["id"] for im in images], np.int64)
    size = np.array([(im["height"], im["width"]) for im in images], np.int64).reshape(-1, 2)
    by_id = np.argsort(order)
    order, size = order[by_id], size[by_id]
    if len(dt_places):
        n = len(coco_dt.get_ann_ids())
        image_of = np.full(n + 2, -1, np.int64)
        for i in img_ids:
            ids = coco_dt.get_ann_ids(img_ids=[i])
            if ids:
                image_of[np.minimum(np.asarray(ids, np.int64), n + 1)] = i
        dt_ids = image_of[np.minimum(dt_places + 1, n + 1)]
    else:
        dt_ids = np.zeros(0, np.int64)
    for image_ids, hw in ((gt_ids, gt_hw), (dt_ids, dt_hw)):
        if not len(image_ids):
            continue
        k = np.minimum(np.searchsorted(order, image_ids), len(order) - 1)
        if not ((order[k] == image_ids).all() and (size[k] == hw).all()):
            return False
    return True


_WINDOW = 16  # bytes read after a key's colon: a compact id or RLE size fits
_LONG_WINDOW = 128  # those that do not (an indented file) are read from this many (else: the located path)
_ID = re.compile(rb"[ \t\r\n]*(\d+)[ \t\r\n]*[,}]")
_SIZE = re.compile(rb"[ \t\r\n]*\[[ \t\r\n]*(\d+)[ \t\r\n]*,[ \t\r\n]*(\d+)[ \t\r\n]*\]")


def _windows(arr: np.ndarray, at: np.ndarray, width: int, closers: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The ``width`` bytes after each colon at ``at`` (sorted), zeroed past the first of ``closers``, and
    whether each holds one."""
    if at[-1] + 1 + width <= len(arr):  # a view of the windows, gathered by one index
        win = sliding_window_view(arr, width)[at + 1]
    else:
        win = arr[np.minimum(at[:, None] + 1 + np.arange(width), len(arr) - 1)]
    is_close = win == closers[0]
    for byte in closers[1:]:
        is_close |= win == byte
    win[np.arange(width)[None, :] > is_close.argmax(axis=1)[:, None]] = 0  # the value and its closer only
    return win, is_close.any(axis=1)


def _numbers(arr: np.ndarray, at: np.ndarray, pattern: re.Pattern[bytes], closers: bytes) -> np.ndarray | None:
    """``pattern``'s numbers in the value after each colon at ``at`` (the value up to the first of
    ``closers``: an id, or an RLE's ``[h, w]``), as an int64 array of one row per colon; None where any value
    is not plainly that (the located path reads it). Few values differ (image ids, image sizes): each
    distinct one is parsed once. Values longer than :data:`_WINDOW` bytes (an indented file) are read again
    from longer windows."""
    if not len(at):
        return np.zeros((0, pattern.groups), np.int64)
    win, closed = _windows(arr, at, _WINDOW, closers)
    texts = np.ascontiguousarray(win).view(f"S{_WINDOW}")[:, 0]
    if not closed.all():
        again = np.flatnonzero(~closed)
        long, long_closed = _windows(arr, at[again], _LONG_WINDOW, closers)
        if not long_closed.all():
            return None
        texts = texts.astype(f"S{_LONG_WINDOW}")
        texts[again] = np.ascontiguousarray(long).view(f"S{_LONG_WINDOW}")[:, 0]
    distinct, where = np.unique(texts, return_inverse=True)
    values = []
    for text in distinct.tolist():
        m = pattern.fullmatch(text)
        if m is None:
            return None
        values.append([int(g) for g in m.groups()])
    return np.array(values, np.int64)[where.ravel()]


def _rle_sizes(arr: np.ndarray, at: dict[bytes, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """The RLE segmentations in the bytes of a COCO file, from the colons of its ``"segmentation":`` and
    ``"size":`` keys (and ``"image_id":``, when ``at`` has them): (image ids, or without them the RLEs'
    places among the annotations in file order; ``[h, w]`` rows), or None where the bytes do not say it
    plainly. ``_clean`` checks there are as many ``"segmentation":`` keys as annotations, so the k-th is
    annotation k's (objects do not interleave), as is the k-th ``"image_id":`` when there are as many
    (hotcoco requires one on each). A segmentation whose value opens with ``{`` is an RLE; as many
    ``"size":`` keys as RLEs, each between its segmentation's key and the next one, are theirs."""
    seg_at, size_at = at[b"segmentation"], at[b"size"]
    img_at = at.get(b"image_id")
    if img_at is not None and len(img_at) != len(seg_at):
        return None
    first = arr[seg_at + 1]
    first = np.where(_BLANK[first], arr[seg_at + 2], first)
    rle = np.flatnonzero(first == ord("{"))
    if len(size_at) != len(rle):
        return None
    after = np.append(seg_at[1:], len(arr))
    if not ((size_at > seg_at[rle]) & (size_at < after[rle])).all():
        return None
    hw = _numbers(arr, size_at, _SIZE, b"]")
    if img_at is None:
        return (rle, hw) if hw is not None else None
    ids = _numbers(arr, img_at[rle], _ID, b",}")
    if ids is None or hw is None:
        return None
    return ids[:, 0], hw


def _category_counts(coco_gt: Any) -> dict[Any, int]:
    per_category = coco_gt.stats()["per_category"]
    return {c["id"]: int(c["ann_count"]) - int(c["crowd_count"]) for c in per_category}


def _scan(
    gt_path: str | Path, dt_path: str | Path, iou_type: str
) -> tuple[dict[bytes, int], dict[bytes, int], list[tuple[np.ndarray, np.ndarray]]] | None:
    """Key counts of both files (and whether no detection box has a negative size), and for ``segm`` the
    image and size of each RLE mask (:func:`_rle_sizes`), or ``None``."""
    try:
        gt_arr, dt_arr = _read(gt_path), _read(dt_path)
    except OSError:
        return None
    if bytes(gt_arr[:64]).lstrip()[:1] != b"{" or bytes(dt_arr[:64]).lstrip()[:1] != b"[":
        return None
    gt_keys = [b"bbox"]  # areas: hotcoco's area filter leaves out an annotation without one (_clean)
    dt_keys = [b"score", b"bbox"]
    # not counted (see _rle_sizes): a detection's image comes from hotcoco (its ids are the file's order)
    gt_more, dt_more = ([b"image_id", b"size"], [b"size"]) if iou_type == "segm" else ([], [])
    if iou_type == "segm":
        gt_keys.append(b"segmentation")
        dt_keys.append(b"segmentation")
    gt_at = _key_colons(gt_arr, gt_keys + gt_more, _positions(gt_arr, _anchors(gt_keys + gt_more)))
    dt_found = _positions(dt_arr, _anchors(dt_keys + dt_more) + (b"-]" if iou_type == "bbox" else b""))
    dt_at = _key_colons(dt_arr, dt_keys + dt_more, dt_found)
    if gt_at is None or dt_at is None:
        return None
    masks = []
    for arr, at, more in ((gt_arr, gt_at, gt_more), (dt_arr, dt_at, dt_more)):
        if more:
            found = _rle_sizes(arr, at)
            if found is None:
                return None
            masks.append(found)
            for key in more:
                del at[key]
    boxes = dt_at[b"bbox"]
    if len(boxes):  # segm: ']' is an RLE letter, so the signs and brackets are looked for only here
        signs = dt_found if iou_type == "bbox" else _positions(dt_arr, b"-]")
        if _negative_size(dt_arr, boxes, signs):
            return None
    dt_counts = {k: len(v) for k, v in dt_at.items()}
    if iou_type == "segm" and not dt_counts[b"bbox"]:
        # no detection has a box: the masks give the areas. Boxes on some only: the located path (hotcoco
        # would give those the box's area, pycocotools' loadRes -- and coco.py -- all the masks')
        del dt_counts[b"bbox"]
    return {k: len(v) for k, v in gt_at.items()}, dt_counts, masks


def _clean(coco_gt: Any, coco_dt: Any, gt_counts: dict[bytes, int], dt_counts: dict[bytes, int]) -> bool:
    if coco_gt.load_warnings or coco_dt.load_warnings:  # duplicate ids, unknown image / category ids
        return False
    img_ids, cat_ids, ann_ids = coco_gt.get_img_ids(), coco_gt.get_cat_ids(), coco_gt.get_ann_ids()
    n_ann, n_dt = len(ann_ids), len(coco_dt.get_ann_ids())
    if not (img_ids and cat_ids and n_ann):  # a missing list reads as empty: let the located path look
        return False
    if 0 in ann_ids:  # a missing annotation id reads as 0
        return False
    # unknown image or category, or no area (an absent or null area is outside every area range)
    if len(coco_gt.get_ann_ids(img_ids=img_ids, cat_ids=cat_ids, area_rng=[-math.inf, math.inf])) != n_ann:
        return False
    return all(n == n_ann for n in gt_counts.values()) and all(n == n_dt for n in dt_counts.values())
