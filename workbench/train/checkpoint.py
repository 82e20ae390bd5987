"""Checkpoints: plain dicts of tensors and values, written atomically, read with ``weights_only=True``.

A checkpoint holds ``model``, ``optimizer``, ``scheduler`` (state dicts), ``epoch``, ``config`` (the
TrainConfig as a dict), ``model_config`` (how to rebuild the network), ``rng`` (torch / numpy / python
RNG states as tensors and ints), ``history`` and ``best`` (early-stopping state) plus ``extra``. No pickled
objects: loading never runs code from the file, and a crafted file is refused with ``CheckpointError``.
"""

from __future__ import annotations

import io
import os
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..fsutil import atomic_write
from .errors import CheckpointError

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "capture_rng",
    "restore_rng",
    "load_model",
    "fsync_dir",
]


def fsync_dir(path: Path) -> None:
    """Flush a directory entry (after ``os.replace``) where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically: temp file in the same folder, fsync, ``os.replace``.

    A crash leaves either the old file or the new one, never half of one. A failed write (a full disk)
    raises ``CheckpointError`` naming the file; the previous checkpoint at ``path`` stays as it was and no
    temp file is left behind.
    """
    buf = io.BytesIO()  # serialised first: torch.save turns a failed file write into an opaque RuntimeError
    torch.save(state, buf)
    try:
        p = atomic_write(path, lambda fh: fh.write(buf.getbuffer()))
    except OSError as e:
        kept = "the previous checkpoint there is unchanged" if Path(path).is_file() else "nothing was written"
        raise CheckpointError(
            f"cannot write the checkpoint ({e.strerror or e}); {kept}", file=str(path)
        ) from e
    fsync_dir(p.parent)
    return p


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)``; anything else raises ``CheckpointError``."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError("checkpoint not found", file=str(p))
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"refused: the file holds more than tensors and plain values ({first})", file=str(p)
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"corrupt or unreadable checkpoint ({e})", file=str(p)) from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError("not a workbench checkpoint (no 'model' entry)", file=str(p))
    return state


def capture_rng() -> dict[str, Any]:
    """The global RNG states as tensors and plain values (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss = random.getstate()
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": {
            "version": int(version),
            "state": torch.tensor(py_state, dtype=torch.int64),
            "gauss": None if gauss is None else float(gauss),
        },
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def restore_rng(state: dict[str, Any]) -> None:
    """Put back RNG states saved by :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_model(path: str | Path, *, map_location: str | torch.device = "cpu") -> tuple[Any, dict[str, Any]]:
    """Rebuild the network saved in a checkpoint (or a run folder's best/last one) in eval mode.

    Returns ``(model, checkpoint)``; ``checkpoint["model_config"]`` names the model, classes and size.
    """
    from .models import rebuild_model

    p = Path(path)
    if p.is_dir():
        for name in ("best.pt", "last.pt"):
            candidate = p / "checkpoints" / name
            if candidate.is_file():
                p = candidate
                break
        else:
            raise CheckpointError("run folder has no checkpoint", file=str(p))
    state = load_checkpoint(p, map_location=map_location)
    if "model_config" not in state:
        raise CheckpointError("checkpoint has no model_config; cannot rebuild the model", file=str(p))
    model = rebuild_model(state["model_config"])
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise CheckpointError(f"weights do not fit the model ({e})", file=str(p)) from None
    model.eval()
    return model, state
