"""The numpy union-find of `dedup`'s driver equals a plain dict union-find (union by smaller id) on random graphs,
long chains and stars, and holds no Python object per edge (its memory is measured in RESULTS.md)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from shardstore.curate.clusters import cluster
from shardstore.curate.units import KIND_BAND, KIND_EXACT


def _reference(edges: np.ndarray) -> tuple[list[int], list[int], list[bool], dict[int, int]]:
    def find(parent: dict[int, int], x: int) -> int:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    def union(parent: dict[int, int], a: int, b: int) -> None:
        ra, rb = find(parent, a), find(parent, b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    parent: dict[int, int] = {}
    exact: dict[int, int] = {}
    for a, b, kind in edges.tolist():
        union(parent, a, b)
        if kind == KIND_EXACT:
            union(exact, a, b)
    removed, kept, ex = [], [], []
    size: Counter[int] = Counter()
    for m in sorted({int(x) for x in edges[:, :2].reshape(-1).tolist()}):
        r = find(parent, m)
        size[r] += 1
        if r != m:
            removed.append(m)
            kept.append(r)
            ex.append(find(exact, m) == find(exact, r))
    return removed, kept, ex, dict(sorted(Counter(size.values()).items()))


def _edges(a, b, kind) -> np.ndarray:
    return np.stack([np.asarray(a), np.asarray(b), np.asarray(kind)], 1).astype(np.uint64)


@pytest.mark.parametrize("seed", range(6))
def test_numpy_union_find_equals_the_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = [(50, 40), (500, 300), (2000, 2500), (10**9, 400), (30, 200), (5000, 4000)][seed]
    a = rng.integers(0, n, m)
    b = rng.integers(0, n, m)
    kind = rng.choice([KIND_EXACT, KIND_BAND], m)
    edges = _edges(a, b, kind)
    got = cluster(edges)
    removed, kept, ex, sizes = _reference(edges)
    assert got.removed.tolist() == removed and got.kept_of.tolist() == kept
    assert got.exact.tolist() == ex and got.sizes == sizes


def test_long_chains_and_stars() -> None:
    ids = np.random.default_rng(1).permutation(3000) + 7  # a chain in shuffled id order: the worst case
    chain = _edges(ids[:-1], ids[1:], np.full(2999, KIND_BAND))
    star = _edges(np.full(50, 10_000), np.arange(10_001, 10_051), np.full(50, KIND_EXACT))
    edges = np.concatenate([chain, star])
    got = cluster(edges)
    removed, kept, ex, sizes = _reference(edges)
    assert got.removed.tolist() == removed and got.kept_of.tolist() == kept and got.exact.tolist() == ex
    assert got.sizes == sizes == {51: 1, 3000: 1}
    assert cluster(np.empty((0, 3), np.uint64)).removed.size == 0
