"""The native boilerplate passes (`df_count`, `resign` in minhash.cc) equal the numpy paths they replace, byte for
byte, on random slices: tiny vocabularies (degenerate windows, repeats), empty documents, wide token ids."""

from __future__ import annotations

import numpy as np
import pytest
from curate_reference import df_rows_numpy, drop_boilerplate_numpy
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstore._native import _minhash
from shardstore.curate.boiler import doc_ngrams, drop_boilerplate, filtered_set
from shardstore.curate.docfreq import df_rows
from shardstore.curate.minhash import MinHashParams, ngram_set, signatures


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


@settings(max_examples=150, deadline=None)
@given(s=slices(), n=st.integers(1, 5), distinct=st.integers(0, 3), partitions=st.sampled_from([1, 2, 7, 64]))
def test_native_df_rows_equal_the_numpy_path(s: tuple[np.ndarray, np.ndarray], n: int, distinct: int,
                                             partitions: int) -> None:  # fmt: skip
    tokens, offs = s
    params = MinHashParams(ngram=n, min_distinct=min(distinct, n))
    rows, per = df_rows(tokens, offs, params, partitions)
    want_rows, want_per = df_rows_numpy(tokens, offs, params, partitions)
    assert rows.dtype == want_rows.dtype and rows.tobytes() == want_rows.tobytes()
    assert per.tolist() == want_per.tolist()


@settings(max_examples=150, deadline=None)
@given(
    s=slices(),
    n=st.integers(1, 5),
    distinct=st.integers(0, 3),
    take=st.integers(0, 30),
    seed=st.integers(0, 99),
)
def test_native_resign_equals_the_numpy_path(s: tuple[np.ndarray, np.ndarray], n: int, distinct: int, take: int,
                                             seed: int) -> None:  # fmt: skip
    tokens, offs = s
    params = MinHashParams(ngram=n, min_distinct=min(distinct, n))
    sig, info = signatures(tokens, offs, params)
    _, h = doc_ngrams(tokens, offs, params)
    rng = np.random.default_rng(seed)
    boiler = np.unique(
        np.concatenate([rng.choice(h, size=min(take, h.size)), rng.integers(1, 2**63, 3, np.uint64)])
    )
    a_sig, a_info, b_sig, b_info = sig.copy(), info.copy(), sig.copy(), info.copy()
    got = drop_boilerplate(tokens, offs, a_sig, a_info, boiler, params)
    want = drop_boilerplate_numpy(tokens, offs, b_sig, b_info, boiler, params)
    assert got == want
    assert a_sig.tobytes() == b_sig.tobytes() and a_info.tobytes() == b_info.tobytes()
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
    with pytest.raises(ValueError, match="offsets"):
        _minhash.df_count(toks, 4, np.array([0, 11], np.uint64), 3, 0, 4)
    with pytest.raises(ValueError, match="partitions"):
        _minhash.df_count(toks, 4, np.array([0, 10], np.uint64), 3, 0, 0)
    keys, vals, filt = np.zeros(16, np.uint64), np.zeros(16, np.uint32), np.zeros(1024, np.uint64)
    seeds = np.zeros(4, np.uint32)
    with pytest.raises(ValueError, match="resign"):  # out_sig sized for 2 documents, offsets hold 1
        _minhash.resign(toks, 4, np.array([0, 10], np.uint64), 3, 0, seeds, keys, vals, filt,
                        np.zeros(8, np.uint32), np.zeros(4, np.uint64))  # fmt: skip
    with pytest.raises(ValueError, match="resign"):  # table capacity not a power of two
        _minhash.resign(toks, 4, np.array([0, 10], np.uint64), 3, 0, seeds, keys[:15], vals[:15], filt,
                        np.zeros(4, np.uint32), np.zeros(4, np.uint64))  # fmt: skip
