"""The 64-bit DCT perceptual hash of a grey thumbnail, and bit counts over hashes: the arithmetic under the
import's one decode (:mod:`.images`) and the near-duplicate search (:mod:`.duplicates`,
:mod:`.duplicate_index`). Imports nothing of the store, so both sides can use it without a cycle; numpy loads
on first use."""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["THUMB", "HASH_BITS", "hash_thumbnails", "popcount", "hamming"]

THUMB = 32  # side of the grey thumbnail the perceptual hash is made from
HASH_BITS = 64
_LOW = 8  # the 8x8 lowest frequencies make the 64 bits


@functools.cache
def _dct_matrix(n: int) -> np.ndarray:
    import numpy as np

    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m


def hash_thumbnails(thumbs: np.ndarray) -> np.ndarray:
    """pHashes (uint64) of a stack of ``(n, 32, 32)`` grey thumbnails.

    Only the 8 x 8 lowest frequencies are computed (two small matrix products: 1/16 of the full transform's
    work), rounded to 1e-6 before they are compared with their median, so that frequencies that are equal in
    exact arithmetic (a flat or a symmetric picture) give the same bits whatever order the floating-point sums
    took (one image alone or in a stack of any size)."""
    import numpy as np

    low_rows = _dct_matrix(THUMB)[:_LOW]
    coeffs = np.matmul(np.matmul(low_rows, thumbs), low_rows.T)
    low = np.round(coeffs.reshape(len(thumbs), _LOW * _LOW), 6) + 0.0  # + 0.0: -0.0 becomes 0.0
    med = np.median(low[:, 1:], axis=1)  # the DC term says only how bright the image is
    bits = low > med[:, None]
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


def popcount(x: np.ndarray) -> np.ndarray:
    import numpy as np

    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).astype(np.int64)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)
    return table[np.ascontiguousarray(x, dtype=np.uint64).view(np.uint8).reshape(*x.shape, 8)].sum(-1)


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes."""
    return (int(a) ^ int(b)).bit_count()
