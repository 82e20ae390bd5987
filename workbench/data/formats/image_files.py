"""Plain images: one image file, or every image below a folder (recursive, hidden files skipped,
symlinks never followed out of the folder, sorted). No annotations, no dataset type, no splits.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import ImportFormatError
from ..images import IMAGE_SUFFIXES
from ..records import ImportBatch, ImportItem
from ._common import probe_path
from .paths import list_images, relative_name

__all__ = ["read"]


def read(src: Path, *, recursive: bool = True) -> ImportBatch:
    """Read an image file or a folder of images; every image is fully probed."""
    src = Path(src)
    if src.is_file():
        probe_path(src, record=src.name)
        return ImportBatch(
            items=[ImportItem(file_name=src.name, path=src, source=f"images:{src.name}", record=src.name)],
            source=f"images:{src}",
        )
    if not src.is_dir():
        raise ImportFormatError("no such file or folder", file=str(src))
    root = src.resolve()
    items = []
    for path in list_images(root, recursive=recursive):
        rel = relative_name(path, root)
        probe_path(path, record=rel)
        items.append(ImportItem(file_name=path.name, path=path, source=f"images:{rel}", record=rel))
    if not items:
        raise ImportFormatError(
            f"no image files found (looked for {', '.join(IMAGE_SUFFIXES)})", file=str(src)
        )
    return ImportBatch(items=items, source=f"images:{src}")
