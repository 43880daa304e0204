"""The boilerplate rule applied to one document slice (signatures) or one document (exact-Jaccard sets).

See docfreq.py for how the boilerplate n-grams are found. A document all of whose n-grams are boilerplate keeps
them all, in its signature and in its set alike.
"""

from __future__ import annotations

import numpy as np

from shardstore._native import _minhash
from shardstore.curate.minhash import MinHashParams, ngram_hashes, signatures, token_width
from shardstore.curate.ngramtable import NgramTable

__all__ = ["boiler_signatures", "doc_ngrams", "filtered_set"]


def doc_ngrams(tokens: np.ndarray, offs: np.ndarray, params: MinHashParams) -> tuple[np.ndarray, np.ndarray]:
    """(document index, n-gram hash) of every non-degenerate n-gram inside one document of the slice, one native
    pass over the whole slice (a window's hash and distinct count depend on its tokens only)."""
    n = params.ngram
    h, bad = ngram_hashes(tokens, n, params.distinct)
    if h.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.uint64)
    pos = np.arange(h.size, dtype=np.uint64)
    doc = np.searchsorted(offs, pos, "right").astype(np.int64) - 1
    ok = ~bad & (pos + np.uint64(n) <= offs[doc + 1])
    return doc[ok], h[ok]


def boiler_signatures(
    tokens: np.ndarray, offs: np.ndarray, boiler: np.ndarray, params: MinHashParams
) -> tuple[np.ndarray, np.ndarray, int]:
    """`minhash.signatures` of the slice without the boilerplate n-grams (sorted unique hashes), except in the
    documents that have no other, in one native pass: ``(sig, info, dropped)``, `dropped` the boilerplate n-grams
    left out (positions); ``info[:, 1]`` counts the n-grams folded into each signature."""
    if boiler.size == 0:
        sig, info = signatures(tokens, offs, params)
        return sig, info, 0
    table = NgramTable(boiler)
    toks, width = token_width(tokens)
    o = np.ascontiguousarray(offs, dtype=np.uint64)
    docs = max(0, o.size - 1)
    sig = np.empty((docs, params.num_perm), dtype=np.uint32)
    info = np.empty((docs, 4), dtype=np.uint64)
    seeds = np.ascontiguousarray(params.permutations(), dtype=np.uint32)
    dropped = _minhash.sign_masked(
        toks, width, o, params.ngram, params.distinct, seeds, table.keys, table.vals, table.filter, sig, info
    )
    return sig, info, int(dropped)


def filtered_set(tokens: np.ndarray, params: MinHashParams, boiler: np.ndarray | NgramTable) -> np.ndarray:
    """`ngram_set` without the boilerplate n-grams (sorted unique hashes, or their table: build it once for many
    documents), unless nothing else is left: one native pass and a sort of the document's n-grams."""
    table = boiler if isinstance(boiler, NgramTable) else NgramTable(boiler)
    toks, width = token_width(tokens)
    raw = _minhash.ngram_set(toks, width, params.ngram, params.distinct, table.keys, table.vals, table.filter)
    return np.frombuffer(raw, dtype=np.uint64)
