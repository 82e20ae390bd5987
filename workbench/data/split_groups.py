"""Copies of one source image stay in one split.

Roboflow exports augmented copies of an image as ``<stem>.rf.<hash>.jpg``; datasets carry the same image
twice, or near-identical frames. If the hash split (:mod:`.splits`) put one copy in train and another in
val or test, val / test scores would measure memory, not generalisation. So examples are grouped before
the split is drawn: the same Roboflow stem (the file name before ``.rf.<hash>``), the same content (sha256),
or perceptual hashes within ``GROUP_DISTANCE`` bits (:mod:`.duplicates`' pHash), joined transitively.

* A group with a member already placed (an example already in the dataset, or one whose split the source
  gives) brings its new members to that member's split: nothing placed earlier moves.
* Other groups are drawn like single examples (:func:`~workbench.data.splits.assign_splits`): in the order
  of their smallest split key, a group goes to val while it fits in what val still needs, then to test,
  else to train. With every group a single example this is exactly ``assign_splits``. Only when whole
  groups cannot fill val and test (nearly every image a near duplicate of another) are groups split, and
  the import says how many.

:func:`straddling_groups` finds the groups that still span train and val / test (a source's own split can
put them there); ``stats`` reports them as errors.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from .duplicates import close_pairs, components, popcount
from .splits import SplitSettings, split_targets

__all__ = ["GROUP_DISTANCE", "Member", "source_stem", "copy_groups", "assign_grouped", "straddling_groups",
           "join_straddling", "held_and_train"]

GROUP_DISTANCE = 4  # pHash bits: what the duplicate search calls a near duplicate by default
_RF = re.compile(r"^(?P<stem>.+)\.rf\.[0-9a-f]{6,}$", re.IGNORECASE)
_BLOCK_CELLS = 4_000_000  # hash comparisons per vectorised block
_BRUTE_CELLS = 50_000_000  # up to this many (new x all) comparisons, compare directly; else banded


@dataclass(frozen=True)
class Member:
    """One example as the grouping sees it. ``split``: where it is (or must be); None: not placed yet."""

    file_name: str
    blob: str
    phash: str | None
    split: str | None
    key: float = 0.0


def source_stem(file_name: str) -> str | None:
    """The Roboflow source stem of ``file_name`` (``IMG_1_jpg.rf.ab12cd.jpg`` -> ``IMG_1_jpg``), else None."""
    if ".rf." not in str(file_name).lower():  # (most names: no path split, no pattern match)
        return None
    name = PurePosixPath(str(file_name).replace("\\", "/")).name
    m = _RF.match(name.rsplit(".", 1)[0] if "." in name else name)
    return m.group("stem").lower() if m else None


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _union(parent: list[int], a: int, b: int) -> None:
    ra, rb = _find(parent, a), _find(parent, b)
    if ra != rb:
        parent[max(ra, rb)] = min(ra, rb)


def copy_groups(members: Sequence[Member], *, first_new: int = 0, max_distance: int = GROUP_DISTANCE) -> list[int]:
    """A group label per member (the smallest index in its group). When few members are new (index
    ``first_new`` or later), near duplicates are looked for only in pairs with a new member (the others were
    grouped before); when many are, among all (the duplicate check's banded search)."""
    n = len(members)
    joined_a: list[int] = []  # the members joined, pairwise (grouped transitively at the end)
    joined_b: list[int] = []
    by_key: dict[tuple[str, str], int] = {}
    for i, m in enumerate(members):
        stem = source_stem(m.file_name)
        for key in ((("stem", stem),) if stem else ()) + (("blob", m.blob),):
            j = by_key.setdefault(key, i)
            if j != i:
                joined_a.append(j)
                joined_b.append(i)
    by_value: dict[int, int] = {}  # each distinct pHash -> its first member; identical hashes join it
    new_value: dict[int, bool] = {}
    for i, m in enumerate(members):
        if m.phash:
            v = int(m.phash, 16)
            j = by_value.setdefault(v, i)
            if j != i:
                joined_a.append(j)
                joined_b.append(i)
            new_value[v] = new_value.get(v, False) or i >= first_new
    a_parts = [np.asarray(joined_a, dtype=np.int64)]
    b_parts = [np.asarray(joined_b, dtype=np.int64)]
    if len(by_value) > 1:
        values = np.fromiter(by_value.keys(), dtype=np.uint64, count=len(by_value))
        reps = np.fromiter(by_value.values(), dtype=np.int64, count=len(by_value))
        rows = np.flatnonzero(np.fromiter((new_value[v] for v in by_value), dtype=bool, count=len(by_value)))
        if len(rows) * len(values) <= _BRUTE_CELLS:  # a few new hashes: each against every hash
            block = max(1, _BLOCK_CELLS // len(values))
            for s in range(0, len(rows), block):
                r = rows[s : s + block]
                bi, aj = np.nonzero(popcount(values[r][:, None] ^ values[None, :]) <= max_distance)
                a_parts.append(reps[r[bi]])
                b_parts.append(reps[aj])
        else:  # many: the banded search of the duplicate check
            ii, jj, _d = close_pairs(values, max_distance)
            a_parts.append(reps[ii])
            b_parts.append(reps[jj])
    label = components(n, np.concatenate(a_parts), np.concatenate(b_parts))
    smallest = np.full(int(label.max()) + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(smallest, label, np.arange(n, dtype=np.int64))
    return smallest[label].tolist()


def assign_grouped(new: Sequence[Member], existing: Sequence[Member], *, current_val: int, current_test: int,
                   total_after: int, settings: SplitSettings, max_distance: int = GROUP_DISTANCE
                   ) -> tuple[list[str], int]:
    """The split of each of ``new`` (those with a ``split`` keep it) given the dataset's ``existing``
    examples; ``current_val`` / ``current_test`` count the examples already there and the new ones whose
    split is given. See the module doc.

    Also returns how many groups were too large to keep together: when whole groups cannot fill val and
    test (say every image is a near duplicate of another), the groups drawn for train give up members, by
    split key, until they are filled, as the split without groups would; ``stats`` then lists those groups.
    """
    members = [*existing, *new]
    first = len(existing)
    labels = copy_groups(members, first_new=first, max_distance=max_distance)
    placed: dict[int, str] = {}
    for i, m in enumerate(members):  # the first placed member of each group decides where the group goes
        if m.split is not None:
            placed.setdefault(labels[i], m.split)
    out: list[str | None] = [m.split for m in new]
    free: dict[int, list[int]] = {}
    for k, m in enumerate(new):
        if m.split is not None:
            continue
        label = labels[first + k]
        if label in placed:
            out[k] = placed[label]
            current_val += out[k] == "val"
            current_test += out[k] == "test"
        else:
            free.setdefault(label, []).append(k)
    want_val, want_test = split_targets(total_after, settings)
    need_val = max(0, want_val - current_val)
    need_test = max(0, want_test - current_test)
    order = sorted(free.values(), key=lambda ks: (min(new[k].key for k in ks), ks[0]))
    left: list[list[int]] = []  # groups drawn for train
    for ks in order:
        if len(ks) <= need_val:
            split, need_val = "val", need_val - len(ks)
        elif len(ks) <= need_test:
            split, need_test = "test", need_test - len(ks)
        else:
            split = "train"
            left.append(ks)
        for k in ks:
            out[k] = split
    broken = 0
    if need_val or need_test:  # whole groups could not fill them: take members, lowest keys first
        spare = sorted((new[k].key, k, g) for g, ks in enumerate(left) for k in ks)
        taken: set[int] = set()
        for _key, k, g in spare:
            if need_val:
                out[k], need_val = "val", need_val - 1
            elif need_test:
                out[k], need_test = "test", need_test - 1
            else:
                break
            taken.add(g)
        broken = sum(1 for g in taken if any(out[k] == "train" for k in left[g]))
    return [s or "train" for s in out], broken


def straddling_groups(ids: Sequence[int], members: Sequence[Member], *,
                      max_distance: int = GROUP_DISTANCE) -> list[list[int]]:
    """The groups of copies (ids, ascending) with members in train and in val or test."""
    labels = copy_groups(members, max_distance=max_distance)
    groups: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    out = []
    for idx in groups.values():
        splits = {members[i].split for i in idx}
        if "train" in splits and splits & {"val", "test"}:
            out.append(sorted(ids[i] for i in idx))
    return sorted(out)


def join_straddling(groups: Sequence[Sequence[int]], split_of: dict[int, str]) -> list[list[int]]:
    """Join groups of example ids that share an id; those spanning train and val or test (ids ascending).
    ``split_of``: the split of the examples not in train (at least)."""
    parent = list(range(len(groups)))
    owner: dict[int, int] = {}
    for gi, g in enumerate(groups):
        for e in g:
            o = owner.setdefault(e, gi)
            if o != gi:
                _union(parent, o, gi)
    members: dict[int, set[int]] = {}
    for gi, g in enumerate(groups):
        members.setdefault(_find(parent, gi), set()).update(g)
    out = []
    for ids in members.values():
        splits = {split_of.get(e, "train") for e in ids}
        if "train" in splits and splits & {"val", "test"}:
            out.append(sorted(ids))
    return sorted(out)


def held_and_train(groups: Sequence[Sequence[int]], split_of: dict[int, str]) -> list[list[int]]:
    """Of disjoint groups of example ids, those with members both in train and in val / test (``split_of``:
    the examples in val or test; the rest are in train). Vectorised: one group can hold 100,000 ids."""
    if not groups:
        return []
    held = np.fromiter((e for e, sp in split_of.items() if sp in ("val", "test")), dtype=np.int64)
    sizes = np.fromiter((len(g) for g in groups), dtype=np.int64, count=len(groups))
    flat = np.fromiter((e for g in groups for e in g), dtype=np.int64, count=int(sizes.sum()))
    gid = np.repeat(np.arange(len(groups)), sizes)
    n_held = np.bincount(gid, weights=np.isin(flat, held), minlength=len(groups))
    keep = np.flatnonzero((n_held > 0) & (n_held < sizes))
    return sorted(sorted(groups[k]) for k in keep.tolist())
