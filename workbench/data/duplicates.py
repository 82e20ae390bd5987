"""Exact and near-duplicate images: a DCT perceptual hash and a pair search that does not compare all pairs.

* Exact duplicates are examples over the same blob (same sha256): found by grouping, no image is read.
* Near duplicates: every distinct image gets a 64-bit pHash (32x32 grey thumbnail, 2-D DCT, the 8x8
  lowest frequencies against their median). Two images are near duplicates when their hashes differ in at
  most ``max_distance`` bits. Identical hashes are collapsed first; the remaining distinct hashes are split
  into ``max_distance + 1`` bands: two hashes within ``max_distance`` bits agree exactly on at least one
  band (pigeonhole), so candidates come from sorting on each band and only candidates are compared.
  Small sets (and large distances, where bands get too short to be selective) are compared blockwise.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ValidationError
from .images import thumbnail_source
from .phash import HASH_BITS, THUMB, hamming, hash_thumbnails, popcount

__all__ = [
    "HASH_BITS",
    "phash",
    "phash_hex",
    "hamming",
    "close_pairs",
    "DuplicatePair",
    "NearDuplicates",
    "thumbnail",
    "hash_thumbnails",
    "popcount",
    "components",
]

_BRUTE_FORCE_MAX = 256  # up to this many distinct hashes, compare all pairs (blockwise, vectorised)
_MIN_BAND_BITS = 8  # shorter bands put too many unrelated hashes together; compare all pairs instead
_CROWDED_MAX = 8192  # up to this many distinct hashes, all pairs are compared when the bands are crowded
_BLOCK_CELLS = 4_000_000  # pairs per vectorised block


def thumbnail(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:  # the same decode as images.check_image: the same hash
        grey = thumbnail_source(im).resize((THUMB, THUMB), Image.Resampling.BOX)
        return np.asarray(grey, dtype=np.float64)


def phash(data: bytes) -> int:
    """The 64-bit DCT perceptual hash of an encoded image (any format Pillow reads)."""
    return int(hash_thumbnails(thumbnail(data)[None])[0])


def phash_hex(data: bytes) -> str:
    """:func:`phash` as 16 hex digits (how the store keeps it)."""
    return f"{phash(data):016x}"


def _band_bounds(n_bands: int) -> list[tuple[int, int]]:
    """(shift, bits) of ``n_bands`` bands covering the 64 bits as evenly as possible."""
    bounds, start = [], 0
    for b in range(n_bands):
        width = HASH_BITS // n_bands + (1 if b < HASH_BITS % n_bands else 0)
        bounds.append((start, width))
        start += width
    return bounds


def _brute_pairs(h: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray]:
    n = h.size
    rows = max(1, _BLOCK_CELLS // max(n, 1))
    out_i, out_j = [], []
    for s in range(0, n, rows):
        block = h[s : s + rows]
        d = popcount(block[:, None] ^ h[None, :])
        ii, jj = np.nonzero(d <= max_distance)
        ii = ii + s
        keep = jj > ii
        out_i.append(ii[keep])
        out_j.append(jj[keep])
    return np.concatenate(out_i), np.concatenate(out_j)


def _band_pairs(h: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray]:
    n = h.size
    cand = []
    for shift, bits in _band_bounds(max_distance + 1):
        key = (h >> np.uint64(shift)) & np.uint64((1 << bits) - 1)
        order = np.argsort(key, kind="stable")
        sk = key[order]
        k = 1
        while k < n:  # pairs k apart in sorted order share the band value exactly when their keys match
            same = np.flatnonzero(sk[:-k] == sk[k:])
            if same.size == 0:
                break
            a, b = order[same], order[same + k]
            close = popcount(h[a] ^ h[b]) <= max_distance  # check now: most candidates are not close
            a, b = a[close], b[close]
            cand.append(np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b))
            k += 1
    if not cand:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    keys = np.unique(np.concatenate(cand))  # a pair can agree on several bands
    return keys // n, keys % n


def _crowded(h: np.ndarray, max_distance: int) -> bool:
    """Whether the banded search would compare so many candidate pairs (hashes sharing a band value) that
    comparing all pairs is cheaper: a candidate costs it about four times what a pair costs the blockwise
    comparison (measured: 32x24 images, 1,491 distinct hashes crowded into few band values, 850,000
    candidates took 76 ms, all 1.1 million pairs 25 ms)."""
    candidates = 0
    for shift, bits in _band_bounds(max_distance + 1):
        _, counts = np.unique((h >> np.uint64(shift)) & np.uint64((1 << bits) - 1), return_counts=True)
        candidates += int((counts * (counts - 1) // 2).sum())
    return candidates * 4 > h.size * (h.size - 1) // 2


def close_pairs(
    hashes: np.ndarray | Sequence[int], max_distance: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All index pairs ``i < j`` whose hashes differ in at most ``max_distance`` bits, with the distance.

    Returns three int64 arrays (i, j, distance), sorted by distance then i then j.
    """
    if (
        isinstance(max_distance, bool)
        or not isinstance(max_distance, int)
        or not 0 <= max_distance < HASH_BITS
    ):
        raise ValidationError(
            f"max_distance must be an integer in [0, {HASH_BITS - 1}], got {max_distance!r}",
            field="max_distance",
        )
    h = np.asarray(hashes, dtype=np.uint64).ravel()
    if h.size < 2:
        e = np.empty(0, np.int64)
        return e, e, e
    if (h.size <= _BRUTE_FORCE_MAX or HASH_BITS // (max_distance + 1) < _MIN_BAND_BITS
            or (h.size <= _CROWDED_MAX and _crowded(h, max_distance))):
        i, j = _brute_pairs(h, max_distance)
    else:
        i, j = _band_pairs(h, max_distance)
    d = popcount(h[i] ^ h[j])
    order = np.lexsort((j, i, d))
    return i[order].astype(np.int64), j[order].astype(np.int64), d[order].astype(np.int64)


# ---------------------------------------------------------------------------------------------- examples
@dataclass(frozen=True)
class DuplicatePair:
    """Two examples over different images whose hashes are ``distance`` bits apart."""

    a: int
    b: int
    distance: int
    cross_split: bool  # the two sit in different splits (a leak between train and val / test)

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "distance": self.distance, "cross_split": self.cross_split}


@dataclass
class NearDuplicates:
    """Duplicate examples. ``groups`` joins exact and near duplicates transitively (example ids, each group
    sorted, groups by their first id); ``cross_split`` are the groups that span more than one split."""

    checked: bool  # False when images were not hashed (no load_bytes): only exact duplicates are known
    max_distance: int
    hashed: int = 0  # distinct images hashed
    exact: list[list[int]] = field(default_factory=list)
    pairs: list[DuplicatePair] = field(default_factory=list)  # closest first, at most max_pairs
    truncated: bool = False  # more pairs than max_pairs
    groups: list[list[int]] = field(default_factory=list)
    cross_split: list[list[int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "max_distance": self.max_distance,
            "hashed": self.hashed,
            "exact": [list(g) for g in self.exact],
            "pairs": [p.to_dict() for p in self.pairs],
            "truncated": self.truncated,
            "groups": [list(g) for g in self.groups],
            "cross_split": [list(g) for g in self.cross_split],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NearDuplicates:
        """Back from :meth:`to_dict` (the store caches the result)."""
        return cls(checked=bool(d["checked"]), max_distance=int(d["max_distance"]), hashed=int(d["hashed"]),
                   exact=[list(g) for g in d["exact"]], pairs=[DuplicatePair(**p) for p in d["pairs"]],
                   truncated=bool(d["truncated"]), groups=[list(g) for g in d["groups"]],
                   cross_split=[list(g) for g in d["cross_split"]])


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected component label of each of ``n`` nodes joined by the edges ``a[k] - b[k]``: labels 0, 1, ...
    in the order of each component's smallest node (as scipy's ``connected_components`` numbers them).

    Union-find in whole-array steps: every edge hooks the larger of its two roots under the smaller, then
    pointer jumping makes every node point at its root, until no edge joins two roots. A handful of rounds
    even for long chains, in numpy alone (scipy's import cost a large import a fifth of a second)."""
    if n == 0 or a.size == 0:
        return np.arange(n)
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    root = np.arange(n, dtype=np.int64)
    while True:
        ra, rb = root[a], root[b]
        apart = ra != rb
        if not apart.any():
            break
        a, b = a[apart], b[apart]  # an edge inside one component never joins anything again
        lo, hi = np.minimum(ra[apart], rb[apart]), np.maximum(ra[apart], rb[apart])
        np.minimum.at(root, hi, lo)  # hi is a root: it goes under the smallest root it touches
        while True:
            up = root[root]
            if np.array_equal(up, root):
                break
            root = up
    return np.unique(root, return_inverse=True)[1].reshape(n)
