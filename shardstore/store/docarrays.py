"""Per-document arrays of a store, vectorized per shard: token spans, lengths and content hashes.

What masks and held-out splits need of a store (`shardstore.loader.kept`): the token span of each excluded
document (one fancy index into a shard's document offsets, not a `Store.doc_span` call per document), every
document's length (kept-token counts, ``heldout_tokens``) and every document's content hash (held-out membership,
exact copies across stores).

Content hash: a polynomial hash mod 2**64 of the document's token ids (each +1, so a zero id counts) with an odd
multiplier, over whole documents grouped into chunks of about 2**20 tokens (one cumulative sum per chunk: a few
ns per token, ~3 s for 10**9 tokens on one core), then finalized with its length by SplitMix64. Equal tokens give
equal hashes whatever the store, shard layout or dtype; unequal documents collide with probability about 2**-64
for unstructured input (the linear hash is not collision resistant against crafted input). Callers that must
prove an exact copy (`mix check-heldout`) compare the tokens of every hash match. Tokens are read through the
store's verification: every block is hashed before it is used.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from shardstore.store.manifest import Manifest
from shardstore.store.mapped import MappedShard

__all__ = ["CONTENT_HASH_VERSION", "content_hashes", "doc_lengths", "doc_spans", "hash_documents"]

# bumped whenever `content_hashes` would give other values: persisted hash indexes of an older version are recomputed
CONTENT_HASH_VERSION = 1

_CHUNK = 1 << 20
_P = np.uint64(0x100000001B3 | 1)  # odd: invertible mod 2**64
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


class DocStore(Protocol):
    """What these functions need of a store (`Store` implements it)."""

    @property
    def num_docs(self) -> int: ...
    @property
    def num_shards(self) -> int: ...
    @property
    def manifest(self) -> Manifest: ...
    @property
    def shard_token_starts(self) -> list[int]: ...
    def mapped_shard(self, index: int) -> MappedShard: ...


def _doc_starts_per_shard(store: DocStore) -> np.ndarray:
    """First document of each shard, and num_docs at the end (from the manifest: no shard is mapped)."""
    docs = store.manifest.shard_counts()[1]
    return np.concatenate([[0], np.cumsum(docs, dtype=np.int64)]).astype(np.int64)


def doc_spans(store: DocStore, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(global token starts, stops) of the documents `ids` (sorted ascending), as int64 arrays."""
    ids = np.asarray(ids, dtype=np.int64)
    first = _doc_starts_per_shard(store)
    starts = np.empty(ids.size, dtype=np.int64)
    stops = np.empty(ids.size, dtype=np.int64)
    where = np.searchsorted(first, ids, "right") - 1
    bounds = np.searchsorted(where, np.arange(store.num_shards + 1), "left")
    tok = store.shard_token_starts
    for s in range(store.num_shards):
        lo, hi = int(bounds[s]), int(bounds[s + 1])
        if hi == lo:
            continue
        offs = store.mapped_shard(s).offsets
        local = ids[lo:hi] - first[s]
        starts[lo:hi] = offs[local].astype(np.int64) + tok[s]
        stops[lo:hi] = offs[local + 1].astype(np.int64) + tok[s]
    return starts, stops


def doc_lengths(store: DocStore) -> np.ndarray:
    """Tokens of every document, in store order (int64)."""
    parts = [np.diff(store.mapped_shard(s).offsets.astype(np.int64)) for s in range(store.num_shards)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _finalize(h: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    z = h ^ (lengths.astype(np.uint64) * _M2)
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """P**i and P**-i mod 2**64 for i < n."""
    inv = np.uint64(pow(int(_P), -1, 1 << 64))
    pw = np.full(n, _P, dtype=np.uint64)
    pw[0] = 1
    ipw = np.full(n, inv, dtype=np.uint64)
    ipw[0] = 1
    with np.errstate(over="ignore"):
        return np.cumprod(pw, dtype=np.uint64), np.cumprod(ipw, dtype=np.uint64)


def content_hashes(store: DocStore) -> np.ndarray:
    """A 64-bit hash of every document's tokens, in store order (uint64; see the module docstring)."""
    out: list[np.ndarray] = []
    powers = _powers(_CHUNK)
    for s in range(store.num_shards):
        shard = store.mapped_shard(s)
        if not shard.trusted:
            shard.check_blocks(0, shard.num_tokens)
        out.append(hash_documents(shard.tokens, shard.offsets, powers=powers))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.uint64)


def hash_documents(
    tokens: np.ndarray, offsets: np.ndarray, *, powers: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """The content hash of documents ``tokens[offsets[i] : offsets[i + 1]]`` (uint64 per document).

    `powers`: the multiplier's powers from an earlier call's `_powers` (16 MiB, ~5 ms to compute), to reuse."""
    pw, ipw = powers if powers is not None else _powers(_CHUNK)
    offs = np.asarray(offsets, dtype=np.int64)
    n = offs.size - 1
    hashes = np.empty(max(n, 0), dtype=np.uint64)
    d = 0
    while d < n:
        # whole documents [d, e) of at most _CHUNK tokens (a longer document alone: in pieces of _CHUNK)
        e = int(np.searchsorted(offs, offs[d] + _CHUNK, "right")) - 1
        if e <= d:
            hashes[d] = _long_doc(tokens[offs[d] : offs[d + 1]], pw, ipw)
            d += 1
            continue
        a = int(offs[d])
        x = tokens[a : int(offs[e])].astype(np.uint64) + np.uint64(1)
        with np.errstate(over="ignore"):
            acc = np.zeros(x.size + 1, dtype=np.uint64)
            np.cumsum(x * pw[: x.size], out=acc[1:])
            rel = offs[d : e + 1] - a
            hashes[d:e] = (acc[rel[1:]] - acc[rel[:-1]]) * ipw[rel[:-1]]
        d = e
    with np.errstate(over="ignore"):
        return _finalize(hashes, np.diff(offs))


def _long_doc(tokens: np.ndarray, pw: np.ndarray, ipw: np.ndarray) -> np.uint64:
    """The (unfinalized) hash of one document longer than a chunk: the same polynomial, chunk by chunk."""
    h = np.uint64(0)
    step = np.uint64(1)  # P**(tokens before this chunk)
    p_chunk = pw[-1] * _P  # P**_CHUNK
    with np.errstate(over="ignore"):
        for a in range(0, tokens.size, _CHUNK):
            x = tokens[a : a + _CHUNK].astype(np.uint64) + np.uint64(1)
            part = np.sum(x * pw[: x.size], dtype=np.uint64)
            h = h + part * step
            step = step * p_chunk
    return h
