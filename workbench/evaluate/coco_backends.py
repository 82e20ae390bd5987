"""COCO evaluator backends: one registry entry per library that implements pycocotools' COCOeval.

Each backend takes a *normalized* ground-truth dict and detection list (see ``coco.py``: every annotation
has ``area`` and ``iscrowd``, every detection has only ``image_id``, ``category_id``, ``score`` and either
``bbox`` or a compressed-RLE ``segmentation`` (with a ``bbox`` too for ``segm`` when every detection has
one: the box gives the area) and returns the evaluator's 12 stats, its ``eval["precision"]`` array
``[T, R, K, A, M]`` and the category ids along K. A backend with ``run_columns`` (hotcoco) takes checked
``DetectionColumns`` instead: its ``load_res`` array, rows ``[image_id, x, y, w, h, score, category_id]``,
with the masks beside it for ``segm`` -- no dict per detection.

Measured equal: over 24 seeded synthetic sets (bbox and segm; polygons, compressed and uncompressed RLE,
crowd regions, tied scores, a class with detections but no ground truth, an image with 170 detections) the
stats and precision arrays of hotcoco 1.3.0 equal pycocotools 2.0.11's exactly, faster-coco-eval 1.8.0's
to 2.8e-17. The libraries print (summaries, warnings; hotcoco from Rust, straight to the file
descriptor), so every call runs inside ``quiet()``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..errors import UnknownNameError, ValidationError

__all__ = ["RawEval", "Backend", "BACKENDS", "PREFERENCE", "register_backend", "get_backend", "quiet",
           "run_cocoeval"]


class RawEval(NamedTuple):
    stats: np.ndarray  # the 12 summary numbers, pycocotools' order
    precision: np.ndarray  # [T iou thresholds, R=101 recall points, K categories, A=4 areas, M=3 maxDets]
    cat_ids: list[int]  # category id of each K index


@dataclass(frozen=True)
class Backend:
    name: str
    module: str  # the import that must succeed
    run: Callable[[dict[str, Any], Any, str], RawEval]  # (ground truth, detections, iou_type)
    # (ground truth, DetectionColumns, iou_type) for a library that takes detections as columns; None:
    # ``coco_metrics`` hands ``run`` one dict per detection instead
    run_columns: Callable[[dict[str, Any], Any, str], RawEval] | None = None

    def available(self) -> bool:
        return importlib.util.find_spec(self.module) is not None


BACKENDS: dict[str, Backend] = {}
# "auto" picks the first installed one: fastest first (all three give the same numbers).
PREFERENCE = ("hotcoco", "faster-coco-eval", "pycocotools")


def register_backend(backend: Backend) -> Backend:
    BACKENDS[backend.name] = backend
    return backend


def get_backend(name: str) -> Backend:
    """The backend ``name`` (``"auto"``: the first installed of ``PREFERENCE``)."""
    if name == "auto":
        for candidate in PREFERENCE:
            if BACKENDS[candidate].available():
                return BACKENDS[candidate]
        raise UnknownNameError(
            "installed COCO backend", "auto", [b for b in BACKENDS if BACKENDS[b].available()]
        )
    try:
        backend = BACKENDS[name]
    except (KeyError, TypeError):
        raise UnknownNameError("COCO backend", str(name), [*BACKENDS, "auto"]) from None
    if not backend.available():
        raise UnknownNameError(
            f"installed COCO backend ({backend.module} is not installed)",
            name,
            [b for b in BACKENDS if BACKENDS[b].available()],
        )
    return backend


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence stdout and stderr, at the Python and the file-descriptor level (C/Rust code prints too)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved: list[tuple[int, int]] = []
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            try:
                saved.append((fd, os.dup(fd)))
                os.dup2(devnull, fd)
            except OSError:  # no such descriptor (embedded interpreters): Python-level redirect only
                pass
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


def _copy_gt(gt: dict[str, Any]) -> dict[str, Any]:
    """pycocotools and faster-coco-eval write into annotations (``ignore``, masks): hand them copies."""
    out = dict(gt)
    out["annotations"] = [dict(a) for a in gt["annotations"]]
    out["images"] = [dict(i) for i in gt["images"]]
    out["categories"] = [dict(c) for c in gt["categories"]]
    return out


def run_cocoeval(ev: Any) -> RawEval:
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return RawEval(
        np.asarray(ev.stats, dtype=float),
        np.asarray(ev.eval["precision"], dtype=float),
        list(ev.params.catIds),
    )


def _run_pycocotools(gt: dict[str, Any], dt: list[dict[str, Any]], iou_type: str) -> RawEval:
    from pycocotools.coco import COCO  # noqa: PLC0415
    from pycocotools.cocoeval import COCOeval  # noqa: PLC0415

    coco_gt = COCO()
    coco_gt.dataset = _copy_gt(gt)
    coco_gt.createIndex()
    if dt:
        coco_dt = coco_gt.loadRes([dict(d) for d in dt])
    else:  # loadRes([]) fails (it reads anns[0]); an empty result set is legitimate: every AP is 0
        coco_dt = COCO()
        coco_dt.dataset = {
            "images": list(gt["images"]),
            "categories": list(gt["categories"]),
            "annotations": [],
        }
        coco_dt.createIndex()
    return run_cocoeval(COCOeval(coco_gt, coco_dt, iou_type))


def _run_faster(gt: dict[str, Any], dt: list[dict[str, Any]], iou_type: str) -> RawEval:
    from faster_coco_eval import COCO, COCOeval_faster  # noqa: PLC0415

    def silent(*args: Any, **kwargs: Any) -> None:
        return None

    coco_gt = COCO(_copy_gt(gt), print_function=silent)
    coco_dt = coco_gt.loadRes([dict(d) for d in dt])
    return run_cocoeval(COCOeval_faster(coco_gt, coco_dt, iou_type, print_function=silent))


def _hotcoco_dataset(gt: dict[str, Any]) -> dict[str, Any]:
    """What hotcoco's dict reader needs, no more: it types every image and category field it knows (an
    integer ``date_captured``, as datumaro writes it, or a text ``license`` is refused), and evaluation
    uses only the ids, the image sizes (polygons to masks) and the annotations."""
    return {
        "images": [{k: img[k] for k in ("id", "width", "height") if k in img} for img in gt["images"]],
        "categories": [
            {k: v for k, v in cat.items() if k == "id" or (k in ("name", "supercategory") and isinstance(v, str))}
            for cat in gt["categories"]
        ],
        "annotations": gt["annotations"],
    }


def _run_hotcoco(gt: dict[str, Any], dt: list[dict[str, Any]] | np.ndarray, iou_type: str) -> RawEval:
    import hotcoco  # noqa: PLC0415

    coco_gt = hotcoco.COCO(_hotcoco_dataset(gt))
    coco_dt = coco_gt.load_res(dt)
    return run_cocoeval(hotcoco.COCOeval(coco_gt, coco_dt, iou_type))


def _run_hotcoco_columns(gt: dict[str, Any], columns: Any, iou_type: str) -> RawEval:
    """Checked ``DetectionColumns`` (ids exact as floats; for ``segm`` compressed RLE with text counts) into
    hotcoco's ``load_res`` array, the masks beside it. A ``segm`` row's area is its box's (what ``load_res``
    and pycocotools' ``loadRes`` give a result with a box); without a box column, its mask's (as
    ``loadRes`` gives a result without one)."""
    import hotcoco  # noqa: PLC0415

    coco_gt = hotcoco.COCO(_hotcoco_dataset(gt))
    if not len(columns):
        coco_dt = coco_gt.load_res([])
    elif iou_type == "segm":
        coco_dt = coco_gt.load_res(columns.hotcoco_rows(), segmentation=columns.segmentation)
        if columns.bbox is not None:
            return run_cocoeval(hotcoco.COCOeval(coco_gt, coco_dt, iou_type))
        ids = np.asarray(coco_dt.get_ann_ids(), dtype=np.int64)
        if len(ids) != len(columns) or ids[0] != 1 or ids[-1] != len(columns):  # rows numbered 1..N
            raise RuntimeError(f"hotcoco numbered {len(ids)} result rows unexpectedly")
        area = np.asarray(_mask_areas(hotcoco, columns.segmentation), dtype=np.float64)
        coco_dt.update_anns(ids=np.arange(1, len(columns) + 1), area=area)
    else:
        coco_dt = coco_gt.load_res(columns.hotcoco_rows())
    return run_cocoeval(hotcoco.COCOeval(coco_gt, coco_dt, iou_type))


def _mask_areas(hotcoco: Any, rles: list[dict[str, Any]]) -> Any:
    """hotcoco's areas of the masks; counts it cannot decode raise a ``ValidationError`` naming the row."""
    try:
        return hotcoco.mask.area(rles)
    except ValueError:
        for i, rle in enumerate(rles):
            try:
                hotcoco.mask.area(rle)
            except ValueError as exc:
                raise ValidationError(
                    f"bad segmentation: {exc}", record=f"detection {i}", field="segmentation"
                ) from None
        raise


register_backend(Backend("pycocotools", "pycocotools", _run_pycocotools))
register_backend(Backend("faster-coco-eval", "faster_coco_eval", _run_faster))
register_backend(Backend("hotcoco", "hotcoco", _run_hotcoco, _run_hotcoco_columns))
