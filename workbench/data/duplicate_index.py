"""What the duplicate search knows about a set of examples, as arrays that can be stored and extended.

:func:`duplicates_of` builds a :class:`DuplicateIndex` (which blob each example
shows, each blob's hash, the pairs of distinct hashes within ``max_distance`` bits) and reads the answer
off it (:meth:`DuplicateIndex.result`). The store keeps the index, so when examples are only added (the
usual case: images collected into a large dataset) only the new images are hashed and compared with the
others: :meth:`DuplicateIndex.extend` gives the same index a search from nothing would, so the same answer.

Order is part of the answer (which pairs are listed when there are more than ``max_pairs``): blobs are
numbered in the order of their first example (examples by id), distinct hashes in the order of their
first blob. Added examples have larger ids, so their blobs and hashes number after the existing ones.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice

import numpy as np

from ..errors import ImageError, ValidationError
from .duplicates import (
    HASH_BITS,
    DuplicatePair,
    NearDuplicates,
    close_pairs,
    components,
    hash_thumbnails,
    popcount,
    thumbnail,
)
from .images import THUMB
from .records import Example

__all__ = ["DuplicateIndex", "duplicates_of", "near_duplicates"]

_BLOCK_CELLS = 4_000_000  # hash comparisons per vectorised block when new hashes meet the old ones
_I64 = np.int64


def _hash_value(value: int | str, blob: str) -> int:
    if isinstance(value, str):
        try:
            value = int(value, 16)
        except ValueError:
            raise ValidationError(f"perceptual hash {value!r} is not hex", record=blob, field="phash") from None
    if not 0 <= int(value) < 1 << HASH_BITS:
        raise ValidationError(f"perceptual hash {value!r} is not 64 bits", record=blob, field="phash")
    return int(value)


def _hash_blobs(keys: Sequence[str], firsts: Sequence[int], hashes: Mapping[str, int | str] | None,
                load_bytes: Callable[[str], bytes] | None, names: Mapping[int, str]) -> list[int | None]:
    """The hash of each blob: from ``hashes`` when known, else computed from ``load_bytes`` (None without)."""
    out: list[int | None] = [None] * len(keys)
    todo = []
    for k, key in enumerate(keys):
        if hashes is not None and key in hashes:
            out[k] = _hash_value(hashes[key], key)
        else:
            todo.append(k)
    if load_bytes is not None and todo:
        thumbs = np.empty((len(todo), THUMB, THUMB))
        for t, k in enumerate(todo):
            try:
                thumbs[t] = thumbnail(load_bytes(keys[k]))
            except (OSError, SyntaxError, ValueError) as e:
                raise ImageError(f"cannot read the image to hash it ({e})", file=names.get(firsts[k]),
                                 record=firsts[k]) from None
        for k, value in zip(todo, hash_thumbnails(thumbs).tolist(), strict=True):
            out[k] = int(value)
    return out


@dataclass
class DuplicateIndex:
    """Examples (ascending ids) -> blobs -> distinct hashes, and the close pairs of distinct hashes.

    ``value_of[k]`` is blob ``k``'s index into ``values`` (-1: not hashed); ``pairs`` are the (i, j, d) of
    all distinct hashes ``i < j`` within ``max_distance`` bits, sorted by distance, then i, then j.
    """

    max_distance: int
    ids: np.ndarray  # int64, ascending
    blob_of: np.ndarray  # int64: each example's blob
    split_of: np.ndarray  # int64: index into split_names
    split_names: list[str]
    value_of: np.ndarray  # int64 per blob
    values: np.ndarray  # uint64 distinct hashes
    pairs: np.ndarray  # int64 (n, 3): i, j, distance

    # ------------------------------------------------------------------------------------------ building
    @classmethod
    def build(cls, ids: Sequence[int], blobs: Sequence[str], splits: Sequence[str],
              load_bytes: Callable[[str], bytes] | None = None, max_distance: int = 4, *,
              hashes: Mapping[str, int | str] | None = None, names: Sequence[str] | None = None) -> DuplicateIndex:
        """The index of examples given as parallel lists (``names``: file names, for error messages)."""
        if not len(ids) == len(blobs) == len(splits):
            raise ValidationError("ids, blobs and splits differ in length", field="examples")
        empty = cls(max_distance, np.empty(0, _I64), np.empty(0, _I64), np.empty(0, _I64), [],
                    np.empty(0, _I64), np.empty(0, np.uint64), np.empty((0, 3), _I64))
        return empty.extend(ids, blobs, splits, {}, load_bytes, hashes=hashes, names=names)

    def extend(self, ids: Sequence[int], blobs: Sequence[str], splits: Sequence[str],
               known_blobs: Mapping[str, int], load_bytes: Callable[[str], bytes] | None = None, *,
               hashes: Mapping[str, int | str] | None = None, names: Sequence[str] | None = None) -> DuplicateIndex:
        """This index with examples added: their ids must be larger than every id here, and ``known_blobs``
        maps those of their blobs that examples here already show to one of those examples' ids."""
        order = np.argsort(np.asarray(ids, dtype=_I64), kind="stable")
        new_ids = np.asarray(ids, dtype=_I64)[order]
        if len(new_ids) != len(np.unique(new_ids)) or (len(self.ids) and len(new_ids) and new_ids[0] <= self.ids[-1]):
            raise ValidationError("added examples must have new ids, larger than those indexed", field="ids")
        blobs = [blobs[i] for i in order]
        splits = [splits[i] for i in order]
        name_of = dict(zip(ids, names, strict=True)) if names is not None else {}
        n_old = len(self.value_of)
        blob_index: dict[str, int] = {}
        for key, eid in known_blobs.items():
            pos = int(np.searchsorted(self.ids, eid))
            if pos >= len(self.ids) or self.ids[pos] != eid:
                raise ValidationError(f"example {eid} is not in the index", record=eid, field="known_blobs")
            blob_index[key] = int(self.blob_of[pos])
        new_keys: list[str] = []
        firsts: list[int] = []
        blob_of = np.empty(len(new_ids), _I64)
        for e, key in enumerate(blobs):
            k = blob_index.get(key)
            if k is None:
                k = blob_index[key] = n_old + len(new_keys)
                new_keys.append(key)
                firsts.append(int(new_ids[e]))
            blob_of[e] = k
        split_names = list(self.split_names)
        split_code = {s: i for i, s in enumerate(split_names)}
        split_of = np.empty(len(new_ids), _I64)
        for e, s in enumerate(splits):
            if s not in split_code:
                split_code[s] = len(split_names)
                split_names.append(s)
            split_of[e] = split_code[s]

        new_hashes = _hash_blobs(new_keys, firsts, hashes, load_bytes, name_of)
        value_index = {int(v): i for i, v in enumerate(self.values.tolist())}
        value_of = np.full(len(new_keys), -1, _I64)
        added: list[int] = []
        for k, h in enumerate(new_hashes):
            if h is None:
                continue
            v = value_index.get(h)
            if v is None:
                v = value_index[h] = len(self.values) + len(added)
                added.append(h)
            value_of[k] = v
        values = np.concatenate([self.values, np.array(added, dtype=np.uint64)])
        pairs = self.pairs
        if added and len(self.values) == 0:  # nothing to extend: the banded search over them all
            i, j, d = close_pairs(values, self.max_distance)
            pairs = np.stack([i, j, d], axis=1).astype(_I64) if len(i) else np.empty((0, 3), _I64)
        elif added:  # the old pairs stand; add those of each new hash with every hash before it
            pairs = np.concatenate([pairs, self._pairs_with(values, len(self.values))])
            pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0], pairs[:, 2]))]
        return DuplicateIndex(self.max_distance, np.concatenate([self.ids, new_ids]),
                              np.concatenate([self.blob_of, blob_of]), np.concatenate([self.split_of, split_of]),
                              split_names, np.concatenate([self.value_of, value_of]), values, pairs)

    def _pairs_with(self, values: np.ndarray, first_new: int) -> np.ndarray:
        """(i, j, d) of every pair within reach whose larger index ``j`` is a new value (>= first_new)."""
        out = []
        new = values[first_new:]
        rows = max(1, _BLOCK_CELLS // max(len(values), 1))
        for s in range(0, len(new), rows):
            block = new[s : s + rows]
            d = popcount(block[:, None] ^ values[None, :])
            jj, ii = np.nonzero(d <= self.max_distance)
            jj = jj + s + first_new
            keep = ii < jj
            out.append(np.stack([ii[keep], jj[keep], d[jj[keep] - first_new - s, ii[keep]]], axis=1))
        return np.concatenate(out).astype(_I64) if out else np.empty((0, 3), _I64)

    # ------------------------------------------------------------------------------------------ the answer
    @property
    def checked(self) -> bool:
        return bool(len(self.value_of) == 0 or (self.value_of >= 0).all())

    def result(self, max_pairs: int = 1000) -> NearDuplicates:
        """The :class:`~workbench.data.duplicates.NearDuplicates` of the indexed examples."""
        n_blobs = len(self.value_of)
        # each blob's examples: ids are ascending, so a stable sort by blob keeps them ascending
        by_blob = np.argsort(self.blob_of, kind="stable")
        starts = np.searchsorted(self.blob_of[by_blob], np.arange(n_blobs + 1))
        sizes = np.diff(starts)
        rep = self.ids[by_blob[starts[:-1]]] if n_blobs else np.empty(0, _I64)  # each blob's smallest id
        exact_blobs = np.flatnonzero(sizes > 1)
        exact = sorted(self.ids[by_blob[starts[k] : starts[k + 1]]].tolist() for k in exact_blobs)
        hashed = int((self.value_of >= 0).sum())
        result = NearDuplicates(checked=self.checked, max_distance=self.max_distance, hashed=hashed, exact=exact)

        # each distinct hash's blobs (ascending), the first of them standing for the rest in the graph
        known = np.flatnonzero(self.value_of >= 0)
        by_value = known[np.argsort(self.value_of[known], kind="stable")]
        vstarts = np.searchsorted(self.value_of[by_value], np.arange(len(self.values) + 1))
        heads = by_value[vstarts[:-1]] if len(self.values) else np.empty(0, _I64)
        star = np.ones(len(by_value), dtype=bool)
        star[vstarts[:-1][np.diff(vstarts) > 0]] = False  # every member but the head joins its head
        a_all = np.concatenate([heads[self.value_of[by_value[star]]], heads[self.pairs[:, 0]]])
        b_all = np.concatenate([by_value[star], heads[self.pairs[:, 1]]])

        pairs: list[tuple[int, int, int]] = []  # (distance, blob a, blob b)
        for v in np.flatnonzero(np.diff(vstarts) > 1).tolist():  # same hash: distance 0
            m = by_value[vstarts[v] : vstarts[v + 1]].tolist()
            room = max_pairs + 1 - len(pairs)  # one past the limit tells that pairs were left out
            if room <= 0:
                break
            pairs.extend(islice(((0, m[p], m[q]) for p in range(len(m)) for q in range(p + 1, len(m))), room))
        for i, j, d in self.pairs[: max_pairs + 1].tolist():  # each gives at least one pair
            room = max_pairs + 1 - len(pairs)
            if room <= 0:
                break  # the pairs come closest first: the rest only join groups
            mi = by_value[vstarts[i] : vstarts[i + 1]].tolist()
            mj = by_value[vstarts[j] : vstarts[j + 1]].tolist()
            pairs.extend(islice(((d, a, b) for a in mi for b in mj), room))
        reps = rep.tolist()
        pairs.sort(key=lambda t: (t[0], min(reps[t[1]], reps[t[2]]), max(reps[t[1]], reps[t[2]])))
        result.truncated = len(pairs) > max_pairs
        for d, a, b in pairs[:max_pairs]:
            ea, eb = sorted((reps[a], reps[b]))
            sa, sb = self.split_of[np.searchsorted(self.ids, [ea, eb])].tolist()
            result.pairs.append(DuplicatePair(ea, eb, int(d), sa != sb))

        labels = np.asarray(components(n_blobs, a_all.astype(_I64), b_all.astype(_I64)))
        ex_label = labels[self.blob_of] if n_blobs else np.empty(0, _I64)
        order = np.lexsort((self.ids, ex_label))
        lab_sorted = ex_label[order]
        cuts = np.flatnonzero(np.diff(lab_sorted)) + 1
        bounds = np.concatenate([[0], cuts, [len(order)]]).astype(_I64)
        big = np.flatnonzero(np.diff(bounds) > 1)
        sorted_ids, sorted_splits = self.ids[order], self.split_of[order]
        groups, cross = [], []
        for g in big.tolist():
            lo, hi = bounds[g], bounds[g + 1]
            members = sorted_ids[lo:hi].tolist()
            groups.append(members)
            sp = sorted_splits[lo:hi]
            if sp.min() != sp.max():
                cross.append(members)
        result.groups = sorted(groups, key=lambda m: m[0])  # disjoint: by first id is by whole list
        cross.sort(key=lambda m: m[0])
        result.cross_split = cross
        return result

    # ------------------------------------------------------------------------------------------ storing
    def to_bytes(self) -> bytes:
        """The index as bytes (``.npz``; integers in the smallest type that holds them)."""
        buf = io.BytesIO()
        np.savez(buf, max_distance=np.array(self.max_distance), ids=_compact(self.ids),
                 blob_of=_compact(self.blob_of), split_of=_compact(self.split_of),
                 split_names=np.array(self.split_names, dtype=str), value_of=_compact(self.value_of),
                 values=self.values, pairs=_compact(self.pairs))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> DuplicateIndex:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            ints = {k: z[k].astype(_I64) for k in ("ids", "blob_of", "split_of", "value_of", "pairs")}
            return cls(int(z["max_distance"]), ints["ids"], ints["blob_of"], ints["split_of"],
                       z["split_names"].tolist(), ints["value_of"], z["values"].astype(np.uint64),
                       ints["pairs"].reshape(-1, 3))


def _compact(a: np.ndarray) -> np.ndarray:
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if a.size == 0 or (a.min() >= info.min and a.max() <= info.max):
            return a.astype(dtype)
    return a


def near_duplicates(
    examples: Sequence[Example],
    load_bytes: Callable[[str], bytes] | None = None,
    max_distance: int = 4,
    *,
    hashes: Mapping[str, int | str] | None = None,
    max_pairs: int = 1000,
) -> NearDuplicates:
    """Exact duplicates (same blob) and near duplicates (pHash within ``max_distance`` bits).

    ``hashes`` maps blob sha256 to a known pHash (int or 16 hex digits, as the store caches them); other
    blobs are read with ``load_bytes(sha256)``. Without either, only exact duplicates are reported.
    """
    return duplicates_of(
        [e.id for e in examples], [e.blob for e in examples], [e.split for e in examples], load_bytes,
        max_distance, hashes=hashes, max_pairs=max_pairs, names=[e.file_name for e in examples],
    )


def duplicates_of(
    ids: Sequence[int],
    blobs: Sequence[str],
    splits: Sequence[str],
    load_bytes: Callable[[str], bytes] | None = None,
    max_distance: int = 4,
    *,
    hashes: Mapping[str, int | str] | None = None,
    max_pairs: int = 1000,
    names: Sequence[str] | None = None,
) -> NearDuplicates:
    """:func:`near_duplicates` over parallel lists (example id, blob, split; ``names`` for error messages):
    what the store passes for 100,000 examples without building an :class:`Example` for each."""
    if isinstance(max_pairs, bool) or not isinstance(max_pairs, int) or max_pairs < 0:
        raise ValidationError(
            f"max_pairs must be a non-negative integer, got {max_pairs!r}", field="max_pairs"
        )
    index = DuplicateIndex.build(ids, blobs, splits, load_bytes, max_distance, hashes=hashes, names=names)
    return index.result(max_pairs)
