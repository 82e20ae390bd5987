"""Label Studio JSON export (the "JSON" option: a list of tasks, each with ``data`` and ``annotations``).

Reading: ``src`` is the export file (or a folder holding exactly one ``.json``). Images are looked up
under ``images_dir`` (default: the export file's folder), never outside it. A task's image is
``data["image"]`` (or the task's only string value); Label Studio's URL forms map to files as it maps
them itself: ``/data/local-files/?d=<path>`` (path under the local-files document root),
``/data/upload/<project>/<file>``, a plain relative path, or an ``http(s)://`` / ``s3://`` / ``gs://``
URL (never downloaded). The path is tried whole under ``images_dir``, then with leading folders dropped one
at a time (so ``--images`` may point at the document root or at the image folder itself); the first file
found wins, else the task is refused (``skip_missing``: left out and counted).

A task's annotation is the one marked ``ground_truth``, else its last one not cancelled; the others, the
cancelled ones and ``predictions`` are left out and counted. Results: ``rectanglelabels`` -> box (a
rotated rectangle becomes its polygon), ``polygonlabels`` -> polygon, coordinates in percent of the image
size (read from the image itself); ``choices`` -> a class label (a classification dataset when no task
has regions). Other result types (brush, keypoints, text...) are refused, or left out and counted with
``skip_unsupported``. A task without an annotation imports as status ``new``. Classes in order of first
appearance.
"""

from __future__ import annotations

import math
import urllib.parse
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any

from ...errors import ImportFormatError
from ..records import Annotation, ImportBatch, ImportItem
from ._common import as_number, as_str, load_json, make_annotation, make_classes, probe_path
from ._fit import fit, report
from .paths import is_hidden, safe_join

__all__ = ["read", "image_candidates"]

REGION_TYPES = ("rectanglelabels", "polygonlabels")
REMOTE = ("http://", "https://", "s3://", "gs://", "azure-blob://")


def image_candidates(url: str) -> list[str]:
    """Relative paths to try, longest first, for a task's image URL."""
    if url.startswith("/data/") and "?d=" in url:  # /data/local-files/?d=dir/x.jpg
        rel = urllib.parse.unquote(url.split("?d=", 1)[1])
    elif url.startswith("/data/upload/"):
        rel = urllib.parse.unquote(url[len("/data/upload/"):])
    elif url.startswith(REMOTE):
        rel = urllib.parse.unquote(urllib.parse.urlparse(url).path)
    else:
        rel = urllib.parse.unquote(url)
    parts = [p for p in PurePosixPath(rel.replace("\\", "/")).parts if p not in ("/", "")]
    return ["/".join(parts[i:]) for i in range(len(parts))]


def _image_url(task: dict, *, file: str, rec: str) -> str:
    data = task.get("data")
    if not isinstance(data, dict):
        raise ImportFormatError("expected an object", file=file, record=rec, field="data")
    if "image" in data:
        return as_str(data["image"], file=file, record=rec, field="data.image")
    strings = [k for k, v in data.items() if isinstance(v, str)]
    if len(strings) != 1:
        raise ImportFormatError(
            f"no data.image and {len(strings)} text fields ({', '.join(strings) or 'none'}): which is the image?",
            file=file, record=rec, field="data")
    return as_str(data[strings[0]], file=file, record=rec, field=f"data.{strings[0]}")


def _find_image(url: str, root: Path, *, file: str, rec: str) -> Path | None:
    for rel in image_candidates(url):
        p = safe_join(root, rel, file=file, record=rec, field="data.image")
        if p.is_file():
            return p
    return None


def _pick(task: dict, *, file: str, rec: str, skipped: Counter[str]) -> dict | None:
    anns = task.get("annotations", [])
    if not isinstance(anns, list) or not all(isinstance(a, dict) for a in anns):
        raise ImportFormatError("expected a list of objects", file=file, record=rec, field="annotations")
    live = [a for a in anns if not a.get("was_cancelled")]
    if len(live) < len(anns):
        skipped["cancelled annotation"] += len(anns) - len(live)
    preds = task.get("predictions") or []
    if isinstance(preds, list) and preds:
        skipped["prediction (not imported)"] += len(preds)
    if not live:
        return None
    gt = [a for a in live if a.get("ground_truth")]
    chosen = gt[-1] if gt else live[-1]
    if len(live) > 1:
        skipped["second annotation of a task (the ground truth, else the last, is imported)"] += len(live) - 1
    return chosen


def _one_label(value: dict, key: str, *, file: str, rec: str) -> str:
    labels = value.get(key)
    if not isinstance(labels, list) or len(labels) != 1:
        raise ImportFormatError(f"expected exactly one label, got {labels!r:.80}", file=file, record=rec,
                                field=f"value.{key}")
    return as_str(labels[0], file=file, record=rec, field=f"value.{key}")


def _region(r: dict, kind: str, W: int, H: int, *, file: str, rec: str) -> tuple[Annotation, bool]:
    value = r.get("value")
    if not isinstance(value, dict):
        raise ImportFormatError("expected an object", file=file, record=rec, field="value")
    label = _one_label(value, kind, file=file, rec=rec)

    def num(key: str) -> float:
        return as_number(value.get(key), file=file, record=rec, field=f"value.{key}")

    if kind == "rectanglelabels":
        x, y, w, h = num("x") * W / 100, num("y") * H / 100, num("width") * W / 100, num("height") * H / 100
        rot = as_number(value.get("rotation", 0) or 0, file=file, record=rec, field="value.rotation")
        if rot % 360 == 0:
            return make_annotation(file=file, record=rec, kind="box", label=label, bbox=(x, y, w, h)), False
        t = math.radians(rot)  # clockwise in image coordinates, around the top-left corner
        c, s = math.cos(t), math.sin(t)
        pts = [(x + dx * c - dy * s, y + dx * s + dy * c) for dx, dy in ((0, 0), (w, 0), (w, h), (0, h))]
        poly = tuple(v for p in pts for v in p)
        return make_annotation(file=file, record=rec, kind="polygon", label=label, polygons=(poly,)), True
    raw = value.get("points")
    if not isinstance(raw, list):
        raise ImportFormatError("expected a list of [x, y] points", file=file, record=rec, field="value.points")
    flat: list[float] = []
    for i, p in enumerate(raw):
        if not isinstance(p, list) or len(p) != 2:
            raise ImportFormatError(f"point {i} is not [x, y]: {p!r:.60}", file=file, record=rec,
                                    field="value.points")
        flat += [as_number(p[0], file=file, record=rec, field="value.points") * W / 100,
                 as_number(p[1], file=file, record=rec, field="value.points") * H / 100]
    return make_annotation(file=file, record=rec, kind="polygon", label=label, polygons=(tuple(flat),)), False


def _export_file(src: Path) -> Path:
    if src.is_file():
        return src
    if not src.exists():
        raise ImportFormatError("not found", file=str(src))
    found = sorted(p for p in src.glob("*.json") if not is_hidden(p.name))
    if len(found) != 1:
        raise ImportFormatError(f"expected one Label Studio .json export in the folder, found {len(found)}",
                                file=str(src))
    return found[0]


def read(src: Path, *, images_dir: Path | None = None, clip_boxes: bool = False, skip_missing: bool = False,
         skip_unsupported: bool = False) -> ImportBatch:
    """Read a Label Studio JSON export; see the module doc. Raises on the first problem found."""
    path = _export_file(Path(src))
    file = str(path)
    root = Path(images_dir).resolve() if images_dir is not None else path.parent.resolve()
    if not root.is_dir():
        raise ImportFormatError("image folder not found", file=str(images_dir))
    tasks = load_json(path)
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise ImportFormatError(f"expected a list of tasks, got {type(tasks).__name__}", file=file)
    skipped: Counter[str] = Counter()
    clipped: Counter[str] = Counter()
    names: list[str] = []
    items: list[ImportItem] = []
    regions = choices = rotated_boxes = 0
    for t, task in enumerate(tasks):
        if not isinstance(task, dict):
            raise ImportFormatError(f"expected an object, got {type(task).__name__}", file=file, record=f"task {t}")
        rec = f"task {task.get('id', t)}"
        url = _image_url(task, file=file, rec=rec)
        img = _find_image(url, root, file=file, rec=rec)
        if img is None and isinstance(task.get("file_upload"), str):
            img = _find_image(task["file_upload"], root, file=file, rec=rec)
        if img is None:
            if skip_missing:
                skipped["task whose image is not found (--skip-missing)"] += 1
                continue
            where = "a remote URL, never downloaded; " if url.startswith(REMOTE) else ""
            raise ImportFormatError(
                f"image {url!r} not found under {root} ({where}--images names the folder holding the images; "
                "--skip-missing leaves such tasks out)", file=file, record=rec, field="data.image")
        info = probe_path(img, record=rec)
        chosen = _pick(task, file=file, rec=rec, skipped=skipped)
        anns: list[Annotation] = []
        results = [] if chosen is None else chosen.get("result", [])
        if not isinstance(results, list):
            raise ImportFormatError("expected a list", file=file, record=rec, field="result")
        for i, r in enumerate(results):
            rrec = f"{rec} result {r.get('id', i) if isinstance(r, dict) else i}"
            if not isinstance(r, dict):
                raise ImportFormatError("expected an object", file=file, record=rrec)
            kind = r.get("type")
            if kind in REGION_TYPES:
                ann, rotated = _region(r, kind, info.width, info.height, file=file, rec=rrec)
                rotated_boxes += rotated
                placed, was_clipped = fit(ann, info, clip=clip_boxes, file=file, record=rrec)
                if was_clipped:
                    clipped[f"{ann.kind} outside the image"] += 1
                if placed is None:
                    continue
                regions += 1
            elif kind == "choices":
                value = r.get("value")
                if not isinstance(value, dict):
                    raise ImportFormatError("expected an object", file=file, record=rrec, field="value")
                placed = make_annotation(file=file, record=rrec, kind="label",
                                         label=_one_label(value, "choices", file=file, rec=rrec))
                choices += 1
            elif skip_unsupported:
                skipped[f"{kind} result (not supported; --skip-unsupported)"] += 1
                continue
            else:
                raise ImportFormatError(
                    f"result type {kind!r} is not supported (only {', '.join(REGION_TYPES)}, choices; "
                    "--skip-unsupported leaves such results out and counts them)", file=file, record=rrec,
                    field="type")
            if placed.label not in names:
                names.append(placed.label)
            anns.append(placed)
        origin: dict[str, Any] = {"image": url}
        if isinstance(task.get("id"), (int, str)):
            origin["id"] = task["id"]
        if chosen is not None and isinstance(chosen.get("id"), (int, str)):
            origin["annotation_id"] = chosen["id"]
        items.append(ImportItem(file_name=img.name, path=img, annotations=anns, source=f"label-studio:{rec}",
                                record=rec, status="new" if chosen is None else "annotated", origin=origin))
    if regions and choices:
        raise ImportFormatError("the export mixes regions and choices; import them as two datasets", file=file,
                                field="type")
    dtype = "classification" if choices else (
        "segmentation" if any(a.kind == "polygon" for it in items for a in it.annotations) else "detection")
    batch = ImportBatch(items=items, classes=make_classes(names, file=file), type=dtype,
                        source=f"label-studio:{path}")
    notes = [f"{rotated_boxes} rotated rectangles imported as polygons"] if rotated_boxes else []
    report(batch, skipped, clipped, notes)
    return batch
