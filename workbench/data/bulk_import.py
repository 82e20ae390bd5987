"""Large imports: validate once, store the images on all cores, write in short transactions.

:meth:`Dataset.import_batch` reads every image again to hash and keep its bytes, then stores them one by one;
for a large batch (more rows than :func:`staged.worth_staging` lets into one transaction) that second pass
held every image's bytes in memory at once and ran on one core. Here, the same checks, cheaper:

* the items' annotations are checked against the sizes the one decode found (``item.checked``: the reader
  decoded every image once, :mod:`.image_pool`), without reading any file again;
* the images are stored by a pool of threads (file reads, sha256 and writes release the GIL) while the
  splits are planned from the checks (sha256 and pHash); then :mod:`.staged` writes the rows in short
  transactions. (Storing while the rows were written made both slower on a loaded machine:
  ``executemany`` gives the GIL up at every row and waits for it again behind the storing threads; for
  20,000 images / 200,000 boxes on 2 cores at load 6, 21.5 s and 12 s of CPU against 25.6 s and 13.8 s;
  at load 3, the same within the noise, 12.9 s against 12.5 s.) Each file is read once
  more and its sha256 compared with the one checked: a file changed since it was checked is refused (the
  plan was made from the check; nothing is kept, import again). No image's bytes are kept: the prepared items carry ``None`` where
  ``import_batch`` kept the bytes (:mod:`.staged` re-reads a file only if a concurrent failed import
  removed its blob);
  Within an import that stores while it checks (``image_pool.storing_into``: ``transfer.import_source``), the
  images the checks stored are not touched again;
* the rows become visible at once, in one short final commit, after every image was flushed to disk.

All or nothing as before: a failure (a storing error included) removes the rows and the image files this
import wrote, and errors name the file, record and field as ``import_batch``'s do. Imports inside a caller's
transaction, and small ones, go through :meth:`Dataset.import_batch` unchanged.

A batch whose checks are still running (``batch.checks``: ``transfer.import_source`` reads a single COCO
file within ``formats.defer_checks``) takes :func:`_import_while_checking` instead: its rows are written as
the checks come in, invisible under the pending import's shadow, so that the writing (one core) runs beside
the checking (the others) instead of after it; the errors are still those of the checks-first order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from ..progress import Progress, ProgressFn, Stage
from . import staged
from .basics import gc_paused
from .blobs import sha256_bytes
from .image_pool import check_items, current_sink, import_workers
from .images import ImageCheck, check_image
from .limits import MAX_SHAPES_PER_EXAMPLE, check_classes, check_shapes
from .records import KINDS_FOR_TYPE, ImportBatch, ImportItem
from .task_types import type_info

if TYPE_CHECKING:
    from .dataset import Dataset

__all__ = ["import_batch", "is_large"]

_STORE_CHUNK = 64  # images per storing job

Prepared = tuple[ImportItem, None, str, ImageCheck]


def is_large(batch: ImportBatch) -> bool:
    """Whether ``batch`` is written in short transactions (:func:`staged.worth_staging`'s measure)."""
    return staged.worth_staging((it,) for it in batch.items)


def import_batch(ds: Dataset, batch: ImportBatch, *, author: str = "import", directory: str | None = None,
                 source_file: str | None = None, progress: ProgressFn | None = None) -> list[int]:
    """:meth:`Dataset.import_batch` for ``ds``: the same result, rows and errors; large batches outside a
    caller's transaction take the path of the module doc."""
    if ds.conn.in_transaction or not is_large(batch):  # the one-transaction path (never back here)
        batch.finish_checks()
        return ds.import_batch(batch, author=author, directory=directory, source_file=source_file,
                               progress=progress)
    with gc_paused():  # (its objects hold no cycles: see basics.gc_paused)
        return _import_large(ds, batch, author, directory, source_file, progress)


def _import_large(ds: Dataset, batch: ImportBatch, author: str, directory: str | None, source_file: str | None,
                  progress: ProgressFn | None) -> list[int]:
    known = {c.name for c in ds.classes} | {c.name for c in batch.classes}
    if batch.checks is not None and current_sink() is not None:
        return _import_while_checking(ds, batch, known, author, directory, source_file, progress)
    batch.finish_checks()
    prepared = _checked(ds, batch, known, source_file, progress)
    if batch.info and ds.source_info and ds.source_info != batch.info:
        batch.report.note(f"dataset '{ds.name}' keeps the info / licenses of its first source")
    rows: list[tuple[Any, ...]] = list(prepared)
    storer = _Storer(ds, prepared, source_file, progress)
    try:
        splits, keys = ds.plan_splits(rows)  # from the checks, while the images are stored
        storer.ready(len(rows))  # all stored and flushed before the rows are written (see the module doc)
        ids = staged.import_prepared(ds, rows, batch.classes, author, directory, splits, keys, batch.info,
                                     ready=storer.ready, progress=progress)
    except BaseException:
        storer.stop()
        ds.drop_unreferenced(storer.written, rolled_back_later=False)
        raise
    ds.warm_duplicates(len(ids), progress)
    return ids


def _import_while_checking(ds: Dataset, batch: ImportBatch, known: set[str], author: str, directory: str | None,
                           source_file: str | None, progress: ProgressFn | None) -> list[int]:
    """The rows of a batch whose images are still being checked (and stored: ``image_pool.storing_into``),
    written as the checks come in, in item order: each short transaction waits for its items' checks
    (``batch.checks``) and checks their annotations against the decoded sizes first. The splits are planned
    once every image is checked (copies of one image are found from all of them): until then the rows carry
    the source's split or ``train``, and the few the plan puts elsewhere (the val / test share) are moved
    before the rows become visible (``staged.import_prepared``'s ``replan``). Errors are those of the
    checks-first order: a bad image anywhere, then a wrong declared size, then an annotation."""
    from .splits import split_key

    checks = batch.checks
    assert checks is not None
    _check_limits(ds, batch, known, source_file)
    items = batch.items
    dtype = ds.type  # (a property that reads the dataset's row: once, not per item)
    allowed = KINDS_FOR_TYPE[dtype]
    seed = ds.split_settings.seed
    prepared: list[tuple[Any, ...]] = [(it, None, "", None) for it in items]  # filled in by ready()
    splits = [it.split or "train" for it in items]  # provisional (see above)
    keys = [0.0] * len(items)
    done = 0

    def ready(end: int) -> None:
        nonlocal done
        if end <= done:
            return
        checks.wait(end)
        for idx in range(done, end):
            item = items[idx]
            info = item.checked
            assert info is not None
            try:
                _check_annotations(item, idx, info, allowed, known, dtype, source_file)
            except ValidationError:
                checks.drain()  # a bad image or size anywhere is said first, as when the checks came first
                raise
            prepared[idx] = (item, None, info.sha256, info)
            keys[idx] = split_key(seed, info.sha256, item.file_name)
        done = end
        if end >= len(items):
            batch.checks = None  # all checked: from here on the batch is an ordinary one
            sink = current_sink()
            if sink is not None and sink.written:
                ds.workspace.blobs.sync()  # every image on disk before the rows become visible

    def replan(written_from: int | None) -> tuple[list[str], list[float]]:
        return ds.plan_splits(prepared, written_from=written_from)

    ids = staged.import_prepared(ds, prepared, batch.classes, author, directory, splits, keys, batch.info,
                                 ready=ready, replan=replan, progress=_after(checks.finished, progress))
    ds.warm_duplicates(len(ids), progress)
    return ids


def _after(finished: Callable[[], bool], progress: ProgressFn | None) -> ProgressFn | None:
    """``progress``, silent until ``finished()``: the rows are written while the images are still checked
    by other threads, whose stage says how far they are; the rows' stage speaks once theirs has ended (its
    events come from this thread then: one stage at a time on the terminal)."""
    if progress is None:
        return None
    said = False

    def forward(event: Progress) -> None:
        nonlocal said
        if said or finished():
            said = True
            progress(event)

    return forward


def _check_limits(ds: Dataset, batch: ImportBatch, known: set[str], source_file: str | None) -> None:
    """What ``Dataset._prepare`` checks before it reads any image: the type, the class count, the shapes
    per item."""
    dtype = ds.type
    if batch.type is not None and batch.type != dtype and batch.type not in type_info(dtype).also_takes:
        raise ValidationError(f"the source holds {batch.type} data but dataset '{ds.name}' is {dtype}",
                              file=source_file or batch.source or None, field="type")
    check_classes(ds.name, len(known), file=source_file or batch.source or None)
    for idx, item in enumerate(batch.items):
        if len(item.annotations) > MAX_SHAPES_PER_EXAMPLE:  # before any image is read
            file, record = _where(item, idx, source_file)
            check_shapes(len(item.annotations), file=file, record=record)


def _where(item: ImportItem, idx: int, source_file: str | None) -> tuple[str | None, object]:
    file = str(item.path) if item.path else (item.file_name or source_file)
    return file, item.record if item.record is not None else idx


def _checked(ds: Dataset, batch: ImportBatch, known: set[str], source_file: str | None,
             progress: ProgressFn | None) -> list[Prepared]:
    """``Dataset._prepare``'s checks, in its order (limits, images, annotations), against the decoded sizes."""
    dtype = ds.type
    _check_limits(ds, batch, known, source_file)
    check_items(batch.items, progress=progress)
    allowed = KINDS_FOR_TYPE[dtype]
    out: list[Prepared] = []
    for idx, item in enumerate(batch.items):
        info = item.checked
        assert info is not None
        _check_annotations(item, idx, info, allowed, known, dtype, source_file)
        out.append((item, None, info.sha256, info))
    return out


def _check_annotations(item: ImportItem, idx: int, info: ImageCheck, allowed: Sequence[str], known: set[str],
                       dtype: str, source_file: str | None) -> None:
    for ann in item.annotations:
        try:
            if ann.kind not in allowed:
                raise ValidationError(f"a {dtype} dataset takes {'/'.join(allowed)} annotations, not {ann.kind}",
                                      field="kind")
            if ann.label not in known:
                raise ValidationError(f"unknown class '{ann.label}'", field="label")
            ann.check_inside(info.width, info.height)
        except ValidationError as e:
            file, record = _where(item, idx, source_file)
            raise e.located(file=file, record=record) from None


def _store_chunk(ds: Dataset, chunk: Sequence[tuple[int, Prepared]], source_file: str | None
                 ) -> list[tuple[int, ImageCheck | None, bool] | BaseException]:
    """Store a run of images (in a worker thread): per image (index, a new check when the file changed since
    it was checked, whether the blob was written now), or the error that stopped it."""
    blobs = ds.workspace.blobs
    out: list[tuple[int, ImageCheck | None, bool] | BaseException] = []
    for idx, (item, _none, digest, _info) in chunk:
        try:
            file, record = _where(item, idx, source_file)
            try:
                data = item.read_bytes()
            except OSError as e:
                raise ValidationError(f"cannot read image: {e.strerror or e}", file=file, record=record,
                                      field="file_name") from None
            fresh = None
            if sha256_bytes(data) != digest:  # the file changed since it was checked: check it again
                fresh = check_image(data, file=file, record=record)
                digest = fresh.sha256
            _, new = blobs.put(data, digest, fsync=False)
            out.append((idx, fresh, new))
        except BaseException as e:  # handed back in item order: the first bad item's error is raised
            out.append(e)
            break
    return out


class _Storer:
    """Stores the images in worker threads from its creation on; :meth:`ready` waits for a prefix of them
    (:func:`import_batch` waits for all before the rows are written; :func:`staged.import_prepared` calls
    it again before each transaction, which then returns at once)."""

    def __init__(self, ds: Dataset, prepared: list[Prepared], source_file: str | None,
                 progress: ProgressFn | None) -> None:
        self.prepared = prepared
        self.source_file = source_file
        self.ds = ds
        self.written: list[str] = []
        sink = current_sink()  # images the checks stored already, from the bytes they checked
        self.sink_wrote = bool(sink and sink.written)
        stored = sink.stored if sink is not None else set()
        indexed = [(k, p) for k, p in enumerate(prepared) if p[2] not in stored]
        self.stage = Stage(progress, "import", "storing images", len(indexed), "images")
        self.pool = ThreadPoolExecutor(max_workers=import_workers(max(1, len(indexed))),
                                       thread_name_prefix="workbench-store")
        self.jobs = [(indexed[k][0], indexed[min(k + _STORE_CHUNK, len(indexed)) - 1][0] + 1,
                      self.pool.submit(_store_chunk, ds, indexed[k:k + _STORE_CHUNK], source_file))
                     for k in range(0, len(indexed), _STORE_CHUNK)]
        self.taken = 0  # jobs whose results were taken
        self.synced = False

    def _take(self, result: list[tuple[int, ImageCheck | None, bool] | BaseException]) -> None:
        for r in result:  # written files first: they are removed if anything fails
            if not isinstance(r, BaseException) and r[2]:
                self.written.append(r[1].sha256 if r[1] is not None else self.prepared[r[0]][2])
        for r in result:
            if isinstance(r, BaseException):
                raise r
            idx, fresh, _new = r
            if fresh is not None:  # the split plan and the rows were made from the check: refuse, change nothing
                item = self.prepared[idx][0]
                file, record = _where(item, idx, self.source_file)
                raise ValidationError("the image file changed after it was checked (during the import); import "
                                      "again", file=file, record=record, field="file_name")
        self.stage.advance(len(result))

    def ready(self, end: int) -> None:
        """Return once items ``[0, end)`` are stored (the last call also flushes them to disk); raises the
        first storing error in item order."""
        while self.taken < len(self.jobs) and self.jobs[self.taken][0] < end:
            result = self.jobs[self.taken][2].result()
            self.taken += 1
            self._take(result)
        if end >= len(self.prepared) and not self.synced:
            self.pool.shutdown(wait=True)
            self.stage.close()
            if self.written or self.sink_wrote:
                self.ds.workspace.blobs.sync()
            self.synced = True

    def stop(self) -> None:
        """After a failure: cancel what has not started, wait for the rest, note every file written."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        for _start, _end, fut in self.jobs[self.taken:]:
            if fut.done() and not fut.cancelled():
                for r in fut.result():
                    if not isinstance(r, BaseException) and r[2]:
                        self.written.append(r[1].sha256 if r[1] is not None else self.prepared[r[0]][2])
        self.taken = len(self.jobs)
