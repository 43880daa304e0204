"""MinHash over token n-grams with LSH bands: the parameters, the permutations, and the native signature loop.

Why tokens: the store already holds the exact token ids the model will see, memory-mapped; shingling them needs no
decoding, no normalization and no word splitting, and one n-gram hash is one multiply-add per token
(``shardstore/_native/minhash.cc``). Definitions, which the pure-numpy reference in the tests implements too:

- n-gram hash: ``fmix64(sum_j (t_j + 1) * B^(n-1-j) mod 2^64)`` (0 mapped to 1), rolled along the document.
- permutation k: ``fmix32((h mod 2^32) ^ (h >> 32) ^ s_k)``, murmur3's 32-bit finalizer (a bijection with full
  avalanche) seeded by `s_k`, drawn from numpy's PCG64 seeded by `seed`: a pure function of the parameters, so
  every worker and node agrees. 32-bit lanes only: the permutation loop runs 8 or 16 lanes wide (AVX2 /
  AVX-512, picked at load time), ~2.5x a 64-bit multiply-add-shift.
- signature entry k: the minimum of permutation k over the document's non-degenerate n-grams (``0xFFFFFFFF``
  when it has none: such documents take part in exact deduplication only).
- degenerate n-gram: fewer than `min_distinct` distinct tokens (default ``ceil(n / 2)``, at least 2): runs of one
  token, rows of box-drawing characters, ``0 0 0 ...``. They are skipped and counted, never hashed.
- LSH: `bands` x `rows` entries; two documents are candidates when all rows of one band agree, which happens with
  probability ``1 - (1 - J^rows)^bands`` at Jaccard J. Default 9 x 13 = 117 permutations: that is what datasketch's
  ``MinHashLSH(threshold=0.8, num_perm=128)`` picks (its false-positive/negative weighting); the S-curve's midpoint
  ``(1/9)^(1/13)`` is 0.845. A candidate pair is then *confirmed* against `threshold` (0.8): by default by the
  exact Jaccard of the two documents' non-degenerate n-gram sets, re-hashed from the memory-mapped tokens (a few
  microseconds per pair: only candidates pay), or with ``confirm="estimate"`` by the fraction of equal signature
  entries. Exact confirmation removes the estimate's noise (its standard deviation is ~0.037 at J = 0.8 with 117
  permutations), so every confirmed pair truly reaches the threshold: benchmarks/RESULTS.md has the figures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from shardstore._native import _minhash
from shardstore.errors import ConfigError

__all__ = [
    "EMPTY",
    "Confirm",
    "MinHashParams",
    "band_keys",
    "estimated_jaccard",
    "exact_jaccard",
    "ngram_hashes",
    "ngram_set",
    "signatures",
    "token_width",
]

EMPTY = np.uint32(0xFFFFFFFF)  # every entry of the signature of a document without n-grams


def default_min_distinct(n: int) -> int:
    """The degenerate-n-gram rule: an n-gram needs at least ``max(2, ceil(n / 2))`` distinct tokens (1 for n=1).

    Natural text almost never repeats a token inside a window that short (13-grams of English have 11-13
    distinct tokens); tables, rules and runs of digits or spaces do."""
    return 1 if n == 1 else max(2, -(-n // 2))


class Confirm(StrEnum):
    """How a candidate pair is confirmed against the threshold."""

    EXACT = "exact"  # Jaccard of the two n-gram sets, from the tokens
    ESTIMATE = "estimate"  # fraction of equal signature entries


@dataclass(frozen=True, slots=True)
class MinHashParams:
    """What a signature depends on; a change of any field means new signatures (the work folder records them)."""

    ngram: int = 5
    bands: int = 9
    rows: int = 13
    seed: int = 42
    threshold: float = 0.8
    min_distinct: int | None = None  # None: default_min_distinct(ngram)
    confirm: Confirm | str = Confirm.EXACT
    # boilerplate: an n-gram in more than max(boilerplate_min_docs, boilerplate_fraction x documents) documents
    # is left out of signatures and exact-Jaccard sets (see docfreq.py); fraction 1.0 turns the rule off
    boilerplate_fraction: float = 0.001
    boilerplate_min_docs: int = 100

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "confirm", Confirm(self.confirm))
        except ValueError:
            raise ConfigError(
                f"confirm={self.confirm!r} must be one of {[c.value for c in Confirm]}"
            ) from None
        for name in ("ngram", "bands", "rows"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name}={v!r} must be an integer >= 1")
        if self.ngram > 255:
            raise ConfigError(f"ngram={self.ngram} must be <= 255")
        if self.bands * self.rows > 4096:
            raise ConfigError(
                f"bands x rows = {self.bands * self.rows} permutations; at most 4096 are supported"
            )
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"threshold={self.threshold!r} must be in (0, 1]")
        if not 0.0 < self.boilerplate_fraction <= 1.0:
            raise ConfigError(f"boilerplate_fraction={self.boilerplate_fraction!r} must be in (0, 1]")
        if (
            isinstance(self.boilerplate_min_docs, bool)
            or not isinstance(self.boilerplate_min_docs, int)
            or (self.boilerplate_min_docs < 1)
        ):
            raise ConfigError(f"boilerplate_min_docs={self.boilerplate_min_docs!r} must be an integer >= 1")
        md = self.min_distinct
        if md is not None and (isinstance(md, bool) or not isinstance(md, int) or not 0 <= md <= self.ngram):
            raise ConfigError(f"min_distinct={md!r} must be an integer in 0..ngram ({self.ngram})")

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows

    @property
    def distinct(self) -> int:
        """The effective minimum of distinct tokens per n-gram."""
        return default_min_distinct(self.ngram) if self.min_distinct is None else self.min_distinct

    @property
    def lsh_midpoint(self) -> float:
        """The Jaccard at which the band S-curve is steepest, ``(1/bands)^(1/rows)``."""
        return float((1.0 / self.bands) ** (1.0 / self.rows))

    def candidate_probability(self, jaccard: float) -> float:
        """Probability that a pair of Jaccard `jaccard` shares at least one band."""
        return float(1.0 - (1.0 - jaccard**self.rows) ** self.bands)

    def permutations(self) -> np.ndarray:
        """The seeds of the `num_perm` permutations (uint32), a pure function of `seed`."""
        rng = np.random.Generator(np.random.PCG64(self.seed))
        return rng.integers(0, 2**32, size=self.num_perm, dtype=np.uint32, endpoint=False)

    def boilerplate_limit(self, total_docs: int) -> float:
        """Document frequency above which an n-gram is boilerplate."""
        if self.boilerplate_fraction >= 1.0:
            return float(total_docs)
        return max(float(self.boilerplate_min_docs), self.boilerplate_fraction * total_docs)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["min_distinct"] = self.distinct
        d["confirm"] = str(self.confirm)
        return d


def _width(tokens: np.ndarray) -> tuple[np.ndarray, int]:
    if tokens.dtype == np.uint16 or tokens.dtype == np.uint32:
        return np.ascontiguousarray(tokens), tokens.dtype.itemsize
    if tokens.dtype.kind in "iu" and (
        tokens.size == 0 or (int(tokens.min()) >= 0 and int(tokens.max()) < 2**32)
    ):
        return np.ascontiguousarray(tokens, dtype=np.uint32), 4
    raise ConfigError(f"token ids must be uint16 or uint32 (or integers in [0, 2**32)), got {tokens.dtype}")


def token_width(tokens: np.ndarray) -> tuple[np.ndarray, int]:
    """Contiguous tokens of a native width (2 or 4 bytes) and that width, for the native passes."""
    return _width(np.asarray(tokens))


def signatures(
    tokens: np.ndarray,
    offsets: np.ndarray,
    params: MinHashParams,
    seeds: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """MinHash signatures of the documents ``tokens[offsets[i]:offsets[i+1]]``.

    Returns ``(sig, info)``: `sig` uint32 ``[docs, num_perm]``; `info` uint64 ``[docs, 4]`` = exact hash of the
    tokens, n-grams used, degenerate n-grams skipped, tokens.
    """
    toks, width = _width(tokens)
    offs = np.ascontiguousarray(offsets, dtype=np.uint64)
    docs = max(0, offs.size - 1)
    perm = np.ascontiguousarray(seeds if seeds is not None else params.permutations(), dtype=np.uint32)
    sig = np.empty((docs, params.num_perm), dtype=np.uint32)
    info = np.empty((docs, 4), dtype=np.uint64)
    _minhash.signatures(toks, width, offs, params.ngram, params.distinct, perm, sig, info)
    return sig, info


def band_keys(sig: np.ndarray, params: MinHashParams) -> np.ndarray:
    """uint64 ``[docs, bands]``: the hash of each band's rows (band index included)."""
    sig = np.ascontiguousarray(sig, dtype=np.uint32)
    out = np.empty((sig.shape[0], params.bands), dtype=np.uint64)
    _minhash.band_keys(sig, params.num_perm, params.bands, params.rows, out)
    return out


def ngram_hashes(tokens: np.ndarray, n: int, min_distinct: int) -> tuple[np.ndarray, np.ndarray]:
    """Every n-gram hash of one token sequence and whether it is degenerate (uint64, bool; ``len - n + 1`` each)."""
    toks, width = _width(np.asarray(tokens))
    m = max(0, toks.size - n + 1)
    hashes = np.empty(m, dtype=np.uint64)
    degenerate = np.empty(m, dtype=np.uint8)
    _minhash.ngram_hashes(toks, width, n, min_distinct, hashes, degenerate)
    return hashes, degenerate.astype(bool)


def ngram_set(tokens: np.ndarray, params: MinHashParams) -> np.ndarray:
    """The sorted unique non-degenerate n-gram hashes of one document (what its signature summarizes)."""
    h, bad = ngram_hashes(tokens, params.ngram, params.distinct)
    return np.unique(h[~bad])


def exact_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard of two sorted unique hash arrays (0 when both are empty)."""
    if a.size == 0 or b.size == 0:
        return 0.0
    inter = _minhash.intersect_count(
        np.ascontiguousarray(a, dtype=np.uint64), np.ascontiguousarray(b, dtype=np.uint64)
    )
    return inter / (a.size + b.size - inter)


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """The fraction of equal signature entries (0 when either document has no n-grams)."""
    if a.size == 0 or bool(np.all(a == EMPTY)) or bool(np.all(b == EMPTY)):
        return 0.0
    return float(np.count_nonzero(a == b)) / a.size
