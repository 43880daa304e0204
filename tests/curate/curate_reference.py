"""The slow, obviously-correct reference of shardstore/_native/minhash.cc: Python integers masked to 64 bits.

Every definition here is the one in the docstring of `shardstore.curate.minhash`; the tests compare the native
code against these functions on random and adversarial inputs.
"""

from __future__ import annotations

import numpy as np

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
