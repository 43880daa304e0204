"""Variable-length reads into rows of a batch: the kept-token path of the loader (`shardstore.loader.kept`).

A window that spans a gap of excluded documents is a few contiguous store spans ("pieces"). `PiecePlan.make`
locates a batch's pieces in the store's row segments once (its mapped shards, or for a store of many tiny shards
its verified in-memory runs, `runs.ShardRuns`: a masked batch then neither maps nor re-checks tiny shards one by
one), vectorized (the loader does it in its look-ahead, for 32
batches at a time); `PiecePlan.read` then loads the few segments involved, verifies the blocks the pieces touch
(first-touch hashing, skipped for segments already trusted) and copies every piece with one native call
(`shardstore._native._pieces.copy_pieces`, bounds-checked). A piece crossing a shard boundary (rare: at most one
per boundary) goes through `Store.read_into`. No unverified byte reaches `out`.

Measured (benchmarks/bench_masks.py): ~18 pieces per batch of 32 rows of 2049 tokens with 10% of the documents
excluded cost ~3 us with the native copy, against ~25 us for a Python loop of slice copies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from shardstore._native import _pieces
from shardstore.store.rows import Segment

__all__ = ["PiecePlan", "PieceStore"]


class PieceStore(Protocol):
    """What piece reads need of a store (`Store` implements it: its "row and verify interface")."""

    @property
    def num_tokens(self) -> int: ...
    def row_segments(
        self,
    ) -> tuple[list[int], np.ndarray, Sequence[Segment | None], Callable[[int], Segment]]: ...
    def check_out_dtype(self, dtype: np.dtype) -> None: ...
    def read_into(self, start: int, out: np.ndarray) -> np.ndarray: ...
    def doc_starts(self, start: int, stop: int) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class PiecePlan:
    """Pieces ``[lo, lo + n)`` of store tokens going to flat element ``dst`` of a batch buffer."""

    shards: tuple[int, ...]  # distinct row segments (shards, or runs of tiny shards) the pieces read
    which: np.ndarray  # per piece: index into `shards`
    local: np.ndarray  # per piece: first token inside its segment
    n: np.ndarray
    dst: np.ndarray
    crossing: tuple[
        tuple[int, int, int], ...
    ]  # (store position, length, dst) of pieces crossing a segment end

    @classmethod
    def make(cls, store: PieceStore, lo: np.ndarray, n: np.ndarray, dst: np.ndarray) -> PiecePlan:
        """Plan pieces ``[lo[i], lo[i] + n[i])`` of `store` to flat elements ``dst[i]`` of the batch buffer."""
        plan = cls.make_many(store, lo, n, dst, np.zeros(lo.size, dtype=np.int64), 1)[0]
        return plan if plan is not None else cls((), lo[:0], lo[:0], lo[:0], lo[:0], ())

    @classmethod
    def make_many(
        cls, store: PieceStore, lo: np.ndarray, n: np.ndarray, dst: np.ndarray, batch: np.ndarray, k: int
    ) -> list[PiecePlan | None]:
        """The plans of `k` batches at once (one vectorized pass): piece ``i`` belongs to batch ``batch[i]``
        (non-decreasing); None for a batch without pieces."""
        lo, n, dst = (np.asarray(x, dtype=np.int64) for x in (lo, n, dst))
        starts = np.asarray(store.row_segments()[1], dtype=np.int64)  # segment starts, then the store's end
        shard = np.searchsorted(starts, lo, "right") - 1
        local = lo - starts[shard]
        cross = lo + n > starts[shard + 1]
        # distinct (batch, shard) pairs, in order: each batch's shards and each piece's index among them
        key = batch * (starts.size + 1) + shard
        uniq, inverse = np.unique(key, return_inverse=True)
        first_of_batch = np.searchsorted(uniq // (starts.size + 1), np.arange(k + 1))
        which = inverse - first_of_batch[batch]
        shard_of = (uniq % (starts.size + 1)).tolist()
        cuts = np.searchsorted(batch, np.arange(k + 1)).tolist()
        bounds = first_of_batch.tolist()
        plans: list[PiecePlan | None] = []
        any_cross = bool(cross.any())
        for j in range(k):
            a, b = cuts[j], cuts[j + 1]
            if a == b:
                plans.append(None)
                continue
            crossing: tuple[tuple[int, int, int], ...] = ()
            w, loc, m, d = which[a:b], local[a:b], n[a:b], dst[a:b]
            c = cross[a:b] if any_cross else None
            if c is not None and c.any():
                crossing = tuple(zip(lo[a:b][c].tolist(), m[c].tolist(), d[c].tolist(), strict=True))
                w, loc, m, d = w[~c], loc[~c], m[~c], d[~c]
            plans.append(cls(tuple(shard_of[bounds[j] : bounds[j + 1]]), w, loc, m, d, crossing))
        return plans

    def read(self, store: PieceStore, out: np.ndarray) -> None:
        """Copy the planned pieces into `out` (a C-contiguous 2-D batch buffer), verifying first."""
        store.check_out_dtype(out.dtype)
        _, _, slots, get = store.row_segments()
        arrays = []
        for j, s in enumerate(self.shards):
            shard = slots[s]
            if shard is None:
                shard = get(s)
            else:
                shard.used = True
            if not shard.trusted:  # first touches: hash what was never verified (every block, once)
                mine = np.flatnonzero(self.which == j)
                for a, m in zip(self.local[mine].tolist(), self.n[mine].tolist(), strict=True):
                    shard.check_blocks(a, a + m)
            arrays.append(shard.tokens)
        if self.which.size:
            _pieces.copy_pieces(tuple(arrays), self.which, self.local, self.n, self.dst, out.reshape(-1))
        width = out.shape[1]
        for a, m, d in self.crossing:
            r, c = divmod(d, width)
            store.read_into(a, out[r, c : c + m])

    def mark(self, store: PieceStore, marks: np.ndarray, width: int) -> None:
        """Set ``marks[row, col]`` (``[rows, width - 1]`` bools) where a document begins inside the planned pieces
        (``width`` is the batch buffer's).

        One vectorized pass per shard: a searchsorted of all its pieces' bounds over the shard's document offsets.
        """
        cols = marks.shape[1]
        flat = marks.reshape(-1)
        row, col = np.divmod(self.dst, width)
        _, _, slots, get = store.row_segments()
        # A piece after a gap starts where a kept document starts (gaps are whole documents), which the
        # searchsorted below finds among the shard's document offsets: no separate mark for it.
        for j, s in enumerate(self.shards):
            mine = np.flatnonzero(self.which == j) if len(self.shards) > 1 else slice(None)
            seg = slots[s]
            offs = (seg if seg is not None else get(s)).offsets
            lo, hi = self.local[mine], self.local[mine] + self.n[mine]
            i0 = np.searchsorted(offs, lo.astype(np.uint64), "left")
            i1 = np.searchsorted(offs, hi.astype(np.uint64), "left")
            count = (i1 - i0).astype(np.int64)
            total = int(count.sum())
            if not total:
                continue
            first = np.cumsum(count) - count
            idx = np.repeat(i0.astype(np.int64) - first, count) + np.arange(total, dtype=np.int64)
            shift = np.repeat(col[mine] - lo, count)
            c = offs[idx].astype(np.int64) + shift
            r = np.repeat(row[mine], count)
            ok = c < cols
            flat[r[ok] * cols + c[ok]] = True
        for a, m, d in self.crossing:
            r0, c0 = divmod(d, width)
            rel = store.doc_starts(a, a + m) - a + c0
            marks[r0, rel[rel < cols]] = True
