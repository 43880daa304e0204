"""A store seen through its exclusions: the kept documents concatenated, read like a whole store.

`KeptStore` wraps a `Store` and a `shardstore.mix.keep.KeptIndex` and offers what the batch reader, the prefetcher
and ``peek`` use of a store (``num_tokens``, ``read_rows``, ``mark_doc_starts``, ``read_into``, ``doc_starts``,
``shards_for``, ...) in *kept* coordinates. So sources, windows, epochs and the interleave run over kept tokens
unchanged, and no window can hold a byte of an excluded document: every position maps to a kept one.

Cost of a batch (the hot path): two vectorized binary searches over the gap positions for all rows of a source at
once; the rows with no gap inside (most of them) are then one `Store.read_rows` call, exactly as without a mask;
a row that contains gaps is read piece by piece (``1 + gaps`` contiguous spans). Document starts inside a row
are the store's, shifted, plus the first position after each gap (a gap ends where a kept document begins).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from shardstore.mix.keep import KeptIndex
from shardstore.store.pieces import PiecePlan

__all__ = ["KeptStore", "plan_batches"]


class KeptStore:
    """`store` without the documents that `index` leaves out (see the module docstring).

    Attributes:
        store: the underlying `Store`.
        index: the kept-token index.
        masks: (path or URL, mask fingerprint) of the masks applied, for fingerprints and messages.
        heldout_docs: documents of the store on the held-out side (ascending int64), for the evaluation loader.
    """

    __slots__ = ("excluded_docs", "heldout_docs", "index", "masks", "store")

    def __init__(
        self,
        store: Any,
        index: KeptIndex,
        *,
        masks: Sequence[tuple[str, str]] = (),
        heldout_docs: np.ndarray | None = None,
        excluded_docs: int = 0,
    ) -> None:
        self.store = store
        self.index = index
        self.masks = tuple(masks)
        self.heldout_docs = np.zeros(0, dtype=np.int64) if heldout_docs is None else heldout_docs
        self.excluded_docs = excluded_docs

    def over(self, store: Any) -> KeptStore:
        """This view over `store` (the same store re-opened, e.g. in a forked worker): the index is reused."""
        if store is self.store:
            return self
        return KeptStore(
            store,
            self.index,
            masks=self.masks,
            heldout_docs=self.heldout_docs,
            excluded_docs=self.excluded_docs,
        )

    # -- what sources and the planner use ---------------------------------------------------------------------------

    @property
    def num_tokens(self) -> int:
        return self.index.kept_tokens

    @property
    def dtype(self) -> np.dtype:
        return self.store.dtype  # type: ignore[no-any-return]

    @property
    def fingerprint(self) -> str:
        return self.store.fingerprint  # type: ignore[no-any-return]

    @property
    def tokenizer_fingerprint(self) -> str | None:
        return self.store.tokenizer_fingerprint  # type: ignore[no-any-return]

    @property
    def tokenizer(self) -> Any:
        return self.store.tokenizer

    @property
    def root(self) -> str:
        return self.store.root  # type: ignore[no-any-return]

    def to_store(self, kept: int) -> int:
        """The store position of kept position `kept`."""
        return int(self.index.to_store(np.array([kept], dtype=np.int64))[0])

    def verify(self, *, raise_on_error: bool = True) -> Any:
        return self.store.verify(raise_on_error=raise_on_error)

    def prefetch(self, indices: Sequence[int]) -> None:
        self.store.prefetch(indices)

    def shards_for(self, start: int, stop: int) -> range:
        if start >= stop:
            return range(0)
        lo, hi = self.index.to_store(np.array([start, stop - 1], dtype=np.int64)).tolist()
        return self.store.shards_for(lo, hi + 1)  # type: ignore[no-any-return]

    # -- reads ------------------------------------------------------------------------------------------------------

    def read_into(self, start: int, out: np.ndarray) -> np.ndarray:
        for lo, n, at in self.index.pieces(start, start + out.shape[0]):
            self.store.read_into(lo, out[at : at + n])
        return out

    def doc_starts(self, start: int, stop: int) -> np.ndarray:
        """Kept positions in ``[start, stop)`` where a kept (non-empty) document begins."""
        parts = []
        for lo, n, at in self.index.pieces(start, stop):
            parts.append(self.store.doc_starts(lo, lo + n) - lo + (start + at))
            if at > 0:  # right after a gap: a kept document begins
                parts.append(np.array([start + at], dtype=np.int64))
        if not parts:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate(parts))

    def _check(self, starts: np.ndarray, length: int) -> None:
        if starts.size:
            lo, hi = int(starts.min()), int(starts.max())
            if lo < 0 or hi + length > self.num_tokens:
                bad = lo if lo < 0 else hi
                raise IndexError(f"kept tokens [{bad}, {bad + length}) are outside [0, {self.num_tokens})")

    def read_rows(self, starts: np.ndarray, out: np.ndarray, *, rows: np.ndarray | None = None) -> np.ndarray:
        """Fill ``out[rows[i]]`` with kept tokens ``[starts[i], starts[i] + out.shape[1])``."""
        starts = np.asarray(starts, dtype=np.int64)
        self._check(starts, out.shape[1])
        rows_a = np.arange(starts.size, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
        plain, store_starts, broken, lo, n, row, at = self.index.row_pieces(starts, out.shape[1])
        if not broken.size:
            return self.store.read_rows(store_starts, out, rows=rows_a)  # type: ignore[no-any-return]
        keep = np.flatnonzero(plain)
        if keep.size:
            self.store.read_rows(store_starts[keep], out, rows=rows_a[keep])
        PiecePlan.make(self.store, lo, n, rows_a[broken][row] * out.shape[1] + at).read(self.store, out)
        return out

    def mark_doc_starts(
        self, starts: np.ndarray, marks: np.ndarray, *, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """Set ``marks[rows[i], p]`` where a kept document begins at kept position ``starts[i] + p``."""
        length = marks.shape[1]
        starts = np.asarray(starts, dtype=np.int64)
        self._check(starts, length)
        rows_a = np.arange(starts.size, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
        plain, store_starts, broken, *_ = self.index.row_pieces(starts, length)
        keep = np.flatnonzero(plain)
        if keep.size:
            self.store.mark_doc_starts(store_starts[keep], marks, rows=rows_a[keep])
        for start, row in zip(starts[broken].tolist(), rows_a[broken].tolist(), strict=True):
            marks[row, self.doc_starts(start, start + length) - start] = True
        return marks


def plan_batches(
    kept: KeptStore, starts: np.ndarray, rows: np.ndarray, bounds: Sequence[int], length: int, size: int
) -> list[PiecePlan | None]:
    """Read plans of several batches at once (the batch reader's look-ahead: one vectorized pass for 32 batches).

    Every row becomes store pieces: one for a row without a gap inside (most rows), ``1 + gaps`` for the others;
    a batch's pieces are then copied by one native call (`shardstore.store.pieces.PiecePlan.read`), which costs
    less than the per-row loop of `Store.read_rows` and so pays for the planning.

    Args:
        starts: kept start of each of the source's rows, in row order over all the batches.
        rows: those rows' indices in the look-ahead layout (batch ``j`` holds rows ``[j * size, (j + 1) * size)``).
        bounds: the source's rows of batch ``j`` are ``[bounds[j], bounds[j + 1])`` of `starts`.
        length: tokens per row (``seq_len + 1``), the width of the batch buffer.
    """
    plain, store_starts, broken, lo, n, prow, at = kept.index.row_pieces(starts, length)
    local = rows % size
    whole = np.flatnonzero(plain)
    if broken.size:
        src_row = np.concatenate([whole, broken[prow]])
        order = np.argsort(src_row, kind="stable")  # pieces in row order, hence batch order
        src_row = src_row[order]
        lo = np.concatenate([store_starts[whole], lo])[order]
        n = np.concatenate([np.full(whole.size, length, dtype=np.int64), n])[order]
        at = np.concatenate([np.zeros(whole.size, dtype=np.int64), at])[order]
    else:
        src_row, lo, n, at = whole, store_starts, np.full(whole.size, length, dtype=np.int64), whole * 0
    dst = local[src_row] * length + at
    return PiecePlan.make_many(kept.store, lo, n, dst, rows[src_row] // size, len(bounds) - 1)
