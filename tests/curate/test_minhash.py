"""The native MinHash, band keys and n-gram hashing against the pure-Python reference; bounds checks; LSH math."""

from __future__ import annotations

import numpy as np
import pytest
from curate_reference import band_keys as ref_band_keys
from curate_reference import exact_hash as ref_exact_hash
from curate_reference import ngrams as ref_ngrams
from curate_reference import signature as ref_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstore._native import _minhash
from shardstore.curate.minhash import (
    MinHashParams,
    band_keys,
    default_min_distinct,
    estimated_jaccard,
    ngram_hashes,
    signatures,
)
from shardstore.errors import ConfigError

SMALL = MinHashParams(ngram=3, bands=4, rows=3, seed=7)

docs_strategy = st.lists(
    st.lists(st.one_of(st.integers(0, 5), st.integers(0, 70000), st.just(2**32 - 1)), max_size=30), max_size=6
)


def _flat(docs: list[list[int]], dtype: type) -> tuple[np.ndarray, np.ndarray]:
    offs = np.concatenate([[0], np.cumsum([len(d) for d in docs])]).astype(np.uint64)
    toks = np.asarray([t for d in docs for t in d], dtype=dtype)
    return toks, offs


@settings(max_examples=60, deadline=None)
@given(docs=docs_strategy, n=st.integers(1, 5))
def test_signatures_match_the_reference(docs: list[list[int]], n: int) -> None:
    params = MinHashParams(ngram=n, bands=4, rows=3, seed=n)
    seeds = params.permutations()
    toks, offs = _flat(docs, np.uint32)
    sig, info = signatures(toks, offs, params)
    keys = band_keys(sig, params)
    for d, doc in enumerate(docs):
        want, used, bad = ref_signature(doc, n, params.distinct, seeds)
        assert sig[d].tolist() == want
        assert info[d].tolist() == [ref_exact_hash(doc), used, bad, len(doc)]
        assert keys[d].tolist() == ref_band_keys(want, params.bands, params.rows)


@settings(max_examples=40, deadline=None)
@given(doc=st.lists(st.integers(0, 65535), max_size=40), n=st.integers(1, 8), md=st.integers(0, 8))
def test_ngram_hashes_and_the_degenerate_rule_match_the_reference(doc: list[int], n: int, md: int) -> None:
    md = min(md, n)
    h, bad = ngram_hashes(np.asarray(doc, dtype=np.uint16), n, md)
    want = ref_ngrams(doc, n, md)
    assert h.tolist() == [x for x, _ in want]
    assert bad.tolist() == [y for _, y in want]


def test_uint16_and_uint32_tokens_give_the_same_signatures() -> None:
    rng = np.random.default_rng(0)
    toks = rng.integers(0, 65535, 500, dtype=np.uint16)
    offs = np.array([0, 100, 100, 350, 500], dtype=np.uint64)
    s16, i16 = signatures(toks, offs, SMALL)
    s32, i32 = signatures(toks.astype(np.uint32), offs, SMALL)
    assert np.array_equal(s16, s32) and np.array_equal(i16, i32)
    assert (s16[1] == 0xFFFFFFFF).all() and i16[1].tolist()[1:] == [0, 0, 0]  # the empty document


def test_runs_of_one_token_are_degenerate_and_counted() -> None:
    params = MinHashParams(ngram=5, bands=2, rows=2)
    doc = np.array([7] * 50 + list(range(100, 120)), dtype=np.uint16)
    sig, info = signatures(doc, np.array([0, doc.size], np.uint64), params)
    _, used, bad, _ = info[0].tolist()
    assert bad >= 46 and used + bad == doc.size - 4
    zeros = np.array([3] * 40, dtype=np.uint16)
    sig, info = signatures(zeros, np.array([0, 40], np.uint64), params)
    assert info[0, 1] == 0 and info[0, 2] == 36 and (sig == 0xFFFFFFFF).all()


def test_default_min_distinct_rule() -> None:
    assert [default_min_distinct(n) for n in (1, 2, 3, 5, 13)] == [1, 2, 2, 3, 7]


def test_bad_buffers_are_refused_not_read_past() -> None:
    toks = np.arange(10, dtype=np.uint16)
    seeds = SMALL.permutations()
    sig = np.empty((1, SMALL.num_perm), np.uint32)
    info = np.empty((1, 4), np.uint64)
    with pytest.raises(ValueError, match="past the 10 tokens"):
        _minhash.signatures(toks, 2, np.array([0, 11], np.uint64), 3, 2, seeds, sig, info)
    with pytest.raises(ValueError, match="decreasing"):
        _minhash.signatures(toks, 2, np.array([5, 2], np.uint64), 3, 2, seeds, sig, info)
    with pytest.raises(ValueError, match="out_sig"):
        _minhash.signatures(toks, 2, np.array([0, 5, 10], np.uint64), 3, 2, seeds, sig, info)
    with pytest.raises(ValueError, match="width"):
        _minhash.signatures(toks, 3, np.array([0, 10], np.uint64), 3, 2, seeds, sig, info)
    with pytest.raises(ValueError, match="n=0"):
        _minhash.signatures(toks, 2, np.array([0, 10], np.uint64), 0, 0, seeds, sig, info)
    with pytest.raises(ValueError, match="bands"):
        _minhash.band_keys(sig, SMALL.num_perm, 5, 3, np.empty(5, np.uint64))
    with pytest.raises(ValueError, match="power of two"):
        _minhash.fill_table(np.array([1, 2], np.uint64), np.empty(3, np.uint64), np.empty(3, np.uint32),
                            np.empty(1, np.uint64))  # fmt: skip


def test_estimated_jaccard_tracks_the_true_jaccard() -> None:
    params = MinHashParams(ngram=1, bands=32, rows=8)
    base = np.arange(1000, 2000, dtype=np.uint32)
    other = base.copy()
    other[:200] += 5000  # 800 of 1200 distinct 1-grams shared: J = 800 / 1200
    toks = np.concatenate([base, other])
    sig, _ = signatures(toks, np.array([0, 1000, 2000], np.uint64), params)
    assert abs(estimated_jaccard(sig[0], sig[1]) - 800 / 1200) < 0.07
    assert estimated_jaccard(sig[0], np.full(params.num_perm, 0xFFFFFFFF, np.uint32)) == 0.0


def test_params_are_validated_and_documented() -> None:
    p = MinHashParams()
    assert (p.bands, p.rows, p.num_perm, p.threshold) == (9, 13, 117, 0.8)
    assert abs(p.lsh_midpoint - 0.845) < 0.001
    assert p.candidate_probability(0.95) > 0.99 and p.candidate_probability(0.5) < 0.002
    a1, a2 = p.permutations(), MinHashParams(seed=43).permutations()
    assert np.array_equal(a1, p.permutations()) and not np.array_equal(a1, a2) and a1.dtype == np.uint32
    for bad in (
        {"ngram": 0},
        {"bands": -1},
        {"threshold": 0.0},
        {"min_distinct": 9, "ngram": 5},
        {"confirm": "x"},
    ):
        with pytest.raises(ConfigError):
            MinHashParams(**bad)  # type: ignore[arg-type]
