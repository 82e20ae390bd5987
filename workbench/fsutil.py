"""Atomic file writes: a temp file in the same folder, flushed (and fsync'ed), then renamed over the
target. A crash at any moment leaves the old file or the new one, never half of one; a failed write (a full
disk) removes the temp file and raises the OSError with the target's name."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "atomic_write_text", "discard_temp"]


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object], *, fsync: bool = True) -> Path:
    """Write ``path`` through ``write(fileobj)`` atomically."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException as e:
        discard_temp(tmp, p, e)
        raise
    return p


def discard_temp(tmp: str | Path, target: str | Path, error: BaseException) -> None:
    """After a failed atomic write: remove its temp file; an OSError that names no file (a failed
    ``write()``) names the target."""
    try:
        os.unlink(tmp)
    except OSError:
        pass
    if isinstance(error, OSError) and error.filename is None:
        error.filename = str(target)


def atomic_write_text(path: str | Path, text: str, *, fsync: bool = True) -> Path:
    data = text.encode("utf-8")
    return atomic_write(path, lambda fh: fh.write(data), fsync=fsync)
