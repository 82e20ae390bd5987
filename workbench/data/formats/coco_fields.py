"""What a COCO file says beyond geometry and class, mapped onto our records and back, so that an import
followed by an export writes it again.

- Annotation: ``iscrowd`` becomes ``Annotation.iscrowd``. The entries of an ``attributes`` object (CVAT's and
  datumaro's COCO exports: ``occluded``, ``rotation``, ``track_id``...) become the annotation's attributes
  under their own names. ``keypoints`` / ``num_keypoints`` are kept as attributes of those names (Workbench
  has no keypoint annotations). The annotation's id becomes ``Annotation.source_id``, reused on export while
  unique in its file. Any other field is kept as ``coco.<field>``. On export the first go back into
  ``attributes``, the others back to the annotation's top level.
- Image: ``origin`` = ``{"id": <image id>, "file_name": <file_name as written, sub-folders and all>}`` plus
  ``"coco": {<every other field: license, coco_url, date_captured...>}``. The id and file name are reused on
  export while still unique; the other fields are written back.
- Category: ``ClassDef.origin`` = ``{"id": <category id>, "supercategory": ...}`` plus ``"coco": {<other
  fields: keypoints, skeleton...>}``; ids reused on export while unique.
- File: ``ImportBatch.info`` = ``{"coco": {"info": ..., "licenses": ..., <other top-level fields>}}``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from ...errors import ImportFormatError, ValidationError
from ..images import probe_image
from ..import_report import ImportReport
from ..records import ClassDef, Example
from ._common import clean_name, write_file

__all__ = [
    "annotation_attributes",
    "annotation_fields",
    "image_origin",
    "image_fields",
    "category_origin",
    "category_fields",
    "file_info",
    "image_ids",
    "category_ids",
    "annotation_ids",
    "export_images_keeping_names",
    "KEYPOINT_FIELDS",
    "EXTRA_PREFIX",
]

ANNOTATION_FIELDS = frozenset({"id", "image_id", "category_id", "segmentation", "area", "bbox", "iscrowd",
                               "attributes"})
IMAGE_FIELDS = frozenset({"id", "file_name", "width", "height", "split"})
CATEGORY_FIELDS = frozenset({"id", "name", "color", "supercategory"})
TOP_FIELDS = frozenset({"images", "annotations", "categories"})
KEYPOINT_FIELDS = ("keypoints", "num_keypoints")
EXTRA_PREFIX = "coco."
KEYPOINTS_REASON = "COCO keypoints (no keypoint annotations in Workbench; written back on COCO export)"


# ---------------------------------------------------------------------------------------- reading
def annotation_attributes(a: dict[str, Any], *, file: str, record: str, report: ImportReport) -> dict[str, Any]:
    """The attributes one COCO annotation carries (see the module doc); counts what only attributes keep."""
    attrs: dict[str, Any] = {}
    given = a.get("attributes")
    if given is not None:
        if not isinstance(given, dict):
            raise ImportFormatError(f"attributes must be an object, got {type(given).__name__}", file=file,
                                    record=record, field="attributes")
        for k, v in given.items():
            if k in KEYPOINT_FIELDS or k.startswith(EXTRA_PREFIX):
                raise ImportFormatError(f"attribute name {k!r} is reserved for COCO's own fields", file=file,
                                        record=record, field=f"attributes.{k}")
            attrs[k] = v
    for k, v in a.items():
        if k in ANNOTATION_FIELDS:
            continue
        if k in KEYPOINT_FIELDS:
            attrs[k] = v
        else:
            attrs[EXTRA_PREFIX + k] = v
            report.keep(f"COCO annotation field {k!r} (written back on COCO export)")
    if "keypoints" in a:
        report.keep(KEYPOINTS_REASON)
    return attrs


def image_origin(im: dict[str, Any], iid: int | str, rel: str) -> dict[str, Any]:
    extra = {k: v for k, v in im.items() if k not in IMAGE_FIELDS}
    return {"id": iid, "file_name": rel, **({"coco": extra} if extra else {})}


def category_origin(c: dict[str, Any], cid: int | str) -> dict[str, Any]:
    out: dict[str, Any] = {"id": cid}
    if "supercategory" in c:
        out["supercategory"] = c["supercategory"]
    extra = {k: v for k, v in c.items() if k not in CATEGORY_FIELDS}
    if extra:
        out["coco"] = extra
    return out


def file_info(data: dict[str, Any]) -> dict[str, Any]:
    extra = {k: v for k, v in data.items() if k not in TOP_FIELDS}
    return {"coco": extra} if extra else {}


# ---------------------------------------------------------------------------------------- writing
def annotation_fields(attributes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fields for the annotation's top level, entries of its ``attributes`` object)."""
    top: dict[str, Any] = {}
    inner: dict[str, Any] = {}
    for k, v in attributes.items():
        name = k[len(EXTRA_PREFIX):] if k.startswith(EXTRA_PREFIX) else None
        if k in KEYPOINT_FIELDS:
            top[k] = v
        elif name and name not in ANNOTATION_FIELDS:
            top[name] = v
        else:
            inner[k] = v
    return top, inner


def image_fields(ex: Example) -> dict[str, Any]:
    extra = ex.origin.get("coco")
    return {k: v for k, v in extra.items() if k not in IMAGE_FIELDS} if isinstance(extra, dict) else {}


def category_fields(c: ClassDef) -> dict[str, Any]:
    out: dict[str, Any] = {"supercategory": c.origin.get("supercategory", "")}
    extra = c.origin.get("coco")
    if isinstance(extra, dict):
        out.update({k: v for k, v in extra.items() if k not in CATEGORY_FIELDS})
    return out


def _reusable(ids: Sequence[Any]) -> list[Any]:
    """The ids to keep: integers (COCO's id type; a VOC file stem or another tool's string id is not one)
    that occur once; None elsewhere."""
    ok = [i if isinstance(i, int) and not isinstance(i, bool) else None for i in ids]
    counts = Counter(i for i in ok if i is not None)
    return [i if i is not None and counts[i] == 1 else None for i in ok]


def _fill(kept: list[Any], default: Callable[[int], int]) -> list[Any]:
    """Give every None a fresh integer id: ``default(position)`` when free, else the next free one."""
    taken = {i for i in kept if i is not None}
    nxt = max((i for i in taken if isinstance(i, int)), default=0) + 1
    out = []
    for n, i in enumerate(kept):
        if i is None:
            i = default(n)
            if i in taken:
                while nxt in taken:
                    nxt += 1
                i = nxt
            taken.add(i)
        out.append(i)
    return out


def image_ids(examples: Sequence[Example]) -> list[Any]:
    """Each example's image id: its source's id when still unique, else the example id (or a free one)."""
    return _fill(_reusable([ex.origin.get("id") for ex in examples]), lambda n: examples[n].id)


def category_ids(classes: Sequence[ClassDef]) -> list[Any]:
    """Each class's category id: its source's id when still unique, else its 1-based position (or free)."""
    return _fill(_reusable([c.origin.get("id") for c in classes]), lambda n: n + 1)


def annotation_ids(sources: Sequence[Any]) -> list[Any]:
    """Each annotation's id: its source's when still unique, else its 1-based position (or a free one)."""
    return _fill(_reusable(list(sources)), lambda n: n + 1)


def _safe_rel(name: Any) -> str | None:
    """``name`` as a clean relative POSIX path (sub-folders allowed), or None when it is not one."""
    if not isinstance(name, str) or not name or "\\" in name or name.startswith("/"):
        return None
    parts = PurePosixPath(name).parts
    if not parts or any(p in (".", "..") or p.startswith(".") or not p.isprintable() or ":" in p
                        or p != p.strip() for p in parts):
        return None
    return "/".join(parts)


def export_images_keeping_names(
    out: Path,
    examples: Sequence[Example],
    load_bytes: Callable[[str], bytes],
    folder_of: Callable[[Example], str],
) -> Iterator[tuple[Example, str, Path]]:
    """Like ``_common.export_images``, but an example whose origin names a file (``origin["file_name"]``,
    sub-folders and all) keeps that name when it is a safe relative path with a suffix that fits the image,
    and unique (case-insensitively) within its folder; the others get the usual cleaned names, never
    one of those kept. Yields (example, name relative to ``folder_of(ex)``, path written)."""
    ordered = sorted(examples, key=lambda e: e.id)
    wanted = {ex.id: _safe_rel(ex.origin.get("file_name")) for ex in ordered}
    counts = Counter(f"{folder_of(ex)}/{wanted[ex.id]}".lower() for ex in ordered if wanted[ex.id])
    used: set[str] = {f"{folder_of(ex)}/{wanted[ex.id]}".lower() for ex in ordered
                      if wanted[ex.id] and counts[f"{folder_of(ex)}/{wanted[ex.id]}".lower()] == 1}
    for ex in ordered:
        data = load_bytes(ex.blob)
        if hashlib.sha256(data).hexdigest() != ex.blob:
            raise ValidationError("image bytes do not match the example's blob hash", record=f"example {ex.id}",
                                  field="blob")
        info = probe_image(data, file=ex.file_name, record=f"example {ex.id}", verify=False)
        folder = folder_of(ex)
        want = wanted[ex.id]
        key = f"{folder}/{want}".lower()
        if want and counts[key] == 1 and clean_name(PurePosixPath(want).name, info.format, ex.id) == \
                PurePosixPath(want).name:
            name = want
        else:
            base = clean_name(ex.file_name, info.format, ex.id)
            p = PurePosixPath(base)
            name, n = base, 1
            while f"{folder}/{name}".lower() in used:
                name = f"{p.stem}_{ex.id}{'' if n == 1 else f'_{n}'}{p.suffix}"
                n += 1
            used.add(f"{folder}/{name}".lower())
        rel = f"{folder}/{name}" if folder else name
        yield ex, name, write_file(out, rel, data)
