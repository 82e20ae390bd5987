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
appearance, or, when a ``label_config.xml`` (the project's labelling config) lies beside the export, the
``Label`` / ``Choice`` values it lists, in its order and with its ``background`` colours (a result naming a
label it does not list is then refused). A task whose ``data`` has a ``split`` of train / val / test (as the writer puts it) gets it.

Writing: ``OUT/tasks.json`` (one task per example, its image as ``/data/local-files/?d=images/<name>``,
so Label Studio finds it with ``LOCAL_FILES_DOCUMENT_ROOT=OUT``), ``OUT/images/`` and
``OUT/label_config.xml`` (the labelling config the results' ``from_name`` / ``to_name`` refer to). Boxes
-> ``rectanglelabels``, polygons -> ``polygonlabels`` (masks traced to polygons, lossy), class labels ->
``choices``; examples nobody annotated (status ``new``) are tasks without an annotation.
"""

from __future__ import annotations

import json
import math
import urllib.parse
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from xml.sax.saxutils import quoteattr

from ...errors import ImportFormatError
from ..records import KINDS_FOR_TYPE, SPLITS, Annotation, ClassDef, Example, ImportBatch, ImportItem
from ..task_types import REGION_TYPES as REGION_TASKS
from ..task_types import TaskType, region_type, type_info
from ._common import (
    as_number,
    as_str,
    check_exportable,
    check_type,
    class_index,
    export_images,
    load_json,
    make_annotation,
    make_classes,
    prepare_out,
    probe_path,
    write_file,
)
from ._fit import fit, report
from .paths import is_hidden, safe_join
from .rle import mask_to_polygons

__all__ = ["read", "write", "image_candidates", "TASKS"]

TASKS = "tasks.json"
CONFIG = "label_config.xml"

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


def _config_labels(config: Path) -> tuple[list[str], list[str | None]]:
    """Label / Choice values and background colours of a labelling config, in order (empty without one)."""
    if not config.is_file():
        return [], []
    from .voc import parse_xml

    names: list[str] = []
    colors: list[str | None] = []
    for el in parse_xml(config).iter():
        if el.tag in ("Label", "Choice") and el.get("value") and el.get("value") not in names:
            names.append(el.get("value"))
            colors.append(el.get("background") if str(el.get("background", "")).startswith("#") else None)
    return names, colors


def _export_file(src: Path) -> Path:
    if src.is_file():
        return src
    if not src.exists():
        raise ImportFormatError("not found", file=str(src))
    if (src / TASKS).is_file():
        return src / TASKS
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
    names, colors = _config_labels(path.parent / CONFIG)
    fixed = bool(names)
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
                    skipped[f"{ann.kind} wholly outside the image (clipped to nothing)"] += 1
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
                if fixed:
                    raise ImportFormatError(f"label {placed.label!r} is not in {CONFIG} ({', '.join(names)})",
                                            file=file, record=rrec, field="value")
                names.append(placed.label)
                colors.append(None)
            anns.append(placed)
        origin: dict[str, Any] = {"image": url}
        if isinstance(task.get("id"), (int, str)):
            origin["id"] = task["id"]
        if chosen is not None and isinstance(chosen.get("id"), (int, str)):
            origin["annotation_id"] = chosen["id"]
        split = task["data"].get("split")
        items.append(ImportItem(file_name=img.name, path=img, annotations=anns, source=f"label-studio:{rec}",
                                record=rec, status="new" if chosen is None else "annotated", origin=origin,
                                split=split if split in SPLITS else None))
    if regions and choices:
        raise ImportFormatError("the export mixes regions and choices; import them as two datasets", file=file,
                                field="type")
    dtype = TaskType.CLASSIFICATION if choices else region_type(
        masks=any(a.kind == "polygon" for it in items for a in it.annotations))
    batch = ImportBatch(items=items, classes=make_classes(names, colors, file=file), type=dtype,
                        source=f"label-studio:{path}")
    notes = [f"{rotated_boxes} rotated rectangles imported as polygons"] if rotated_boxes else []
    report(batch, skipped, clipped, notes)
    return batch


# ------------------------------------------------------------------------------------------------ write
_CONTROL = {"rectanglelabels": ("RectangleLabels", "label"), "polygonlabels": ("PolygonLabels", "polygon"),
            "choices": ("Choices", "choice")}


def _results(a: Annotation, W: int, H: int, n: int) -> list[dict[str, Any]]:
    base = {"to_name": "image", "original_width": W, "original_height": H, "image_rotation": 0,
            "origin": "manual"}
    if a.kind == "label":
        return [{"id": f"r{n}", "type": "choices", "from_name": "choice", "to_name": "image",
                 "value": {"choices": [a.label]}, "origin": "manual"}]
    if a.kind == "box":
        assert a.bbox is not None
        x, y, w, h = a.bbox
        return [{**base, "id": f"r{n}", "type": "rectanglelabels", "from_name": "label",
                 "value": {"x": x * 100 / W, "y": y * 100 / H, "width": w * 100 / W, "height": h * 100 / H,
                           "rotation": 0, "rectanglelabels": [a.label]}}]
    polys = a.polygons if a.polygons is not None else mask_to_polygons(a.mask or {})
    return [{**base, "id": f"r{n}-{k}", "type": "polygonlabels", "from_name": "polygon",
             "value": {"points": [[p[i] * 100 / W, p[i + 1] * 100 / H] for i in range(0, len(p), 2)],
                       "closed": True, "polygonlabels": [a.label]}} for k, p in enumerate(polys)]


def _config(classes: Sequence[ClassDef], dataset_type: str) -> str:
    kinds = ["choices"] if type_info(dataset_type).image_level else ["rectanglelabels", "polygonlabels"]
    lines = ["<View>", '  <Image name="image" value="$image"/>']
    for kind in kinds:
        tag, name = _CONTROL[kind]
        lines.append(f'  <{tag} name="{name}" toName="image">')
        child = "Choice" if tag == "Choices" else "Label"
        lines += [f"    <{child} value={quoteattr(c.name)} background={quoteattr(c.color)}/>" for c in classes]
        lines.append(f"  </{tag}>")
    return "\n".join([*lines, "</View>", ""])


def write(
    out: Path,
    examples: Sequence[Example],
    classes: Sequence[ClassDef],
    dataset_type: str,
    load_bytes: Callable[[str], bytes],
    *,
    overwrite: bool = False,
) -> list[Path]:
    """Write a Label Studio JSON export into ``out``; returns the files written (tasks.json first)."""
    check_type("label-studio", dataset_type, (*REGION_TASKS, TaskType.CLASSIFICATION))
    class_index(classes, examples)
    check_exportable(examples, KINDS_FOR_TYPE[dataset_type], f"a {dataset_type} dataset")
    out = prepare_out(out, overwrite=overwrite)
    written: list[Path] = []
    tasks = []
    given = {ex.id: ex.origin.get("id") for ex in examples}
    keep_ids = all(isinstance(v, int) and not isinstance(v, bool) for v in given.values()) and len(
        set(given.values())) == len(given)  # the source's task ids, while they are still unique
    for ex, name, path in export_images(out, examples, load_bytes, lambda ex: "images"):
        written.append(path)
        url = "/data/local-files/?d=" + urllib.parse.quote(f"images/{name}")
        results = [r for n, a in enumerate(ex.truth()) for r in _results(a, ex.width, ex.height, n)]
        annotated = ex.status != "new" or bool(results)
        tasks.append({"id": given[ex.id] if keep_ids else ex.id, "data": {"image": url, "split": ex.split},
                      "annotations": [{"id": ex.id, "result": results, "was_cancelled": False,
                                       "ground_truth": False}] if annotated else [],
                      "predictions": []})
    text = json.dumps(tasks, indent=1, ensure_ascii=False, allow_nan=False)
    return [write_file(out, TASKS, text + "\n"), write_file(out, CONFIG, _config(classes, dataset_type)),
            *written]
