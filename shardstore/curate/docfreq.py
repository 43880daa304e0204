"""The document-frequency stage of `dedup`: n-grams shared by too many documents (boilerplate) are found first.

An n-gram found in more than ``max(boilerplate_min_docs, boilerplate_fraction x documents)`` documents (defaults
100 and 0.001) is shared page furniture (a licence header, a footer, a navigation bar): it is left out of the
MinHash signatures and of the exact-Jaccard sets, and counted, so that short documents which are mostly one shared
header are not near duplicates of each other. A document all of whose n-grams are boilerplate keeps them all (its
copies are then still found). The rule is the decontamination one with a higher floor: a document copied into
more than the limit of documents would otherwise lose its n-grams to it.

Two partitioned passes, each a set of independent tasks (resume: a finished task's files exist):

    d<unit>.df.npy     uint64 [k, 2]  (n-gram hash, documents of the unit holding it), sorted by partition
                                      (hash mod partitions), then hash; d<unit>.df.json: counts per partition
    b<part>.boiler.npy uint64 [m]     the hashes of the partition whose summed count is above the limit, sorted

The driver concatenates the partitions in order into ``boilerplate.npy`` (sorted: a pure function of the stores
and the parameters, whatever the worker count).
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

__all__ = ["DfMergeTask", "DfTask", "boiler_path", "df_rows", "run_df_merge", "run_df_task"]


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


def df_rows(
    tokens: np.ndarray, offs: np.ndarray, params: MinHashParams, partitions: int
) -> tuple[np.ndarray, np.ndarray]:
    """The df rows of a document slice, uint64 [k, 2] (hash, documents holding it) sorted by (partition, hash),
    and the rows per partition (int64): one native pass (a hash map counting each n-gram once per document)."""
    toks, width = token_width(tokens)
    raw, per = _minhash.df_count(
        toks, width, np.ascontiguousarray(offs, dtype=np.uint64), params.ngram, params.distinct, partitions
    )
    rows = np.frombuffer(raw, dtype=np.uint64).reshape(-1, 2)
    return rows, np.frombuffer(per, dtype=np.uint64).astype(np.int64)


def run_df_task(task: DfTask) -> tuple[int, ...]:
    """Count, for each n-gram of the unit, the documents holding it; returns the rows per partition."""
    done = unit_path(task.work, task.index, "df.json")
    if os.path.exists(done):
        try:
            with open(done, "rb") as f:
                return tuple(int(c) for c in json.loads(f.read()))
        except (OSError, ValueError, TypeError) as exc:
            raise FormatError(f"{done}: unreadable ({exc}); delete the work folder to start over") from exc
    with Store.open(task.store_path) as store:
        tokens, offs = doc_slice(store, task.shard, task.doc_lo, task.doc_hi)
    rows, per = df_rows(tokens, offs, task.params, task.partitions)
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
