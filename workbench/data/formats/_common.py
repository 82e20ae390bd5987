"""Helpers shared by the format readers and writers: guarded file loading, typed field checks that name
file / record / field, image probing, annotation placement checks, and the export side's naming and
writing. Private to ``workbench.data.formats``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path, PurePosixPath
from typing import Any

from ...errors import AlreadyExistsError, ImportFormatError, ValidationError
from ...progress import ProgressFn
from ..images import IMAGE_SUFFIXES, ImageInfo, probe_file, probe_image, read_image_file
from ..records import SPLITS, Annotation, ClassDef, Example, ImportItem, PendingChecks, default_color
from .paths import safe_join

__all__ = [
    "BackgroundCheck",
    "ChainedChecks",
    "DeferredChecks",
    "defer_checks",
    "deferring",
    "clean_name",
    "MAX_JSON_BYTES",
    "MAX_TEXT_BYTES",
    "read_text",
    "load_json",
    "load_yaml",
    "field_of",
    "as_int",
    "as_id",
    "as_str",
    "as_number",
    "make_annotation",
    "place",
    "probe_path",
    "probe_log",
    "check_progress",
    "check_now",
    "make_classes",
    "prepare_out",
    "check_type",
    "class_index",
    "export_images",
    "write_file",
    "fmt_float",
]

MAX_JSON_BYTES = 1 << 30  # 1 GiB: larger annotation files are refused (max_json_bytes= to change)
MAX_TEXT_BYTES = 64 << 20  # YAML, XML, label and list files


# ---------------------------------------------------------------------------------------- loading files
def read_text(path: Path, *, max_bytes: int = MAX_TEXT_BYTES, what: str = "file") -> str:
    """A UTF-8 text file, refused when missing, too big or not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise ImportFormatError(f"{what} not found", file=str(path))
    size = path.stat().st_size
    if size > max_bytes:
        raise ImportFormatError(f"{what} is {size} bytes, over the {max_bytes} byte limit", file=str(path))
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ImportFormatError(
            f"{what} is not UTF-8 text ({e.reason} at byte {e.start})", file=str(path)
        ) from None


def load_json(path: Path, *, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parse a JSON file with a size guard; malformed or too deeply nested JSON -> ImportFormatError."""
    text = read_text(path, max_bytes=max_bytes, what="JSON file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ImportFormatError(
            f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}", file=str(path)
        ) from None
    except RecursionError:
        raise ImportFormatError("JSON is nested too deeply to read", file=str(path)) from None
    except ValueError as e:  # an integer of more than 4300 digits (Python's int/str conversion limit)
        raise ImportFormatError(f"unreadable JSON value ({e})", file=str(path)) from None


def load_yaml(path: Path) -> Any:
    import yaml

    text = read_text(path, what="YAML file")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ImportFormatError(f"malformed YAML{where}: {problem}", file=str(path)) from None
    except RecursionError:
        raise ImportFormatError("YAML is nested too deeply to read", file=str(path)) from None


# ---------------------------------------------------------------------------------------- field checks
def field_of(obj: Any, key: str, *, file: str, record: object, required: bool = True) -> Any:
    if not isinstance(obj, dict):
        raise ImportFormatError(f"expected an object, got {type(obj).__name__}", file=file, record=record)
    if key not in obj:
        if required:
            raise ImportFormatError("missing required field", file=file, record=record, field=key)
        return None
    return obj[key]


def as_int(v: Any, *, file: str, record: object, field: str, minimum: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ImportFormatError(f"expected an integer, got {v!r}", file=file, record=record, field=field)
    if minimum is not None and v < minimum:
        raise ImportFormatError(f"must be at least {minimum}, got {v}", file=file, record=record, field=field)
    return v


def as_id(v: Any, *, file: str, record: object, field: str) -> int | str:
    """A record id: an integer or a non-empty string (COCO files use both)."""
    if isinstance(v, str) and v:
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    raise ImportFormatError(
        f"expected an integer or string id, got {v!r}", file=file, record=record, field=field
    )


def as_str(v: Any, *, file: str, record: object, field: str) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ImportFormatError(
            f"expected a non-empty string, got {v!r}", file=file, record=record, field=field
        )
    return v


def as_number(v: Any, *, file: str, record: object, field: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ImportFormatError(f"expected a number, got {v!r}", file=file, record=record, field=field)
    f = float(v)
    if not math.isfinite(f):
        raise ImportFormatError(f"number is not finite ({v!r})", file=file, record=record, field=field)
    return f


def make_annotation(*, file: str, record: object, **kwargs: Any) -> Annotation:
    """Build an Annotation; its validation errors come back located at ``file`` / ``record``."""
    try:
        return Annotation(**kwargs)
    except ValidationError as e:
        raise ImportFormatError(e.detail, file=file, record=record, field=e.field) from None


def place(ann: Annotation, info: ImageInfo, *, clip: bool, file: str, record: object) -> Annotation | None:
    """Check ``ann`` lies inside the image; with ``clip`` boxes are clipped (None when nothing is left)."""
    if clip and ann.kind == "box":
        return ann.clipped(info.width, info.height)
    try:
        ann.check_inside(info.width, info.height)
    except ValidationError as e:
        hint = " (clip_boxes=True clips boxes to the image)" if ann.kind == "box" else ""
        raise ImportFormatError(e.detail + hint, file=file, record=record, field=e.field) from None
    return ann


def probe_path(path: Path, *, record: object, file: str | None = None, verify: bool = False) -> ImageInfo:
    """Size and format of the image at ``path`` from its header (non-images, bad sizes and bombs refused).

    The pixels are decoded (truncated and corrupt files refused) once per image, with its hashes, when
    the reader's batch is checked (:func:`workbench.data.image_pool.check_items`, run by
    ``Reader.read``); ``verify=True`` decodes here too, for files that are not import items (masks).
    """
    name = file or str(path)
    log = _PROBED.get()
    if log is not None:
        log.setdefault(str(path), (name, record))
    if not verify:
        return probe_file(path, file=name, record=record)  # the header only
    data = read_image_file(path, file=name, record=record)
    return probe_image(data, file=name, record=record, verify=True)


_PROBED: ContextVar[dict[str, tuple[str, object]] | None] = ContextVar("workbench_probed", default=None)
_PROGRESS: ContextVar[ProgressFn | None] = ContextVar("workbench_check_progress", default=None)
_AFTER: ContextVar[Callable[[], None] | None] = ContextVar("workbench_checks_after", default=None)


@contextmanager
def check_progress(progress: ProgressFn | None) -> Iterator[None]:
    """Within the block, :func:`check_now` reports to ``progress`` (``Reader.read`` sets it)."""
    token = _PROGRESS.set(progress)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def check_now(items: Sequence[ImportItem], where: dict[str, tuple[str, object]]) -> None:
    """Decode and hash ``items`` now (once each, in parallel: ``image_pool.check_items``), for a reader that
    needs the decoded sizes itself instead of probing each header first; ``where`` names each path's file /
    record for errors."""
    from ..image_pool import check_items

    check_items(items, where=where, progress=_PROGRESS.get())


class BackgroundCheck:
    """:func:`check_now` run in a thread while the reader goes on with the annotations (the decoders release
    the GIL); :meth:`join` waits for it and raises the first bad image's error, as :func:`check_now` does.
    Progress is reported to the reader's ``progress`` (from that thread)."""

    def __init__(self, items: Sequence[ImportItem], where: dict[str, tuple[str, object]]) -> None:
        import contextvars
        import threading

        from ..image_pool import check_items

        self.error: BaseException | None = None
        self.checked = 0  # the first ``checked`` items are checked (in order)
        self.changed = threading.Condition()
        self.stopping = threading.Event()
        progress = _PROGRESS.get()
        after = _AFTER.get()  # the checks of the part read before this one (ChainedChecks.next_part)

        def on_checked(n: int) -> None:
            with self.changed:
                self.checked = n
                self.changed.notify_all()

        def run() -> None:
            try:
                if after is not None:  # one part's checks at a time: the cores are the same, and the
                    after()            # terminal shows one "checking images" stage at a time
                if self.stopping.is_set():
                    return
                check_items(items, where=where, progress=progress, on_checked=on_checked, stop=self.stopping)
            except BaseException as e:  # handed to join()
                self.error = e
            finally:
                with self.changed:
                    self.changed.notify_all()

        context = contextvars.copy_context()  # the caller's, so the checks store where its import stores
        self.thread = threading.Thread(target=context.run, args=(run,), name="workbench-check-images", daemon=True)
        self.thread.start()

    def join(self) -> None:
        self.thread.join()
        if self.error is not None:  # (raised again by a later join: the checks' outcome)
            raise self.error

    def wait_for(self, n: int) -> None:
        """Return once the first ``n`` items are checked; raise the first bad image's error as soon as the
        checks stopped on it (it is the error :meth:`join` would raise)."""
        with self.changed:
            while self.checked < n and self.thread.is_alive():
                self.changed.wait()
        if self.checked < n:
            self.join()  # raises what stopped the checks
            if self.checked < n:
                raise RuntimeError(f"the image checks ended after {self.checked} of {n} images")

    def stop(self) -> None:
        """Hand no more images out, wait for those out; whatever they found is dropped."""
        self.stopping.set()
        self.thread.join()
        self.error = None


_DEFER: ContextVar[bool] = ContextVar("workbench_defer_checks", default=False)


@contextmanager
def defer_checks() -> Iterator[None]:
    """Within the block, a reader that checks its images in the background may return before the checks
    are done: its batch's ``checks`` (:class:`DeferredChecks`) says when items are checked, and raises what
    the reader would have raised (``ImportBatch.finish_checks`` waits for all). An import writes its rows
    while the checks run (``bulk_import``)."""
    token = _DEFER.set(True)
    try:
        yield
    finally:
        _DEFER.reset(token)


def deferring() -> bool:
    """Whether the reader runs within :func:`defer_checks`."""
    return _DEFER.get()


class DeferredChecks:
    """A reader's background checks handed over with its batch (:func:`defer_checks`): ``verify(items)`` is
    the reader's own check of checked items (a declared size against the decoded one), run on each run of
    items as they come, so the errors are those the reader would have raised had it waited: the first bad
    image in item order, else the first item ``verify`` refuses."""

    def __init__(self, items: Sequence[ImportItem], checking: BackgroundCheck,
                 verify: Callable[[Sequence[ImportItem]], None]) -> None:
        self.items = items
        self.checking = checking
        self.verify = verify
        self.verified = 0

    def wait(self, end: int) -> None:
        end = min(end, len(self.items))
        if end <= self.verified:
            return
        self.checking.wait_for(end)
        try:
            self.verify(self.items[self.verified:end])
        except BaseException:
            self.checking.join()  # a bad image anywhere comes first
            raise
        self.verified = end
        if end == len(self.items):
            self.checking.join()

    def drain(self) -> None:
        self.wait(len(self.items))

    def stop(self) -> None:
        self.checking.stop()

    def finished(self) -> bool:
        return not self.checking.thread.is_alive()

    def join_quietly(self) -> None:
        self.checking.thread.join()


class ChainedChecks:
    """The pending checks of a source read part by part (``source_splits``: Roboflow's train / valid / test
    folders), over the merged items: each part's own checks, taken in part order, so the first part's error
    comes first, as when each part was waited for before the next was read."""

    def __init__(self) -> None:
        self.parts: list[tuple[int, int, PendingChecks]] = []  # (first item, items, checks)

    def add(self, start: int, n: int, checks: PendingChecks) -> None:
        self.parts.append((start, n, checks))

    def wait(self, end: int) -> None:
        for start, n, checks in self.parts:
            if end <= start:
                break
            checks.wait(min(end - start, n))

    def drain(self) -> None:
        for k, (_start, _n, checks) in enumerate(self.parts):
            try:
                checks.drain()
            except BaseException:
                for _s, _m, later in self.parts[k + 1:]:  # none left running
                    later.stop()
                raise

    def stop(self) -> None:
        for _start, _n, checks in self.parts:
            checks.stop()

    def finished(self) -> bool:
        return all(checks.finished() for _start, _n, checks in self.parts)

    def join_quietly(self) -> None:
        for _start, _n, checks in self.parts:
            checks.join_quietly()

    @contextmanager
    def next_part(self) -> Iterator[None]:
        """Within the block, a reader's background checks start once those of the parts added so far
        have ended (they would only share the cores; and their progress comes one stage at a time)."""
        earlier = ChainedChecks()  # the parts so far (not those added later: this one's own)
        earlier.parts = list(self.parts)
        token = _AFTER.set(earlier.join_quietly if earlier.parts else None)
        try:
            yield
        finally:
            _AFTER.reset(token)


@contextmanager
def probe_log() -> Iterator[dict[str, tuple[str, object]]]:
    """Within the block, :func:`probe_path` notes the (file, record) it named each path by, so that an
    error found when the image is decoded later names it the same way."""
    log: dict[str, tuple[str, object]] = {}
    token = _PROBED.set(log)
    try:
        yield log
    finally:
        _PROBED.reset(token)


def make_classes(
    names: Sequence[str],
    colors: Sequence[str | None] | None = None,
    *,
    file: str = "",
    record_of: Callable[[int], object] | None = None,
) -> list[ClassDef]:
    """ClassDefs in order; colour from ``colors`` when given, else the default palette."""
    out = []
    for i, name in enumerate(names):
        given = colors[i] if colors is not None else None
        color = given if given else default_color(i)
        try:
            out.append(ClassDef(name, color))
        except ValidationError as e:
            rec = record_of(i) if record_of else name
            raise ImportFormatError(e.detail, file=file or None, record=rec, field=e.field) from None
    return out


# ---------------------------------------------------------------------------------------- writing
def prepare_out(out: Path, *, overwrite: bool) -> Path:
    """Create ``out``; refuse a non-empty folder unless ``overwrite`` (files are then written over)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise AlreadyExistsError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise AlreadyExistsError(f"{out} is not empty; choose an empty folder or pass overwrite=True")
    out.mkdir(parents=True, exist_ok=True)
    return out


def check_type(fmt: str, dataset_type: str, allowed: Sequence[str]) -> None:
    if dataset_type not in allowed:
        raise ValidationError(
            f"the {fmt} format holds {' or '.join(allowed)} datasets, not {dataset_type!r}",
            field="dataset_type",
        )


def check_exportable(examples: Sequence[Example], kinds: Sequence[str], what: str) -> None:
    """Every example has a known split and its ground truth only ``kinds`` of annotation (``what`` says
    which format or dataset type refuses the others)."""
    for ex in examples:
        if ex.split not in SPLITS:
            raise ValidationError(f"unknown split {ex.split!r}", record=f"example {ex.id}", field="split")
        for a in ex.truth():
            if a.kind not in kinds:
                raise ValidationError(f"{what} cannot hold {a.kind!r} annotations", record=f"example {ex.id}",
                                      field="kind")


def class_index(classes: Sequence[ClassDef], examples: Sequence[Example]) -> dict[str, int]:
    """Class name -> index; every exported annotation's label must be one of ``classes``."""
    index: dict[str, int] = {}
    for i, c in enumerate(classes):
        if c.name in index:
            raise ValidationError(f"class {c.name!r} is listed twice", field="classes")
        index[c.name] = i
    for ex in examples:
        for a in ex.truth():
            if a.label not in index and a.kind != "anomaly":
                raise ValidationError(
                    f"label {a.label!r} is not one of the classes ({', '.join(index)})",
                    record=f"example {ex.id}",
                    field="label",
                )
    return index


_SUFFIX_FOR = {
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "PNG": ".png",
    "BMP": ".bmp",
    "GIF": ".gif",
    "TIFF": ".tif",
    "WEBP": ".webp",
}
_SUFFIXES_OF = {"JPEG": (".jpg", ".jpeg"), "MPO": (".jpg", ".jpeg"), "TIFF": (".tif", ".tiff")}


def clean_name(file_name: str, fmt: str, ex_id: int) -> str:
    name = PurePosixPath(str(file_name).replace("\\", "/")).name
    name = "".join(ch if ch.isprintable() else "_" for ch in name).strip().lstrip(".")
    if not name:
        name = f"image_{ex_id}"
    p = PurePosixPath(name)
    ok = _SUFFIXES_OF.get(fmt, (_SUFFIX_FOR.get(fmt, ""),))
    if p.suffix.lower() in ok:
        return name
    stem = p.stem if p.suffix.lower() in IMAGE_SUFFIXES else name
    return f"{stem or f'image_{ex_id}'}{_SUFFIX_FOR.get(fmt, '.img')}"


def export_images(
    out: Path,
    examples: Sequence[Example],
    load_bytes: Callable[[str], bytes],
    folder_of: Callable[[Example], str],
) -> Iterator[tuple[Example, str, Path]]:
    """Write each example's image, byte-identical, as ``out/folder_of(ex)/name``; yield (ex, name, path).

    Examples go in id order. Names keep the original file name (folders dropped) unless its stem is
    taken (case-insensitively, across the whole export), then become ``<stem>_<example id><suffix>``
    (then ``_2``, ``_3``...), so collisions resolve the same way every time. A suffix that does not
    match the image format is corrected. The bytes must hash to ``example.blob``.
    """
    used: set[str] = set()
    for ex in sorted(examples, key=lambda e: e.id):
        data = load_bytes(ex.blob)
        if hashlib.sha256(data).hexdigest() != ex.blob:
            raise ValidationError(
                "image bytes do not match the example's blob hash", record=f"example {ex.id}", field="blob"
            )
        info = probe_image(data, file=ex.file_name, record=f"example {ex.id}", verify=False)
        name = clean_name(ex.file_name, info.format, ex.id)
        p = PurePosixPath(name)
        n = 1
        while p.stem.lower() in used:
            p = PurePosixPath(f"{PurePosixPath(name).stem}_{ex.id}{'' if n == 1 else f'_{n}'}{p.suffix}")
            n += 1
        used.add(p.stem.lower())
        rel = f"{folder_of(ex)}/{p.name}" if folder_of(ex) else p.name
        yield ex, p.name, write_file(out, rel, data)


def write_file(out: Path, rel: str, data: bytes | str) -> Path:
    """Write ``data`` at ``out/rel``, which must stay inside ``out``."""
    path = safe_join(out, rel, field="file_name")
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def fmt_float(v: float) -> str:
    """Shortest exact text for a float (integers without a trailing .0)."""
    f = float(v)
    return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)
