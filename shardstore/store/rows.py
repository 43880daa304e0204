"""Batched reads over a Store: many fixed-length rows in one call, and the document starts inside them.

This is the loader's hot path (`Store.read_rows` / `Store.mark_doc_starts` delegate here); `Store.read_into` is the
one-row form. Design and measured trade-offs (B=32 rows of 2049 uint16 tokens, benchmarks/RESULTS.md "Loader hot
path"):

- `read_rows` validates the starts and the output once per batch, locates every row's segment (a mapped shard,
  or a run of tiny shards: `runs`) with one np.searchsorted, then one tight loop does, per row, a slot lookup,
  the first-touch verification check and one numpy copy (~0.8 us of Python per row, against ~2.6 us for a
  `read_into` call). Rows crossing a shard boundary (at most one per boundary) go
  through `read_into`. A vectorized gather (np.searchsorted + fancy indexing of an overlapping strided view of each
  shard) was measured too: ~8 us per distinct shard in the batch, so it loses once a batch touches a few shards.
- Verification is unchanged: a row is copied only after `check_blocks` hashed every block it touches (or the shard
  is trusted: all its blocks verified in this process), so no unverified byte reaches `out`.
- `mark_doc_starts` groups rows by shard and answers all of a shard's rows with one np.searchsorted over its
  document offsets (uint64 queries: a Python int query would make numpy cast the whole offsets array), then sets
  every mark with one fancy assignment. Cost: ~4 us per distinct shard plus ~0.5 us per row, instead of two
  array-casting searches per row.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from shardstore.errors import ConfigError

if TYPE_CHECKING:
    from shardstore.store.mapped import MappedShard


class Segment(Protocol):
    """What rows are copied from: a mapped shard (`MappedShard`) or a run of tiny shards (`runs.ShardRun`)."""

    used: bool

    @property
    def num_tokens(self) -> int: ...
    @property
    def tokens(self) -> np.ndarray: ...
    @property
    def offsets(self) -> np.ndarray: ...
    @property
    def trusted(self) -> bool: ...
    @property
    def block_shift(self) -> int: ...
    @property
    def touched(self) -> bytes | bytearray: ...
    def check_blocks(self, lo: int, hi: int) -> None: ...


class RowStore(Protocol):
    """What the row reads need of a store (`Store` implements it; see its "row and verify interface")."""

    @property
    def num_tokens(self) -> int: ...
    @property
    def shard_token_starts(self) -> list[int]: ...
    def row_segments(
        self,
    ) -> tuple[list[int], np.ndarray, Sequence[Segment | None], Callable[[int], Segment]]: ...
    @property
    def mapped_slots(self) -> list[MappedShard | None]: ...
    def mapped_shard(self, index: int) -> MappedShard: ...
    def check_out_dtype(self, dtype: np.dtype) -> None: ...
    def read_into(self, start: int, out: np.ndarray) -> np.ndarray: ...
    def doc_starts(self, start: int, stop: int) -> np.ndarray: ...


__all__ = ["mark_doc_starts", "read_rows"]


def _row_indices(starts: np.ndarray, rows: np.ndarray | None, num_rows: int, length: int, store: RowStore):
    """(starts as a list, rows as a list) after checking both; IndexError/ConfigError name the offending value."""
    starts_l = np.asarray(starts)
    if starts_l.ndim != 1 or (starts_l.size and starts_l.dtype.kind not in "iu"):
        raise ConfigError(f"starts must be a 1-D integer array, got {starts_l.dtype} ndim={starts_l.ndim}")
    first = starts_l.tolist()
    if first and (min(first) < 0 or max(first) + length > store.num_tokens):
        bad = min(first) if min(first) < 0 else max(first)
        raise IndexError(f"tokens [{bad}, {bad + length}) are outside the store's [0, {store.num_tokens})")
    if rows is None:
        if len(first) > num_rows:
            raise ConfigError(f"{len(first)} starts do not fit in an output of {num_rows} rows")
        return first, range(len(first))
    rows_l = np.asarray(rows).tolist()
    if len(rows_l) != len(first):
        raise ConfigError(f"rows has {len(rows_l)} entries for {len(first)} starts; pass one row per start")
    if rows_l and (min(rows_l) < 0 or max(rows_l) >= num_rows):
        raise IndexError(f"rows {min(rows_l)}..{max(rows_l)} are outside an output of {num_rows} rows")
    return first, rows_l


def read_rows(
    store: RowStore, starts: np.ndarray, out: np.ndarray, *, rows: np.ndarray | None = None
) -> np.ndarray:
    """Fill ``out[rows[i]]`` (``out[i]`` without `rows`) with tokens ``[starts[i], starts[i] + out.shape[1])``."""
    if not isinstance(out, np.ndarray) or out.ndim != 2:
        raise ConfigError(
            f"read_rows needs a 2-D integer output array [rows, length], got {type(out).__name__} "
            f"ndim={getattr(out, 'ndim', '?')}"
        )
    store.check_out_dtype(out.dtype)
    length = out.shape[1]
    starts_l, rows_l = _row_indices(starts, rows, out.shape[0], length, store)
    tok_starts, seg_starts, slots, get = store.row_segments()
    if len(starts_l) >= 8:
        # One searchsorted for the batch (values checked above, so int64 is exact): a Python bisect per row costs
        # ~30 ns per level, 0.2 us per row over a few hundred segments; below ~8 rows the bisects are cheaper.
        query = np.asarray(starts).astype(np.int64, copy=False)
        found = np.searchsorted(seg_starts, query, "right").tolist()
    else:
        found = [bisect_right(tok_starts, a) for a in starts_l]
    for r, a, s1 in zip(rows_l, starts_l, found, strict=True):
        s = s1 - 1
        shard = slots[s]
        if shard is None:
            shard = get(s)
        else:
            shard.used = True
        local = a - tok_starts[s]
        stop = local + length
        if stop > shard.num_tokens:  # crosses into the next shard
            store.read_into(a, out[r])
            continue
        if not shard.trusted:
            # inline bitmap test for the usual row (inside two blocks, both verified); else hash what is missing
            shift, touched = shard.block_shift, shard.touched
            first, last = local >> shift, (stop - 1) >> shift
            if last - first > 1 or not (touched[first] and touched[last]):
                shard.check_blocks(local, stop)
        out[r] = shard.tokens[local:stop]
    return out


def mark_doc_starts(
    store: RowStore, starts: np.ndarray, marks: np.ndarray, *, rows: np.ndarray | None = None
) -> np.ndarray:
    """Set ``marks[rows[i], p]`` for every ``p < marks.shape[1]`` where a (non-empty) document begins at global
    token ``starts[i] + p``; other marks are left as they are. Returns `marks`."""
    if not isinstance(marks, np.ndarray) or marks.ndim != 2 or marks.dtype != np.bool_:
        raise ConfigError(
            f"marks must be a 2-D bool array, got {getattr(marks, 'dtype', type(marks).__name__)}"
        )
    length = marks.shape[1]
    starts_l, rows_l = _row_indices(starts, rows, marks.shape[0], length, store)
    if not starts_l or length == 0:
        return marks
    # the segments: shards, or runs of tiny shards (their offsets mean the same)
    tok_starts, _, _, get = store.row_segments()
    groups: dict[int, list[int]] = {}
    for i, a in enumerate(starts_l):
        groups.setdefault(bisect_right(tok_starts, a) - 1, []).append(i)
    parts: list[np.ndarray] = []
    part_rows: list[int] = []
    part_base: list[int] = []
    for s, members in groups.items():
        shard = get(s)
        base, n = tok_starts[s], shard.num_tokens
        locals_ = [starts_l[i] - base for i in members]
        ends = [a + length if a + length < n else n for a in locals_]
        # offsets[:-1] are document starts (duplicates where documents are empty); a position below num_tokens
        # that appears there begins a non-empty document.
        found = np.searchsorted(shard.offsets, np.array(locals_ + ends, dtype=np.uint64), "left").tolist()
        k = len(members)
        offs = shard.offsets
        for j, i in enumerate(members):
            lo, hi = found[j], found[j + k]
            if hi > lo:
                parts.append(offs[lo:hi])
                part_rows.append(rows_l[i])
                part_base.append(locals_[j])
            if locals_[j] + length > n:  # the rest of the row lies in later segments: rare, one per boundary
                _mark_tail(get, s + 1, n - locals_[j], length, marks[rows_l[i]])
    if parts:
        sizes = [p.size for p in parts]
        pos = np.concatenate(parts).astype(np.int64) - np.repeat(np.array(part_base, dtype=np.int64), sizes)
        marks[np.repeat(np.array(part_rows, dtype=np.int64), sizes), pos] = True
    return marks


def _mark_tail(
    get: Callable[[int], Segment], s: int, covered: int, length: int, row_marks: np.ndarray
) -> None:
    """Marks of a row's positions [covered, length), which lie in segments s, s + 1, ... from their start."""
    while covered < length:
        seg = get(s)
        take = min(length - covered, seg.num_tokens)
        offs = seg.offsets
        hi = int(np.searchsorted(offs, np.uint64(take), "left"))  # document starts below `take` (see above)
        row_marks[offs[:hi].astype(np.int64) + covered] = True
        covered += take
        s += 1
