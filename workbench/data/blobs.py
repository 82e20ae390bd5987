"""Content-addressed image files: ``blobs/ab/abcdef...`` named by the SHA-256 of the original bytes."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from pathlib import Path

from ..errors import NotFoundError
from ..fsutil import discard_temp

__all__ = ["BlobStore", "sha256_bytes"]

_HASH = re.compile("[0-9a-f]{64}")  # sha256 hex digests only: a name from outside never leaves the folder


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        return Path(self._path(digest))

    def _path(self, digest: str) -> str:
        if not _HASH.fullmatch(digest):
            raise NotFoundError(f"not an image hash: {digest!r}")
        return os.path.join(self.root, digest[:2], digest)

    def exists(self, digest: str) -> bool:
        return os.path.isfile(self._path(digest))

    def put(self, data: bytes, digest: str | None = None, *, fsync: bool = True) -> tuple[str, bool]:
        """Store ``data``; returns (hash, written_now). Atomic: temp file, (fsync,) rename.

        Bulk writers pass ``fsync=False`` and call :meth:`sync` once before they commit.
        """
        digest = digest or sha256_bytes(data)
        target = self._path(digest)
        if os.path.isfile(target):
            return digest, False
        folder = os.path.dirname(target)
        # A temp name of its own per process and thread (two writers of one image never share one), made with
        # plain os calls: an import stores every image through here, and pathlib + mkstemp doubled the cost
        # of a small image's write. ``temp_files`` (and the workspace's clean-up of old ones) find it.
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
        return digest, True

    @staticmethod
    def sync() -> None:
        """Flush written image files to disk (one call for a whole import)."""
        os.sync()

    def get(self, digest: str) -> bytes:
        p = self.path(digest)
        try:
            return p.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"image {digest} is missing from {self.root}") from None

    def remove(self, digest: str) -> None:
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            pass

    def all(self) -> set[str]:
        out: set[str] = set()
        for sub in self.root.iterdir():
            if sub.is_dir() and len(sub.name) == 2:
                out.update(p.name for p in sub.iterdir() if len(p.name) == 64)
        return out

    def temp_files(self) -> list[Path]:
        """Temp files of writes that never finished (``put`` names them ``.<hash>.<pid>-<thread>.tmp``; older versions ``.<hash>.<random>.tmp``)."""
        return [
            p
            for sub in self.root.iterdir()
            if sub.is_dir()
            for p in sub.iterdir()
            if p.name.startswith(".") and (p.name.endswith(".tmp") or p.name.startswith(".tmp-"))
        ]
