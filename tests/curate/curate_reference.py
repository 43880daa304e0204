"""The slow, obviously-correct reference of shardstore/_native/minhash.cc: Python integers masked to 64 bits.

Every definition here is the one in the docstring of `shardstore.curate.minhash`; the tests compare the native
code against these functions on random and adversarial inputs.
"""

from __future__ import annotations

import numpy as np

from shardstore.curate.boiler import doc_ngrams
from shardstore.curate.minhash import MinHashParams, ngram_hashes
from shardstore.curate.ngramtable import NgramTable

M64 = (1 << 64) - 1
BASE = 0x9E3779B97F4A7C15


def fmix64(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & M64
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & M64
    k ^= k >> 33
    return k


def bucket(t: int) -> int:
    return t if t < 65536 else fmix64(t) & 0xFFFF


def ngrams(tokens: list[int], n: int, min_distinct: int) -> list[tuple[int, bool]]:
    """(hash, degenerate) of every n-gram, in position order."""
    out = []
    for s in range(len(tokens) - n + 1):
        h = 0
        for t in tokens[s : s + n]:
            h = (h * BASE + t + 1) & M64
        f = fmix64(h) or 1
        distinct = len({bucket(t) for t in tokens[s : s + n]})
        out.append((f, distinct < min_distinct))
    return out


def fmix32(v: int) -> int:
    v ^= v >> 16
    v = (v * 0x85EBCA6B) & 0xFFFFFFFF
    v ^= v >> 13
    v = (v * 0xC2B2AE35) & 0xFFFFFFFF
    v ^= v >> 16
    return v


def signature(tokens: list[int], n: int, min_distinct: int, seeds: np.ndarray) -> tuple[list[int], int, int]:
    """(signature, n-grams used, degenerate n-grams) of one document."""
    sig = [0xFFFFFFFF] * len(seeds)
    used = bad = 0
    for h, degenerate in ngrams(tokens, n, min_distinct):
        if degenerate:
            bad += 1
            continue
        used += 1
        x = (h & 0xFFFFFFFF) ^ (h >> 32)
        for k, s in enumerate(seeds.tolist()):
            sig[k] = min(sig[k], fmix32(x ^ s))
    return sig, used, bad


def exact_hash(tokens: list[int]) -> int:
    h = fmix64(len(tokens) ^ 0x5851F42D4C957F2D)
    for t in tokens:
        h = (h * BASE + t + 1) & M64
    return fmix64(h ^ 0xD6E8FEB86659FD93)


def band_keys(sig: list[int], bands: int, rows: int) -> list[int]:
    out = []
    for bi in range(bands):
        h = fmix64((bi + 0x632BE59BD9B4E019) & M64)
        for v in sig[bi * rows : (bi + 1) * rows]:
            h = (fmix64(h ^ v) + BASE) & M64
        out.append(h)
    return out


# -- the numpy paths of the native boilerplate passes (df_count, sign_masked) ----------------------------------


def _fmix32_lanes(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x85EBCA6B)
    x = x ^ (x >> np.uint32(13))
    x = x * np.uint32(0xC2B2AE35)
    return x ^ (x >> np.uint32(16))


def df_rows_numpy(
    tokens: np.ndarray, offs: np.ndarray, params: MinHashParams, partitions: int
) -> tuple[np.ndarray, np.ndarray]:
    """`docfreq.df_rows` (every bucket hot) in numpy."""
    doc, h = doc_ngrams(tokens, offs, params)
    order = np.argsort(h, kind="stable")  # by hash; documents stay ascending within a hash (one sort)
    h, doc = h[order], doc[order]
    first = np.ones(h.size, dtype=bool)
    first[1:] = (h[1:] != h[:-1]) | (doc[1:] != doc[:-1])  # one entry per (document, n-gram)
    h = h[first]
    starts = np.flatnonzero(np.concatenate([[True], h[1:] != h[:-1]])) if h.size else np.empty(0, np.int64)
    hashes = h[starts]
    counts = np.diff(np.append(starts, h.size))
    part = hashes % np.uint64(partitions)
    order = np.lexsort((hashes, part))
    rows = np.stack([hashes[order], counts[order].astype(np.uint64)], 1).reshape(-1, 2)
    return rows, np.bincount(part.astype(np.int64), minlength=partitions)


def drop_boilerplate_numpy(
    tokens: np.ndarray,
    offs: np.ndarray,
    sig: np.ndarray,
    info: np.ndarray,
    boiler: np.ndarray,
    params: MinHashParams,
) -> int:
    """`boiler.boiler_signatures` in numpy: fixes up, in place, the `signatures` of the documents that hold
    boilerplate."""
    if boiler.size == 0:
        return 0
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
            best = np.minimum(best, _fmix32_lanes(x[c : c + 4096, None] ^ seeds[None, :]).min(0))
        sig[d] = best
        info[d, 1] = keep.size
        dropped += int(isb.sum())
    return dropped
