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

__all__ = ["KeptStore"]


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

    def _split(self, starts: np.ndarray, length: int, rows: np.ndarray | None) -> tuple[Any, ...]:
        starts = np.asarray(starts, dtype=np.int64)
        rows_a = np.arange(starts.size, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
        if starts.size and (int(starts.min()) < 0 or int(starts.max()) + length > self.num_tokens):
            bad = int(starts.min()) if int(starts.min()) < 0 else int(starts.max())
            raise IndexError(f"kept tokens [{bad}, {bad + length}) are outside [0, {self.num_tokens})")
        store_starts, _, inside = self.index.rows(starts, length)
        plain = inside == 0
        if plain.all():
            return store_starts, rows_a, None
        broken = np.flatnonzero(~plain)
        return store_starts[plain], rows_a[plain], (starts[broken], rows_a[broken])

    def read_rows(self, starts: np.ndarray, out: np.ndarray, *, rows: np.ndarray | None = None) -> np.ndarray:
        """Fill ``out[rows[i]]`` with kept tokens ``[starts[i], starts[i] + out.shape[1])``."""
        length = out.shape[1]
        plain_starts, plain_rows, broken = self._split(starts, length, rows)
        if plain_starts.size:
            self.store.read_rows(plain_starts, out, rows=plain_rows)
        if broken is not None:
            for start, row in zip(broken[0].tolist(), broken[1].tolist(), strict=True):
                self.read_into(start, out[row])
        return out

    def mark_doc_starts(
        self, starts: np.ndarray, marks: np.ndarray, *, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """Set ``marks[rows[i], p]`` where a kept document begins at kept position ``starts[i] + p``."""
        length = marks.shape[1]
        plain_starts, plain_rows, broken = self._split(starts, length, rows)
        if plain_starts.size:
            self.store.mark_doc_starts(plain_starts, marks, rows=plain_rows)
        if broken is not None:
            for start, row in zip(broken[0].tolist(), broken[1].tolist(), strict=True):
                marks[row, self.doc_starts(start, start + length) - start] = True
        return marks
