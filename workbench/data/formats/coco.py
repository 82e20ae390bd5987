"""COCO: one annotation JSON (``images``, ``annotations``, ``categories``) beside an image folder.

Reading: ``src`` is the JSON file (or a folder holding ``annotations.json``). Image ``file_name`` s resolve
against ``images_dir=`` when given, else against the JSON's folder and then its ``images/`` subfolder; for
``<root>/annotations/instances_<split>.json`` (the layout datumaro, mmdetection and detectron2 use) also
against ``<root>/images/<split>/``, ``<root>/images/`` and ``<root>/<split>/``.
Boxes are COCO ``[x, y, w, h]`` pixels, the same as our records. ``segmentation`` may be polygons, an
uncompressed RLE (``counts`` a list) or a compressed RLE (``counts`` a string); RLE becomes a ``mask``
annotation with canonical uncompressed counts. ``iscrowd`` must be 0 or 1; crowd regions are kept with
``Annotation.iscrowd`` set (not trained on, matched as crowd in evaluation) unless ``crowd="skip"``. An
optional per-image ``split`` and per-category ``color`` are read when present. Everything else the file
says is kept (attributes, keypoints, extra fields, original image / category ids, file names with their
sub-folders, info / licenses): see ``coco_fields``. The import report counts what only attributes keep.
The dataset type is segmentation when any annotation has a segmentation.

Writing: ``OUT/annotations.json`` + ``OUT/images/<file_name>``; with ``per_split=True``
``OUT/annotations/instances_<split>.json`` + ``OUT/images/<split>/<file_name>`` for each split that has
examples. Category and image ids are the source's integer ids when still unique (else 1-based class positions and
example ids); file names are the source's (sub-folders kept) when still unique; categories carry
``color``, images ``split``. Polygons are written as segmentation lists, masks as compressed RLE strings
(pycocotools' encoding), boxes without segmentation; ``iscrowd`` is the annotation's crowd flag and
``area`` the geometry's area; attributes, keypoints and extra fields go back where they came from. Only
truth annotations (not model proposals) go out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ...errors import ImportFormatError, ValidationError
from ..images import ImageInfo
from ..import_report import ImportReport
from ..records import (
    KINDS_FOR_TYPE,
    SPLITS,
    Annotation,
    ClassDef,
    Example,
    ImportBatch,
    ImportItem,
    validate_color,
)
from . import coco_fields as kept
from ._common import (
    MAX_JSON_BYTES,
    BackgroundCheck,
    DeferredChecks,
    as_id,
    as_int,
    as_number,
    as_str,
    check_exportable,
    check_type,
    class_index,
    deferring,
    field_of,
    load_json,
    make_annotation,
    make_classes,
    place,
    prepare_out,
    write_file,
)
from .coco_convert import annotation_json
from .paths import ImageFinder
from .rle import canonical_counts, decode_counts_string

__all__ = ["read", "write", "ANNOTATIONS_FILE"]

ANNOTATIONS_FILE = "annotations.json"
_CROWD_MODES = ("keep", "skip")


def _list(data: dict[str, Any], key: str, file: str, *, required: bool = True) -> list[Any]:
    v = data.get(key, None if required else [])
    if v is None:
        raise ImportFormatError("missing required top-level field", file=file, record="top level", field=key)
    if not isinstance(v, list):
        raise ImportFormatError(
            f"expected a list, got {type(v).__name__}", file=file, record="top level", field=key
        )
    return v


def _categories(cats: list[Any], file: str) -> tuple[dict[int | str, str], list[ClassDef]]:
    by_id: dict[int | str, str] = {}
    names: list[str] = []
    colors: list[str | None] = []
    for i, c in enumerate(cats):
        rec = f"category {c.get('id', '#' + str(i))}" if isinstance(c, dict) else f"category #{i}"
        cid = as_id(field_of(c, "id", file=file, record=rec), file=file, record=rec, field="id")
        if cid in by_id:
            raise ImportFormatError("duplicate category id", file=file, record=rec, field="id")
        name = as_str(field_of(c, "name", file=file, record=rec), file=file, record=rec, field="name")
        if name in names:
            raise ImportFormatError(
                f"category name {name!r} is used twice", file=file, record=rec, field="name"
            )
        color = c.get("color")
        if color is not None:
            if not isinstance(color, str):
                raise ImportFormatError(
                    f"expected a #rrggbb string, got {color!r}", file=file, record=rec, field="color"
                )
            try:
                color = validate_color(color)
            except ValidationError as e:
                raise ImportFormatError(e.detail, file=file, record=rec, field="color") from None
        by_id[cid] = name
        names.append(name)
        colors.append(color)
    ids = list(by_id)
    classes = make_classes(names, colors, file=file, record_of=lambda i: f"category {ids[i]}")
    classes = [ClassDef(c.name, c.color, origin=kept.category_origin(raw, cid))
               for c, raw, cid in zip(classes, cats, ids, strict=True)]
    return by_id, classes


def _segmentation(seg: Any, image_size: tuple[int, int], *, file: str, rec: str) -> dict[str, Any]:
    """COCO segmentation -> {"polygons": ...} or {"mask": ...} or {} (none)."""
    if seg is None or seg == [] or seg == {}:
        return {}
    if isinstance(seg, list):
        polys = []
        for p in seg:
            if not isinstance(p, list):
                raise ImportFormatError(
                    f"polygon must be a list of numbers, got {p!r:.40}",
                    file=file,
                    record=rec,
                    field="segmentation",
                )
            polys.append(tuple(as_number(v, file=file, record=rec, field="segmentation") for v in p))
        return {"polygons": tuple(polys)}
    if isinstance(seg, dict):
        size = field_of(seg, "size", file=file, record=rec)
        counts = field_of(seg, "counts", file=file, record=rec)
        if (
            not isinstance(size, list)
            or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
        ):
            raise ImportFormatError(
                f"RLE size must be [height, width], got {size!r}",
                file=file,
                record=rec,
                field="segmentation.size",
            )
        h, w = image_size
        if list(size) != [h, w]:
            raise ImportFormatError(
                f"RLE size {size} does not match the image ({h}x{w})",
                file=file,
                record=rec,
                field="segmentation.size",
            )
        if isinstance(counts, str):
            try:
                out = decode_counts_string(counts, size)
            except ValidationError as e:
                raise ImportFormatError(
                    e.detail, file=file, record=rec, field="segmentation.counts"
                ) from None
        elif isinstance(counts, list):
            for c in counts:
                if isinstance(c, bool) or not isinstance(c, int) or c < 0:
                    raise ImportFormatError(
                        f"RLE counts must be non-negative integers, got {c!r}",
                        file=file,
                        record=rec,
                        field="segmentation.counts",
                    )
            if sum(counts) != h * w:
                raise ImportFormatError(
                    f"RLE counts sum to {sum(counts)}, expected h*w = {h * w}",
                    file=file,
                    record=rec,
                    field="segmentation.counts",
                )
            out = canonical_counts(counts)
        else:
            raise ImportFormatError(
                f"RLE counts must be a string or a list, got {type(counts).__name__}",
                file=file,
                record=rec,
                field="segmentation.counts",
            )
        return {"mask": {"size": [h, w], "counts": out}}
    raise ImportFormatError(
        f"segmentation must be a polygon list or an RLE object, got {type(seg).__name__}",
        file=file,
        record=rec,
        field="segmentation",
    )


_PLAIN_KEYS = frozenset({"id", "image_id", "category_id", "segmentation", "area", "bbox", "iscrowd"})
_NUMBER = (int, float)


def _check_sizes(items: Sequence[ImportItem], sizes: dict[int | str, tuple[int, int]],
                 where: dict[str, tuple[str, object]], file: str) -> None:
    """Every image's decoded size is the size its record declares (``item.record``: its image id)."""
    for item in items:
        info = item.checked
        assert info is not None and item.record is not None
        h, w = sizes[item.record]  # type: ignore[index]
        if (info.width, info.height) != (w, h):
            raise ImportFormatError(
                f"declares {w}x{h} but the image file is {info.width}x{info.height}",
                file=file,
                record=where[str(item.path)][1],
                field="width" if info.width != w else "height",
            )


def _read_annotations(annotations: list[Any], items: dict[int | str, ImportItem | None],
                      infos: dict[int | str, ImageInfo], sizes: dict[int | str, tuple[int, int]],
                      cat_names: dict[int | str, str], file: str, report: ImportReport, *, clip_boxes: bool,
                      crowd: str) -> tuple[int, bool, set[str]]:
    """Check every annotation and place it on its item (against the sizes the records declare); returns
    (crowd regions kept, any segmentation, the attribute names kept)."""
    seen_ann: set[int | str] = set()
    has_segmentation = False
    n_crowd = 0
    names_seen: set[str] = set()
    # The plain box (integer ids, a finite [x, y, w, h] inside its image, nothing else) is checked inline, in a
    # few comparisons written out here (a function call per annotation cost a third of the reading); anything
    # else goes the checked way below, which makes the same annotation or the error.
    plain_keys, number, isfinite, make_box = _PLAIN_KEYS, _NUMBER, math.isfinite, Annotation.checked_box
    skip_crowd = crowd == "skip"
    sizes_of = {iid: (float(info.width) + 0.5, float(info.height) + 0.5) for iid, info in infos.items()}
    for j, a in enumerate(annotations):
        annotations[j] = None  # the parsed record goes as its annotation is made: memory holds one of the two
        if not clip_boxes and type(a) is dict and a.keys() <= plain_keys:
            aid, image_id, cat = a.get("id"), a.get("image_id"), a.get("category_id")
            bbox = a.get("bbox")
            iscrowd = a.get("iscrowd", 0)
            area = a.get("area", 0.0)
            seg = a.get("segmentation")
            if (type(aid) is int and type(image_id) is int and type(cat) is int and aid not in seen_ann
                    and type(bbox) is list and len(bbox) == 4 and type(iscrowd) is int and (iscrowd == 0 or (
                        iscrowd == 1 and not skip_crowd)) and (seg is None or seg == [] or seg == {})
                    and (area is None or type(area) in number)):
                item = items.get(image_id)
                label = cat_names.get(cat)
                x, y, w, h = bbox
                if (item is not None and label is not None and type(x) in number and type(y) in number
                        and type(w) in number and type(h) in number):
                    try:
                        x, y, w, h = float(x), float(y), float(w), float(h)
                        finite = isfinite(x) and isfinite(y) and isfinite(w) and isfinite(h) and (
                            area is None or isfinite(float(area)))
                    except OverflowError:
                        finite = False
                    if finite and w > 0 and h > 0 and x >= -0.5 and y >= -0.5:
                        right, bottom = sizes_of[image_id]  # Annotation.check_inside's tolerance, 0.5
                        if x + w <= right and y + h <= bottom:
                            seen_ann.add(aid)
                            if iscrowd:
                                n_crowd += 1
                            item.annotations.append(
                                make_box(label, (x, y, w, h), iscrowd=iscrowd == 1, source_id=aid))
                            continue
        rec = f"annotation {a.get('id', '#' + str(j))}" if isinstance(a, dict) else f"annotation #{j}"
        aid = as_id(field_of(a, "id", file=file, record=rec), file=file, record=rec, field="id")
        if aid in seen_ann:
            raise ImportFormatError("duplicate annotation id", file=file, record=rec, field="id")
        seen_ann.add(aid)
        image_id = as_id(
            field_of(a, "image_id", file=file, record=rec), file=file, record=rec, field="image_id"
        )
        if image_id not in items:
            raise ImportFormatError(f"unknown image id {image_id!r}", file=file, record=rec, field="image_id")
        cat = as_id(
            field_of(a, "category_id", file=file, record=rec), file=file, record=rec, field="category_id"
        )
        if cat not in cat_names:
            raise ImportFormatError(
                f"unknown category id {cat!r}", file=file, record=rec, field="category_id"
            )
        iscrowd = a.get("iscrowd", 0)
        if isinstance(iscrowd, bool) or iscrowd not in (0, 1):
            raise ImportFormatError(
                f"iscrowd must be 0 or 1, got {iscrowd!r}", file=file, record=rec, field="iscrowd"
            )
        if a.get("area") is not None:
            as_number(a["area"], file=file, record=rec, field="area")
        bbox = a.get("bbox")
        if bbox is not None:
            if not isinstance(bbox, list) or len(bbox) != 4:
                raise ImportFormatError(
                    f"bbox must be [x, y, width, height], got {bbox!r:.60}",
                    file=file,
                    record=rec,
                    field="bbox",
                )
            bbox = tuple(as_number(v, file=file, record=rec, field="bbox") for v in bbox)
            if bbox[2] <= 0 or bbox[3] <= 0:
                raise ImportFormatError(
                    f"bbox has a non-positive width or height {list(bbox)}",
                    file=file,
                    record=rec,
                    field="bbox",
                )
        geometry = _segmentation(a.get("segmentation"), sizes[image_id], file=file, rec=rec)
        if not geometry and bbox is None:
            raise ImportFormatError(
                "annotation has neither bbox nor segmentation", file=file, record=rec, field="bbox"
            )
        has_segmentation = has_segmentation or bool(geometry)
        kind = "polygon" if "polygons" in geometry else "mask" if "mask" in geometry else "box"
        item = items[image_id]
        if item is None:
            report.skip("annotation of an image file not found (--skip-missing)")
            continue
        if iscrowd and crowd == "skip":
            report.skip("COCO crowd region (crowd='skip')")
            continue
        attributes = kept.annotation_attributes(a, file=file, record=rec, report=report)
        ann = make_annotation(file=file, record=rec, kind=kind, label=cat_names[cat], bbox=bbox, **geometry,
                              iscrowd=bool(iscrowd), attributes=attributes, source_id=aid)
        placed = place(ann, infos[image_id], clip=clip_boxes, file=file, record=rec)
        if placed is None:
            report.skip("box entirely outside its image (--clip-boxes)")
            continue
        if placed.bbox != ann.bbox:
            report.clip("box outside its image (--clip-boxes)")
        if placed.iscrowd:
            n_crowd += 1
        if placed.attributes:
            names_seen.update(k for k in placed.attributes if k not in kept.KEYPOINT_FIELDS
                              and not k.startswith(kept.EXTRA_PREFIX))
        item.annotations.append(placed)

    return n_crowd, has_segmentation, names_seen


def read(
    src: Path,
    *,
    images_dir: Path | str | None = None,
    clip_boxes: bool = False,
    skip_missing: bool = False,
    crowd: str = "keep",
    max_json_bytes: int = MAX_JSON_BYTES,
) -> ImportBatch:
    """Read a COCO annotation file; see the module doc. Raises on the first problem found."""
    src = Path(src)
    if src.is_dir():
        src = src / ANNOTATIONS_FILE
    if crowd not in _CROWD_MODES:
        raise ValidationError(f"crowd must be one of {', '.join(_CROWD_MODES)}, got {crowd!r}", field="crowd")
    file = str(src)
    data = load_json(src, max_bytes=max_json_bytes)
    if not isinstance(data, dict):
        raise ImportFormatError(f"top level must be an object, got {type(data).__name__}", file=file)
    images = _list(data, "images", file)
    categories = _list(data, "categories", file)
    annotations = _list(data, "annotations", file, required=False)
    cat_names, classes = _categories(categories, file)
    roots = [Path(images_dir)] if images_dir is not None else _image_roots(src)
    report = ImportReport()

    items: dict[int | str, ImportItem | None] = {}
    infos: dict[int | str, ImageInfo] = {}
    sizes: dict[int | str, tuple[int, int]] = {}
    seen_files: dict[str, int | str] = {}
    where: dict[str, tuple[str, object]] = {}
    finder = ImageFinder(roots)
    for i, im in enumerate(images):
        rec = f"image {im.get('id', '#' + str(i))}" if isinstance(im, dict) else f"image #{i}"
        iid = as_id(field_of(im, "id", file=file, record=rec), file=file, record=rec, field="id")
        if iid in items:
            raise ImportFormatError("duplicate image id", file=file, record=rec, field="id")
        rel = as_str(
            field_of(im, "file_name", file=file, record=rec), file=file, record=rec, field="file_name"
        )
        if rel in seen_files:
            raise ImportFormatError(
                f"file_name {rel!r} is also used by image {seen_files[rel]}",
                file=file,
                record=rec,
                field="file_name",
            )
        seen_files[rel] = iid
        w = as_int(
            field_of(im, "width", file=file, record=rec), file=file, record=rec, field="width", minimum=1
        )
        h = as_int(
            field_of(im, "height", file=file, record=rec), file=file, record=rec, field="height", minimum=1
        )
        split = im.get("split")
        if split is not None and split not in SPLITS:
            raise ImportFormatError(
                f"unknown split {split!r}; valid: {', '.join(SPLITS)}", file=file, record=rec, field="split"
            )
        sizes[iid] = (h, w)
        path = finder.find(rel, file=file, record=rec)
        if path is None:
            if skip_missing:
                items[iid] = None
                continue
            looked = " or ".join(str(r) for r in roots)
            raise ImportFormatError(
                f"image file {rel!r} not found in {looked} (--skip-missing skips it)",
                file=file,
                record=rec,
                field="file_name",
            )
        where[str(path)] = (str(path), rec)  # image errors name the image file, as probing it did
        infos[iid] = ImageInfo(w, h, "")  # the declared size: the decoded one is compared with it
        items[iid] = ImportItem(
            file_name=_base_name(rel),
            path=path,
            split=split,
            source=f"coco:{rel}",
            record=iid,
            origin=kept.image_origin(im, iid, rel),
        )
    # one decode per image, on all cores, while the annotations are read against the declared sizes; the
    # errors come in the order they did when the images were checked first: image, size, annotation
    items_kept = [it for it in items.values() if it is not None]
    checking = BackgroundCheck(items_kept, where)
    try:
        n_crowd, has_segmentation, names_seen = _read_annotations(
            annotations, items, infos, sizes, cat_names, file, report, clip_boxes=clip_boxes, crowd=crowd)
    except Exception:
        checking.join()
        _check_sizes(items_kept, sizes, where, file)
        raise
    except BaseException:
        checking.stop()
        raise
    checks = None
    if deferring():  # the import writes rows while the checks run; it raises what they find, as here
        checks = DeferredChecks(items_kept, checking, lambda part: _check_sizes(part, sizes, where, file))
    else:
        checking.join()
        _check_sizes(items_kept, sizes, where, file)

    n_missing = len(items) - len(items_kept)
    if n_missing:
        report.skip("image file not found (--skip-missing)", n_missing)
    if n_crowd:
        report.note(f"{n_crowd} crowd regions kept as crowd (iscrowd): not trained on as objects, "
                    "matched as crowd in evaluation")
    if names_seen:
        report.note(f"annotation attributes kept: {', '.join(sorted(names_seen))}")
    dataset_type = "segmentation" if has_segmentation else "detection"
    return ImportBatch(items=items_kept, classes=classes, type=dataset_type, source=f"coco:{src}",
                       info=kept.file_info(data), report=report, checks=checks)


def _base_name(rel: str) -> str:
    """The file name of a COCO ``file_name`` (``/`` or ``\\`` separated), as ``Path(...).name`` gives it
    (a string split: 20,000 Path objects were a tenth of a second)."""
    flat = rel.replace("\\", "/")
    name = flat.rpartition("/")[2]
    return name if name not in ("", ".", "..") else Path(flat).name


def _image_roots(src: Path) -> list[Path]:
    roots = [src.parent, src.parent / "images"]
    if src.parent.name == "annotations":  # <root>/annotations/instances_<split>.json
        root = src.parent.parent
        split = src.stem.rsplit("_", 1)[1] if "_" in src.stem else ""
        if split:
            roots += [root / "images" / split]
        roots += [root / "images"]
        if split:
            roots += [root / split]
    return roots


def _ann_json(a: Annotation, ann_id: int, image_id: Any, category_id: Any) -> dict[str, Any]:
    top, inner = kept.annotation_fields(a.attributes)
    d: dict[str, Any] = {**top, **annotation_json(a, ann_id=ann_id, image_id=image_id, category_id=category_id)}
    if inner:
        d["attributes"] = inner
    return d


def _document(source_info: dict[str, Any] | None, images: list[dict[str, Any]], anns: list[dict[str, Any]],
              categories: list[dict[str, Any]]) -> dict[str, Any]:
    extra = (source_info or {}).get("coco")
    extra = {k: v for k, v in extra.items() if k not in kept.TOP_FIELDS} if isinstance(extra, dict) else {}
    return {
        "info": extra.pop("info", {"description": "exported by workbench", "version": "1.0"}),
        "licenses": extra.pop("licenses", []),
        **extra,
        "images": images,
        "annotations": anns,
        "categories": categories,
    }


def write(
    out: Path,
    examples: Sequence[Example],
    classes: Sequence[ClassDef],
    dataset_type: str,
    load_bytes: Callable[[str], bytes],
    *,
    overwrite: bool = False,
    indent: int | None = None,
    per_split: bool = False,
    source_info: dict[str, Any] | None = None,
) -> list[Path]:
    """Write a COCO dataset into ``out``; returns the files written (annotation files first).

    ``per_split``: ``annotations/instances_<split>.json`` + ``images/<split>/`` per split with examples.
    ``source_info``: the dataset's ``source_info`` (COCO ``info`` / ``licenses`` written back)."""
    check_type("coco", dataset_type, ("detection", "segmentation"))
    index = class_index(classes, examples)
    check_exportable(examples, KINDS_FOR_TYPE[dataset_type], f"a {dataset_type} dataset")
    out = prepare_out(out, overwrite=overwrite)
    ordered = sorted(examples, key=lambda e: e.id)
    image_id = dict(zip((ex.id for ex in ordered), kept.image_ids(ordered), strict=True))
    cat_ids = kept.category_ids(classes)
    images: dict[str, list[dict[str, Any]]] = {s: [] for s in (*SPLITS, "all")}
    anns: dict[str, list[dict[str, Any]]] = {s: [] for s in (*SPLITS, "all")}
    written: list[Path] = []
    n_ann = 0
    source_ids: dict[str, list[Any]] = {s: [] for s in (*SPLITS, "all")}

    def folder(ex: Example) -> str:
        return f"images/{ex.split}" if per_split else "images"

    for ex, name, path in kept.export_images_keeping_names(out, ordered, load_bytes, folder):
        written.append(path)
        im = {**kept.image_fields(ex), "id": image_id[ex.id], "file_name": name, "width": ex.width,
              "height": ex.height, "split": ex.split}
        images[ex.split].append(im)
        images["all"].append(im)
        for a in ex.truth():
            n_ann += 1
            aj = _ann_json(a, n_ann, image_id[ex.id], cat_ids[index[a.label]])
            anns[ex.split].append(aj)
            anns["all"].append(aj)
            source_ids[ex.split].append(a.source_id)
            source_ids["all"].append(a.source_id)
    for group in SPLITS if per_split else ("all",):  # annotation ids unique within each file written
        for aj, aid in zip(anns[group], kept.annotation_ids(source_ids[group]), strict=True):
            aj["id"] = aid
    categories = [
        {**kept.category_fields(c), "id": cat_ids[i], "name": c.name, "color": c.color}
        for i, c in enumerate(classes)
    ]

    def text(split_images: list[dict[str, Any]], split_anns: list[dict[str, Any]]) -> str:
        doc = _document(source_info, split_images, split_anns, categories)
        return json.dumps(doc, indent=indent, ensure_ascii=False, allow_nan=False) + "\n"

    if not per_split:
        return [write_file(out, ANNOTATIONS_FILE, text(images["all"], anns["all"])), *written]
    files = [write_file(out, f"annotations/instances_{s}.json", text(images[s], anns[s]))
             for s in SPLITS if images[s]]
    return [*files, *written]

