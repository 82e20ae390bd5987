"""A large import writes its rows while its images are still being checked (issue 17, import speed): the rows of
the images checked so far go in (invisibly, under the pending import's shadow) while the workers check the
rest; the splits are planned once every image is checked and the few rows the plan puts elsewhere are moved
before the import becomes visible. The result is the one-transaction path's, row for row; the errors are
those of the checks-first order (a bad image anywhere, then a wrong declared size); a failure anywhere stops
the checks and leaves no row and no file."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from benchmarks.bench_store import make_coco
from tests.data.test_check_workers import leftovers
from tests.data.test_import_scale import _rows
from workbench.data import Workspace, aggregates, image_pool, staged
from workbench.data.formats import get_reader
from workbench.data.image_pool import POOL_ENV, WORKERS_ENV
from workbench.data.transfer import import_source
from workbench.errors import ImageError, ImportFormatError

N = 150  # x 8 boxes: 1,350 rows, a staged import (STAGE_ROWS 1,000)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return make_coco(tmp_path / "src", N, 8)


def _pool(monkeypatch, kind: str) -> None:
    monkeypatch.setenv(WORKERS_ENV, "2")
    monkeypatch.setenv(POOL_ENV, kind)
    monkeypatch.setattr(staged, "PAUSE_S", 0.0)
    monkeypatch.setattr(staged, "FIRST_ROWS", 50)  # several transactions


def test_rows_go_in_while_the_last_images_are_checked_and_show_only_at_the_end(tmp_path, src, monkeypatch):
    """The check of the last images waits until a transaction of rows committed: with the old order (every
    check first, then the rows) it would wait in vain. Meanwhile another connection sees no dataset."""
    _pool(monkeypatch, "thread")
    committed = threading.Event()
    monkeypatch.setattr(staged, "ON_CHUNK", lambda took: committed.set())
    seen: dict[str, object] = {}
    real = image_pool.check_chunk

    def last_waits(jobs, sink=None):
        if any(path is not None and path.endswith(f"im{N - 1:06d}.png") for path, _data in jobs):
            seen["rows first"] = committed.wait(20)
            with Workspace(tmp_path / "ws") as other:  # a second connection, as another tab has
                seen["datasets meanwhile"] = [d.name for d in other.datasets()]
                seen["examples meanwhile"] = other.conn.execute("SELECT COUNT(*) FROM examples").fetchone()[0]
        return real(jobs, sink)

    monkeypatch.setattr(image_pool, "check_chunk", last_waits)
    with Workspace(tmp_path / "ws") as ws:
        result = import_source(ws, "d", src, "coco", images_dir=tmp_path / "src" / "images")
        assert len(result.ids) == N and aggregates.verify(ws.conn) == [] and staged.pending(ws.conn) == []
        got = _rows(ws, "d")
    assert seen["rows first"] is True
    assert seen["datasets meanwhile"] == [] and 0 < seen["examples meanwhile"] < N  # written, not visible
    monkeypatch.setattr(image_pool, "check_chunk", real)
    monkeypatch.setattr(staged, "ON_CHUNK", None)
    with Workspace(tmp_path / "ref") as ref:  # the reference: every check first, one transaction
        batch = get_reader("coco").read(src, images_dir=tmp_path / "src" / "images")
        with ref.transaction():
            ref.create_dataset("d", "detection", classes=batch.classes).import_batch(batch)
        want = _rows(ref, "d")
    assert got == want
    assert {r[4] for r in got[0]} == {"train", "val", "test"}  # the plan moved rows written as train


def test_an_import_into_a_dataset_with_copies_of_its_images_plans_as_before(tmp_path, monkeypatch):
    """Planned after the rows are written, the splits still see the dataset as it was, without the rows just
    written: the same splits as the one-transaction path, for a new dataset and for one that holds copies of
    the images (the second import brings the same images, half of them under other names)."""
    _pool(monkeypatch, "process")
    monkeypatch.setattr(image_pool, "PROCESS_MIN_IMAGES", 10)
    first = make_coco(tmp_path / "a", N, 8)
    second = make_coco(tmp_path / "b", N, 8)
    doc = json.loads(second.read_text())
    for im in doc["images"][::2]:  # every other image renamed: same content, another name
        (tmp_path / "b" / "images" / im["file_name"]).rename(tmp_path / "b" / "images" / f"x{im['file_name']}")
        im["file_name"] = f"x{im['file_name']}"
    second.write_text(json.dumps(doc))
    with Workspace(tmp_path / "ws") as ws:
        import_source(ws, "d", first, "coco", images_dir=tmp_path / "a" / "images")
        import_source(ws, "d", second, "coco", images_dir=tmp_path / "b" / "images")
        got = _rows(ws, "d")
        assert aggregates.verify(ws.conn) == []
    with Workspace(tmp_path / "ref") as ref:
        for path in (first, second):
            batch = get_reader("coco").read(path, images_dir=path.parent / "images")
            with ref.transaction():
                ds = ref.dataset("d") if ref.has_dataset("d") else ref.create_dataset("d", "detection",
                                                                                       classes=batch.classes)
                ds.import_batch(batch)
        want = _rows(ref, "d")
    assert got == want and len(got[0]) == 2 * N


@pytest.mark.parametrize("into", ["new", "existing"])
def test_a_bad_image_found_after_rows_were_written_is_said_and_leaves_nothing(tmp_path, src, monkeypatch, into):
    _pool(monkeypatch, "process")
    monkeypatch.setattr(image_pool, "PROCESS_MIN_IMAGES", 10)
    bad = tmp_path / "src" / "images" / f"im{N - 2:06d}.png"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated: found by the decode, after most rows went in
    held: list[float] = []
    monkeypatch.setattr(staged, "ON_CHUNK", held.append)
    with Workspace(tmp_path / "ws") as ws:
        if into == "existing":
            ws.create_dataset("d", "detection", classes="a,b,c")
        with pytest.raises(ImageError) as e:
            import_source(ws, "d", src, "coco", images_dir=tmp_path / "src" / "images")
        assert e.value.file == str(bad) and e.value.record == f"image {N - 1}"
        assert ws.has_dataset("d") == (into == "existing")
        assert leftovers(ws) == (0, 0, [], []) and staged.pending(ws.conn) == []
        assert aggregates.verify(ws.conn) == [] and ws.check() == []
    assert len(held) > 3  # rows had been written (and were removed)


def test_a_wrong_size_before_a_bad_image_says_the_image_as_the_reader_did(tmp_path, src, monkeypatch):
    _pool(monkeypatch, "process")
    monkeypatch.setattr(image_pool, "PROCESS_MIN_IMAGES", 10)
    doc = json.loads(src.read_text())
    doc["images"][3]["width"] = 33  # a wrong declared size early on
    src.write_text(json.dumps(doc))
    with Workspace(tmp_path / "ws") as ws:
        with pytest.raises(ImportFormatError) as e:
            import_source(ws, "d", src, "coco", images_dir=tmp_path / "src" / "images")
        assert (e.value.record, e.value.field) == ("image 4", "width") and "33x24" in str(e.value)
        assert leftovers(ws) == (0, 0, [], [])
        bad = tmp_path / "src" / "images" / f"im{N - 1:06d}.png"
        bad.write_bytes(b"not a png")  # and a bad image at the very end: it is said first, as before
        with pytest.raises(ImageError) as e2:
            import_source(ws, "d", src, "coco", images_dir=tmp_path / "src" / "images")
        assert e2.value.file == str(bad)
        assert leftovers(ws) == (0, 0, [], []) and ws.datasets() == []


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_a_failure_while_rows_are_written_stops_the_checks_and_leaves_no_file(tmp_path, src, monkeypatch, kind):
    _pool(monkeypatch, kind)
    monkeypatch.setattr(image_pool, "PROCESS_MIN_IMAGES", 10)
    commits: list[float] = []

    def failing(took: float) -> None:
        commits.append(took)
        if len(commits) == 2:
            raise OSError(28, "No space left on device")  # the database's disk fills up mid-import

    monkeypatch.setattr(staged, "ON_CHUNK", failing)
    with Workspace(tmp_path / "ws") as ws:
        with pytest.raises(OSError, match="No space"):
            import_source(ws, "d", src, "coco", images_dir=tmp_path / "src" / "images")
        monkeypatch.setattr(staged, "ON_CHUNK", None)
        assert leftovers(ws) == (0, 0, [], []) and ws.datasets() == [] and staged.pending(ws.conn) == []
        result = import_source(ws, "d", src, "coco", images_dir=tmp_path / "src" / "images")  # and again: whole
        assert len(result.ids) == N and len(ws.blobs.all()) == N and aggregates.verify(ws.conn) == []


def test_an_interrupt_while_rows_are_written_stops_the_workers_and_leaves_nothing(tmp_path, src, monkeypatch):
    """Ctrl-C in a notebook mid-import: the checks still running are stopped (no worker left checking or
    storing), the rows and files go, and the next import of the same source is whole."""
    from workbench.data import check_workers

    _pool(monkeypatch, "process")
    monkeypatch.setattr(image_pool, "PROCESS_MIN_IMAGES", 10)
    pools: list[check_workers.WorkerPool] = []
    real_init = check_workers.WorkerPool.__init__

    def keep(self, n):
        real_init(self, n)
        pools.append(self)

    monkeypatch.setattr(check_workers.WorkerPool, "__init__", keep)

    said: list[float] = []

    def interrupt(took: float) -> None:  # once: the clean-up's own transactions go through
        said.append(took)
        if len(said) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(staged, "ON_CHUNK", interrupt)
    with Workspace(tmp_path / "ws") as ws:
        with pytest.raises(KeyboardInterrupt):
            import_source(ws, "d", src, "coco", images_dir=tmp_path / "src" / "images")
        assert pools and all(not p._all for p in pools)  # every worker closed (and waited for)
        assert leftovers(ws) == (0, 0, [], []) and ws.datasets() == [] and staged.pending(ws.conn) == []
        monkeypatch.setattr(staged, "ON_CHUNK", None)
        result = import_source(ws, "d", src, "coco", images_dir=tmp_path / "src" / "images")
        assert len(result.ids) == N and aggregates.verify(ws.conn) == []


def _roboflow_coco(root: Path) -> Path:
    """Roboflow's COCO export: train/ valid/ test/ folders, each one COCO source (read test, train, valid)."""
    for k, (name, n) in enumerate((("train", 80), ("valid", 30), ("test", 30))):
        make_coco(root / name, n, 8, seed=k + 1)
    return root


def test_a_source_in_split_folders_writes_while_its_parts_are_checked(tmp_path, monkeypatch):
    """Each part's checks run on while the next part is read and the rows are written (a chain of the
    parts' checks); the rows are the one-transaction path's."""
    from workbench.data.formats import ChainedChecks, defer_checks
    from workbench.data.source_splits import read_source

    _pool(monkeypatch, "process")
    monkeypatch.setattr(image_pool, "PROCESS_MIN_IMAGES", 10)
    src = _roboflow_coco(tmp_path / "rf")
    with defer_checks():
        pending = read_source("coco", src)
    assert isinstance(pending.checks, ChainedChecks) and len(pending.checks.parts) == 3
    pending.finish_checks()
    assert all(it.checked is not None for it in pending.items)
    with Workspace(tmp_path / "ws") as ws:
        result = import_source(ws, "d", src, "coco")
        assert len(result.ids) == 140 and aggregates.verify(ws.conn) == []
        got = _rows(ws, "d")
    with Workspace(tmp_path / "ref") as ref:
        batch = read_source("coco", src)  # every check waited for, part by part
        assert batch.checks is None
        with ref.transaction():
            ref.create_dataset("d", "detection", classes=batch.classes).import_batch(batch)
        want = _rows(ref, "d")
    assert got == want and {r[4] for r in got[0]} == {"train", "val", "test"}


def test_an_earlier_parts_bad_image_is_said_before_a_later_parts_bad_record(tmp_path, monkeypatch):
    """train/ (read second) has a bad image, valid/ (read last) a bad category: the image is said, as when
    each part's checks were waited for before the next part was read; nothing is left."""
    _pool(monkeypatch, "process")
    monkeypatch.setattr(image_pool, "PROCESS_MIN_IMAGES", 10)
    src = _roboflow_coco(tmp_path / "rf")
    bad = src / "train" / "images" / "im000070.png"
    bad.write_bytes(bad.read_bytes()[:30])
    doc = json.loads((src / "valid" / "annotations.json").read_text())
    doc["annotations"][3]["category_id"] = 7
    (src / "valid" / "annotations.json").write_text(json.dumps(doc))
    with Workspace(tmp_path / "ws") as ws:
        with pytest.raises(ImageError) as e:
            import_source(ws, "d", src, "coco")
        assert e.value.file == str(bad)
        assert leftovers(ws) == (0, 0, [], []) and ws.datasets() == []
        bad.write_bytes((src / "train" / "images" / "im000071.png").read_bytes())  # mended: the record's turn
        with pytest.raises(ImportFormatError, match="category"):
            import_source(ws, "d", src, "coco")
        assert leftovers(ws) == (0, 0, [], [])


def test_an_import_holds_the_cyclic_gc_off_and_puts_it_back_as_it_was(tmp_path, monkeypatch):
    """The import's millions of objects hold no cycles: the collector is off while it runs (its passes cost
    0.7 s of a 4.6 s import), and back on after it, after a failed one too, and left off if it was off."""
    import gc

    from tests.data.test_decode_once import coco_folder
    from workbench.data.basics import gc_paused
    from workbench.data.transfer import import_source
    from workbench.errors import ImportFormatError

    src = coco_folder(tmp_path / "src", 12)
    seen = []
    assert gc.isenabled()
    with Workspace(tmp_path / "ws") as ws:
        import_source(ws, "d", src, "coco", progress=lambda p: seen.append(gc.isenabled()))
        assert seen and not any(seen) and gc.isenabled()
        (tmp_path / "bad.json").write_text("{not json")
        with pytest.raises(ImportFormatError):
            import_source(ws, "e", tmp_path / "bad.json", "coco")
        assert gc.isenabled()
        gc.disable()
        try:
            with gc_paused():
                with gc_paused():
                    assert not gc.isenabled()
                assert not gc.isenabled()
            assert not gc.isenabled()  # it was off: left off
        finally:
            gc.enable()
