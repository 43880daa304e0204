"""The numpy union-find of `dedup`'s driver equals a plain dict union-find (union by smaller id) on random graphs,
long chains and stars, and holds no Python object per edge; read from edge files in chunks with its labels spilled
(a tiny --memory-limit) it gives the same clusters and masks (its memory is measured in RESULTS.md)."""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pytest

import shardstore.curate.clusters as clusters_mod
from shardstore.curate.clusters import cluster, cluster_files
from shardstore.curate.dedup import dedup
from shardstore.curate.synthetic import make_corpus
from shardstore.curate.units import KIND_BAND, KIND_EXACT, save_npy
from shardstore.store.mask import mask_file_name
from shardstore.store.store import Store


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


def _as_files(edges: np.ndarray, tmp_path, parts: int) -> list[str]:
    paths = []
    for i, part in enumerate(np.array_split(edges, parts)):
        path = str(tmp_path / f"e{i}.edges.npy")
        save_npy(path, part)
        paths.append(path)
    return paths


@pytest.mark.parametrize("seed", range(3))
def test_chunked_and_spilled_union_find_equals_the_in_memory_one(seed: int, tmp_path) -> None:
    """1 MiB: chunks of 1024 edges, and the labels of ~15,000 members spill to memory-mapped files."""
    rng = np.random.default_rng(seed)
    m = 9000
    edges = _edges(
        rng.integers(0, 40_000, m), rng.integers(0, 40_000, m), rng.choice([KIND_EXACT, KIND_BAND], m)
    )
    ids = rng.permutation(3000) + 50_000  # and a long chain, in shuffled order, cut across files and chunks
    edges = np.concatenate([edges, _edges(ids[:-1], ids[1:], np.full(2999, KIND_BAND))])
    edges = edges[rng.permutation(edges.shape[0])]
    want = cluster(edges)
    spilled: list[str] = []
    real = clusters_mod._labels

    def spy(n: int, spill_dir: str | None, name: str) -> np.ndarray:
        if spill_dir is not None:
            spilled.append(name)
        return real(n, spill_dir, name)

    clusters_mod._labels = spy  # type: ignore[assignment]
    try:
        got = cluster_files(_as_files(edges, tmp_path, 3), memory_limit=1 << 20, spill_dir=str(tmp_path))
    finally:
        clusters_mod._labels = real  # type: ignore[assignment]
    assert spilled == ["label", "exact"]
    assert not [n for n in os.listdir(tmp_path) if n.startswith("clusters.")]  # spill files removed
    assert got.removed.tobytes() == want.removed.tobytes() and got.kept_of.tobytes() == want.kept_of.tobytes()
    assert got.exact.tobytes() == want.exact.tobytes() and got.sizes == want.sizes
    removed, kept, ex, sizes = _reference(edges)
    assert got.removed.tolist() == removed and got.kept_of.tolist() == kept
    assert got.exact.tolist() == ex and got.sizes == sizes


def test_a_tiny_memory_limit_gives_the_same_masks(make_store, tmp_path) -> None:
    """Families of 25 copies: thousands of near edges in one file (one partition), read in chunks of 1024 under
    --memory-limit 1M, at once with the default."""
    c = make_corpus(families=40, copies=24, rates=(0.0, 0.01), unrelated=200, paragraphs=1, words=14, seed=3)
    a = make_store("a", c.texts)
    small = dedup([a], out=tmp_path / "small", workers=1, memory_limit=1 << 20, partitions=1)
    big = dedup([a], out=tmp_path / "big", workers=1, partitions=1)
    assert small.to_dict()["candidates"]["near_pairs"] > 2048
    name = mask_file_name(Store.open(a).fingerprint)
    assert (tmp_path / "small" / name).read_bytes() == (tmp_path / "big" / name).read_bytes()
    assert small.removed_docs == big.removed_docs > 0
