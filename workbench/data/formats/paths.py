"""Paths taken from import files, kept inside the folder they must stay in.

A path written in an annotation file (a COCO ``file_name``, a VOC ``<filename>``, a YOLO list entry) is
untrusted: :func:`safe_join` refuses absolute paths, ``..`` components and symlinks that resolve outside the
import root. :func:`list_images` walks a folder without following symlinked folders and refuses symlinked
files that point outside it; its order is sorted and deterministic.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from ...errors import UnsafePathError, ValidationError
from ..images import IMAGE_SUFFIXES

__all__ = ["safe_join", "list_images", "is_hidden", "relative_name", "ImageFinder"]

_DRIVE = re.compile(r"^[A-Za-z]:")
MAX_NAME_BYTES = 255  # one file or folder name (Linux NAME_MAX)
MAX_PATH_BYTES = 4096  # a whole relative path (Linux PATH_MAX)


def safe_join(
    root: Path,
    rel: str,
    *,
    file: str | None = None,
    record: object | None = None,
    field: str | None = None,
) -> Path:
    """``root / rel`` resolved, refusing anything that would land outside ``root``.

    Backslashes count as separators (annotation files made on Windows). Raises UnsafePathError, naming
    ``file`` / ``record`` / ``field``, for absolute paths, drive letters, ``..`` components, NUL bytes and
    symlinks whose target lies outside ``root``; ValidationError for names the file system cannot hold
    (over 255 bytes a name or 4096 in all, lone surrogates). The returned path is resolved (symlinks
    followed).
    """
    if not isinstance(rel, str):
        raise ValidationError(f"path must be a string, got {rel!r}", file=file, record=record, field=field)
    if not rel.strip():
        raise ValidationError("path is empty", file=file, record=record, field=field)
    if "\x00" in rel:
        raise UnsafePathError("path contains a NUL byte", file=file, record=record, field=field)
    try:
        encoded = rel.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafePathError(
            "path is not valid Unicode text (lone surrogate)", file=file, record=record, field=field
        ) from None
    if len(encoded) > MAX_PATH_BYTES or any(
        len(part.encode("utf-8")) > MAX_NAME_BYTES for part in rel.replace("\\", "/").split("/")
    ):
        raise ValidationError(
            f"path is too long ({len(encoded)} bytes; at most {MAX_NAME_BYTES} per name and "
            f"{MAX_PATH_BYTES} in all)",
            file=file,
            record=record,
            field=field,
        )
    norm = rel.replace("\\", "/")
    pure = PurePosixPath(norm)
    if pure.is_absolute() or _DRIVE.match(norm):
        raise UnsafePathError(
            f"absolute path {rel!r} is not allowed; paths must be relative to the import folder",
            file=file,
            record=record,
            field=field,
        )
    if ".." in pure.parts:
        raise UnsafePathError(
            f"path {rel!r} uses '..' to leave the import folder", file=file, record=record, field=field
        )
    base = Path(root).resolve()
    target = _resolve(base / Path(*pure.parts), file=file, record=record, field=field)
    if not target.is_relative_to(base):
        raise UnsafePathError(
            f"path {rel!r} resolves to {target}, outside the import folder {base} (symlink?)",
            file=file,
            record=record,
            field=field,
        )
    return target


def is_hidden(name: str) -> bool:
    """Dot-files and dot-folders (``.ipynb_checkpoints``, ``.DS_Store``) are skipped by folder readers."""
    return name.startswith(".")


def relative_name(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` as a posix string (for messages and ``ImportItem.source``)."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()


def list_images(folder: Path, *, recursive: bool = True, root: Path | None = None) -> list[Path]:
    """Image files under ``folder`` (by suffix, case-insensitive), sorted by relative path.

    Hidden files and folders are skipped. Symlinked folders are not descended into; a symlinked file or
    folder that resolves outside ``root`` (default: ``folder``) raises UnsafePathError. Returned paths
    are ``folder``-prefixed, not resolved.
    """
    folder = Path(folder)
    base = Path(root if root is not None else folder).resolve()
    if not folder.is_dir():
        raise ValidationError("not a folder", file=str(folder))
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            if is_hidden(d):
                continue
            p = here / d
            if p.is_symlink():
                _check_inside(p, base)
                continue  # not followed: avoids loops and double counting
            keep.append(d)
        dirnames[:] = keep if recursive else []
        for name in filenames:
            if is_hidden(name) or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            p = here / name
            if p.is_symlink():
                _check_inside(p, base)
            found.append(p)
    found.sort(key=lambda p: p.relative_to(folder).as_posix())
    return found


def _resolve(p: Path, *, file: str | None = None, record: object | None = None, field: str | None = None) -> Path:
    """``p.resolve()``; a symlink loop (RuntimeError) or an unreadable link is an UnsafePathError."""
    try:
        return p.resolve()
    except (RuntimeError, OSError) as e:
        raise UnsafePathError(f"path cannot be resolved ({e})", file=file if file is not None else str(p),
                              record=record, field=field) from None


def _check_inside(p: Path, base: Path) -> None:
    target = _resolve(p)
    if not target.is_relative_to(base):
        raise UnsafePathError(f"symlink points to {target}, outside the import folder {base}", file=str(p))


class ImageFinder:
    """Finds ``rel`` under the first of ``roots`` that holds it, as ``safe_join(root, rel)`` + ``is_file()``
    would, reading each root folder's listing once instead of resolving every path on its own (20,000
    ``resolve()`` calls took seconds). A plain name listed as a regular file (not a symlink) is taken from
    the listing; anything else (sub-folders, symlinks, odd names) goes the checked way, :func:`safe_join`."""

    def __init__(self, roots: list[Path]) -> None:
        self.roots = roots
        self._listed: dict[int, tuple[Path, dict[str, bool]]] = {}

    def _listing(self, i: int) -> tuple[Path, dict[str, bool]]:
        if i not in self._listed:
            names: dict[str, bool] = {}  # name -> a regular file, not a symlink
            base = Path(self.roots[i])
            try:
                base = base.resolve()
                with os.scandir(base) as it:
                    for entry in it:
                        try:
                            names[entry.name] = entry.is_file(follow_symlinks=False)
                        except OSError:
                            names[entry.name] = False
            except (OSError, RuntimeError):
                names = {}
            self._listed[i] = (base, names)
        return self._listed[i]

    def find(self, rel: str, *, file: str | None = None, record: object | None = None,
             field: str | None = "file_name") -> Path | None:
        plain = (isinstance(rel, str) and rel.strip() and "/" not in rel and "\\" not in rel
                 and "\x00" not in rel and rel not in (".", "..") and rel.isprintable())
        if plain:
            try:
                plain = len(rel.encode("utf-8")) <= MAX_NAME_BYTES
            except UnicodeEncodeError:
                plain = False
        for i, root in enumerate(self.roots):
            if plain:
                base, names = self._listing(i)
                kind = names.get(rel)
                if kind is None:
                    continue  # not there: safe_join would pass it and is_file() say no
                if kind:
                    return base / rel
            p = safe_join(root, rel, file=file, record=record, field=field)
            if p.is_file():
                return p
        return None
