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
perceptual hashes are made in one call (per image, that call cost more than decoding a small image). The first bad image in item order raises its typed error (naming the
file and the record the reader gave it), whatever order the workers finish in.

The workers are threads by default (``WORKBENCH_IMPORT_POOL=thread``): Pillow's decoders, its resampling and
hashlib's sha256 release the GIL, so the work spreads over the cores without starting processes, and it
works wherever an import is called from (a notebook kernel, a script without a ``__main__`` guard, a server
with threads of its own). ``WORKBENCH_IMPORT_POOL=process`` uses a process pool instead (forkserver, the
checking code loaded once): worth it only where the per-image Python work dominates; a script that
imports from its top level then needs the ``if __name__ == "__main__":`` guard multiprocessing asks for.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor

from ..errors import ImageError, ImportFormatError, ValidationError
from ..progress import ProgressFn, Stage
from .images import ImageCheck, decode_for_check, read_image_file
from .records import ImportItem

__all__ = ["check_items", "import_workers", "pool_kind", "MIN_IMAGES_PER_WORKER", "WORKERS_ENV", "POOL_ENV",
           "POOL_KINDS"]

WORKERS_ENV = "WORKBENCH_IMPORT_WORKERS"
POOL_ENV = "WORKBENCH_IMPORT_POOL"
POOL_KINDS = ("thread", "process")
MIN_IMAGES_PER_WORKER = 8  # fewer images per worker: not worth handing out
_IN_FLIGHT_PER_WORKER = 4  # jobs handed out ahead per worker: keeps them busy, bounds memory
MAX_CHUNK = 64  # images per job, at most

_Where = Mapping[str, tuple[str, object]]
_Outcome = tuple[str, ImageCheck | str]


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
    """``thread`` or ``process``: ``kind`` when given, else ``WORKBENCH_IMPORT_POOL``, else ``thread``."""
    kind = kind or os.environ.get(POOL_ENV, "").strip() or "thread"
    if kind not in POOL_KINDS:
        raise ValidationError(f"{POOL_ENV} must be one of {', '.join(POOL_KINDS)}, got {kind!r}", field=POOL_ENV)
    return kind


def _executor(kind: str, workers: int) -> Executor:
    if kind == "thread":
        return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="workbench-image-check")
    import multiprocessing  # only for a process pool (threads are the default)
    from concurrent.futures import ProcessPoolExecutor

    if "forkserver" in multiprocessing.get_all_start_methods():
        server = multiprocessing.get_context("forkserver")
        server.set_forkserver_preload([__name__])  # workers fork from a server that loaded this module once
        return ProcessPoolExecutor(max_workers=workers, mp_context=server)
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def _check_one(path: str | None, data: bytes | None) -> _Outcome:
    """Check one image (in a worker): ("ok", check), or the error's kind and detail (located by the caller)."""
    return _check_chunk([(path, data)])[0]


def _check_chunk(jobs: Sequence[tuple[str | None, bytes | None]]) -> list[_Outcome]:
    """Check a run of images (in a worker): each read, hashed and decoded once, and the perceptual hashes of
    the run made in one call (per image, the call costs more than a small image's decode)."""
    import numpy as np

    from .duplicates import _hash_thumbnails

    out: list[_Outcome] = []
    done: list[tuple[int, tuple[int, int, str, str, int]]] = []
    thumbs = []
    for path, data in jobs:
        try:
            if data is None:
                assert path is not None
                data = read_image_file(path)
            w, h, fmt, digest, thumb = decode_for_check(data)
        except ImageError as e:
            out.append(("image", e.detail))
            continue
        except ImportFormatError as e:
            out.append(("format", e.detail))
            continue
        done.append((len(out), (w, h, fmt, digest, len(data))))
        thumbs.append(thumb)
        out.append(("format", "not checked"))  # replaced below
    if thumbs:
        hashes = _hash_thumbnails(np.stack(thumbs))
        for (k, (w, h, fmt, digest, nbytes)), value in zip(done, hashes, strict=True):
            out[k] = ("ok", ImageCheck(w, h, fmt, digest, nbytes, f"{int(value):016x}"))
    return out


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


def _raise(outcome: _Outcome, item: ImportItem, index: int, where: _Where) -> ImageCheck:
    kind, value = outcome
    if kind == "ok":
        assert isinstance(value, ImageCheck)
        return value
    file, record = _located(item, index, where)
    error = ImageError if kind == "image" else ImportFormatError
    raise error(str(value), file=file, record=record, field=None if kind == "image" else "file_name")


def _job(item: ImportItem) -> tuple[str | None, bytes | None]:
    if item.data is not None:
        return None, item.data
    return str(item.path), None


def check_items(items: Sequence[ImportItem], *, where: _Where | None = None, workers: int | None = None,
                kind: str | None = None, progress: ProgressFn | None = None) -> None:
    """Decode and hash every item not checked yet, once, and keep the result on it (``item.checked``).

    ``where`` maps an image path to the (file, record) its reader named it by, for errors. Raises the
    typed error of the first bad image in item order; items before it keep their checks.
    """
    where = where or {}
    todo = [(i, it) for i, it in enumerate(items) if it.checked is None]
    if not todo:
        return
    n = import_workers(len(todo), workers)
    size = _chunk_size(len(todo), n)
    chunks = [todo[k:k + size] for k in range(0, len(todo), size)]
    stage = Stage(progress, "import", "checking images", len(todo), "images")

    def take(chunk: list[tuple[int, ImportItem]], outcomes: list[_Outcome]) -> None:
        for (j, jt), outcome in zip(chunk, outcomes, strict=True):
            jt.checked = _raise(outcome, jt, j, where)
        stage.advance(len(chunk))

    if n == 1:
        for chunk in chunks:
            take(chunk, _check_chunk([_job(it) for _i, it in chunk]))
        stage.close()
        return
    pending: deque[tuple[list[tuple[int, ImportItem]], Future[list[_Outcome]]]] = deque()
    with _executor(pool_kind(kind), n) as pool:
        try:
            for chunk in chunks:  # hand out a window, then one more as each result comes back in order
                pending.append((chunk, pool.submit(_check_chunk, [_job(it) for _i, it in chunk])))
                if len(pending) >= n * _IN_FLIGHT_PER_WORKER:
                    done, fut = pending.popleft()
                    take(done, fut.result())
            while pending:
                done, fut = pending.popleft()
                take(done, fut.result())
            stage.close()
        except BaseException:
            for _chunk, fut in pending:
                fut.cancel()
            raise
