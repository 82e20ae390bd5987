"""The image store (issue 17, import speed): small images are rows of ``blobs/small.sqlite``, the rest files.

Every reader looks in both places (a workspace written before keeps its small images as files); an image is
stored once whatever writes it (threads, processes, a re-import); a writer killed mid-transaction leaves
nothing visible; gc, check and a failed import's clean-up see both kinds."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.data.test_decode_once import coco_folder
from workbench.data import Workspace
from workbench.data.blobs import SMALL_BYTES, SMALL_DB, BlobStore, sha256_bytes
from workbench.data.image_pool import POOL_ENV, WORKERS_ENV
from workbench.data.transfer import import_source
from workbench.errors import NotFoundError

ROOT = Path(__file__).resolve().parents[2]


def image(n: int, size: int) -> bytes:
    return (f"image {n} ".encode() * (size // 8 + 1))[:size]


def files(root: Path) -> set[str]:
    return {p.name for p in root.glob("??/*") if not p.name.startswith(".")}


def table(root: Path) -> set[str]:
    with sqlite3.connect(root / SMALL_DB) as c:
        return {r[0] for r in c.execute("SELECT hash FROM small")}


def test_small_images_are_rows_and_large_ones_files_and_both_read_back(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    small, edge, large = image(1, 3000), image(2, SMALL_BYTES), image(3, SMALL_BYTES + 1)
    (ds, new_s), (de, new_e), (dl, new_l) = (store.put(x) for x in (small, edge, large))
    assert new_s and new_e and new_l
    assert table(store.root) == {ds, de} and files(store.root) == {dl}
    assert [store.get(d) for d in (ds, de, dl)] == [small, edge, large]
    assert store.all() == {ds, de, dl}
    assert store.exists(ds) and store.exists(dl)
    absent = sha256_bytes(b"never stored")
    assert store.missing([ds, dl, absent]) == {absent}
    with pytest.raises(NotFoundError, match="missing"):
        store.get(absent)
    assert store.put(small) == (ds, False) and store.put(large) == (dl, False)  # stored once
    store.close()


def test_names_that_are_not_hashes_never_reach_sql_or_the_file_system(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    store.put(image(1, 100))
    for hostile in ("../../etc/passwd", "x' OR 1=1 --", "A" * 64, ""):
        with pytest.raises(NotFoundError, match="not an image hash"):
            store.get(hostile)
        with pytest.raises(NotFoundError, match="not an image hash"):
            store.missing([hostile])
    assert len(table(store.root)) == 1


def test_reading_never_creates_the_table(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    assert store.all() == set() and store.missing([sha256_bytes(b"x")]) == {sha256_bytes(b"x")}
    assert store.check() == []
    assert not (tmp_path / "blobs" / SMALL_DB).exists()


def test_a_small_image_an_older_workspace_kept_as_a_file_is_read_and_never_stored_twice(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    data = image(7, 2000)
    digest = sha256_bytes(data)
    (store.root / digest[:2]).mkdir()
    (store.root / digest[:2] / digest).write_bytes(data)  # the layout before the table
    assert store.get(digest) == data and store.all() == {digest}
    assert store.put_many([(data, digest)]) == [False]
    assert not (store.root / SMALL_DB).exists() or table(store.root) == set()


def test_a_repeated_image_in_one_batch_is_written_once(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    a, b = image(1, 500), image(2, 500)
    items = [(a, sha256_bytes(a)), (b, sha256_bytes(b)), (a, sha256_bytes(a))]
    assert store.put_many(items) == [True, True, False]
    assert store.put_many(items) == [False, False, False]


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from workbench.data.blobs import BlobStore, sha256_bytes

    store = BlobStore(Path(sys.argv[1]))
    time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # all of them at the same moment
    items = [(f"shared image {i}".encode() * 50, sha256_bytes(f"shared image {i}".encode() * 50)) for i in range(300)]
    new = []
    for k in range(0, 300, 7):
        new += store.put_many(items[k:k + 7])
    print(sum(new))
""")


def test_processes_storing_the_same_images_into_a_new_table_write_each_once(tmp_path):
    """Three writers start at once on a folder with no table yet (as an import's workers do) and race over
    the same 300 images in runs of 7: the table is made once (switching a new file to WAL does not wait for
    another's lock: it used to fail one of them with "database is locked"), and each image is written by
    exactly one of them (``written_now`` is what a failed import removes again: never claimed twice)."""
    root = tmp_path / "blobs"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = str(time.time() + 1.0)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(root), start], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT) for _ in range(3)]
    counts = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
        counts.append(int(out))
    assert sum(counts) == 300
    assert len(table(root)) == 300


KILLED_IN_TRANSACTION = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from workbench.data import blobs

    real = blobs._write.__exit__
    def stalled(self, kind, *exc):
        print("READY", flush=True)  # the rows are inserted, the transaction not committed
        time.sleep(60)
        return real(self, kind, *exc)
    blobs._write.__exit__ = stalled
    store = blobs.BlobStore(Path(sys.argv[1]) / "blobs")
    store.put_many([(f"half an import {i}".encode(), blobs.sha256_bytes(f"half an import {i}".encode()))
                    for i in range(50)])
""")


def test_a_writer_killed_inside_its_transaction_leaves_no_image_and_no_lock(tmp_path):
    home = tmp_path / "ws"
    with Workspace(home) as ws:
        kept, _ = ws.blobs.put(image(1, 1000))  # the table exists, with one image
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_IN_TRANSACTION, str(home)], stdout=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    with Workspace(home) as ws:
        assert ws.blobs.all() == {kept} and ws.blobs.check() == []
        digest, new = ws.blobs.put(b"half an import 3")  # the write lock died with the writer
        assert new and ws.blobs.get(digest) == b"half an import 3"


def test_a_forked_child_reads_through_a_connection_of_its_own(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    digest, _ = store.put(image(4, 900))
    assert store.get(digest) == image(4, 900)  # the parent's connection is open
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            ok = store.get(digest) == image(4, 900) and store.put(image(5, 900))[1]
            os.write(write, b"ok" if ok else b"no")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 2)
    os.waitpid(pid, 0)
    os.close(read)
    assert answer == b"ok"
    assert store.get(sha256_bytes(image(5, 900))) == image(5, 900)  # the parent's connection still works


def test_gc_removes_unreferenced_rows_once_old_and_gives_the_space_back(tmp_path):
    with Workspace(tmp_path / "ws") as ws:
        digests = [ws.blobs.put(image(i, 20_000))[0] for i in range(40)]
        assert ws.gc(grace_s=3600)["files_removed"] == 0  # young: a running import may be about to use them
        assert ws.gc(grace_s=0)["files_removed"] == 40
        assert ws.blobs.all() == set() and ws.blobs.missing(digests) == set(digests)
        with sqlite3.connect(ws.blobs.root / SMALL_DB) as c:
            assert c.execute("PRAGMA freelist_count").fetchone()[0] == 0  # the pages went back


def test_check_finds_a_row_whose_bytes_are_not_its_hash(tmp_path):
    with Workspace(tmp_path / "ws") as ws:
        digest, _ = ws.blobs.put(image(1, 700))
        with sqlite3.connect(ws.blobs.root / SMALL_DB) as c:
            c.execute("UPDATE small SET data = ? WHERE hash = ?", (b"tampered", digest))
        assert ws.blobs.check() == [f"image {digest} in {SMALL_DB} does not hash to its name"]


def test_an_import_of_small_images_creates_no_image_file(tmp_path, monkeypatch):
    """The import path of every pool: a folder of small JPEGs lands in the table, read back byte for byte."""
    src = coco_folder(tmp_path / "src", 30)
    for kind in ("thread", "process"):
        monkeypatch.setenv(WORKERS_ENV, "2")
        monkeypatch.setenv(POOL_ENV, kind)
        with Workspace(tmp_path / kind) as ws:
            import_source(ws, "d", src, "coco")
            assert files(ws.blobs.root) == set() and len(table(ws.blobs.root)) == 30
            rows = ws.conn.execute("SELECT file_name, blob FROM examples").fetchall()
            assert len(rows) == 30
            for name, blob in rows:
                assert ws.blobs.get(blob) == (src / name).read_bytes()
                assert hashlib.sha256(ws.blobs.get(blob)).hexdigest() == blob
            assert ws.check() == []


def test_opening_the_table_retries_while_another_process_is_making_it(tmp_path, monkeypatch):
    """A process opening the new table while another switches it to WAL is told "database is locked" at
    once (an import with two workers hit it about once in thirty runs): opening retries; other errors do not."""
    from workbench.data import blobs

    real = blobs._set_up
    calls = []

    def busy_twice(conn):
        calls.append(1)
        if len(calls) <= 2:
            raise sqlite3.OperationalError("database is locked")
        real(conn)

    monkeypatch.setattr(blobs, "_set_up", busy_twice)
    store = BlobStore(tmp_path / "a")
    assert store.put(b"an image")[1] and len(calls) == 3

    def broken(conn):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(blobs, "_set_up", broken)
    with pytest.raises(OSError, match="disk I/O error"):
        BlobStore(tmp_path / "b").put(b"an image")
