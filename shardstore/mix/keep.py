"""Kept-token arithmetic: the token stream of a store with some documents left out, as pure index math.

A store's tokens are its documents concatenated. Leaving out a set of documents (a mask, a held-out split) leaves
*gaps*: maximal runs of excluded tokens (adjacent excluded documents merge into one gap; empty documents leave
none). The kept stream is the store's tokens with the gaps cut out, and the sampler packs windows over it exactly
as over a whole store, so no window holds a byte of an excluded document.

Representation, for ``G`` gaps: ``gap_at[r]``, the kept position at which gap ``r`` sits (strictly increasing),
and ``C[r]``, the tokens skipped by gaps ``0 .. r - 1`` (``C[0] = 0``). Kept position ``p`` is store position
``p + C[upper_bound(gap_at, p)]``: one binary search per window (native, `shardstore._native._pieces.locate_rows`,
over a whole look-ahead of windows at once). Both arrays are held in two levels, an int64 base every 256 entries
and a uint32 offset per entry (int64 offsets only if 256 consecutive gaps span 2**32 tokens or more), so the
index costs ~8 bytes per gap: for 10% of 10**8 documents excluded at random (~9*10**6 gaps) 0.73 bytes per
document, and nothing at all for a store without exclusions.

A window of ``seq_len + 1`` kept tokens that contains no gap position is one contiguous store read (the usual row);
one that does is read piece by piece (`pieces`): ``1 + gaps inside`` contiguous store spans.

Held-out membership is here too (pure): a document's *score* is a keyed hash of its content hash and the
mixture seed, mapped to ``[0, 1)``; it is held out when its score is below the source's threshold (`heldout`
fraction, or the threshold reaching `heldout_tokens`). Exact copies have equal content hashes, hence equal
scores, hence the same side in every store; the score ignores weights, schedules, world size and workers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shardstore._native import _pieces
from shardstore.errors import ConfigError

__all__ = ["KeptIndex", "heldout_scores", "threshold_for_fraction", "threshold_for_tokens"]

_LEVEL = 8  # a base every 2**8 gaps
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True, slots=True)
class KeptIndex:
    """The kept stream of a store of `num_tokens` tokens: see the module docstring."""

    num_tokens: int
    kept_tokens: int
    gap_base: np.ndarray  # int64 [ceil(G / 256)]: gap_at[r] = gap_base[r >> 8] + gap_delta[r]
    gap_delta: np.ndarray  # uint32 (int64 if 256 gaps span 2**32 kept tokens) [G]
    skip_base: np.ndarray  # int64 [ceil((G + 1) / 256)]: C[r] = skip_base[r >> 8] + skip_delta[r]
    skip_delta: np.ndarray  # uint32 or int64 [G + 1]

    @classmethod
    def from_excluded_spans(cls, num_tokens: int, starts: np.ndarray, stops: np.ndarray) -> KeptIndex:
        """The index of a store whose excluded documents cover store tokens ``[starts[i], stops[i])``.

        Args:
            starts, stops: the excluded documents' token spans, sorted by start and not overlapping (documents
                of a store never overlap); empty spans are allowed and ignored.
        """
        starts = np.asarray(starts, dtype=np.int64)
        stops = np.asarray(stops, dtype=np.int64)
        if starts.shape != stops.shape or starts.ndim != 1:
            raise ConfigError("excluded spans: starts and stops must be 1-D arrays of one length")
        keep = stops > starts
        starts, stops = starts[keep], stops[keep]
        if starts.size and (
            int(starts[0]) < 0 or int(stops[-1]) > num_tokens or np.any(starts[1:] < stops[:-1])
        ):
            raise ConfigError(f"excluded spans must be sorted, disjoint and inside [0, {num_tokens})")
        # merge touching spans: adjacent excluded documents (and empty kept ones between them) make one gap
        if starts.size:
            new = np.ones(starts.size, dtype=bool)
            new[1:] = starts[1:] != stops[:-1]
            gap_lo = starts[new]
            last = np.flatnonzero(np.append(new[1:], True))
            gap_hi = stops[last]
        else:
            gap_lo = gap_hi = starts
        lengths = gap_hi - gap_lo
        skipped = np.zeros(lengths.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=skipped[1:])
        gap_base, gap_delta = _two_level(gap_lo - skipped[:-1])
        skip_base, skip_delta = _two_level(skipped)
        return cls(int(num_tokens), int(num_tokens - skipped[-1]), gap_base, gap_delta, skip_base, skip_delta)

    @classmethod
    def whole(cls, num_tokens: int) -> KeptIndex:
        """The index of a store with nothing excluded."""
        empty = np.zeros(0, dtype=np.int64)
        return cls.from_excluded_spans(num_tokens, empty, empty)

    @property
    def num_gaps(self) -> int:
        return int(self.gap_delta.size)

    @property
    def _native_index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        return (self.gap_base, self.gap_delta, self.skip_base, self.skip_delta, _LEVEL)

    def gap_at(self, r: np.ndarray) -> np.ndarray:
        """Kept positions of gaps ``r`` (int64, elementwise)."""
        return self.gap_base[r >> _LEVEL] + self.gap_delta[r].astype(np.int64)

    @property
    def excluded_tokens(self) -> int:
        return self.num_tokens - self.kept_tokens

    @property
    def nbytes(self) -> int:
        """Memory held by the index."""
        return int(
            self.gap_base.nbytes + self.gap_delta.nbytes + self.skip_base.nbytes + self.skip_delta.nbytes
        )

    def skipped(self, r: np.ndarray) -> np.ndarray:
        """``C[r]``: tokens skipped by the gaps before gap ``r`` (int64, elementwise)."""
        return self.skip_base[r >> _LEVEL] + self.skip_delta[r].astype(np.int64)

    def to_store(self, kept: np.ndarray) -> np.ndarray:
        """Store positions of kept positions (int64 array in, int64 array out)."""
        return self.rows(kept, 0)[0]

    def rows(self, starts: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For windows ``[starts[i], starts[i] + length)`` of kept positions: (store start of each, gaps before
        each start, gaps strictly inside each). A window with no gap inside is one contiguous store span."""
        starts = np.ascontiguousarray(starts, dtype=np.int64)
        store_starts, r0, inside = np.empty_like(starts), np.empty_like(starts), np.empty_like(starts)
        _pieces.locate_rows(*self._native_index, starts, length, store_starts, r0, inside)
        return store_starts, r0, inside

    def row_pieces(self, starts: np.ndarray, length: int) -> tuple[np.ndarray, ...]:
        """Windows ``[starts[i], starts[i] + length)`` split for reading, vectorized over the batch.

        Returns (plain, store_starts, broken, lo, n, row, at): `plain` marks windows that are one store span,
        starting at `store_starts`; `broken` lists the others, whose pieces are store spans ``[lo, lo + n)`` going
        to window ``broken[row]`` at offset `at` (pieces in order, each non-empty)."""
        starts = np.ascontiguousarray(starts, dtype=np.int64)
        store_starts, r0, inside = self.rows(starts, length)
        ix = self._native_index
        plain = inside == 0
        broken = np.flatnonzero(inside)
        total = int(inside[broken].sum()) + broken.size
        lo, n, at, row = (np.empty(total, dtype=np.int64) for _ in range(4))
        if total:
            _pieces.fill_pieces(*ix, starts[broken], r0[broken], inside[broken], length, lo, n, at, row)
        return plain, store_starts, broken, lo, n, row, at

    def pieces(self, start: int, stop: int) -> list[tuple[int, int, int]]:
        """The contiguous store spans of kept positions ``[start, stop)``: (store start, length, offset in the
        window) in order."""
        if not 0 <= start <= stop <= self.kept_tokens:
            raise IndexError(f"kept tokens [{start}, {stop}) are outside [0, {self.kept_tokens})")
        _, r0_a, inside_a = self.rows(np.array([start], dtype=np.int64), stop - start)
        r0, r1 = int(r0_a[0]), int(r0_a[0] + inside_a[0])
        cuts = [start, *self.gap_at(np.arange(r0, r1, dtype=np.int64)).tolist(), stop]
        skips = self.skipped(np.arange(r0, r1 + 1, dtype=np.int64)).tolist()
        out = []
        for j in range(len(cuts) - 1):
            lo, hi = cuts[j], cuts[j + 1]
            if hi > lo:
                out.append((lo + skips[j], hi - lo, lo - start))
        return out


# -- held-out membership ----------------------------------------------------------------------------------------


def _two_level(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int64 base every 256 values, offsets from it): uint32 offsets unless some exceed 2**32 - 1."""
    base = values[:: 1 << _LEVEL].copy()
    delta = values - np.repeat(base, 1 << _LEVEL)[: values.size]
    if not delta.size or int(delta.max()) < 1 << 32:
        return base, delta.astype(np.uint32)
    return base, delta


def _mix64(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def heldout_scores(content_hashes: np.ndarray, seed: int) -> np.ndarray:
    """Each document's held-out score in ``[0, 1)`` (float64): a SplitMix64 hash of (content hash, seed).

    The score is a pure function of the document's content and the seed, so exact copies score equally."""
    h = np.asarray(content_hashes, dtype=np.uint64)
    key = _mix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64) + _GOLDEN)[0]
    with np.errstate(over="ignore"):
        z = _mix64(h ^ key)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def threshold_for_fraction(fraction: float) -> float:
    """The score threshold of ``heldout = fraction``: a document is held out when its score is below it."""
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"heldout must be a fraction in [0, 1), got {fraction!r}")
    return float(fraction)


def threshold_for_tokens(scores: np.ndarray, lengths: np.ndarray, tokens: int) -> float:
    """The smallest threshold whose held-out documents (score below it) hold at least `tokens` tokens.

    Documents are taken in score order until the tokens suffice; ties in score (exact copies) go together."""
    if tokens <= 0:
        return 0.0
    order = np.argsort(scores, kind="stable")
    total = np.cumsum(np.asarray(lengths, dtype=np.int64)[order])
    k = int(np.searchsorted(total, tokens, "left"))
    if k >= order.size:
        raise ConfigError(
            f"heldout_tokens = {tokens} is more than the source's {int(total[-1]) if total.size else 0} tokens"
        )
    cut = float(scores[order[k]])
    return float(np.nextafter(cut, 2.0))  # include document k (and every copy of it)
