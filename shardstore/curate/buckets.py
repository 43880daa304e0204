"""The bucket stage of `dedup`: one task per hash partition groups equal keys and confirms candidate pairs.

Partition p holds every record whose key is p modulo the partition count, so a whole bucket (all documents with
one exact hash, or one band key) is in one partition and no task needs all signatures: it reads its slice of
each unit's records and, for confirmation only, the signature rows of the documents in its buckets (memory-mapped).

In a bucket (members in global document order) each member after the first is compared with the earlier members,
in order, at most `MAX_COMPARE` of them, and joined to the first that confirms:
- exact buckets: the token arrays must be equal (the hash only proposes; the exact path has no false positives);
- band buckets: the Jaccard must reach the threshold: by default the exact one of the two n-gram sets (re-hashed
  from the tokens, cached for the last `SET_CACHE` documents), or the estimate (equal signature entries / num_perm).
Pairs already decided in this partition are not compared again. The edges are a pure function of the records,
whatever the partition count, worker count or order: the clusters (`clusters.py`) are too.

Output: ``p<partition>.edges.npy`` uint64 [edges, 3] = (earlier doc, later doc, kind) and ``p<partition>.json``
(the counts, written last: the partition is done).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

import numpy as np

from shardstore.curate.minhash import Confirm, MinHashParams, exact_jaccard, ngram_set
from shardstore.curate.units import KIND_BAND, KIND_EXACT, load_npy, save_npy, unit_path
from shardstore.errors import FormatError
from shardstore.store.store import Store
from shardstore.util.durable import atomic_write

__all__ = ["MAX_COMPARE", "BucketSummary", "BucketTask", "confirm_exact_bucket", "run_bucket_task"]

MAX_COMPARE = 8
SET_CACHE = 4096


@dataclass(frozen=True, slots=True)
class BucketTask:
    partition: int
    work: str
    params: MinHashParams
    unit_first_gid: tuple[int, ...]  # global id of each unit's first document (units in global order)
    unit_offsets: tuple[
        tuple[int, int], ...
    ]  # per unit: this partition's record range [lo, hi) in its rec file
    store_paths: tuple[str, ...]
    store_bases: tuple[int, ...]  # global id of each store's document 0


@dataclass(frozen=True, slots=True)
class BucketSummary:
    partition: int
    records: int
    exact_buckets: int
    band_buckets: int
    exact_pairs: int
    near_pairs: int
    compared: int
    rejected: int
    exact_hash_collisions: int


class _Docs:
    """Signature rows and token arrays by global document id, opened lazily."""

    def __init__(self, task: BucketTask) -> None:
        self.task = task
        self.firsts = np.asarray(task.unit_first_gid, dtype=np.int64)
        self.bases = np.asarray(task.store_bases, dtype=np.int64)
        self.sigs: dict[int, np.ndarray] = {}
        self.stores: dict[int, Store] = {}
        self.sets: dict[int, np.ndarray] = {}

    def ngram_set(self, gid: int) -> np.ndarray:
        got = self.sets.get(gid)
        if got is None:
            if len(self.sets) >= SET_CACHE:
                self.sets.clear()
            got = self.sets[gid] = ngram_set(self.tokens(gid), self.task.params)
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


def run_bucket_task(task: BucketTask) -> BucketSummary:
    done = os.path.join(task.work, f"p{task.partition:04d}.json")
    if os.path.exists(done):
        try:
            with open(done, "rb") as f:
                return BucketSummary(**json.loads(f.read()))
        except (OSError, ValueError, TypeError) as exc:
            raise FormatError(
                f"{done}: unreadable partition summary ({exc}); delete the work folder"
            ) from exc
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
    docs = _Docs(task)
    edges: list[tuple[int, int, int]] = []
    decided: dict[tuple[int, int], bool] = {}
    stats = {"exact_buckets": 0, "band_buckets": 0, "compared": 0, "rejected": 0, "exact_hash_collisions": 0}
    threshold = task.params.threshold
    try:
        for s, e in zip(starts[multi].tolist(), ends[multi].tolist(), strict=True):
            members = rec[s:e, 2]
            if int(rec[s, 1]) == KIND_EXACT:
                stats["exact_buckets"] += 1
                confirm_exact_bucket(members.tolist(), docs, edges, stats)
                continue
            stats["band_buckets"] += 1
            exact = task.params.confirm is Confirm.EXACT
            rows = None if exact else docs.sig_rows(members)
            mem = members.tolist()
            for j in range(1, len(mem)):
                for i in range(min(j, MAX_COMPARE)):
                    pair = (mem[i], mem[j])
                    ok = decided.get(pair)
                    if ok is None:
                        stats["compared"] += 1
                        if rows is None:
                            ok = exact_jaccard(docs.ngram_set(mem[i]), docs.ngram_set(mem[j])) >= threshold
                        else:
                            ok = bool(np.count_nonzero(rows[i] == rows[j]) >= threshold * rows.shape[1])
                        decided[pair] = ok
                        stats["rejected"] += not ok
                    if ok:
                        edges.append((mem[i], mem[j], KIND_BAND))
                        break
    finally:
        docs.close()
    arr = np.asarray(edges, dtype=np.uint64).reshape(-1, 3)
    arr = np.unique(arr, axis=0) if arr.size else arr
    save_npy(os.path.join(task.work, f"p{task.partition:04d}.edges.npy"), arr)
    summary = BucketSummary(
        partition=task.partition,
        records=n,
        exact_pairs=int((arr[:, 2] == KIND_EXACT).sum()),
        near_pairs=int((arr[:, 2] == KIND_BAND).sum()),
        **stats,
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
