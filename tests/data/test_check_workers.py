"""Images checked and stored in one pass (issue 17, import speed): each image file is read once on its way into
the store, worker processes (plain children, no multiprocessing) check many small images, and a failure
anywhere -- a bad image, a bad annotation, a full disk, a worker that dies -- leaves no file and no row."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.data.test_decode_once import coco_folder, stored
from workbench.data import Workspace, check_workers, image_pool
from workbench.data.blobs import BlobStore
from workbench.data.image_pool import POOL_ENV, WORKERS_ENV
from workbench.data.transfer import import_source
from workbench.errors import ImportFormatError

ROOT = Path(__file__).resolve().parents[2]


def leftovers(w: Workspace) -> tuple[int, int, list[str], list[Path]]:
    ex = w.conn.execute("SELECT COUNT(*) FROM examples").fetchone()[0]
    blobs = w.conn.execute("SELECT COUNT(*) FROM blobs").fetchone()[0]
    return ex, blobs, sorted(w.blobs.all()), w.blobs.temp_files()


def test_each_image_file_is_read_once_on_its_way_into_the_store(tmp_path, monkeypatch):
    """The check stores the bytes it read and hashed; before, the store read every file a second time."""
    src = coco_folder(tmp_path / "src", 40)
    monkeypatch.setenv(WORKERS_ENV, "2")
    monkeypatch.setenv(POOL_ENV, "thread")  # reads in this process, where they can be counted
    monkeypatch.setattr("workbench.data.staged.worth_staging", lambda rows: True)  # the large-import path
    reads: list[str] = []
    real_open, real_read_bytes = os.open, Path.read_bytes

    def counting_open(path, *args, **kwargs):  # how read_image_file opens it
        if str(path).endswith(".jpg"):
            reads.append(Path(path).name)
        return real_open(path, *args, **kwargs)

    def counting_read_bytes(self: Path) -> bytes:  # any other way of reading it
        if self.suffix == ".jpg":
            reads.append(self.name)
        return real_read_bytes(self)

    monkeypatch.setattr(os, "open", counting_open)
    monkeypatch.setattr(Path, "read_bytes", counting_read_bytes)
    with Workspace(tmp_path / "ws") as w:
        _, ids = import_source(w, "d", src, "coco")
        assert len(ids) == 40
        assert sorted(reads) == sorted(f"im_{i:03d}.jpg" for i in range(40))  # once each
        for digest in w.blobs.all():  # each file holds the bytes its name (their sha256) was made from
            assert hashlib.sha256(w.blobs.get(digest)).hexdigest() == digest


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_a_bad_annotation_after_the_images_were_stored_leaves_no_file(tmp_path, monkeypatch, kind):
    src = coco_folder(tmp_path / "src", 40)
    doc = json.loads((src / "annotations.json").read_text())
    doc["annotations"][-1]["category_id"] = 7  # found while the images are checked (and stored)
    (src / "annotations.json").write_text(json.dumps(doc))
    monkeypatch.setenv(WORKERS_ENV, "2")
    monkeypatch.setenv(POOL_ENV, kind)
    with Workspace(tmp_path / "ws") as w:
        with pytest.raises(ImportFormatError, match="category"):
            import_source(w, "d", src, "coco")
        assert leftovers(w) == (0, 0, [], [])
        assert not w.has_dataset("d")


def test_a_full_disk_while_storing_stops_the_import_and_removes_its_files(tmp_path, monkeypatch):
    src = coco_folder(tmp_path / "src", 40)
    monkeypatch.setenv(WORKERS_ENV, "2")
    monkeypatch.setenv(POOL_ENV, "thread")
    real = BlobStore.put_many
    calls = []

    def filling(self, items, *, fsync=False):
        calls.extend(d for _data, d in items)
        if len(calls) > 25:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.root))
        return real(self, items, fsync=fsync)

    monkeypatch.setattr(BlobStore, "put_many", filling)
    with Workspace(tmp_path / "ws") as w:
        with pytest.raises(OSError) as e:
            import_source(w, "d", src, "coco")
        assert e.value.errno == errno.ENOSPC
        assert leftovers(w) == (0, 0, [], [])


def test_a_full_small_image_table_is_a_full_disk_and_the_import_leaves_nothing(tmp_path, monkeypatch):
    """SQLite's own "database or disk is full" (the table capped with ``max_page_count``), not a stand-in:
    it is the ENOSPC a file write would raise, naming the table, and the import leaves no image and no row."""
    src = coco_folder(tmp_path / "src", 40)
    monkeypatch.setenv(WORKERS_ENV, "2")
    monkeypatch.setenv(POOL_ENV, "thread")
    real = BlobStore._db
    seen: list = []

    def capped(self, create):
        conn = real(self, create)
        if conn is not None and not any(conn is c for c in seen):  # room for a few images, once
            seen.append(conn)
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages + 4}")
        return conn

    monkeypatch.setattr(BlobStore, "_db", capped)
    with Workspace(tmp_path / "ws") as w:
        with pytest.raises(OSError) as e:
            import_source(w, "d", src, "coco")
        assert e.value.errno == errno.ENOSPC and e.value.filename.endswith("small.sqlite")
        assert "full" in str(e.value)
        assert leftovers(w) == (0, 0, [], [])


@pytest.mark.parametrize("large", [False, True], ids=["one-transaction", "staged"])
def test_worker_processes_store_what_threads_store(tmp_path, monkeypatch, large):
    src = coco_folder(tmp_path / "src", 60)
    if large:
        monkeypatch.setattr("workbench.data.staged.worth_staging", lambda rows: True)
    out = []
    for kind in ("thread", "process"):
        monkeypatch.setenv(WORKERS_ENV, "2")
        monkeypatch.setenv(POOL_ENV, kind)
        with Workspace(tmp_path / f"ws_{kind}") as w:
            import_source(w, "d", src, "coco")
            out.append(stored(w))
    assert out[0] == out[1] and len(out[0][0]) == 60


def test_auto_takes_processes_for_many_image_files_only(tmp_path, monkeypatch):
    started: list[int] = []
    real = check_workers.WorkerPool.__init__

    def counting(self, n):
        started.append(n)
        real(self, n)

    monkeypatch.setattr(check_workers.WorkerPool, "__init__", counting)
    monkeypatch.setattr(image_pool, "PROCESS_MIN_IMAGES", 30)
    monkeypatch.delenv(POOL_ENV, raising=False)
    monkeypatch.setenv(WORKERS_ENV, "2")
    with Workspace(tmp_path / "few") as w:
        import_source(w, "d", coco_folder(tmp_path / "few_src", 20), "coco")
    assert started == []  # 20 files: threads
    with Workspace(tmp_path / "many") as w:
        _, ids = import_source(w, "d", coco_folder(tmp_path / "many_src", 40), "coco")
    assert started == [2] and len(ids) == 40
    monkeypatch.setenv(WORKERS_ENV, "1")
    with Workspace(tmp_path / "one") as w:
        import_source(w, "d", coco_folder(tmp_path / "many_src", 40), "coco")
    assert started == [2]  # one core (one worker): in this thread


@pytest.mark.parametrize("large", [False, True], ids=["one-transaction", "staged"])
def test_a_worker_that_dies_is_a_clear_error_and_leaves_nothing(tmp_path, monkeypatch, large):
    src = coco_folder(tmp_path / "src", 40)
    if large:
        monkeypatch.setattr("workbench.data.staged.worth_staging", lambda rows: True)
    monkeypatch.setenv(WORKERS_ENV, "2")
    monkeypatch.setenv(POOL_ENV, "process")
    monkeypatch.setattr(check_workers, "_CHILD", "import sys; print('{{\"ready\": true}}', flush=True); "
                        "sys.stdin.readline(); sys.stderr.write('MemoryError: out of memory\\n'); sys.exit(3)  # {root}")
    with Workspace(tmp_path / "ws") as w:
        with pytest.raises(check_workers.WorkerError, match=r"exit code 3.*MemoryError"):
            import_source(w, "d", src, "coco")
        assert leftovers(w) == (0, 0, [], [])
        assert not w.has_dataset("d")


def test_a_script_without_a_main_guard_imports_with_worker_processes(tmp_path):
    """multiprocessing's spawn / forkserver re-import the caller's ``__main__``: a top-level import in a script
    started its own workers again and failed ("An attempt has been made to start a new process before...")."""
    src = coco_folder(tmp_path / "src", 30)
    script = tmp_path / "top_level.py"
    script.write_text(
        "from workbench.data import Workspace\n"
        "from workbench.data.transfer import import_source\n"
        f"with Workspace({str(tmp_path / 'ws')!r}) as w:\n"
        f"    _, ids = import_source(w, 'd', {str(src)!r}, 'coco')\n"
        "print('imported', len(ids))\n")
    env = {**os.environ, POOL_ENV: "process", WORKERS_ENV: "2", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "imported 30"
    assert "start a new process" not in proc.stderr


KILLED_PUT = """
import os, sys, time
from pathlib import Path
from workbench.data.blobs import BlobStore, sha256_bytes

store = BlobStore(Path(sys.argv[1]) / "blobs")
data = b"half an image" * 4000  # larger than SMALL_BYTES: a file
real = os.write
def slow(fd, view):
    n = real(fd, bytes(view[:5000]))
    print("READY", flush=True)
    time.sleep(60)
    return n
os.write = slow
store.put(data, sha256_bytes(data), fsync=False)
"""


def test_a_killed_image_write_leaves_a_temp_file_gc_reclaims_and_no_image(tmp_path):
    """``BlobStore.put`` writes ``.<hash>.<pid>-<thread>.tmp`` and renames it: killed in the middle, the store
    has no image of that hash, ``check`` finds nothing wrong and ``gc`` removes the temp file once it is old."""
    home = tmp_path / "ws"
    Workspace(home).close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_PUT, str(home)], stdout=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
    proc.kill()
    proc.wait()
    proc.stdout.close()
    temps = list((home / "blobs").rglob(".*.tmp"))
    digest = hashlib.sha256(b"half an image" * 4000).hexdigest()
    assert len(temps) == 1 and temps[0].name.startswith(f".{digest}.{proc.pid}-") and temps[0].suffix == ".tmp"
    with Workspace(home) as w:
        assert w.check() == [] and w.blobs.all() == set()
        assert w.gc(grace_s=0)["temp_removed"] == 1
    assert not list((home / "blobs").rglob(".*.tmp"))


def test_workers_that_cannot_start_leave_auto_to_threads_and_fail_a_named_process_pool(tmp_path, monkeypatch):
    src = coco_folder(tmp_path / "src", 40)
    monkeypatch.setenv(WORKERS_ENV, "2")
    monkeypatch.setattr(image_pool, "PROCESS_MIN_IMAGES", 10)
    monkeypatch.setattr(check_workers, "_CHILD", "import sys; sys.stderr.write('no such module\\n'); sys.exit(1)  # {root}")
    monkeypatch.setenv(POOL_ENV, "auto")
    with Workspace(tmp_path / "auto") as w:
        _, ids = import_source(w, "d", src, "coco")  # checked by threads instead, the same rows
        assert len(ids) == 40 and len(w.blobs.all()) == 40
    monkeypatch.setenv(POOL_ENV, "process")
    with Workspace(tmp_path / "named") as w:
        with pytest.raises(check_workers.WorkerError, match="did not start.*exit code 1.*no such module"):
            import_source(w, "d", src, "coco")
        assert leftovers(w) == (0, 0, [], [])


REALWORLD = Path(__file__).parent / "realworld"


@pytest.mark.parametrize("fmt,src,options", [
    ("coco", "splits/datumaro_roboflow/coco", {}),  # datumaro's Roboflow test assets (PROVENANCE there)
    ("yolo", "datumaro-yolo/strict", {"type": "detection"}),
    ("voc", "splits/datumaro_roboflow/voc", {}),  # Roboflow's flat VOC layout
    ("cvat", "datumaro-cvat/export_project", {"skip_unsupported": True}),  # CVAT's own export, via datumaro
], ids=lambda v: v if isinstance(v, str) and "/" not in v else None)
def test_files_other_tools_wrote_import_the_same_through_worker_processes(tmp_path, monkeypatch, fmt, src, options):
    """Real JPEGs and annotation files written by other tools: checked and stored by worker processes, the
    store holds exactly what threads store (rows, image rows, pHashes, files)."""
    got = []
    for kind in ("thread", "process"):
        monkeypatch.setenv(WORKERS_ENV, "2")
        monkeypatch.setenv(POOL_ENV, kind)
        with Workspace(tmp_path / kind) as w:
            _, ids = import_source(w, "d", REALWORLD / src, fmt, **options)
            assert ids
            got.append(stored(w))
    assert got[0] == got[1]


def test_workers_run_below_the_process_that_writes_the_rows():
    """The parent writes every image's rows (the import's longest path when images are small): its workers
    run ``WORKER_NICE`` below it, so three busy processes on two cores leave it a whole core."""
    with check_workers.WorkerPool(2) as pool:
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        theirs = [os.getpriority(os.PRIO_PROCESS, pid) for pid in pool.pids]
    assert theirs == [min(19, mine + check_workers.WORKER_NICE)] * 2


def test_reading_an_image_file_refuses_what_is_not_a_regular_file_or_too_large_without_blocking(tmp_path,
                                                                                                  monkeypatch):
    """The worker's read: opened without blocking, the open file checked (a FIFO would wait for a writer
    forever; a sparse giant costs nothing to make), then read whole."""
    from workbench.data import images
    from workbench.errors import ImageError

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImportFormatError, match="not a regular file"):
        images.read_image_file(fifo)  # returns at once (the test would hang here otherwise)
    big = tmp_path / "big.png"
    with open(big, "wb") as fh:
        fh.truncate(5000)
    monkeypatch.setattr(images, "MAX_BYTES", 4096)
    with pytest.raises(ImageError, match="over the 4096 byte limit"):
        images.read_image_file(big, file="big.png", record=7)
    ok = tmp_path / "ok.png"
    ok.write_bytes(b"x" * 3000)
    assert images.read_image_file(ok) == b"x" * 3000
    with pytest.raises(ImportFormatError, match="cannot read image"):
        images.read_image_file(tmp_path / "missing.png")
