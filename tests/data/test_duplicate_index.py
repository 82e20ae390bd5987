"""The duplicate search's kept index: extending it with added examples gives exactly what a search from
nothing gives (so ``stats`` after collecting images compares only the new ones)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.data import Workspace
from workbench.data.duplicate_index import DuplicateIndex, duplicates_of
from workbench.data.stats import dataset_stats
from workbench.data.transfer import add_sample
from workbench.errors import ValidationError

BASES = [0x0123456789ABCDEF, 0xFEDCBA9876543210, 0x0F0F0F0F0F0F0F0F]


@st.composite
def example_sets(draw):
    """Examples (ascending ids) over a small pool of images whose hashes sit near a few base hashes, so
    exact duplicates, equal hashes and near pairs all occur."""
    n = draw(st.integers(0, 40))
    ids = sorted(draw(st.sets(st.integers(1, 10_000), min_size=n, max_size=n)))
    pool = draw(st.integers(1, 30))
    blobs = [f"blob{draw(st.integers(0, pool - 1))}" for _ in ids]
    splits = [draw(st.sampled_from(["train", "val", "test"])) for _ in ids]
    hashes = {}
    for k in range(pool):
        flips = draw(st.lists(st.integers(0, 63), max_size=4))
        h = BASES[draw(st.integers(0, len(BASES) - 1))]
        for bit in flips:
            h ^= 1 << bit
        hashes[f"blob{k}"] = h if draw(st.booleans()) else f"{h:016x}"
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
    return ids, blobs, splits, hashes, cuts


def extended(ids, blobs, splits, hashes, cuts, max_distance):
    """The index built from the first slice, then extended slice by slice (through bytes, as the store
    keeps it), with ``known_blobs`` found the way the store finds them."""
    bounds = [0, *cuts, len(ids)]
    index = DuplicateIndex.build(ids[: bounds[1]], blobs[: bounds[1]], splits[: bounds[1]], None, max_distance,
                                 hashes=hashes)
    for lo, hi in zip(bounds[1:-1], bounds[2:], strict=True):
        first = {}
        for i, b in zip(ids[:lo], blobs[:lo], strict=True):
            first.setdefault(b, i)
        known = {b: first[b] for b in blobs[lo:hi] if b in first}
        index = DuplicateIndex.from_bytes(index.to_bytes()).extend(ids[lo:hi], blobs[lo:hi], splits[lo:hi],
                                                                   known, None, hashes=hashes)
    return index


@settings(max_examples=150, deadline=None)
@given(example_sets(), st.sampled_from([0, 2, 4, 9]), st.sampled_from([0, 1, 5, 1000]))
def test_extending_equals_searching_from_nothing(case, max_distance, max_pairs):
    ids, blobs, splits, hashes, cuts = case
    whole = DuplicateIndex.build(ids, blobs, splits, None, max_distance, hashes=hashes)
    grown = extended(ids, blobs, splits, hashes, cuts, max_distance)
    for name in ("ids", "blob_of", "split_of", "value_of", "values", "pairs"):
        assert np.array_equal(getattr(grown, name), getattr(whole, name)), name
    assert grown.result(max_pairs).to_dict() == whole.result(max_pairs).to_dict()
    assert whole.result(max_pairs).to_dict() == duplicates_of(ids, blobs, splits, None, max_distance,
                                                              hashes=hashes, max_pairs=max_pairs).to_dict()


@settings(max_examples=60, deadline=None)
@given(example_sets())
def test_the_answer_agrees_with_a_direct_reading(case):
    """Groups are the connected pieces of 'same image or hashes within reach'; pairs are the closest."""
    ids, blobs, splits, hashes, _ = case
    res = DuplicateIndex.build(ids, blobs, splits, None, 4, hashes=hashes).result(10_000)
    value = {b: int(h, 16) if isinstance(h, str) else h for b, h in hashes.items()}
    near = {(a, b) for a in range(len(ids)) for b in range(a + 1, len(ids))
            if blobs[a] == blobs[b] or (value[blobs[a]] ^ value[blobs[b]]).bit_count() <= 4}
    parent = list(range(len(ids)))

    def root(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in near:
        parent[root(a)] = root(b)
    comps: dict[int, list[int]] = {}
    for k in range(len(ids)):
        comps.setdefault(root(k), []).append(ids[k])
    assert res.groups == sorted(sorted(c) for c in comps.values() if len(c) > 1)
    split_of = dict(zip(ids, splits, strict=True))
    assert res.cross_split == [g for g in res.groups if len({split_of[i] for i in g}) > 1]
    rep = {}
    for i, b in zip(ids, blobs, strict=True):
        rep.setdefault(b, i)
    want = sorted({(((value[a] ^ value[b]).bit_count()), min(rep[a], rep[b]), max(rep[a], rep[b]))
                   for a in rep for b in rep if a < b and (value[a] ^ value[b]).bit_count() <= 4})
    assert [(p.distance, p.a, p.b) for p in res.pairs] == want
    assert res.exact == sorted(sorted(i for i, b in zip(ids, blobs, strict=True) if b == blob)
                               for blob in rep if blobs.count(blob) > 1)


def test_extend_refuses_old_ids_and_unknown_examples():
    index = DuplicateIndex.build([1, 2], ["a", "b"], ["train", "val"], None, hashes={"a": 1, "b": 2})
    with pytest.raises(ValidationError, match="larger"):
        index.extend([2], ["c"], ["train"], {}, None, hashes={"c": 3})
    with pytest.raises(ValidationError, match="example 7"):
        index.extend([3], ["c"], ["train"], {"c": 7}, None, hashes={"c": 3})


def test_stats_after_adding_examples_equal_stats_from_nothing(tmp_path):
    """Through the store: images collected in several rounds (some near duplicates of earlier ones, some
    the same images again), a delete, and a large batch (searched from nothing instead)."""
    ws = Workspace(tmp_path / "ws")
    ds, ids = add_sample(ws, "d", "shapes-detection", count=30, seed=0)
    first = dataset_stats(ds)
    for seed in (1, 2):
        add_sample(ws, "d", "shapes-detection", count=3, seed=seed)
        ds.copy_without_annotations(ds.example_ids()[:2])
        got = dataset_stats(ds)
        assert got == dataset_stats(ds, use_cache=False)
    assert got["near_duplicates"] != first["near_duplicates"] and got["examples"] == 40
    ds.delete_examples(ds.example_ids()[-3:])
    assert dataset_stats(ds) == dataset_stats(ds, use_cache=False)
    add_sample(ws, "d", "shapes-detection", count=200, seed=3)  # > a quarter of those indexed
    assert dataset_stats(ds) == dataset_stats(ds, use_cache=False)
    kept = ws.conn.execute("SELECT payload FROM duplicate_index WHERE dataset_id=?", (ds.id,)).fetchone()
    assert len(DuplicateIndex.from_bytes(kept[0]).ids) == ds.count()


def test_an_import_leaves_the_search_done_for_the_first_stats(tmp_path, monkeypatch):
    """After an import commits, the duplicate search runs (extending the kept index), so the first stats
    only reads it; if it fails, the import still stands and stats reports the problem when asked."""
    import workbench.data.stats as stats_module
    from workbench.errors import ImageError

    ws = Workspace(tmp_path / "ws")
    add_sample(ws, "d", "shapes-detection", count=30, seed=0)
    ds, _ = add_sample(ws, "d", "shapes-detection", count=5, seed=1)
    calls: list[str] = []
    real_build = DuplicateIndex.build.__func__
    monkeypatch.setattr(DuplicateIndex, "build", classmethod(lambda cls, *a, **k: calls.append("build")
                                                             or real_build(cls, *a, **k)))
    monkeypatch.setattr(DuplicateIndex, "result", lambda self, *a: calls.append("result") or None)
    first = dataset_stats(ds)  # the answer kept by the import: no search, not even reading the index
    assert calls == [] and first["examples"] == 35
    monkeypatch.undo()
    assert first == dataset_stats(ds, use_cache=False)

    def broken(_ds):
        raise ImageError("cannot read the image to hash it", record=1)

    monkeypatch.setattr(stats_module, "warm_duplicates", broken)
    ds2, ids = add_sample(ws, "d", "shapes-detection", count=3, seed=2)
    assert len(ids) == 3 and ds2.count() == 38
