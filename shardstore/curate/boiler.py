"""The boilerplate rule applied to one document slice (signatures) or one document (exact-Jaccard sets).

See docfreq.py for how the boilerplate n-grams are found. A document all of whose n-grams are boilerplate keeps
them all, in its signature and in its set alike.
"""

from __future__ import annotations

import numpy as np

from shardstore.curate.minhash import MinHashParams, ngram_hashes, ngram_set
from shardstore.curate.ngramtable import NgramTable

__all__ = ["doc_ngrams", "drop_boilerplate", "filtered_set"]


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


def _fmix32(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x85EBCA6B)
    x = x ^ (x >> np.uint32(13))
    x = x * np.uint32(0xC2B2AE35)
    return x ^ (x >> np.uint32(16))


def drop_boilerplate(
    tokens: np.ndarray,
    offs: np.ndarray,
    sig: np.ndarray,
    info: np.ndarray,
    boiler: np.ndarray,
    params: MinHashParams,
) -> int:
    """Recompute, in place, the signature and n-gram count of each document of the slice that holds boilerplate
    n-grams, without them (the native signature with the same permutations, minus those n-grams); returns the
    boilerplate n-grams left out (positions)."""
    if boiler.size == 0:
        return 0
    # which documents hold boilerplate: the native scan of decontamination (one filter probe per token)
    hits = NgramTable(boiler).scan(tokens, offs, params.ngram, params.distinct)
    if hits.size == 0:
        return 0
    seeds = params.permutations()
    dropped = 0
    for d in np.unique(hits[:, 0]).tolist():
        lo, hi = int(offs[d]), int(offs[d + 1])
        h, bad = ngram_hashes(tokens[lo:hi], params.ngram, params.distinct)
        h = h[~bad]
        isb = np.isin(h, boiler)
        keep = h[~isb]
        if keep.size == 0:
            continue  # nothing but boilerplate: the document keeps its n-grams (its copies are still found)
        x = np.unique(keep.astype(np.uint32) ^ (keep >> np.uint64(32)).astype(np.uint32))
        best = np.full(seeds.size, 0xFFFFFFFF, np.uint32)
        for c in range(0, x.size, 4096):
            best = np.minimum(best, _fmix32(x[c : c + 4096, None] ^ seeds[None, :]).min(0))
        sig[d] = best
        info[d, 1] = keep.size
        dropped += int(isb.sum())
    return dropped


def filtered_set(tokens: np.ndarray, params: MinHashParams, boiler: np.ndarray) -> np.ndarray:
    """`ngram_set` without the boilerplate n-grams (unless nothing else is left)."""
    full = ngram_set(tokens, params)
    if boiler.size == 0:
        return full
    kept = full[~np.isin(full, boiler)]
    return kept if kept.size else full
