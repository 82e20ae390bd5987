"""Video frames as images (OpenCV, imported lazily).

``every=N`` keeps every Nth frame (frame 0, N, 2N...); ``count=N`` keeps N frames spread evenly over the
video (the middle frame of N equal stretches). With neither, every frame is kept. ``skip_duplicates=True``
drops a frame whose 64-bit difference hash (dHash) lies within ``duplicate_threshold`` bits of the last
kept frame. More than ``max_frames`` kept frames is refused (pass ``every`` or ``count``), and so are frames
over the image pixel limit (``MAX_PIXELS``), before any is decoded.

Frames are PNG-encoded in memory (``ImportItem.data``) and named ``<video stem>_f000123.png`` after their
frame index; ``record`` is ``frame 123``. No annotations, no dataset type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import ImportFormatError, ValidationError
from ..images import IMAGE_SUFFIXES, MAX_PIXELS
from ..records import ImportBatch, ImportItem

__all__ = ["read", "dhash", "MAX_FRAMES"]

MAX_FRAMES = 10_000


def dhash(frame: Any) -> Any:
    """64-bit difference hash of a BGR or grey frame, as a flat bool array."""
    import cv2
    import numpy as np

    gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    return (small[:, 1:] > small[:, :-1]).ravel()


def _positive(name: str, v: int | None) -> None:
    if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
        raise ValidationError(f"{name} must be a positive integer, got {v!r}", field=name)


def _open(cv2: Any, src: Path) -> Any:
    cap = cv2.VideoCapture(str(src))
    if not cap.isOpened():
        cap.release()
        raise ImportFormatError(
            "cannot open as a video (not a video file, or a codec OpenCV lacks)", file=str(src)
        )
    return cap


def _check_frame_size(w: int, h: int, src: Path, record: str) -> None:
    """Frames over the image pixel limit are refused before any is decoded: a small file can hold many
    huge, easily compressed frames (each would be decoded and encoded before the import refused it)."""
    if w * h > MAX_PIXELS:
        raise ImportFormatError(
            f"frames are {w}x{h} pixels, over the {MAX_PIXELS} pixel limit for an image", file=str(src),
            record=record,
        )


def _frame_total(cv2: Any, src: Path) -> int:
    cap = _open(cv2, src)
    try:
        n = 0
        while cap.grab():
            n += 1
        return n
    finally:
        cap.release()


def read(
    src: Path,
    *,
    every: int | None = None,
    count: int | None = None,
    skip_duplicates: bool = False,
    duplicate_threshold: int = 4,
    max_frames: int = MAX_FRAMES,
) -> ImportBatch:
    """Sample frames of the video at ``src``; see the module doc."""
    import cv2
    import numpy as np

    src = Path(src)
    _positive("every", every)
    _positive("count", count)
    _positive("max_frames", max_frames)
    if every is not None and count is not None:
        raise ValidationError("pass every= or count=, not both", field="count")
    if not isinstance(duplicate_threshold, int) or not 0 <= duplicate_threshold <= 64:
        raise ValidationError(
            f"duplicate_threshold must be 0..64 bits, got {duplicate_threshold!r}",
            field="duplicate_threshold",
        )
    if not src.is_file():
        raise ImportFormatError("video file not found", file=str(src))
    if src.suffix.lower() in IMAGE_SUFFIXES:  # OpenCV would open it as a one-frame "video"
        raise ImportFormatError("is an image file, not a video; use the 'images' format", file=str(src))
    wanted: set[int] | None = None
    if count is not None:
        cap = _open(cv2, src)
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        if total <= 0:
            total = _frame_total(cv2, src)
        wanted = {min(total - 1, int((i + 0.5) * total / count)) for i in range(min(count, total))}
    step = every or 1
    last = max(wanted) if wanted else None

    items: list[ImportItem] = []
    prev_hash = None
    index = 0
    any_frame = False
    cap = _open(cv2, src)
    try:
        _check_frame_size(
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), src, "header"
        )
        while cap.grab():
            any_frame = True
            keep = index in wanted if wanted is not None else index % step == 0
            if keep:
                ok, frame = cap.retrieve()
                if not ok or frame is None:
                    raise ImportFormatError("cannot decode frame", file=str(src), record=f"frame {index}")
                _check_frame_size(frame.shape[1], frame.shape[0], src, f"frame {index}")
                h = dhash(frame) if skip_duplicates else None
                if (
                    h is not None
                    and prev_hash is not None
                    and int(np.count_nonzero(h != prev_hash)) <= duplicate_threshold
                ):
                    keep = False
                if keep:
                    prev_hash = h
                    if len(items) >= max_frames:
                        raise ImportFormatError(
                            f"video gives more than max_frames={max_frames} frames; pass every= or count=",
                            file=str(src),
                        )
                    ok, buf = cv2.imencode(".png", frame)
                    if not ok:
                        raise ImportFormatError(
                            "cannot encode frame as PNG", file=str(src), record=f"frame {index}"
                        )
                    items.append(
                        ImportItem(
                            file_name=f"{src.stem}_f{index:06d}.png",
                            data=buf.tobytes(),
                            source=f"video:{src.name}#{index}",
                            record=f"frame {index}",
                        )
                    )
            if last is not None and index >= last:
                break
            index += 1
    finally:
        cap.release()
    if not any_frame:
        raise ImportFormatError("video has no readable frames (corrupt or unsupported codec)", file=str(src))
    return ImportBatch(items=items, source=f"video:{src}")
