"""Content-addressed images, named by the SHA-256 of their original bytes.

Images up to :data:`SMALL_BYTES` live in one SQLite file, ``blobs/small.sqlite`` (table ``small``: hash, bytes,
when stored); larger ones are files, ``blobs/ab/abcdef...``. A small image costs a row, not a file: creating a
file costs this machine about 300 us of CPU (mostly kernel) whatever its size, a row stored in a run of 64
25 us at 2 KB and 90 us at 32 KB; read back, a row is as fast as a file up to 16 KB and 1.2x a file at
32 KB, 1.6x at 64 KB (``benchmarks/bench_blob_store.py`` measures both ways per size). Workspaces written
before keep their small images as files: every reader looks in both places, and an image is never stored
twice.

Writers of either kind store an image before the rows that point at it commit: a killed writer leaves at
most an unreferenced image (or a ``.<hash>.<pid>-<thread>.tmp`` file), which ``Workspace.gc`` removes once
it is older than its grace period. Each process opens its own connection to the table (a forked child opens
a new one), shared by its threads under a lock.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import NotFoundError
from ..fsutil import discard_temp
from .store import MAX_VARIABLES, in_chunks

__all__ = ["BlobStore", "SMALL_BYTES", "sha256_bytes"]

_HASH = re.compile("[0-9a-f]{64}")  # sha256 hex digests only: a name from outside never leaves the folder
SMALL_BYTES = 32 * 1024  # images up to this size are rows of ``small.sqlite`` (see the module's docstring)
SMALL_DB = "small.sqlite"
_BUSY_S = 60.0  # how long a writer waits for another's lock on the table


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._db_path = os.path.join(self.root, SMALL_DB)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._synchronous = ""

    # ------------------------------------------------------------------ names
    def path(self, digest: str) -> Path:
        """Where the file of a large image is (a small one is a row of ``small.sqlite`` instead)."""
        return Path(self._path(digest))

    def _path(self, digest: str) -> str:
        if not _HASH.fullmatch(digest):
            raise NotFoundError(f"not an image hash: {digest!r}")
        return os.path.join(self.root, digest[:2], digest)

    @staticmethod
    def packs(nbytes: int) -> bool:
        """Whether an image of ``nbytes`` is stored as a row of ``small.sqlite`` (else as a file)."""
        return nbytes <= SMALL_BYTES

    # ------------------------------------------------------------------ the table of small images
    def _db(self, create: bool) -> sqlite3.Connection | None:
        """This process's connection (the caller holds ``_lock``); None while there is no table and
        ``create`` is false (reading never creates it)."""
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        self._conn = None  # a connection inherited through fork is never used (nor closed) in the child
        if not create and not os.path.exists(self._db_path):
            return None
        try:
            conn = sqlite3.connect(self._db_path, timeout=_BUSY_S, isolation_level=None, check_same_thread=False)
            try:
                # Processes making the file at once (an import's workers) can meet it mid-way to WAL, which
                # SQLite answers with "database is locked" at once, not after waiting: retried.
                _retry_locked(lambda: _set_up(conn))
            except BaseException:
                conn.close()
                raise
        except sqlite3.Error as e:
            raise _os_error(e, self._db_path) from None
        self._conn, self._pid, self._synchronous = conn, os.getpid(), ""
        return conn

    def _set_synchronous(self, conn: sqlite3.Connection, fsync: bool) -> None:
        # FULL: a commit is on disk when it returns; NORMAL: bulk writers call sync() once before they commit
        mode = "FULL" if fsync else "NORMAL"
        if self._synchronous != mode:
            conn.execute(f"PRAGMA synchronous={mode}")
            self._synchronous = mode

    def _small_rows(self, digests: Iterable[str], what: str = "hash") -> list[Any]:
        keys = list(digests)
        out: list[Any] = []
        with self._lock:
            conn = self._db(create=False)
            if conn is None or not keys:
                return out
            try:
                out += in_chunks(conn, f"SELECT {what} FROM small WHERE hash IN ({{q}})", keys)
            except sqlite3.Error as e:
                raise _os_error(e, self._db_path) from None
        return out

    # ------------------------------------------------------------------ writing
    def put(self, data: bytes, digest: str | None = None, *, fsync: bool = True) -> tuple[str, bool]:
        """Store ``data``; returns (hash, written_now). Atomic: a row committed, or a temp file (fsync'ed)
        renamed. Bulk writers pass ``fsync=False`` (or use :meth:`put_many`) and call :meth:`sync` once before
        they commit."""
        digest = digest or sha256_bytes(data)
        return digest, self.put_many([(data, digest)], fsync=fsync)[0]

    def put_many(self, items: Sequence[tuple[bytes, str]], *, fsync: bool = False) -> list[bool]:
        """Store each (bytes, sha256) pair; per pair, whether it was written now. The small ones in one
        transaction. An OSError (a full disk, a locked or damaged table) stops it: what was stored stays."""
        new = [False] * len(items)
        small: dict[str, list[int]] = {}
        for i, (data, digest) in enumerate(items):
            if os.path.isfile(self._path(digest)):  # there already, as a file (large, or from an older version)
                continue
            if self.packs(len(data)):
                small.setdefault(digest, []).append(i)
            else:
                new[i] = self._put_file(data, digest, fsync)
        if small:
            for i in self._put_small(items, small, fsync):
                new[i] = True
        return new

    def _put_small(self, items: Sequence[tuple[bytes, str]], small: dict[str, list[int]], fsync: bool) -> list[int]:
        stamp = time.time()
        with self._lock:
            conn = self._db(create=True)
            assert conn is not None
            try:
                self._set_synchronous(conn, fsync)
                with _write(conn):
                    there = {r[0] for r in in_chunks(conn, "SELECT hash FROM small WHERE hash IN ({q})", list(small))}
                    rows = [(d, items[idx[0]][0], stamp) for d, idx in small.items() if d not in there]
                    conn.executemany("INSERT INTO small (hash, data, stored_at) VALUES (?, ?, ?)", rows)
            except sqlite3.Error as e:
                raise _os_error(e, self._db_path) from None
        return [small[d][0] for d, _data, _at in rows]  # a repeated hash: its first item wrote it

    def _put_file(self, data: bytes, digest: str, fsync: bool) -> bool:
        target = self._path(digest)
        folder = os.path.dirname(target)
        # A temp name of its own per process and thread (two writers of one image never share one), made with
        # plain os calls: pathlib + mkstemp doubled the cost of an image's write. ``temp_files`` (and the
        # workspace's clean-up of old ones) find it.
        tmp = os.path.join(folder, f".{digest}.{os.getpid()}-{threading.get_ident()}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(tmp, flags, 0o600)
        except FileNotFoundError:  # the first image in this folder
            os.makedirs(folder, exist_ok=True)
            fd = os.open(tmp, flags, 0o600)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                if fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
        except BaseException as e:
            discard_temp(tmp, target, e)
            raise
        return True

    @staticmethod
    def sync() -> None:
        """Flush written images to disk, files and the small images' table alike (one call for a whole import)."""
        os.sync()

    # ------------------------------------------------------------------ reading
    def exists(self, digest: str) -> bool:
        return not self.missing([digest])

    def missing(self, digests: Iterable[str]) -> set[str]:
        """Those of ``digests`` that are stored nowhere."""
        wanted = set(digests)
        for d in wanted:
            if not _HASH.fullmatch(d):
                raise NotFoundError(f"not an image hash: {d!r}")
        left = wanted - {r[0] for r in self._small_rows(wanted)}
        return {d for d in left if not os.path.isfile(self._path(d))}

    def get(self, digest: str) -> bytes:
        target = self._path(digest)
        rows = self._small_rows([digest], "data")
        if rows:
            return bytes(rows[0][0])
        try:
            with open(target, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise NotFoundError(f"image {digest} is missing from {self.root}") from None

    def all(self) -> set[str]:
        out: set[str] = set()
        for sub in self.root.iterdir():
            if sub.is_dir() and len(sub.name) == 2:
                out.update(p.name for p in sub.iterdir() if len(p.name) == 64)
        with self._lock:
            conn = self._db(create=False)
            if conn is not None:
                try:
                    out.update(r[0] for r in conn.execute("SELECT hash FROM small"))
                except sqlite3.Error as e:
                    raise _os_error(e, self._db_path) from None
        return out

    def stored_before(self, digests: Iterable[str], cutoff: float) -> set[str]:
        """Those of ``digests`` stored before ``cutoff`` (a ``time.time()``); the ones stored nowhere are left out."""
        wanted = set(digests)
        rows = self._small_rows(wanted, "hash, stored_at")
        out = {d for d, at in rows if at < cutoff}
        for d in wanted - {d for d, _at in rows}:
            try:
                if os.stat(self._path(d)).st_mtime < cutoff:
                    out.add(d)
            except FileNotFoundError:
                pass
        return out

    # ------------------------------------------------------------------ removing, checking
    def remove(self, digest: str) -> None:
        self.remove_many([digest])

    def remove_many(self, digests: Iterable[str]) -> None:
        keys = sorted(set(digests))
        for d in keys:
            try:
                os.unlink(self._path(d))
            except FileNotFoundError:
                pass
        with self._lock:
            conn = self._db(create=False)
            if conn is None or not keys:
                return
            try:
                self._set_synchronous(conn, True)
                with _write(conn):
                    for i in range(0, len(keys), MAX_VARIABLES):
                        part = keys[i:i + MAX_VARIABLES]
                        conn.execute(f"DELETE FROM small WHERE hash IN ({','.join('?' * len(part))})", part)
            except sqlite3.Error as e:
                raise _os_error(e, self._db_path) from None

    def shrink(self) -> None:
        """Give the space of removed small images back to the file system."""
        with self._lock:
            conn = self._db(create=False)
            if conn is not None:
                try:
                    conn.executescript("PRAGMA incremental_vacuum;")  # a page per step: sqlite3_exec steps to the end
                except sqlite3.Error as e:
                    raise _os_error(e, self._db_path) from None

    def check(self) -> list[str]:
        """Problems of the small images' table (SQLite's integrity check, a row whose bytes are not its hash)."""
        with self._lock:
            conn = self._db(create=False)
            if conn is None:
                return []
            try:
                problems = [f"{SMALL_DB}: {r[0]}" for r in conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
                for digest, data in conn.execute("SELECT hash, data FROM small"):
                    if sha256_bytes(bytes(data)) != digest:
                        problems.append(f"image {digest} in {SMALL_DB} does not hash to its name")
            except sqlite3.Error as e:
                return [f"{SMALL_DB}: {e}"]
        return problems

    def temp_files(self) -> list[Path]:
        """Temp files of writes that never finished (``put`` names them ``.<hash>.<pid>-<thread>.tmp``; older versions ``.<hash>.<random>.tmp``)."""
        return [
            p
            for sub in self.root.iterdir()
            if sub.is_dir()
            for p in sub.iterdir()
            if p.name.startswith(".") and (p.name.endswith(".tmp") or p.name.startswith(".tmp-"))
        ]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


class _write:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on an error) on an autocommit connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:
            self.conn.execute("ROLLBACK")


def _set_up(conn: sqlite3.Connection) -> None:
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":  # a new file
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")  # (before its first table): gc gives the space back
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS small (hash TEXT PRIMARY KEY, data BLOB NOT NULL, stored_at REAL NOT NULL)")


def _retry_locked(step: Callable[[], object]) -> None:
    """Run ``step``, again every few milliseconds while it finds the file locked (up to :data:`_BUSY_S`)."""
    deadline = time.monotonic() + _BUSY_S
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _os_error(e: sqlite3.Error, path: str) -> OSError:
    """A failure of the small images' table as the OSError a failed file write would be (a full disk: ENOSPC)."""
    code = getattr(e, "sqlite_errorcode", None)
    number = errno.ENOSPC if code == getattr(sqlite3, "SQLITE_FULL", 13) else errno.EIO
    return OSError(number, f"{e}", path)
