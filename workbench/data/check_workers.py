"""Checking (and storing) a run of an import's images: :func:`check_chunk`, run by :mod:`.image_pool`'s threads
or by worker processes started here as plain ``python -c`` children (:class:`WorkerPool`).

Threads alone: for a large import of small images the per-image Python work of decoding (Pillow's plugins,
the thumbnail, the hash) holds the GIL, so two threads go no faster than one and they slow the thread reading
the annotations. Processes do not share the GIL. They are started here as
children of their own (``sys.executable -c ...``), not through ``multiprocessing``: nothing of the caller's
``__main__`` is imported again (a script without the ``if __name__ == "__main__":`` guard works, as do a
notebook kernel and Voilà), and nothing but file paths and plain answers cross the pipe.

The protocol is one JSON line each way: a job ``{"paths": [...], "store": BLOB_FOLDER or null}``; the answer
``{"out": [...]}``, per path ``["ok", [width, height, format, sha256, nbytes, phash], written_now]``,
``["image" | "format", detail]`` (the parent locates the error) or ``["store", errno, strerror, filename]``
(writing the blob failed). A worker runs :func:`check_chunk` on the paths and, with a store folder, writes
the checked bytes into the blob store there. A worker says ``{"ready": true}`` once it has loaded what it
needs, and ends when its input closes (its parent finished or died). A worker that dies during an import is
a clear error, never a silent fallback, and its stderr's last line is in the message; workers that cannot
start at all leave ``image_pool``'s ``auto`` to threads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..errors import ImageError, ImportFormatError, WorkbenchError
from .images import ImageCheck, decode_for_check, read_image_file

if TYPE_CHECKING:
    from .blobs import BlobStore

__all__ = ["WorkerPool", "WorkerError", "BlobSink", "Outcome", "check_chunk", "serve"]

# one image's check: ("ok", the check), ("image" | "format", what is wrong: located by the caller), or
# ("store", the OSError writing its blob raised)
Outcome = tuple[str, ImageCheck | str | OSError]

_CHILD = "import sys; sys.path.insert(0, {root!r}); from workbench.data.check_workers import serve; serve()"


class BlobSink:
    """Where checked images are stored as they are checked (:func:`storing_into`). ``stored``: the digests
    that are in the store now (written here, or there already); ``written``: the files this sink wrote
    (the import removes them if it fails). Thread-safe."""

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs
        self.stored: set[str] = set()
        self.written: list[str] = []
        self._lock = threading.Lock()

    def put(self, data: bytes, digest: str) -> None:
        """Store ``data`` (whose sha256 is ``digest``) unflushed: the import flushes once before it commits."""
        _, new = self.blobs.put(data, digest, fsync=False)
        self.note(digest, new)

    def put_many(self, items: Sequence[tuple[bytes, str]]) -> None:
        """Store (bytes, sha256) pairs at once (small images: one transaction), unflushed."""
        for (_data, digest), new in zip(items, self.blobs.put_many(items, fsync=False), strict=True):
            self.note(digest, new)

    def note(self, digest: str, new: bool) -> None:
        """``digest`` is in the store now (``new``: written now, by this sink or a worker process for it)."""
        with self._lock:
            self.stored.add(digest)
            if new:
                self.written.append(digest)


def check_chunk(jobs: Sequence[tuple[str | None, bytes | None]], sink: BlobSink | None = None
                 ) -> list[Outcome]:
    """Check a run of images (in a worker): each read, hashed and decoded once, and the perceptual hashes of
    the run made in one call (per image, the call costs more than a small image's decode). With a ``sink``,
    each image that passed is stored from the same bytes (a failure to write: ("store", the OSError))."""
    import numpy as np

    from .phash import hash_thumbnails

    out: list[Outcome] = []
    done: list[tuple[int, tuple[int, int, str, str, int]]] = []
    thumbs = []
    small: list[tuple[int, bytes, str]] = []  # stored together after the loop: one transaction
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
        if sink is not None and sink.blobs.packs(len(data)):
            small.append((len(out), data, digest))
        elif sink is not None:
            try:
                sink.put(data, digest)
            except OSError as e:
                out.append(("store", e))
                continue
        done.append((len(out), (w, h, fmt, digest, len(data))))
        thumbs.append(thumb)
        out.append(("format", "not checked"))  # replaced below
    if small:
        assert sink is not None
        try:
            sink.put_many([(data, digest) for _k, data, digest in small])
        except OSError as e:  # their transaction rolled back: none of them is stored, each one says why
            failed = {k for k, _data, _digest in small}
            for k in failed:
                out[k] = ("store", e)
            kept = [j for j, (k, _v) in enumerate(done) if k not in failed]
            done, thumbs = [done[j] for j in kept], [thumbs[j] for j in kept]
    if thumbs:
        hashes = hash_thumbnails(np.stack(thumbs))
        for (k, (w, h, fmt, digest, nbytes)), value in zip(done, hashes, strict=True):
            out[k] = ("ok", ImageCheck(w, h, fmt, digest, nbytes, f"{int(value):016x}"))
    return out


class WorkerError(WorkbenchError):
    """An image-check worker process could not start or stopped during an import."""


class _Worker:
    """One worker process: jobs are written to it as they are handed out (up to :data:`DEPTH` waiting), and a
    thread of its own reads its answers, in order, into the jobs' futures: a worker never waits for its
    parent to come back for an answer or with the next job (the parent may be busy writing rows, holding
    the GIL)."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parents[2])  # the folder holding this workbench package
        self.log: IO[bytes] = tempfile.TemporaryFile()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.out: deque[tuple[int, Future[list[Any]]]] = deque()  # jobs written, not answered: (images, future)
        self.dead: WorkerError | None = None
        self.reader: threading.Thread | None = None
        try:
            self.proc = subprocess.Popen([sys.executable, "-c", _CHILD.format(root=root)], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self.log, env=env)
        except OSError as e:
            self.log.close()
            raise WorkerError(f"cannot start an image-check worker ({sys.executable}): {e}") from None

    def ready(self, lock: threading.Condition) -> None:
        """Wait for the worker's first line (it has loaded what it checks with), or raise :class:`WorkerError`;
        then start reading its answers (``lock`` is notified after each)."""
        assert self.proc.stdout is not None
        try:
            line = self.proc.stdout.readline()
        except OSError:
            line = b""
        if line.strip() != b'{"ready": true}':
            raise WorkerError(f"an image-check worker did not start (exit code {self.proc.wait()}){self._stderr()}")
        self.reader = threading.Thread(target=self._read, args=(lock,), name="workbench-check-answers", daemon=True)
        self.reader.start()

    def send(self, paths: Sequence[str], store: str | None, fut: Future[list[Any]]) -> None:
        """Write one job (the caller holds the pool's lock: jobs and futures stay in the same order)."""
        proc = self.proc
        assert proc.stdin is not None
        fut.set_running_or_notify_cancel()  # written to the worker: it cannot be taken back
        if self.dead is not None:
            fut.set_exception(self.dead)
            return
        self.out.append((len(paths), fut))
        try:
            proc.stdin.write(json.dumps({"paths": list(paths), "store": store}).encode() + b"\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # it stopped: the reader says so to every job it did not answer

    def _read(self, lock: threading.Condition) -> None:
        proc = self.proc
        assert proc.stdout is not None
        while True:
            try:
                line = proc.stdout.readline()
            except (OSError, ValueError):
                line = b""
            if not line:
                break
            n, fut = self.out.popleft()
            try:
                out = json.loads(line)["out"]
                if len(out) != n:
                    raise WorkerError(f"an image-check worker answered {len(out)} images for {n}")
                fut.set_result(list(out))
            except Exception as e:  # a garbled answer: that job's error
                fut.set_exception(e)
            with lock:
                lock.notify_all()
        closed = proc.stdin is None or proc.stdin.closed  # by us; else it stopped on its own
        dead = WorkerError("the image-check workers were closed" if closed else
                           f"an image-check worker stopped (exit code {proc.wait()}){self._stderr()}")
        with lock:  # no job is sent to it from here on, and every job sent is answered
            self.dead = dead
            while self.out:
                self.out.popleft()[1].set_exception(dead)
            lock.notify_all()

    def _stderr(self) -> str:
        self.log.seek(0)
        tail = self.log.read()[-2000:].decode("utf-8", "replace").strip()
        return f": {tail.splitlines()[-1]}" if tail else ""

    def close(self) -> None:
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.reader is not None:
            self.reader.join()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()


DEPTH = 3  # jobs written to a worker ahead of its answers
# A worker's niceness above its parent's. The parent writes every image's rows and is the import's longest
# path once the images are small: at equal priority three busy processes on two cores gave it two thirds of
# a core. Measured on the 20k / 200k import (2 cores): 5.4-5.6 s at 0, 5.0-5.2 s at 10 and 19.
WORKER_NICE = 10


class WorkerPool:
    """``n`` worker processes. :meth:`submit` writes a job to the least busy worker (waiting while every one
    has :data:`DEPTH` jobs) and returns the future of its answer; :meth:`check` waits for it. A context
    manager: leaving it closes every worker."""

    def __init__(self, n: int) -> None:
        self._all: list[_Worker] = []
        self._cond = threading.Condition()
        try:
            for _ in range(n):
                self._all.append(_Worker())
            for w in self._all:  # started side by side, then each waited for
                w.ready(self._cond)
        except BaseException:
            self.close()
            raise

    def submit(self, paths: Sequence[str], store: str | None) -> Future[list[Any]]:
        fut: Future[list[Any]] = Future()
        with self._cond:
            while True:
                worker = min(self._all, key=lambda w: len(w.out))
                if len(worker.out) < DEPTH or worker.dead is not None:
                    break
                self._cond.wait()
            worker.send(paths, store, fut)
        return fut

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids."""
        return [w.proc.pid for w in self._all]

    def check(self, paths: Sequence[str], store: str | None) -> list[Any]:
        return self.submit(paths, store).result()

    def close(self) -> None:
        for w in self._all:
            w.close()
        self._all.clear()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_STORES: dict[str, BlobStore] = {}  # a worker's stores (one connection each to the small images' table)


def _answer(paths: list[str], store: str | None) -> list[Any]:
    from .blobs import BlobStore

    if store and store not in _STORES:
        _STORES[store] = BlobStore(Path(store))
    sink = BlobSink(_STORES[store]) if store else None
    outcomes = check_chunk([(p, None) for p in paths], sink)
    written = set(sink.written) if sink is not None else set()
    out: list[Any] = []
    for kind, value in outcomes:
        if isinstance(value, ImageCheck):
            out.append(["ok", [value.width, value.height, value.format, value.sha256, value.nbytes, value.phash],
                        value.sha256 in written])
        elif isinstance(value, OSError):
            out.append(["store", value.errno, value.strerror or str(value), value.filename])
        else:
            out.append([kind, str(value)])
    return out


def serve() -> None:
    """A worker's main loop: one job per input line, one answer per output line, until the input closes."""
    from . import images, phash  # noqa: F401 - loaded before saying ready

    try:  # below the process writing the rows, which every checked image waits for (see WORKER_NICE)
        os.nice(WORKER_NICE)
    except (AttributeError, OSError):  # not on this platform, or not allowed: the same speed, less well shared
        pass

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(b'{"ready": true}\n')
    stdout.flush()
    for line in stdin:
        job = json.loads(line)
        stdout.write(json.dumps({"out": _answer(job["paths"], job["store"])}).encode() + b"\n")
        stdout.flush()
