"""The native boilerplate passes (`df_sketch`, `df_count`, `sign_masked` in minhash_df.cc / minhash.cc) equal the
numpy paths of tests/curate/curate_reference.py, byte for byte, on random slices: tiny vocabularies (degenerate
windows, repeats), empty documents, wide token ids; and the sketch-then-exact-count pipeline finds exactly the
n-grams whose document frequency is above the limit, whatever the sketch size (collisions) or the unit cut."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from curate_reference import df_rows_numpy, drop_boilerplate_numpy
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstore._native import _minhash
from shardstore.curate.boiler import boiler_signatures, doc_ngrams, filtered_set
from shardstore.curate.docfreq import df_rows, hot_buckets, sketch_path
from shardstore.curate.minhash import MinHashParams, ngram_set, signatures, token_width
from shardstore.curate.units import save_npy


@st.composite
def slices(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    vocab = draw(st.sampled_from([2, 4, 50, 2**20]))
    lens = draw(st.lists(st.integers(0, 40), max_size=12))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    offs = np.concatenate([[0], np.cumsum(lens, dtype=np.int64)]).astype(np.uint64)
    tokens = rng.integers(0, vocab, size=int(offs[-1])).astype(np.uint32)
    if vocab < 2**16 and draw(st.booleans()):
        tokens = tokens.astype(np.uint16)
    return tokens, offs


def _in_hot(hashes: np.ndarray, hot: np.ndarray) -> np.ndarray:
    bits = int(hot.size * 8).bit_length() - 1
    b = (hashes >> np.uint64(64 - bits)).astype(np.int64)
    return ((hot[b >> 3] >> (b & 7).astype(np.uint8)) & 1).astype(bool)


@settings(max_examples=150, deadline=None)
@given(s=slices(), n=st.integers(1, 5), distinct=st.integers(0, 3), partitions=st.sampled_from([1, 2, 7, 64]),
       hot_seed=st.integers(0, 99), hot_bytes=st.sampled_from([1, 2, 16]))  # fmt: skip
def test_native_df_rows_equal_the_numpy_path(s: tuple[np.ndarray, np.ndarray], n: int, distinct: int,
                                             partitions: int, hot_seed: int, hot_bytes: int) -> None:  # fmt: skip
    tokens, offs = s
    params = MinHashParams(ngram=n, min_distinct=min(distinct, n))
    rows, per = df_rows(tokens, offs, params, partitions)
    want_rows, want_per = df_rows_numpy(tokens, offs, params, partitions)
    assert rows.dtype == want_rows.dtype and rows.tobytes() == want_rows.tobytes()
    assert per.tolist() == want_per.tolist()
    # with a hot bitmap: exactly the rows of hashes in hot buckets, in the same order
    hot = np.random.default_rng(hot_seed).integers(0, 256, hot_bytes, dtype=np.uint8)
    rows, per = df_rows(tokens, offs, params, partitions, hot)
    keep = _in_hot(want_rows[:, 0], hot)
    assert rows.tobytes() == want_rows[keep].tobytes()
    part = want_rows[keep, 0] % np.uint64(partitions)
    assert per.tolist() == np.bincount(part.astype(np.int64), minlength=partitions).tolist()


def _sketch_boilerplate(units: list[tuple[np.ndarray, np.ndarray]], params: MinHashParams, bits: int,
                        limit: float) -> np.ndarray:  # fmt: skip
    """The dedup pipeline of docfreq.py on in-memory units: sketches, hot buckets, exact counts, the limit."""
    with tempfile.TemporaryDirectory() as work:
        for u, (tokens, offs) in enumerate(units):
            counts = np.zeros(1 << bits, np.uint8)
            toks, width = token_width(tokens)
            _minhash.df_sketch(toks, width, offs, params.ngram, counts)
            save_npy(sketch_path(work, u), counts)
        hot = hot_buckets(work, len(units), bits, limit)
        assert os.listdir(work)
    rows = np.concatenate([df_rows(t, o, params, 3, hot)[0] for t, o in units])
    h, c = rows[:, 0], rows[:, 1]
    total: dict[int, int] = {}
    for x, k in zip(h.tolist(), c.tolist(), strict=True):
        total[x] = total.get(x, 0) + k
    return np.array(sorted(x for x, k in total.items() if k > limit), np.uint64)


@settings(max_examples=100, deadline=None)
@given(s=slices(), n=st.integers(1, 4), cut=st.integers(0, 12), bits=st.sampled_from([3, 4, 10]),
       limit=st.sampled_from([0.0, 1.0, 2.0, 4.5]))  # fmt: skip
def test_sketch_then_exact_count_finds_exactly_the_frequent_ngrams(s: tuple[np.ndarray, np.ndarray], n: int,
                                                                   cut: int, bits: int, limit: float) -> None:  # fmt: skip
    tokens, offs = s
    params = MinHashParams(ngram=n)
    want_rows, _ = df_rows_numpy(tokens, offs, params, 1)
    want = np.sort(want_rows[want_rows[:, 1] > limit, 0])
    k = min(cut, offs.size - 1)  # two units: documents [0, k) and [k, D)
    units = [(tokens, offs[: k + 1].copy()), (tokens, offs[k:].copy())]
    assert _sketch_boilerplate(units, params, bits, limit).tobytes() == want.tobytes()


def test_a_saturated_sketch_bucket_stays_hot() -> None:
    """400 documents hold one n-gram: the unit's counter stops at 255, below the limit 300, yet it is found."""
    params = MinHashParams(ngram=3)
    tokens = np.tile(np.array([7, 8, 9], np.uint32), 400)
    offs = np.arange(0, tokens.size + 1, 3, dtype=np.uint64)
    got = _sketch_boilerplate([(tokens, offs)], params, 10, 300.0)
    want_rows, _ = df_rows_numpy(tokens, offs, params, 1)
    assert want_rows[:, 1].tolist() == [400] and got.tolist() == want_rows[:, 0].tolist()


@settings(max_examples=150, deadline=None)
@given(
    s=slices(),
    n=st.integers(1, 5),
    distinct=st.integers(0, 3),
    take=st.integers(0, 30),
    seed=st.integers(0, 99),
)
def test_native_masked_signatures_equal_the_numpy_path(s: tuple[np.ndarray, np.ndarray], n: int, distinct: int,
                                                       take: int, seed: int) -> None:  # fmt: skip
    tokens, offs = s
    params = MinHashParams(ngram=n, min_distinct=min(distinct, n))
    sig, info = signatures(tokens, offs, params)
    _, h = doc_ngrams(tokens, offs, params)
    rng = np.random.default_rng(seed)
    boiler = np.unique(
        np.concatenate([rng.choice(h, size=min(take, h.size)), rng.integers(1, 2**63, 3, np.uint64)])
    )
    want = drop_boilerplate_numpy(tokens, offs, sig, info, boiler, params)
    a_sig, a_info, got = boiler_signatures(tokens, offs, boiler, params)
    assert got == want
    assert a_sig.tobytes() == sig.tobytes() and a_info.tobytes() == info.tobytes()
    for d in range(offs.size - 1):  # the exact-Jaccard sets: binary search equals np.isin
        full = ngram_set(tokens[int(offs[d]) : int(offs[d + 1])], params)
        kept = full[~np.isin(full, boiler)]
        want_set = kept if kept.size else full
        assert (
            filtered_set(tokens[int(offs[d]) : int(offs[d + 1])], params, boiler).tobytes()
            == want_set.tobytes()
        )


def test_native_passes_check_their_buffers() -> None:
    toks = np.arange(10, dtype=np.uint32)
    hot = np.full(1, 0xFF, np.uint8)
    with pytest.raises(ValueError, match="offsets"):
        _minhash.df_count(toks, 4, np.array([0, 11], np.uint64), 3, 0, 4, hot)
    with pytest.raises(ValueError, match="partitions"):
        _minhash.df_count(toks, 4, np.array([0, 10], np.uint64), 3, 0, 0, hot)
    with pytest.raises(ValueError, match="hot bitmap"):
        _minhash.df_count(toks, 4, np.array([0, 10], np.uint64), 3, 0, 4, np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="df_sketch"):
        _minhash.df_sketch(toks, 4, np.array([0, 10], np.uint64), 3, np.zeros(12, np.uint8))
    keys, vals, filt = np.zeros(16, np.uint64), np.zeros(16, np.uint32), np.zeros(1024, np.uint64)
    seeds = np.zeros(4, np.uint32)
    with pytest.raises(ValueError, match="sign_masked"):  # out_sig sized for 2 documents, offsets hold 1
        _minhash.sign_masked(toks, 4, np.array([0, 10], np.uint64), 3, 0, seeds, keys, vals, filt,
                             np.zeros(8, np.uint32), np.zeros(4, np.uint64))  # fmt: skip
    with pytest.raises(ValueError, match="sign_masked"):  # table capacity not a power of two
        _minhash.sign_masked(toks, 4, np.array([0, 10], np.uint64), 3, 0, seeds, keys[:15], vals[:15], filt,
                             np.zeros(4, np.uint32), np.zeros(4, np.uint64))  # fmt: skip
