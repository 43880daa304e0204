"""The document-frequency stage of `dedup`: n-grams shared by too many documents (boilerplate) are found first.

An n-gram found in more than ``max(boilerplate_min_docs, boilerplate_fraction x documents)`` documents (defaults
100 and 0.001) is shared page furniture (a licence header, a footer, a navigation bar): it is left out of the
MinHash signatures and of the exact-Jaccard sets, and counted, so that short documents which are mostly one shared
header are not near duplicates of each other. A document all of whose n-grams are boilerplate keeps them all (its
copies are then still found). The rule is the decontamination one with a higher floor: a document copied into
more than the limit of documents would otherwise lose its n-grams to it.

Exact, in three passes of independent tasks (resume: a finished task's file exists; each is written atomically):

    u<unit>.sketch.npy uint8 [2^bits]  per unit, n-gram positions per hash bucket (top `bits` of the hash),
                                       saturating at 255 (native ``df_sketch``: one multiply-add and one
                                       increment per token, in a cache-sized array)
    hot.npy            uint8 [2^bits/8] bitmap of the buckets whose total over all units is above the limit (or
                                       saturated): the only buckets that can hold boilerplate, since a bucket's
                                       positions bound the document frequency of each of its n-grams from above
    u<unit>.df.npy     uint64 [k, 2]   (n-gram hash, documents of the unit holding it) of the n-grams of hot
                                       buckets only, sorted by partition (hash mod partitions), then hash;
                                       u<unit>.df.json: rows per partition
    b<part>.boiler.npy uint64 [m]      the hashes of the partition whose summed count is above the limit, sorted

The sketch has about ``8 x tokens / limit`` buckets (a bucket of ordinary n-grams then holds ~limit/8 positions,
far from the limit), so the exact counts cover few n-grams beyond the boilerplate itself: on the issue-21 corpus
the count files are ~1,000 rows instead of 3.3 M (52 MB). The driver concatenates the partitions in order into
``boilerplate.npy``: a pure function of the stores and the parameters, whatever the worker count or sketch size.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from shardstore._native import _minhash
from shardstore.curate.minhash import MinHashParams, token_width
from shardstore.curate.units import doc_slice, load_npy, save_npy, unit_path
from shardstore.errors import FormatError
from shardstore.store.store import Store
from shardstore.util.durable import atomic_write

__all__ = [
    "HOT_NAME",
    "DfMergeTask",
    "DfTask",
    "SketchTask",
    "boiler_path",
    "df_rows",
    "hot_buckets",
    "run_df_merge",
    "run_df_task",
    "run_sketch_task",
    "sketch_bits",
]

HOT_NAME = "hot.npy"
_MIN_BITS, _MAX_BITS = 10, 32
_CHUNK = 1 << 20  # buckets summed at a time by `hot_buckets`


@dataclass(frozen=True, slots=True)
class SketchTask:
    index: int
    work: str
    store_path: str
    shard: int
    doc_lo: int
    doc_hi: int
    params: MinHashParams
    bits: int


@dataclass(frozen=True, slots=True)
class DfTask:
    index: int
    work: str
    store_path: str
    shard: int
    doc_lo: int
    doc_hi: int
    params: MinHashParams
    partitions: int


@dataclass(frozen=True, slots=True)
class DfMergeTask:
    partition: int
    work: str
    slices: tuple[tuple[int, int], ...]  # per unit: rows [lo, hi) of its df file in this partition
    limit: float


def sketch_bits(total_tokens: int, limit: float, memory_limit: int) -> int:
    """log2 of the sketch's buckets: about ``8 x tokens / limit`` buckets, within what `memory_limit` allows the
    driver's sum (4 bytes per bucket, per chunk) and a unit's sketch (1 byte per bucket): a plan option only (the
    boilerplate set does not depend on it)."""
    want = max(1, int(8 * total_tokens / max(1.0, limit)))
    bits = max(_MIN_BITS, (want - 1).bit_length())
    cap = max(_MIN_BITS, (memory_limit // 8).bit_length() - 1)
    return min(bits, cap, _MAX_BITS)


def sketch_path(work: str, index: int) -> str:
    return unit_path(work, index, "sketch.npy")


def run_sketch_task(task: SketchTask) -> int:
    """Write the unit's bucket sketch (see the module docstring); returns the unit index."""
    out = sketch_path(task.work, task.index)
    if os.path.exists(out):
        return task.index
    with Store.open(task.store_path) as store:
        tokens, offs = doc_slice(store, task.shard, task.doc_lo, task.doc_hi)
    toks, width = token_width(tokens)
    counts = np.zeros(1 << task.bits, dtype=np.uint8)
    _minhash.df_sketch(toks, width, np.ascontiguousarray(offs, dtype=np.uint64), task.params.ngram, counts)
    save_npy(out, counts)
    return task.index


def hot_buckets(work: str, units: int, bits: int, limit: float) -> np.ndarray:
    """The packed bitmap (little bit order) of buckets whose positions over all units exceed `limit`, or that
    saturated in a unit (their total is unknown: hot, to stay exact); summed `_CHUNK` buckets at a time."""
    size = 1 << bits
    sketches = [load_npy(sketch_path(work, u), mmap=True) for u in range(units)]
    for u, s in enumerate(sketches):
        if s.shape != (size,) or s.dtype != np.uint8:
            raise FormatError(
                f"{sketch_path(work, u)}: sketch of {s.shape} {s.dtype}, expected ({size},) uint8"
            )
    hot = np.zeros(size, dtype=bool)
    for lo in range(0, size, _CHUNK):
        hi = min(size, lo + _CHUNK)
        total = np.zeros(hi - lo, dtype=np.uint64)
        full = np.zeros(hi - lo, dtype=bool)
        for s in sketches:
            part = s[lo:hi]
            total += part
            full |= part == 255
        hot[lo:hi] = (total > limit) | full
    return np.packbits(hot, bitorder="little")


def df_rows(
    tokens: np.ndarray,
    offs: np.ndarray,
    params: MinHashParams,
    partitions: int,
    hot: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The df rows of a document slice, uint64 [k, 2] (hash, documents holding it) sorted by (partition, hash),
    and the rows per partition (int64), of the n-grams in `hot` buckets (packed bitmap; None: every n-gram): one
    native pass (a hash set counting each n-gram once per document)."""
    toks, width = token_width(tokens)
    bitmap = np.full(1, 0xFF, np.uint8) if hot is None else np.ascontiguousarray(hot, dtype=np.uint8)
    raw, per = _minhash.df_count(
        toks,
        width,
        np.ascontiguousarray(offs, dtype=np.uint64),
        params.ngram,
        params.distinct,
        partitions,
        bitmap,
    )
    rows = np.frombuffer(raw, dtype=np.uint64).reshape(-1, 2)
    return rows, np.frombuffer(per, dtype=np.uint64).astype(np.int64)


def run_df_task(task: DfTask) -> tuple[int, ...]:
    """Count, for each n-gram of a hot bucket of the unit, the documents holding it; returns rows per partition."""
    done = unit_path(task.work, task.index, "df.json")
    if os.path.exists(done):
        try:
            with open(done, "rb") as f:
                return tuple(int(c) for c in json.loads(f.read()))
        except (OSError, ValueError, TypeError) as exc:
            raise FormatError(f"{done}: unreadable ({exc}); delete the work folder to start over") from exc
    hot = load_npy(os.path.join(task.work, HOT_NAME))
    with Store.open(task.store_path) as store:
        tokens, offs = doc_slice(store, task.shard, task.doc_lo, task.doc_hi)
        rows, per = df_rows(tokens, offs, task.params, task.partitions, hot)
    save_npy(unit_path(task.work, task.index, "df.npy"), rows)
    atomic_write(done, json.dumps([int(c) for c in per]).encode())
    return tuple(int(c) for c in per)


def boiler_path(work: str, partition: int) -> str:
    return os.path.join(work, f"b{partition:04d}.boiler.npy")


def run_df_merge(task: DfMergeTask) -> int:
    """Sum one partition's counts over all units; write its boilerplate hashes; returns how many."""
    out = boiler_path(task.work, task.partition)
    if os.path.exists(out):
        return int(load_npy(out, mmap=True).shape[0])
    parts = [
        np.asarray(load_npy(unit_path(task.work, u, "df.npy"), mmap=True)[lo:hi])
        for u, (lo, hi) in enumerate(task.slices)
        if hi > lo
    ]
    rows = np.concatenate(parts) if parts else np.empty((0, 2), np.uint64)
    # each unit's slice is sorted by hash: a stable sort (timsort) merges the runs instead of sorting from scratch
    order = np.argsort(rows[:, 0], kind="stable")
    h, c = rows[order, 0], rows[order, 1]
    starts = np.flatnonzero(np.concatenate([[True], h[1:] != h[:-1]])) if h.size else np.empty(0, np.int64)
    total = np.add.reduceat(c, starts) if h.size else np.empty(0, np.uint64)
    boiler = h[starts][total > task.limit]
    save_npy(out, boiler)
    return int(boiler.size)
