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

from shardstore.curate.boiler import doc_ngrams
from shardstore.curate.minhash import MinHashParams
from shardstore.curate.units import doc_slice, load_npy, save_npy, unit_path
from shardstore.errors import FormatError
from shardstore.store.store import Store
from shardstore.util.durable import atomic_write

__all__ = ["DfMergeTask", "DfTask", "boiler_path", "run_df_merge", "run_df_task"]


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
        doc, h = doc_ngrams(tokens, offs, task.params)
    order = np.argsort(h, kind="stable")  # by hash; documents stay ascending within a hash (one sort)
    h, doc = h[order], doc[order]
    first = np.ones(h.size, dtype=bool)
    first[1:] = (h[1:] != h[:-1]) | (doc[1:] != doc[:-1])  # one entry per (document, n-gram)
    h = h[first]
    starts = np.flatnonzero(np.concatenate([[True], h[1:] != h[:-1]])) if h.size else np.empty(0, np.int64)
    hashes = h[starts]
    counts = np.diff(np.append(starts, h.size))
    part = hashes % np.uint64(task.partitions)
    order = np.lexsort((hashes, part))
    rows = np.stack([hashes[order], counts[order].astype(np.uint64)], 1).reshape(-1, 2)
    per = np.bincount(part.astype(np.int64), minlength=task.partitions)
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
    hashes, inv = np.unique(rows[:, 0], return_inverse=True)
    total = np.bincount(inv.reshape(-1), weights=rows[:, 1].astype(np.float64), minlength=hashes.size)
    boiler = hashes[total > task.limit]
    save_npy(out, boiler)
    return int(boiler.size)
