"""Whole batches as numpy arrays: interleave -> shuffle -> window -> one batched read per source. No torch, no
per-sample collate.

`BatchReader.read(position, counts, size)` returns the samples at global positions ``[position, position + size)``
given the per-source counts drawn before ``position``:

1. `Interleave.assign` gives each sample's source and its ordinal within the source (exact mixing);
2. ordinal ``k`` of a source with ``N`` windows is epoch ``k // N``, slot ``k % N``; the epoch's keyed Feistel
   permutation maps the slot to a window. A source's ordinals increase along the global order, so its windows are
   one range of a cached block of the permutation: a few numpy calls per source, not a lookup per row. Steps 1-2
   run for the reader's next 32 batches at once (`stride` = the global batch size: a rank's batches are
   ``stride`` apart) and are cached by position with the counts they start from: ~1 us per batch instead of ~20;
3. each source's windows (``seq_len + 1`` tokens) are copied into their rows of one ``[size, seq_len + 1]``
   staging buffer of the stores' own dtype by one `Store.read_rows` call (a tight per-row loop with first-touch
   block verification; see `shardstore.store.rows`); ``input_ids`` and ``labels`` are its two shifted column slices,
   widened into one ``[2, size, seq_len]`` int64 array (two copies; both halves C-contiguous, so
   ``labels.view(-1)`` works). With ``contiguous=False`` the rows are read into int64 directly and
   ``input_ids``/``labels`` are two overlapping views of that buffer: half the int64 writes, but ``.view(-1)``
   fails on them until they are copied (``.to(device)`` copies).
4. Batch-sized arrays come from an `ArrayRecycler`: their memory is reused once the caller has dropped every
   reference to an earlier batch (fresh pages cost more than filling them; see `shardstore.loader.recycle`).

Measured (benchmarks/RESULTS.md, "Loader hot path"; B=32, seq_len=2048, 2 sources, one CPU core): ~142 us of CPU
per batch against ~128 us for the raw np.memmap bound (~188 us before batched reads); ~40 us of it reads the rows,
~20-40 us widens them to int64 (the raw bound's views skip the second int64 copy).

Document starts (for ``position_ids`` / ``cu_seqlens``, defined in `shardstore.mix.sampling`) come from
`Store.mark_doc_starts` over the same rows; a store boundary inside a window is a document start too. Both arrays
are computed from the segment starts of the flattened marks (no per-row accumulate).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import numpy as np

from shardstore.loader.kept import KeptStore, plan_batches
from shardstore.loader.mixture import Mixture, OpenSource
from shardstore.loader.recycle import ArrayRecycler
from shardstore.mix.interleave import LIMIT
from shardstore.mix.sampling import FeistelPermutation, permutation
from shardstore.store.pieces import PiecePlan
from shardstore.util.modes import parse_mode

__all__ = ["BatchReader", "DocInfo"]

Group = tuple[
    int, np.ndarray, PiecePlan | None
]  # (source, its rows in the batch, how to read them when masked)
_MAX_CACHED_PERMUTATIONS = 256
# Permuted slots computed (and cached) per vectorized call. The cost of a call is dominated by its cycle-walking
# iterations (~60 numpy calls each, ~log(n) of them), not by n: 16384 slots cost ~0.36 us/slot against ~0.7 us/slot
# for 4096 (a source of 16k windows, whose Feistel domain is 4x its size).
_BLOCK = 16384
_MAX_CACHED_BLOCKS = 32  # 32 x 16384 x 8 bytes = 4 MiB per reader at most, whatever the dataset size
# With more than 15 sources every source keeps two blocks (its current one and the next, at a boundary), of
# _BLOCK * 16 / num_sources slots (at least 1024): the same ~4 MiB bound, and no block is recomputed per look-ahead.


def block_plan(num_sources: int) -> tuple[int, int]:
    """(slots per cached permutation block, blocks cached) for a reader of ``num_sources`` sources."""
    if 2 * num_sources + 2 <= _MAX_CACHED_BLOCKS:
        return _BLOCK, _MAX_CACHED_BLOCKS
    size = max(1024, 1 << ((_BLOCK * 16 // num_sources).bit_length() - 1))
    return size, 2 * num_sources + 2


_AHEAD_BATCHES = 32  # batches located per vectorized call ...
_AHEAD_SAMPLES = 4096  # ... spanning at most this many global samples


class DocInfo(StrEnum):
    """Which document-boundary arrays a batch carries."""

    NONE = "none"
    POSITION_IDS = "position_ids"
    CU_SEQLENS = "cu_seqlens"
    BOTH = "both"


class BatchReader:
    """Reads batches of a mixture. Opens the stores lazily, once per process."""

    __slots__ = (
        "_ahead",
        "_block_size",
        "_blocks",
        "_iota",
        "_last_position",
        "_max_blocks",
        "_perms",
        "_recycler",
        "_staging",
        "contiguous",
        "doc_info",
        "mixture",
    )

    def __init__(
        self, mixture: Mixture, *, doc_info: DocInfo | str | None = None, contiguous: bool = True
    ) -> None:
        self.mixture = mixture
        self.contiguous = contiguous
        self.doc_info = parse_mode(DocInfo, doc_info or DocInfo.NONE, name="doc_info")
        self._perms: dict[tuple[int, int], FeistelPermutation] = {}
        self._blocks: OrderedDict[tuple[int, int, int], np.ndarray] = OrderedDict()
        self._block_size, self._max_blocks = block_plan(len(mixture.config.sources))
        self._staging: tuple[list[OpenSource], np.dtype] | None = None  # (opened sources, their common dtype)
        self._recycler = ArrayRecycler()  # batch-sized arrays reuse memory the caller has released
        self._iota = np.arange(0, dtype=np.int64)  # 0, 1, 2, ... for position_ids, grown on demand
        self._last_position: int | None = None  # of the last batch located (its successor's step is learned)
        # position -> (counts there, source ids, windows, rows per source) of the next batches (_locate_ahead)
        self._ahead: dict[int, tuple[tuple[int, ...], np.ndarray, np.ndarray, list[Group]]] = {}

    @property
    def seq_len(self) -> int:
        return self.mixture.config.seq_len

    def _perm(self, source: int, epoch: int, size: int) -> FeistelPermutation:
        key = (source, epoch)
        perm = self._perms.get(key)
        if perm is None:
            if len(self._perms) >= _MAX_CACHED_PERMUTATIONS:
                self._perms.clear()
            name = self.mixture.config.sources[source].name
            perm = self._perms[key] = permutation(self.mixture.config.seed, name, epoch, size)
        return perm

    def _block(self, source: int, epoch: int, block: int, size: int) -> np.ndarray:
        """Permuted slots ``[block * _BLOCK, ...)`` of (source, epoch), from a small LRU cache: a source's slots
        advance consecutively, and one vectorized call over many slots costs ~0.4 us/slot against ~30 us/slot for
        a call over a handful."""
        key = (source, epoch, block)
        table = self._blocks.get(key)
        if table is None:
            lo = block * self._block_size
            hi = min(size, lo + self._block_size)
            table = self._perm(source, epoch, size)(np.arange(lo, hi, dtype=np.int64))
            self._blocks[key] = table
            if len(self._blocks) > self._max_blocks:
                self._blocks.popitem(last=False)
        else:
            self._blocks.move_to_end(key)
        return table

    def _windows(self, source: int, lo: int, hi: int, size: int) -> np.ndarray:
        """Windows of ordinals ``[lo, hi)`` of a source with ``size`` windows: slices of cached permutation
        blocks, usually one (a batch crosses a block or epoch boundary once per _BLOCK samples of a source)."""
        pieces = []
        while lo < hi:
            epoch, slot = divmod(lo, size)
            block, j = divmod(slot, self._block_size)
            table = self._block(source, epoch, block, size)
            take = min(hi - lo, table.size - j)
            pieces.append(table[j : j + take])
            lo += take
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def locate(self, position: int, counts: Sequence[int], size: int) -> tuple[np.ndarray, np.ndarray]:
        """(source id, window index within its source) of each sample in ``[position, position + size)``."""
        src, windows, _, _ = self._locate(position, counts, size)
        return src, windows

    def _locate(
        self, position: int, counts: Sequence[int], size: int, stride: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, list[Group], list[OpenSource]]:
        sources = self.mixture.open_sources()  # once per batch: it checks the process id (fork safety)
        counts = tuple(int(c) for c in counts)
        hit = self._ahead.get(position)
        if hit is None or hit[0] != counts or hit[1].size != size:
            # Predict where this reader's next batches start: `stride` apart, unless its requests so far came a
            # multiple of that apart (DataLoader workers take every num_workers-th batch of a rank).
            step = max(stride or size, size)
            last = self._last_position
            if last is not None and position > last and (position - last) % step == 0:
                step = position - last
            hit = self._locate_ahead(position, counts, size, step, sources)
        self._last_position = position
        # a copy of the source ids: the caller may keep or modify them
        return hit[1].copy(), hit[2], hit[3], sources

    def _locate_ahead(
        self, position: int, counts: tuple[int, ...], size: int, stride: int, sources: list[OpenSource]
    ) -> tuple[tuple[int, ...], np.ndarray, np.ndarray, list[Group]]:
        """Locate this reader's next ``k`` batches, ``[position + j * stride, ... + size)`` for ``j < k``, in one
        vectorized pass, cache them by position (with the counts they start from) and return the first.

        Per batch, locating costs ~20 us of numpy calls on 32-element arrays whatever their size; over ``k``
        batches at once it is ~1 us per batch. ``k * stride`` is capped (`_AHEAD_SAMPLES`), so a large world size
        locates one batch at a time instead of samples other ranks read."""
        k = max(1, min(_AHEAD_BATCHES, _AHEAD_SAMPLES // stride))
        room = LIMIT - position - size  # never look ahead past the last supported sample (2**63)
        if room >= 0:
            k = min(k, room // stride + 1)
        total = (k - 1) * stride + size
        src_all, ordinal_all = self.mixture.interleave.assign(position, counts, total)
        if stride == size:
            src, ordinal = src_all, ordinal_all
        else:
            mine = (np.arange(k, dtype=np.int64)[:, None] * stride + np.arange(size, dtype=np.int64)).ravel()
            src, ordinal = src_all[mine], ordinal_all[mine]
        windows = np.empty(src.size, dtype=np.int64)
        # A source's ordinals increase along the global order (ordinal = samples of it drawn before), so its
        # windows are one range of its permutation: a few numpy calls per source, not a lookup per row.
        cuts = np.arange(k + 1, dtype=np.int64) * size
        groups: list[list[Group]] = [[] for _ in range(k)]
        for s in np.flatnonzero(np.bincount(src, minlength=len(sources))).tolist():
            rows = np.flatnonzero(src == s)
            ords = ordinal[rows]
            lo, hi = int(ords[0]), int(ords[-1]) + 1
            table = self._windows(s, lo, hi, sources[s].num_windows)
            windows[rows] = table if hi - lo == rows.size else table[ords - lo]
            bounds = np.searchsorted(rows, cuts).tolist()  # this source's rows in each batch, batch-relative
            plans: list[PiecePlan | None] = [None] * k
            stores = sources[s].stores
            if len(stores) == 1 and isinstance(
                stores[0], KeptStore
            ):  # kept -> store positions, all k at once
                plans = list(
                    plan_batches(
                        stores[0], windows[rows] * self.seq_len, rows, bounds, self.seq_len + 1, size
                    )
                )
            for j in range(k):
                if bounds[j + 1] > bounds[j]:
                    groups[j].append((s, rows[bounds[j] : bounds[j + 1]] - j * size, plans[j]))
        firsts = np.arange(k, dtype=np.int64) * stride
        before = [
            (np.concatenate(([0], np.cumsum(src_all == s)))[firsts] + c).tolist()
            for s, c in enumerate(counts)
        ]
        ahead = {}
        for j in range(k):
            state = tuple(per_source[j] for per_source in before)
            part = slice(j * size, (j + 1) * size)
            ahead[position + j * stride] = (state, src[part], windows[part], groups[j])
        self._ahead = (
            ahead  # replaced whole: a thread reading the old cache meanwhile still sees whole entries
        )
        return ahead[position]

    def read(
        self, position: int, counts: Sequence[int], size: int, *, stride: int | None = None
    ) -> dict[str, np.ndarray]:
        """The batch of global samples ``[position, position + size)`` as numpy arrays. `stride`: where this
        reader's next batch will start (``position + stride``; default `size`), so upcoming batches are located
        together."""
        return self._read(*self._locate(position, counts, size, stride))

    def read_windows(self, src: np.ndarray, window: np.ndarray) -> dict[str, np.ndarray]:
        """The batch of these (source id, window) samples as numpy arrays."""
        return self._read(src, window, _rows_by_source(src), self.mixture.open_sources())

    def _read(
        self,
        src: np.ndarray,
        window: np.ndarray,
        groups: list[Group],
        sources: list[OpenSource],
    ) -> dict[str, np.ndarray]:
        length = self.seq_len
        rows = len(src)
        # contiguous: native-dtype staging rows (a few KiB per row, cache-resident), widened to int64 by two
        # copies into one [2, rows, length] allocation (input_ids, labels); views: int64 rows filled directly
        dtype = self._staging_dtype(sources) if self.contiguous else np.dtype(np.int64)
        buf = self._recycler.empty((rows, length + 1), dtype)
        marks = None
        if self.doc_info is not DocInfo.NONE:
            marks = self._recycler.empty((rows, length), np.bool_)
            marks.fill(False)
        for s, picked, plan in groups:
            starts = window[picked] * length
            source = sources[s]
            if plan is not None:
                plan.read(source.stores[0].store, buf)
                if marks is not None:
                    plan.mark(source.stores[0].store, marks, length + 1)
            elif len(source.stores) == 1:
                source.stores[0].read_rows(starts, buf, rows=picked)
                if marks is not None:
                    source.stores[0].mark_doc_starts(starts, marks, rows=picked)
            else:
                _read_multi_store(source, starts, picked, buf, marks)
        src = src.astype(np.int64, copy=False)
        if self.contiguous:
            wide = self._recycler.empty((2, rows, length), np.int64)
            np.copyto(wide[0], buf[:, :-1])  # two 2-D casts: ~1.7x faster than one over a 3-D shifted view
            np.copyto(wide[1], buf[:, 1:])
            out = {"input_ids": wide[0], "labels": wide[1], "source_ids": src}
        else:
            out = {"input_ids": buf[:, :-1], "labels": buf[:, 1:], "source_ids": src}
        if marks is not None:
            out.update(self._doc_info_arrays(marks))
        return out

    def _doc_info_arrays(self, marks: np.ndarray) -> dict[str, np.ndarray]:
        """``position_ids`` / ``cu_seqlens`` as the test oracle `tests/marks_reference.py` defines them
        (`position_ids_from_marks`, `cu_seqlens_from_marks`; tests pin the equality), from the segment starts of the flattened marks: two
        passes over ``B * seq_len`` values instead of a ``maximum.accumulate`` along rows (~20x slower, strided)."""
        rows, length = marks.shape
        marks[:, 0] = True  # every row starts a segment
        starts = np.flatnonzero(marks.ravel())
        total = rows * length
        out = {}
        if self.doc_info in (DocInfo.POSITION_IDS, DocInfo.BOTH):
            if self._iota.size < total:
                self._iota = np.arange(total, dtype=np.int64)
            pos = self._recycler.empty((rows, length), np.int64)
            lengths = np.diff(starts, append=total)
            np.subtract(self._iota[:total], np.repeat(starts, lengths), out=pos.reshape(-1))
            out["position_ids"] = pos
        if self.doc_info in (DocInfo.CU_SEQLENS, DocInfo.BOTH):
            out["cu_seqlens"] = np.append(starts, total).astype(np.int32)
        return out

    def _staging_dtype(self, sources: list[OpenSource]) -> np.dtype:
        if self._staging is None or self._staging[0] is not sources:
            self._staging = (
                sources,
                np.result_type(*(store.dtype for src in sources for store in src.stores)),
            )
        return self._staging[1]

    def prefetch(self, position: int, counts: Sequence[int], size: int) -> None:
        """Hint the stores (remote ones download in the background) about the shards these samples need."""
        sources = self.mixture.open_sources()
        src, window = self.locate(position, counts, size)
        wanted: dict[int, tuple[Any, set[int]]] = {}
        for s, w in zip(src.tolist(), window.tolist(), strict=True):
            start = w * self.seq_len
            for store, lo, hi, _ in _spans(sources[s], start, start + self.seq_len + 1):
                wanted.setdefault(id(store), (store, set()))[1].update(store.shards_for(lo, hi))
        for store, shards in wanted.values():
            store.prefetch(sorted(shards))


def _spans(source: OpenSource, start: int, stop: int) -> list[tuple[Any, int, int, int]]:
    """(store, local start, local stop, offset in the window) of source tokens ``[start, stop)``."""
    out = []
    i = bisect_right(source.offsets, start) - 1
    at = 0
    while start < stop:
        base = source.offsets[i]
        hi = min(stop, source.offsets[i + 1])
        if hi > start:
            out.append((source.stores[i], start - base, hi - base, at))
            at += hi - start
            start = hi
        i += 1
    return out


def _rows_by_source(src: np.ndarray) -> list[Group]:
    """(source id, its rows in ascending order) for every source present in ``src``."""
    # plain lists: for batch-sized inputs ~3x cheaper than argsort + split (numpy call overhead dominates)
    groups: dict[int, list[int]] = {}
    for row, s in enumerate(src.tolist()):
        groups.setdefault(s, []).append(row)
    return [(s, np.array(rows, dtype=np.int64), None) for s, rows in groups.items()]


def _read_multi_store(
    source: OpenSource, starts: np.ndarray, picked: np.ndarray, buf: np.ndarray, marks: np.ndarray | None
) -> None:
    """Rows of a source made of several stores: rows inside one store are read in a batch per store; a row that
    crosses into the next store (one per store boundary) is read span by span, and the boundary marks a
    document start."""
    width = buf.shape[1]
    per_store: dict[int, tuple[list[int], list[int]]] = {}
    for row, start in zip(picked.tolist(), starts.tolist(), strict=True):
        spans = _spans(source, start, start + width)
        if len(spans) == 1:
            store_index = bisect_right(source.offsets, start) - 1
            lists = per_store.setdefault(store_index, ([], []))
            lists[0].append(row)
            lists[1].append(spans[0][1])
            continue
        for store, lo, hi, at in spans:
            store.read_into(lo, buf[row, at : at + hi - lo])
            if marks is not None:
                rel = store.doc_starts(lo, hi) - lo + at
                if at > 0:
                    rel = np.append(rel, at)
                marks[row, rel[rel < marks.shape[1]]] = True
    for store_index, (rows, local) in per_store.items():
        store = source.stores[store_index]
        rows_a, local_a = np.array(rows, dtype=np.int64), np.array(local, dtype=np.int64)
        store.read_rows(local_a, buf, rows=rows_a)
        if marks is not None:
            store.mark_doc_starts(local_a, marks, rows=rows_a)
