"""The vectorized candidate generation of the bucket stage equals the per-bucket loop it replaced; the native
exact Jaccard and document sets of the confirmation equal their definitions."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstore.curate.boiler import filtered_set
from shardstore.curate.buckets import MAX_COMPARE, band_pairs, unique_pairs
from shardstore.curate.minhash import MinHashParams, exact_jaccard, ngram_set


def _loop_pairs(members: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    out = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        for j in range(1, e - s):
            for i in range(min(j, MAX_COMPARE)):
                out.append((int(members[s + i]), int(members[s + j])))
    return np.asarray(out, dtype=np.uint64).reshape(-1, 2)


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(1, 20), max_size=12), gaps=st.lists(st.integers(0, 3), min_size=12, max_size=12),
       seed=st.integers(0, 999))  # fmt: skip
def test_band_pairs_equal_the_loop(sizes: list[int], gaps: list[int], seed: int) -> None:
    starts, at = [], 0
    for k, size in enumerate(sizes):  # buckets with unrelated records between them
        at += gaps[k]
        starts.append(at)
        at += size
    members = np.random.default_rng(seed).integers(0, 50, at + 2).astype(np.uint64)
    s = np.asarray(starts, dtype=np.int64)
    e = s + np.asarray(sizes, dtype=np.int64)
    got = band_pairs(members, s, e)
    want = _loop_pairs(members, s, e)
    assert got.dtype == np.uint64 and sorted(map(tuple, got.tolist())) == sorted(map(tuple, want.tolist()))
    assert unique_pairs(got).tobytes() == (np.unique(want, axis=0) if want.size else want).tobytes()


@settings(max_examples=200, deadline=None)
@given(a=st.sets(st.integers(0, 60)), b=st.sets(st.integers(0, 60)), big=st.booleans())
def test_exact_jaccard_is_the_set_jaccard(a: set[int], b: set[int], big: bool) -> None:
    shift = (1 << 63) if big else 0  # the top bit set: unsigned comparisons in the native merge
    x = np.array(sorted(v + shift for v in a), np.uint64)
    y = np.array(sorted(v + shift for v in b), np.uint64)
    want = len(a & b) / len(a | b) if a and b else 0.0
    assert exact_jaccard(x, y) == want


def test_filtered_set_without_boilerplate_is_the_ngram_set() -> None:
    params = MinHashParams(ngram=3)
    toks = np.random.default_rng(1).integers(0, 30, 200).astype(np.uint32)
    assert filtered_set(toks, params, np.empty(0, np.uint64)).tobytes() == ngram_set(toks, params).tobytes()
