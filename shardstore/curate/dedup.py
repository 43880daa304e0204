"""`dedup`: exact and near-duplicate removal across stores, written as one document mask per store.

Stages (each a set of independent tasks on the local pool or Ray, each task writing its files atomically):

1. signatures (`units.py`): per unit of a shard, MinHash signatures over token n-grams, exact hashes, and the LSH
   records, hash-partitioned;
2. buckets (`buckets.py`): per partition, group equal keys; exact hashes are confirmed by token equality, band
   buckets give candidate pairs, re-partitioned by a hash of the pair; then per partition, each distinct pair is
   confirmed once (exact Jaccard of the n-gram sets, or the signature estimate, >= threshold), writing edges;
3. clusters (`clusters.py`): union-find over the edge files in this process, chunk by chunk; keep the first document of each cluster
   in store order, exclude the others with their reason; one mask per store into MASKDIR
   (``<store fingerprint>.mask``), and ``dedup-report.json`` beside them.

Determinism: units, partitions and the edges of a partition are pure functions of the stores and the parameters,
so the masks are byte-identical whatever the worker count, executor, partition count or completion order.
Memory: `memory_limit` bounds what one task holds. Signatures always go to disk (the work folder) and are read
back memory-mapped; the number of partitions is chosen so one partition's records (24 bytes per exact hash and per
band, sorted once) fit in a quarter of the limit, and units are cut so one unit's signatures do too. The
driver's union-find reads the edges in chunks of about ``memory_limit / 8`` and spills its labels to the work
folder when 24 bytes per duplicate document exceed a quarter of the limit.
Resume: a unit or partition whose summary file exists is done; after ``kill -9`` the same command continues and
writes the same masks. The work folder (``MASKDIR/.dedup-work`` by default) is removed on success.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shardstore.curate.buckets import (
    BucketSummary,
    BucketTask,
    ConfirmSummary,
    ConfirmTask,
    run_bucket_task,
    run_confirm_task,
)
from shardstore.curate.clusters import cluster_files
from shardstore.curate.docfreq import (
    HOT_NAME,
    DfMergeTask,
    DfTask,
    SketchTask,
    boiler_path,
    hot_buckets,
    run_df_merge,
    run_df_task,
    run_sketch_task,
    sketch_bits,
)
from shardstore.curate.executors import Executor, TaskRunner
from shardstore.curate.maskdir import check_out_dir, prune_stale_masks
from shardstore.curate.minhash import MinHashParams, exact_jaccard, ngram_set
from shardstore.curate.origins import describe_doc, per_source
from shardstore.curate.stores import StoreSet
from shardstore.curate.units import (
    BOILERPLATE_NAME,
    SigSummary,
    SigTask,
    load_npy,
    plan_units,
    run_sig_task,
    save_npy,
    unit_path,
)
from shardstore.errors import BuildError, ConfigError
from shardstore.store.mask import Mask, mask_file_name, write_mask
from shardstore.util.cores import usable_cores
from shardstore.util.durable import atomic_write

__all__ = ["DEFAULT_MEMORY_LIMIT", "DedupReport", "dedup"]

DEFAULT_MEMORY_LIMIT = 2 << 30
REPORT_NAME = "dedup-report.json"
WORK_NAME = ".dedup-work"
_RECORD_BYTES = 24
UNIT_DOCS = 8192
MIN_PARTITIONS = 8


@dataclass(slots=True)
class DedupReport:
    """What `dedup` did; `to_dict()` is the ``--json`` object (deterministic: no timings; store paths as given)."""

    params: MinHashParams
    partitions: int
    units: int
    stores: list[dict[str, Any]]
    clusters: dict[str, Any]
    ngrams: dict[str, int]
    candidates: dict[str, int]
    examples: list[dict[str, Any]] = field(default_factory=list)
    stale_masks_removed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self.params.to_dict(),
            "partitions": self.partitions,
            "units": self.units,
            "stores": self.stores,
            "clusters": self.clusters,
            "ngrams": self.ngrams,
            "candidates": self.candidates,
            "examples": self.examples,
            "stale_masks_removed": self.stale_masks_removed,
        }

    @property
    def removed_docs(self) -> int:
        return sum(int(s["removed_docs"]) for s in self.stores)


def plan_partitions(total_docs: int, params: MinHashParams, memory_limit: int) -> int:
    """Partitions so that one partition's records, sorted (x2), fit in a quarter of `memory_limit`; at least
    `MIN_PARTITIONS`, so the bucket stage has tasks for several workers whatever the size (a fixed number: the
    plan, hence a resume, never depends on the worker count)."""
    records = total_docs * (params.bands + 1)
    return max(MIN_PARTITIONS, math.ceil(records * _RECORD_BYTES * 2 / max(1, memory_limit // 4)))


def unit_docs_for(params: MinHashParams, memory_limit: int) -> int:
    """Documents per unit: at most `UNIT_DOCS` (units are what workers share), and few enough that a unit's
    signatures and records take at most a quarter of `memory_limit`."""
    per_doc = params.num_perm * 4 + (params.bands + 1) * _RECORD_BYTES * 2 + 64
    return max(1, min(UNIT_DOCS, memory_limit // 4 // per_doc))


def dedup(
    stores: Sequence[str | os.PathLike[str]],
    *,
    out: str | os.PathLike[str],
    params: MinHashParams | None = None,
    workers: int | None = None,
    executor: Executor | str = Executor.LOCAL,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
    unit_docs: int | None = None,
    partitions: int | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    examples: int = 3,
    on_stage: Callable[[str, int, int], None] | None = None,
) -> DedupReport:
    """Find exact and near-duplicate documents across `stores`; write one mask per store into `out` (MASKDIR).

    Args:
        params: n-gram size, bands x rows, seed, confirmation threshold (see `MinHashParams`).
        memory_limit: bytes one task may hold (signatures spill to the work folder regardless).
        unit_docs: documents per signature task (default: from `memory_limit`); not an output option.
        partitions: hash partitions of the band buckets (default: from `memory_limit`); not an output option.
        work_dir: where the spilled signatures and records go (default ``out/.dedup-work``).
        on_stage: progress callback ``(stage, done, total)``.
    """
    params = params or MinHashParams()
    if memory_limit < 1 << 20:
        raise ConfigError(f"memory_limit={memory_limit} bytes is below the minimum of 1 MiB")
    workers = workers or usable_cores()
    sset = StoreSet.open(stores)
    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    check_out_dir(out, "decontaminate-report.json", "decontaminate")
    work = os.fspath(work_dir) if work_dir is not None else os.path.join(out, WORK_NAME)
    os.makedirs(work, exist_ok=True)
    if partitions is not None and partitions < 1:
        raise ConfigError(f"partitions={partitions} must be >= 1")
    partitions = partitions or plan_partitions(sset.total_docs, params, memory_limit)
    per_unit = unit_docs or unit_docs_for(params, memory_limit)
    tasks: list[SigTask] = []
    for si, store in enumerate(sset.stores):
        for shard, lo, hi in plan_units(store, unit_docs=per_unit):
            tasks.append(
                SigTask(
                    len(tasks), work, sset.paths[si], shard, lo, hi, int(sset.bases[si]), params, partitions
                )
            )
    total_tokens = sum(int(s.num_tokens) for s in sset.stores)
    bits = sketch_bits(total_tokens, params.boilerplate_limit(sset.total_docs), memory_limit)
    units = [(t.store_path, t.shard, t.doc_lo, t.doc_hi) for t in tasks]
    _check_plan(work, sset, params, partitions, bits, units)

    def progress(stage: str, total: int) -> Callable[[int, Any], None]:
        count = [0]

        def tick(_i: int, _r: Any) -> None:
            count[0] += 1
            if on_stage is not None:
                on_stage(stage, count[0], total)

        return tick

    with TaskRunner(workers=workers, executor=executor) as runner:
        sums, bsums, csums = _run_stages(runner, work, sset, params, partitions, bits, tasks, progress)
    edge_files = [os.path.join(work, f"{k}{p:04d}.edges.npy") for k in "pq" for p in range(partitions)]
    clusters = cluster_files(edge_files, memory_limit=memory_limit, spill_dir=work)
    stale = prune_stale_masks(out, REPORT_NAME, {mask_file_name(s.fingerprint) for s in sset.stores})
    report = _finish(sset, out, work, params, partitions, tasks, sums, bsums, csums, clusters, examples)
    report.stale_masks_removed = stale
    atomic_write(
        os.path.join(out, REPORT_NAME), json.dumps(report.to_dict(), indent=1, sort_keys=True).encode()
    )
    if work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return report


def _run_stages(
    runner: TaskRunner,
    work: str,
    sset: StoreSet,
    params: MinHashParams,
    partitions: int,
    bits: int,
    tasks: list[SigTask],
    progress: Callable[[str, int], Callable[[int, Any], None]],
) -> tuple[list[SigSummary], list[BucketSummary], list[ConfirmSummary]]:
    """Document frequency, signatures, buckets, confirmation: stages of independent tasks on one runner."""
    _boilerplate_stage(runner, work, sset, params, partitions, bits, tasks, progress)
    sums: list[SigSummary] = runner.run(run_sig_task, tasks, progress("signatures", len(tasks)))
    first_gid = tuple(t.doc_base + t.doc_lo for t in tasks)
    bslices = _partition_slices([s.records_per_partition for s in sums], partitions)
    btasks = [
        BucketTask(
            p,
            work,
            params,
            first_gid,
            bslices[p],
            partitions,
            sset.paths,
            tuple(int(b) for b in sset.bases),
        )
        for p in range(partitions)
    ]
    bsums: list[BucketSummary] = runner.run(run_bucket_task, btasks, progress("buckets", partitions))
    cslices = _partition_slices([b.candidates_per_partition for b in bsums], partitions)
    ctasks = [
        ConfirmTask(
            q,
            work,
            params,
            first_gid,
            cslices[q],
            sset.paths,
            tuple(int(b) for b in sset.bases),
        )
        for q in range(partitions)
    ]
    csums: list[ConfirmSummary] = runner.run(run_confirm_task, ctasks, progress("confirm", partitions))
    return sums, bsums, csums


def _partition_slices(
    per_unit: Sequence[Sequence[int]], partitions: int
) -> list[tuple[tuple[int, int], ...]]:
    """Each unit wrote its records sorted by partition, `per_unit[u][p]` of them for partition p: for every
    partition, the (lo, hi) record range of each unit's file that belongs to it."""
    cum = [np.concatenate([[0], np.cumsum(np.asarray(c, dtype=np.int64))]) for c in per_unit]
    return [tuple((int(c[p]), int(c[p + 1])) for c in cum) for p in range(partitions)]


def _boilerplate_stage(
    runner: TaskRunner,
    work: str,
    sset: StoreSet,
    params: MinHashParams,
    partitions: int,
    bits: int,
    tasks: list[SigTask],
    progress: Callable[[str, int], Callable[[int, Any], None]],
) -> None:
    """Write ``boilerplate.npy``: the n-grams of more than the limit's documents (docfreq.py: a bucket sketch, then
    exact counts of the hot buckets' n-grams), partitioned by hash like the band buckets; empty (and no pass) with
    ``boilerplate_fraction`` 1.0."""
    path = os.path.join(work, BOILERPLATE_NAME)
    if os.path.exists(path):
        return
    if params.boilerplate_fraction >= 1.0:
        save_npy(path, np.empty(0, np.uint64))
        return
    limit = params.boilerplate_limit(sset.total_docs)
    stasks = [
        SketchTask(t.index, work, t.store_path, t.shard, t.doc_lo, t.doc_hi, params, bits) for t in tasks
    ]
    runner.run(run_sketch_task, stasks, progress("sketch", len(stasks)))
    hot = os.path.join(work, HOT_NAME)
    if not os.path.exists(hot):
        save_npy(hot, hot_buckets(work, len(tasks), bits, limit))
    dtasks = [
        DfTask(t.index, work, t.store_path, t.shard, t.doc_lo, t.doc_hi, params, partitions) for t in tasks
    ]
    per: list[tuple[int, ...]] = runner.run(run_df_task, dtasks, progress("frequencies", len(dtasks)))
    dslices = _partition_slices(per, partitions)
    mtasks = [DfMergeTask(p, work, dslices[p], limit) for p in range(partitions)]
    runner.run(run_df_merge, mtasks, progress("boilerplate", partitions))
    parts = [load_npy(boiler_path(work, p)) for p in range(partitions)]
    save_npy(path, np.sort(np.concatenate(parts)) if parts else np.empty(0, np.uint64))


def _check_plan(
    work: str, sset: StoreSet, params: MinHashParams, partitions: int, bits: int, units: list[Any]
) -> None:
    """The work folder belongs to one plan: resuming with other stores or options is refused, not mixed."""
    plan = {
        "params": params.to_dict(),
        "partitions": partitions,
        "sketch_bits": bits,
        "stores": [s.fingerprint for s in sset.stores],
        "units": units,
    }
    data = json.dumps(plan, sort_keys=True).encode()
    path = os.path.join(work, "plan.json")
    if os.path.exists(path):
        with open(path, "rb") as f:
            if f.read() != data:
                raise BuildError(
                    f"{work} holds an unfinished dedup run with other stores or options; re-run it with the same "
                    "ones (same --memory-limit too), or delete that folder to start over"
                )
        return
    atomic_write(path, data)


def _doc_tokens(work: str, tasks: list[SigTask], first_gid: np.ndarray, gids: np.ndarray) -> np.ndarray:
    units = np.searchsorted(first_gid, gids, "right") - 1
    out = np.zeros(gids.size, dtype=np.int64)
    for u in np.unique(units).tolist():
        info = load_npy(unit_path(work, u, "info.npy"), mmap=True)
        sel = units == u
        out[sel] = np.asarray(info[gids[sel] - first_gid[u], 3], dtype=np.int64)
    return out


def _finish(
    sset: StoreSet,
    out: str,
    work: str,
    params: MinHashParams,
    partitions: int,
    tasks: list[SigTask],
    sums: list[SigSummary],
    bsums: list[BucketSummary],
    csums: list[ConfirmSummary],
    clusters: Any,
    examples: int,
) -> DedupReport:
    first_gid = np.asarray([t.doc_base + t.doc_lo for t in tasks], dtype=np.int64)
    removed_tokens = _doc_tokens(work, tasks, first_gid, clusters.removed)
    store_of = np.searchsorted(sset.bases, clusters.removed, "right") - 1
    kept_store = np.searchsorted(sset.bases, clusters.kept_of, "right") - 1
    rows = []
    for si, store in enumerate(sset.stores):
        sel = store_of == si
        local = clusters.removed[sel] - sset.bases[si]
        kept = clusters.kept_of[sel]
        ks = kept_store[sel]
        reasons = [
            f"{'exact' if ex else 'near'} duplicate of store {sset.names[k]} doc {int(g - sset.bases[k])}"
            for ex, k, g in zip(clusters.exact[sel].tolist(), ks.tolist(), kept.tolist(), strict=True)
        ]
        mask = Mask.build(
            store_fingerprint=store.fingerprint, num_docs=store.num_docs, ids=local, reasons=reasons
        )
        name = mask_file_name(store.fingerprint)
        write_mask(os.path.join(out, name), mask)
        toks = removed_tokens[sel]
        rows.append(
            {
                "store": sset.names[si],
                "path": sset.paths[si],
                "fingerprint": store.fingerprint,
                "mask": name,
                "docs": store.num_docs,
                "tokens": store.num_tokens,
                "removed_docs": int(sel.sum()),
                "removed_tokens": int(toks.sum()),
                "exact_removed_docs": int(clusters.exact[sel].sum()),
                "near_removed_docs": int((~clusters.exact[sel]).sum()),
                "sources": per_source(store, local, toks),
            }
        )
    sizes = {str(k): v for k, v in clusters.sizes.items()}
    return DedupReport(
        params=params,
        partitions=partitions,
        units=len(tasks),
        stores=rows,
        clusters={"count": sum(clusters.sizes.values()), "sizes": sizes},
        ngrams={
            "used": sum(s.ngrams for s in sums),
            "degenerate": sum(s.degenerate_ngrams for s in sums),
            "boilerplate": sum(s.boilerplate_ngrams for s in sums),
            "boilerplate_distinct": int(load_npy(os.path.join(work, BOILERPLATE_NAME), mmap=True).shape[0]),
            "docs_without_ngrams": sum(s.docs_without_ngrams for s in sums),
        },
        candidates={
            "compared": sum(c.compared for c in csums),
            "rejected": sum(c.rejected for c in csums),
            "exact_hash_collisions": sum(b.exact_hash_collisions for b in bsums),
            "exact_pairs": sum(b.exact_pairs for b in bsums),
            "near_pairs": sum(c.near_pairs for c in csums),
        },
        examples=_examples(sset, params, clusters, examples),
    )


def _store_of(sset: StoreSet, gid: int) -> int:
    return int(np.searchsorted(sset.bases, gid, "right")) - 1


def _examples(sset: StoreSet, params: MinHashParams, clusters: Any, count: int) -> list[dict[str, Any]]:
    """The first `count` near duplicates (then exact ones) in store order, decoded, with provenance."""
    order = np.argsort(clusters.exact, kind="stable")[:count]
    out = []
    for i in order.tolist():
        pair, sets = [], []
        for g in (int(clusters.removed[i]), int(clusters.kept_of[i])):
            si = _store_of(sset, g)
            local = g - int(sset.bases[si])
            pair.append((g, describe_doc(sset.stores[si], sset.names[si], local)))
            sets.append(ngram_set(sset.stores[si].doc(local), params))
        out.append(
            {
                "removed": pair[0][1],
                "kept": pair[1][1],
                "exact": bool(clusters.exact[i]),
                "jaccard": round(exact_jaccard(sets[0], sets[1]), 4),
            }
        )
    return out
