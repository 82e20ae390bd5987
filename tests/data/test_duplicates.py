"""Perceptual hash and the bucketed pair search (the near-duplicate checks on examples are in test_quality)."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image

from workbench.data import duplicates
from workbench.data.duplicates import close_pairs, hamming, phash, phash_hex
from workbench.errors import ValidationError


def brute(hashes: np.ndarray, d: int) -> set[tuple[int, int, int]]:
    out = set()
    for i, j in itertools.combinations(range(len(hashes)), 2):
        dist = hamming(int(hashes[i]), int(hashes[j]))
        if dist <= d:
            out.add((i, j, dist))
    return out


def planted_hashes(n: int, seed: int) -> np.ndarray:
    """Random 64-bit hashes, a fifth of them copies of others with 0-6 bits flipped (some repeated), and
    clusters of eight hashes within a few bits of each other."""
    rng = np.random.default_rng(seed)
    h = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64) * np.uint64(2) + rng.integers(
        0, 2, n
    ).astype(np.uint64)
    for k in range(n // 5):
        v = int(h[k])
        for bit in rng.choice(64, int(rng.integers(0, 7)), replace=False):
            v ^= 1 << int(bit)
        h[n - 1 - k] = np.uint64(v)
    for c in range(n // 40):  # tight clusters: many hashes share a band value
        centre = int(h[n // 5 + c])
        for m in range(1, 8):
            v = centre
            for bit in rng.choice(64, int(rng.integers(1, 4)), replace=False):
                v ^= 1 << int(bit)
            h[n // 5 + n // 40 + c * 7 + m - 1] = np.uint64(v)
    return h


@pytest.mark.parametrize("max_distance", [0, 1, 3, 4, 6])
@pytest.mark.parametrize("n", [40, 700])  # 700 distinct hashes take the banded path
def test_close_pairs_equals_brute_force(n: int, max_distance: int) -> None:
    h = planted_hashes(n, seed=n + max_distance)
    i, j, d = close_pairs(h, max_distance)
    got = set(zip(i.tolist(), j.tolist(), d.tolist(), strict=True))
    assert got == brute(h, max_distance)
    assert len(got) == len(i)  # no pair twice
    assert list(d) == sorted(d)
    assert all(a < b for a, b in zip(i.tolist(), j.tolist(), strict=True))


def test_banded_search_is_used_for_many_hashes_and_scales() -> None:
    rng = np.random.default_rng(0)
    h = rng.integers(0, 2**63, 100_000, dtype=np.int64).astype(np.uint64)
    h[-1] = h[0] ^ np.uint64(0b1011)  # 3 bits apart
    called = []
    original = duplicates._band_pairs

    def spy(*args):  # type: ignore[no-untyped-def]
        called.append(True)
        return original(*args)

    duplicates._band_pairs = spy
    try:
        i, j, d = close_pairs(h, 4)
    finally:
        duplicates._band_pairs = original
    assert called
    assert (0, 99_999, 3) in set(zip(i.tolist(), j.tolist(), d.tolist(), strict=True))


def test_close_pairs_edge_cases() -> None:
    for empty in ([], [5]):
        i, j, d = close_pairs(empty, 4)
        assert i.size == j.size == d.size == 0
    for bad in (-1, 64, 2.5, True):
        with pytest.raises(ValidationError) as err:
            close_pairs([1, 2], bad)  # type: ignore[arg-type]
        assert err.value.field == "max_distance"


def png(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def test_phash_of_a_flat_or_symmetric_picture_does_not_depend_on_rounding_noise() -> None:
    """Frequencies equal in exact arithmetic give the same bits however the sums were ordered: a flat picture
    hashes to its brightness bit alone (the old full transform left 1e-13 noise that set 9 bits at random),
    and every hash equals the one made from scipy's orthonormal 2-D DCT, alone or inside a stack."""
    from scipy.fft import dctn

    from workbench.data.phash import hash_thumbnails

    rng = np.random.default_rng(3)
    flat = np.full((32, 32), 128.0)
    stripes = np.tile([0.0, 255.0], (32, 16))
    checker = np.kron((np.indices((4, 4)).sum(0) % 2) * 255.0, np.ones((8, 8)))
    pictures = np.stack([flat, stripes, checker, *np.round(rng.random((29, 32, 32)) * 255)])
    assert int(hash_thumbnails(flat[None])[0]) == 1 << 63  # only the DC term is above the median (0)

    def reference(x: np.ndarray) -> int:
        low = np.round(dctn(x, norm="ortho")[:8, :8].ravel(), 6) + 0.0
        bits = low > np.median(low[1:])
        return int.from_bytes(np.packbits(bits).tobytes(), "big")

    stacked = hash_thumbnails(pictures)
    for k, x in enumerate(pictures):
        assert int(stacked[k]) == int(hash_thumbnails(x[None])[0]) == reference(x), k


def test_phash_is_stable_across_encodings_and_hex() -> None:
    rng = np.random.default_rng(1)
    coarse = Image.fromarray(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)).resize((128, 96), Image.BICUBIC)
    img = np.clip(np.asarray(coarse) + rng.normal(0, 3, (96, 128, 3)), 0, 255).astype(np.uint8)
    a = phash(png(img))
    assert phash(png(img)) == a
    assert hamming(a, phash(png(img, "JPEG"))) <= 2
    assert hamming(a, phash(png(img[:, ::-1]))) > 8  # mirrored is a different picture
    assert phash_hex(png(img)) == f"{a:016x}" and len(phash_hex(png(img))) == 16
    assert 0 <= a < 2**64


def test_components_label_as_scipy_does_on_random_graphs_and_long_chains():
    """The numpy union-find gives scipy's ``connected_components`` labels exactly (the oracle: scipy, which
    the import no longer loads), on random multigraphs, self loops, and long chains in shuffled order."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from workbench.data.duplicates import components

    rng = np.random.default_rng(0)
    for trial in range(200):
        n = int(rng.integers(1, 300))
        if trial % 3 == 0:
            perm = rng.permutation(n)
            a, b = perm[:-1], perm[1:]
        else:
            m = int(rng.integers(0, 3 * n))
            a, b = rng.integers(0, n, m), rng.integers(0, n, m)
        want = (connected_components(coo_matrix((np.ones(a.size, np.int8), (a, b)), shape=(n, n)), directed=False)[1]
                if a.size else np.arange(n))
        assert np.array_equal(components(n, a, b), want), trial
    assert components(0, np.empty(0, np.int64), np.empty(0, np.int64)).size == 0


def test_crowded_hashes_are_compared_pair_by_pair_and_the_pairs_are_the_same():
    """Hashes crowded into a few band values (small images hash alike) make the banded search compare
    nearly every pair anyway: close_pairs compares all pairs then (faster), with the same answer."""
    from workbench.data import duplicates

    rng = np.random.default_rng(3)
    # the top 48 bits alike, the low 16 random: every band but the lowest holds one value
    h = np.unique(np.uint64(0x9E3779B97F4A << 16) | rng.integers(0, 2**16, 1500).astype(np.uint64))
    assert duplicates._crowded(h, 4)
    assert not duplicates._crowded(np.unique(rng.integers(0, 2**63, 1500, dtype=np.int64).astype(np.uint64)), 4)
    i, j, d = duplicates.close_pairs(h, 4)
    bi, bj = duplicates._band_pairs(h, 4)
    assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == sorted(zip(bi.tolist(), bj.tolist(), strict=True))
    assert len(i) > 1000
    assert (d == duplicates.popcount(h[i] ^ h[j])).all() and d.max() <= 4
