"""The bucket and confirmation stages of `dedup`: group equal keys per hash partition, then confirm candidate pairs.

Partition p holds every record whose key is p modulo the partition count, so a whole bucket (all documents with
one exact hash, or one band key) is in one partition and no task needs all signatures.

Bucket task p (members of a bucket in global document order):
- exact buckets: each member joins the first earlier representative with equal tokens (the hash only proposes;
  the exact path has no false positives): exact edges, ``p<partition>.edges.npy``;
- band buckets: each member and at most `MAX_COMPARE` earlier members form candidate pairs, written to
  ``p<partition>.cand.npy`` sorted by the pair's own partition (a hash of the pair), so every pair, found by any
  band in any partition, is confirmed exactly once, by one task.

Confirm task q reads its slice of every bucket task's candidates, drops repeats, and confirms each pair in document
order against the threshold: the exact Jaccard of the two n-gram sets (re-hashed from the tokens, the sets of the
last `SET_CACHE` documents cached) or the estimate (equal signature entries / num_perm): near edges,
``q<partition>.edges.npy``. Every file is a pure function of the records, so the clusters are too, whatever the
partition count, worker count or completion order; the summaries (``p<n>.json``, ``q<n>.json``, written last)
mark a task done.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from shardstore.curate.boiler import filtered_set
from shardstore.curate.minhash import Confirm, MinHashParams, exact_jaccard
from shardstore.curate.ngramtable import NgramTable
from shardstore.curate.units import BOILERPLATE_NAME, KIND_BAND, KIND_EXACT, load_npy, save_npy, unit_path
from shardstore.errors import FormatError
from shardstore.store.store import Store
from shardstore.util.durable import atomic_write

__all__ = [
    "MAX_COMPARE",
    "BucketSummary",
    "BucketTask",
    "ConfirmSummary",
    "ConfirmTask",
    "confirm_exact_bucket",
    "run_bucket_task",
    "run_confirm_task",
]

MAX_COMPARE = 8
SET_CACHE = 4096


@dataclass(frozen=True, slots=True)
class BucketTask:
    partition: int
    work: str
    params: MinHashParams
    unit_first_gid: tuple[int, ...]  # global id of each unit's first document (units in global order)
    unit_offsets: tuple[tuple[int, int], ...]  # per unit: this partition's record range in its rec file
    partitions: int
    store_paths: tuple[str, ...]
    store_bases: tuple[int, ...]  # global id of each store's document 0


@dataclass(frozen=True, slots=True)
class BucketSummary:
    partition: int
    records: int
    exact_buckets: int
    band_buckets: int
    exact_pairs: int
    exact_hash_collisions: int
    candidates_per_partition: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ConfirmTask:
    partition: int
    work: str
    params: MinHashParams
    unit_first_gid: tuple[int, ...]
    cand_offsets: tuple[tuple[int, int], ...]  # per bucket task: this partition's pair range in its cand file
    store_paths: tuple[str, ...]
    store_bases: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ConfirmSummary:
    partition: int
    compared: int
    rejected: int
    near_pairs: int


class _Docs:
    """Signature rows and token arrays by global document id, opened lazily."""

    def __init__(self, task: BucketTask | ConfirmTask) -> None:
        self.task = task
        self.firsts = np.asarray(task.unit_first_gid, dtype=np.int64)
        self.bases = np.asarray(task.store_bases, dtype=np.int64)
        self.sigs: dict[int, np.ndarray] = {}
        self.stores: dict[int, Store] = {}
        self.sets: dict[int, np.ndarray] = {}
        self.boiler = NgramTable(load_npy(os.path.join(task.work, BOILERPLATE_NAME)))

    def ngram_set(self, gid: int) -> np.ndarray:
        got = self.sets.get(gid)
        if got is None:
            if len(self.sets) >= SET_CACHE:
                self.sets.clear()
            got = self.sets[gid] = filtered_set(self.tokens(gid), self.task.params, self.boiler)
        return got

    def sig_rows(self, gids: np.ndarray) -> np.ndarray:
        units = np.searchsorted(self.firsts, gids.astype(np.int64), "right") - 1
        rows = np.empty((gids.size, self.task.params.num_perm), dtype=np.uint32)
        for i, (u, g) in enumerate(zip(units.tolist(), gids.tolist(), strict=True)):
            sig = self.sigs.get(u)
            if sig is None:
                sig = self.sigs[u] = load_npy(unit_path(self.task.work, u, "sig.npy"), mmap=True)
            rows[i] = sig[g - int(self.firsts[u])]
        return rows

    def tokens(self, gid: int) -> np.ndarray:
        s = int(np.searchsorted(self.bases, gid, "right")) - 1
        store = self.stores.get(s)
        if store is None:
            store = self.stores[s] = Store.open(self.task.store_paths[s])
        return store.doc(gid - int(self.bases[s]))

    def close(self) -> None:
        for store in self.stores.values():
            store.close()


def _records(task: BucketTask) -> np.ndarray:
    parts = []
    for u, (lo, hi) in enumerate(task.unit_offsets):
        if hi > lo:
            rec = load_npy(unit_path(task.work, u, "rec.npy"), mmap=True)
            parts.append(np.asarray(rec[lo:hi]))
    return np.concatenate(parts) if parts else np.empty((0, 3), dtype=np.uint64)


def _summary(path: str, cls: type[Any]) -> Any:
    try:
        with open(path, "rb") as f:
            d = json.loads(f.read())
        for k, v in d.items():
            if isinstance(v, list):
                d[k] = tuple(v)
        return cls(**d)
    except (OSError, ValueError, TypeError) as exc:
        raise FormatError(f"{path}: unreadable task summary ({exc}); delete the work folder") from exc


def pair_partition(pairs: np.ndarray, partitions: int) -> np.ndarray:
    """The confirm partition of each (a, b) pair: a hash of both ids (pure: any task computes the same)."""
    h = pairs[:, 0] * np.uint64(0x9E3779B97F4A7C15) ^ pairs[:, 1] * np.uint64(0xC2B2AE3D27D4EB4F)
    return ((h >> np.uint64(29)) % np.uint64(partitions)).astype(np.int64)


def band_pairs(members: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The candidate pairs of the band buckets ``members[starts[b]:ends[b]]`` (in document order): each member
    with each of the first `MAX_COMPARE` members before it, uint64 [pairs, 2] (earlier, later), all buckets at once."""
    sizes = ends - starts
    first = np.repeat(starts, sizes)  # each record's bucket start
    idx = first + np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    cnt = np.minimum(idx - first, MAX_COMPARE)  # earlier members it pairs with
    later = np.repeat(idx, cnt)
    earlier = np.repeat(first, cnt) + np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    return np.stack([members[earlier], members[later]], 1).reshape(-1, 2)


def unique_pairs(pairs: np.ndarray) -> np.ndarray:
    """``np.unique(pairs, axis=0)``: the distinct rows, sorted by first then second column (one lexsort)."""
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    keep = np.ones(pairs.shape[0], dtype=bool)
    keep[1:] = (pairs[1:, 0] != pairs[:-1, 0]) | (pairs[1:, 1] != pairs[:-1, 1])
    return pairs[keep]


def run_bucket_task(task: BucketTask) -> BucketSummary:
    done = os.path.join(task.work, f"p{task.partition:04d}.json")
    if os.path.exists(done):
        return _summary(done, BucketSummary)  # type: ignore[no-any-return]
    rec = _records(task)
    order = np.lexsort((rec[:, 2], rec[:, 0], rec[:, 1]))  # by kind, key, doc
    rec = rec[order]
    n = rec.shape[0]
    new = np.ones(n, dtype=bool)
    if n:
        new[1:] = (rec[1:, 0] != rec[:-1, 0]) | (rec[1:, 1] != rec[:-1, 1])
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], n)
    multi = (ends - starts) > 1
    kinds = rec[starts, 1]
    exact_b, band_b = multi & (kinds == KIND_EXACT), multi & (kinds == KIND_BAND)
    docs = _Docs(task)
    edges: list[tuple[int, int, int]] = []
    stats = {
        "exact_buckets": int(exact_b.sum()),
        "band_buckets": int(band_b.sum()),
        "exact_hash_collisions": 0,
    }
    try:
        for s, e in zip(starts[exact_b].tolist(), ends[exact_b].tolist(), strict=True):
            confirm_exact_bucket(rec[s:e, 2].tolist(), docs, edges, stats)
    finally:
        docs.close()
    pairs = unique_pairs(band_pairs(rec[:, 2], starts[band_b], ends[band_b]))
    part = pair_partition(pairs, task.partitions)
    order = np.argsort(part, kind="stable")
    save_npy(os.path.join(task.work, f"p{task.partition:04d}.cand.npy"), pairs[order])
    arr = np.asarray(edges, dtype=np.uint64).reshape(-1, 3)
    save_npy(os.path.join(task.work, f"p{task.partition:04d}.edges.npy"), arr)
    counts = np.bincount(part, minlength=task.partitions)
    summary = BucketSummary(
        partition=task.partition,
        records=n,
        exact_pairs=int(arr.shape[0]),
        candidates_per_partition=tuple(int(c) for c in counts),
        **stats,
    )
    atomic_write(done, json.dumps(asdict(summary), sort_keys=True).encode())
    return summary


def run_confirm_task(task: ConfirmTask) -> ConfirmSummary:
    done = os.path.join(task.work, f"q{task.partition:04d}.json")
    if os.path.exists(done):
        return _summary(done, ConfirmSummary)  # type: ignore[no-any-return]
    parts = []
    for p, (lo, hi) in enumerate(task.cand_offsets):
        if hi > lo:
            parts.append(
                np.asarray(load_npy(os.path.join(task.work, f"p{p:04d}.cand.npy"), mmap=True)[lo:hi])
            )
    pairs = unique_pairs(np.concatenate(parts)) if parts else np.empty((0, 2), np.uint64)
    docs = _Docs(task)
    threshold = task.params.threshold
    exact = task.params.confirm is Confirm.EXACT
    keep = np.zeros(pairs.shape[0], dtype=bool)
    try:
        for k, (a, b) in enumerate(pairs.tolist()):
            if exact:
                keep[k] = exact_jaccard(docs.ngram_set(a), docs.ngram_set(b)) >= threshold
            else:
                rows = docs.sig_rows(np.asarray([a, b], dtype=np.uint64))
                keep[k] = np.count_nonzero(rows[0] == rows[1]) >= threshold * rows.shape[1]
    finally:
        docs.close()
    near = pairs[keep]
    arr = np.concatenate([near, np.full((near.shape[0], 1), KIND_BAND, np.uint64)], 1)
    save_npy(os.path.join(task.work, f"q{task.partition:04d}.edges.npy"), arr)
    summary = ConfirmSummary(
        partition=task.partition,
        compared=int(pairs.shape[0]),
        rejected=int((~keep).sum()),
        near_pairs=int(near.shape[0]),
    )
    atomic_write(done, json.dumps(asdict(summary), sort_keys=True).encode())
    return summary


def confirm_exact_bucket(
    members: list[int], docs: _Docs, edges: list[tuple[int, int, int]], stats: dict[str, int]
) -> None:
    """Join each member to the first earlier representative with equal tokens; a new representative otherwise."""
    reps: list[tuple[int, np.ndarray]] = []
    for m in members:
        toks = docs.tokens(m)
        for r, rt in reps:
            if rt.shape == toks.shape and np.array_equal(rt, toks):
                edges.append((r, m, KIND_EXACT))
                break
        else:
            if reps:
                stats["exact_hash_collisions"] += 1
            reps.append((m, toks))
