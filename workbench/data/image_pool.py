"""Checking an import's images: one decode per image, spread over the machine's cores.

Each image is read, hashed (sha256: its blob key) and decoded once (:func:`~workbench.data.images.check_image`:
size, format, truncation and corruption, the perceptual hash the duplicate search keeps). Format readers
only read image headers (the size they need to place annotations); ``Reader.read`` then checks the whole
batch here, and ``Dataset.import_batch`` checks what nobody checked yet (items built in code), so an image
is decoded once on the way into the store whichever way it comes.

Large batches are checked by a pool of workers, one per core (``WORKBENCH_IMPORT_WORKERS`` overrides the
number; 1 checks in this thread). Workers read the files themselves and hand back only the small
:class:`~workbench.data.images.ImageCheck`; a bounded number of images is in flight at once, so memory does
not grow with the size of the import. Images go out in runs of up to :data:`MAX_CHUNK` and each run's
perceptual hashes are made in one call (per image, that call cost more than decoding a small image). The
first bad image in item order raises its typed error (naming the file and the record the reader gave it),
whatever order the workers finish in.

Workers are threads or processes (``WORKBENCH_IMPORT_POOL``: ``auto``, the default, ``thread`` or
``process``). Pillow's decoders, its resampling and hashlib's sha256 release the GIL, so for large images
threads spread over the cores without starting anything. For many small images the per-image Python work
(Pillow's plugins, the thumbnail) holds the GIL: two threads went no faster than one and slowed the reader
(20,000 PNGs of 32 x 24: 13.5 s of checking in threads beside the annotation reading). ``auto`` therefore
uses worker processes (:mod:`.check_workers`: plain ``python -c`` children, no ``multiprocessing``, so a
script without a ``__main__`` guard, a notebook kernel and Voila all work) when there are at least
:data:`PROCESS_MIN_IMAGES` image files to check and two cores or more, and threads otherwise. Images held in
memory (a batch built in code) are checked in the calling process in either case.

Within :func:`storing_into` (an import into a workspace: ``transfer.import_source``), a worker also stores
each image it checked, from the bytes it just read and hashed (:class:`BlobSink`; a worker process writes into
the same blob folder): the file is read once on the whole way into the store, and what is stored is exactly
what was checked. The import removes the files it wrote if it fails (``BlobSink.written``).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ..errors import ImageError, ImportFormatError, ValidationError
from ..progress import ProgressFn, Stage
from .check_workers import BlobSink, Outcome, WorkerError, WorkerPool, check_chunk
from .images import ImageCheck
from .records import ImportItem

if TYPE_CHECKING:
    from .blobs import BlobStore

__all__ = ["check_items", "import_workers", "pool_kind", "MIN_IMAGES_PER_WORKER", "WORKERS_ENV", "POOL_ENV",
           "POOL_KINDS", "BlobSink", "storing_into", "current_sink"]

WORKERS_ENV = "WORKBENCH_IMPORT_WORKERS"
POOL_ENV = "WORKBENCH_IMPORT_POOL"
POOL_KINDS = ("auto", "thread", "process")
# fewer: worker start-up (~0.3 s) costs more than the GIL does. bench_import_pool.py, 2 cores, with small
# images stored as table rows (files made threads slower: the crossover was 750 then): processes over
# threads 1.20 / 1.05 / 0.91 / 0.87 / 0.78x at 750 / 1,000 / 1,250 / 1,500 / 2,000 small PNGs, 1.05 / 1.06 /
# 1.02 / 0.98 / 0.90x for 320x240 JPEGs
PROCESS_MIN_IMAGES = 1250
MIN_IMAGES_PER_WORKER = 8  # fewer images per worker: not worth handing out
_IN_FLIGHT_PER_WORKER = 4  # jobs handed out ahead per worker: keeps them busy, bounds memory
MAX_CHUNK = 64  # images per job, at most

_Where = Mapping[str, tuple[str, object]]


_SINK: ContextVar[BlobSink | None] = ContextVar("workbench_blob_sink", default=None)


@contextmanager
def storing_into(blobs: BlobStore) -> Iterator[BlobSink]:
    """Within the block, :func:`check_items` (run in this context: a thread started with a copy of it too)
    stores every image it checks into ``blobs``."""
    sink = BlobSink(blobs)
    token = _SINK.set(sink)
    try:
        yield sink
    finally:
        _SINK.reset(token)


def current_sink() -> BlobSink | None:
    """The :class:`BlobSink` of the enclosing :func:`storing_into`, if any."""
    return _SINK.get()


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def import_workers(n_images: int, workers: int | None = None) -> int:
    """How many processes check ``n_images`` images: ``workers`` when given, else ``WORKBENCH_IMPORT_WORKERS``,
    else one per core, never more than one per ``MIN_IMAGES_PER_WORKER`` images."""
    if workers is None:
        env = os.environ.get(WORKERS_ENV, "").strip()
        if env:
            try:
                workers = int(env)
            except ValueError:
                raise ValidationError(f"{WORKERS_ENV} must be a whole number, got {env!r}",
                                      field=WORKERS_ENV) from None
            if workers < 1:
                raise ValidationError(f"{WORKERS_ENV} must be at least 1, got {workers}", field=WORKERS_ENV)
        else:
            workers = min(_cores(), max(1, n_images // MIN_IMAGES_PER_WORKER))
    return max(1, min(workers, n_images))


def pool_kind(kind: str | None = None) -> str:
    """``auto``, ``thread`` or ``process``: ``kind`` when given, else ``WORKBENCH_IMPORT_POOL``, else ``auto``."""
    kind = kind or os.environ.get(POOL_ENV, "").strip() or "auto"
    if kind not in POOL_KINDS:
        raise ValidationError(f"{POOL_ENV} must be one of {', '.join(POOL_KINDS)}, got {kind!r}", field=POOL_ENV)
    return kind


def _resolved_kind(kind: str, todo: Sequence[tuple[int, ImportItem]], workers: int) -> str:
    """``auto`` made ``thread`` or ``process`` (see the module doc)."""
    if kind != "auto":
        return kind
    files = sum(1 for _i, it in todo if it.data is None)
    return "process" if workers >= 2 and files >= PROCESS_MIN_IMAGES else "thread"


def _from_worker(answer: list[Any], sink: BlobSink | None) -> Outcome:
    """A worker process's answer for one image as :func:`check_chunk` gives it (noting what it stored)."""
    kind = answer[0]
    if kind == "ok":
        w, h, fmt, digest, nbytes, phash = answer[1]
        if sink is not None:
            sink.note(digest, bool(answer[2]))
        return "ok", ImageCheck(int(w), int(h), str(fmt), str(digest), int(nbytes), str(phash))
    if kind == "store":
        return "store", OSError(answer[1], answer[2], answer[3])
    return str(kind), str(answer[1])


def _chunk_size(n_images: int, workers: int) -> int:
    """Images per job: enough that a job's overhead (and its one hash call) is shared, few enough that every
    worker gets many jobs and the window of images in flight stays small."""
    return max(1, min(MAX_CHUNK, n_images // (workers * 16)))


def _located(item: ImportItem, index: int, where: _Where) -> tuple[str | None, object]:
    """The file and record an error about ``item`` names: those the reader probed the file under."""
    if item.path is not None:
        named = where.get(str(item.path))
        if named is not None:
            return named
        return str(item.path), item.record if item.record is not None else index
    return item.file_name or None, item.record if item.record is not None else index


def _raise(outcome: Outcome, item: ImportItem, index: int, where: _Where) -> ImageCheck:
    kind, value = outcome
    if kind == "ok":
        assert isinstance(value, ImageCheck)
        return value
    if isinstance(value, OSError):  # storing it failed (a full disk): the import stops and removes its files
        raise value
    file, record = _located(item, index, where)
    error = ImageError if kind == "image" else ImportFormatError
    raise error(str(value), file=file, record=record, field=None if kind == "image" else "file_name")


def _job(item: ImportItem) -> tuple[str | None, bytes | None]:
    if item.data is not None:
        return None, item.data
    return str(item.path), None


def check_items(items: Sequence[ImportItem], *, where: _Where | None = None, workers: int | None = None,
                kind: str | None = None, progress: ProgressFn | None = None,
                on_checked: Callable[[int], None] | None = None, stop: threading.Event | None = None) -> None:
    """Decode and hash every item not checked yet, once, and keep the result on it (``item.checked``).

    ``where`` maps an image path to the (file, record) its reader named it by, for errors. Raises the
    typed error of the first bad image in item order; items before it keep their checks. The items are
    checked in order: ``on_checked(n)`` hears each time the first ``n`` of those to check are. Once ``stop``
    is set, no more images are handed out (those out are waited for) and it returns early.
    """
    where = where or {}
    todo = [(i, it) for i, it in enumerate(items) if it.checked is None]
    if not todo:
        return
    n = import_workers(len(todo), workers)
    size = _chunk_size(len(todo), n)
    chunks = [todo[k:k + size] for k in range(0, len(todo), size)]
    stage = Stage(progress, "import", "checking images", len(todo), "images")
    kind = pool_kind(kind)
    sink = current_sink()

    taken = 0

    def take(chunk: list[tuple[int, ImportItem]], outcomes: list[Outcome]) -> None:
        nonlocal taken
        for (j, jt), outcome in zip(chunk, outcomes, strict=True):
            jt.checked = _raise(outcome, jt, j, where)
        stage.advance(len(chunk))
        taken += len(chunk)
        if on_checked is not None:
            on_checked(taken)

    if n == 1:
        for chunk in chunks:
            if stop is not None and stop.is_set():
                return
            take(chunk, check_chunk([_job(it) for _i, it in chunk], sink))
        stage.close()
        return
    procs = None
    if _resolved_kind(kind, todo, n) == "process":
        try:
            procs = WorkerPool(n)
        except WorkerError:
            if kind != "auto":  # asked for by name: say why not
                raise  # (auto: threads check the same images, only slower)
    store = str(sink.blobs.root) if sink is not None else None

    def submit(pool: ThreadPoolExecutor, chunk: list[tuple[int, ImportItem]]) -> Future[list[Any]]:
        jobs = [_job(it) for _i, it in chunk]
        if procs is None or any(data is not None for _path, data in jobs):
            return pool.submit(check_chunk, jobs, sink)  # a thread here (images in memory stay in this process)
        return procs.submit([str(path) for path, _data in jobs], store)  # answered in the worker's terms

    def outcomes(answers: list[Any]) -> list[Outcome]:
        return [a if isinstance(a, tuple) else _from_worker(a, sink) for a in answers]

    pending: deque[tuple[list[tuple[int, ImportItem]], Future[list[Any]]]] = deque()
    try:
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="workbench-image-check") as pool:
            try:
                for chunk in chunks:  # hand out a window, then one more as each result comes back in order
                    if stop is not None and stop.is_set():
                        break
                    pending.append((chunk, submit(pool, chunk)))
                    if len(pending) >= n * _IN_FLIGHT_PER_WORKER:
                        done, fut = pending.popleft()
                        take(done, outcomes(fut.result()))
                while pending:
                    done, fut = pending.popleft()
                    take(done, outcomes(fut.result()))
                if stop is None or not stop.is_set():
                    stage.close()
            except BaseException:
                for _chunk, fut in pending:
                    fut.cancel()
                if procs is not None:  # a worker may still write images: wait for what was handed out, and
                    for _chunk, fut in pending:  # note the files it wrote (the import removes them)
                        if not fut.cancelled():
                            try:
                                outcomes(fut.result())
                            except Exception:  # noqa: S110 - the first error is the one raised
                                pass
                raise
    finally:
        if procs is not None:
            procs.close()
