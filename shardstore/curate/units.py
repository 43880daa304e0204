"""The signature stage of `dedup`: one task per slice of a shard, writing its signatures and LSH records to disk.

A unit is documents ``[doc_lo, doc_hi)`` of one shard of one store. Its task reads their tokens straight from the
memory-mapped shard (``Store.tokens``: verified blocks, zero copy), computes MinHash signatures and the exact hash
of each document natively, and writes into the work folder:

    u<unit>.sig.npy   uint32 [docs, num_perm]   signatures, only with ``confirm="estimate"`` (read back memory-mapped
                                                 to confirm candidate pairs; exact confirmation reads the tokens)
    u<unit>.info.npy  uint64 [docs, 4]          exact hash, n-grams used, degenerate n-grams, tokens
    u<unit>.rec.npy   uint64 [records, 3]       (key, kind, global doc): kind 0 = exact hash, 1 = LSH band key,
                                                 sorted by partition (key mod partitions), so each band bucket lies
                                                 in one partition and a partition task reads only its slice
    boilerplate.npy   uint64 [m]                the boilerplate n-grams (docfreq.py), left out of the signatures
    u<unit>.json      the summary, written last: its presence marks the unit done (resume after kill -9)

Every file is written by temp file, fsync and rename, so a killed run leaves whole files or none. Documents without
tokens take part in nothing; documents without non-degenerate n-grams only in exact deduplication.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

import numpy as np

from shardstore.curate.boiler import boiler_signatures
from shardstore.curate.minhash import Confirm, MinHashParams, band_keys
from shardstore.errors import FormatError
from shardstore.store.store import Store
from shardstore.util.durable import atomic_write, atomic_writer

__all__ = [
    "BOILERPLATE_NAME",
    "SigSummary",
    "SigTask",
    "load_npy",
    "plan_units",
    "run_sig_task",
    "save_npy",
    "unit_path",
]

BOILERPLATE_NAME = "boilerplate.npy"
KIND_EXACT = 0
KIND_BAND = 1


@dataclass(frozen=True, slots=True)
class SigTask:
    """One unit of the signature stage."""

    index: int
    work: str
    store_path: str
    shard: int
    doc_lo: int  # store-local document range, inside one shard
    doc_hi: int
    doc_base: int  # global id of the store's document 0 (stores are numbered in command-line order)
    params: MinHashParams
    partitions: int


@dataclass(frozen=True, slots=True)
class SigSummary:
    index: int
    docs: int
    tokens: int
    ngrams: int
    degenerate_ngrams: int
    docs_without_ngrams: int
    records_per_partition: tuple[int, ...]
    boilerplate_ngrams: int = 0


def unit_path(work: str, index: int, suffix: str) -> str:
    return os.path.join(work, f"u{index:06d}.{suffix}")


def save_npy(path: str, arr: np.ndarray) -> None:
    """Write one numeric array as ``.npy`` (no pickle), durably: streamed into the file (no copy in memory)."""
    with atomic_writer(path) as f:
        np.lib.format.write_array(f, np.ascontiguousarray(arr), allow_pickle=False)


def load_npy(path: str, *, mmap: bool = False) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FormatError(
            f"{path}: unreadable work file ({exc}); delete the work folder to start over"
        ) from exc


def plan_units(store: Store, *, unit_docs: int) -> list[tuple[int, int, int]]:
    """(shard, doc_lo, doc_hi) of every unit of `store`: each shard cut into slices of at most `unit_docs`."""
    _, docs = store.manifest.shard_counts()
    out: list[tuple[int, int, int]] = []
    first = 0
    for shard, n in enumerate(int(d) for d in docs):
        for lo in range(first, first + n, unit_docs):
            out.append((shard, lo, min(lo + unit_docs, first + n)))
        first += n
    return out


def read_summary(path: str) -> SigSummary:
    try:
        with open(path, "rb") as f:
            d = json.loads(f.read())
        d["records_per_partition"] = tuple(d["records_per_partition"])
        return SigSummary(**d)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise FormatError(
            f"{path}: unreadable unit summary ({exc}); delete the work folder to start over"
        ) from exc


def doc_slice(store: Store, shard: int, doc_lo: int, doc_hi: int) -> tuple[np.ndarray, np.ndarray]:
    """The tokens of documents [doc_lo, doc_hi) of `shard` (one zero-copy view) and their offsets into it."""
    mapped = store.mapped_shard(shard)
    first_doc = doc_lo - _first_doc(store, shard)
    offs = np.asarray(mapped.offsets[first_doc : first_doc + (doc_hi - doc_lo) + 1], dtype=np.uint64)
    base = int(store.shard_token_offsets[shard])
    lo, hi = int(offs[0]), int(offs[-1])
    tokens = store.tokens(base + lo, base + hi)
    return tokens, offs - np.uint64(lo)


def _first_doc(store: Store, shard: int) -> int:
    _, docs = store.manifest.shard_counts()
    return int(np.sum(np.asarray(docs[:shard], dtype=np.int64)))


def run_sig_task(task: SigTask) -> SigSummary:
    """Compute and write one unit (or read its summary if a previous run finished it)."""
    done = unit_path(task.work, task.index, "json")
    if os.path.exists(done):
        return read_summary(done)
    params = task.params
    with Store.open(task.store_path) as store:
        tokens, offs = doc_slice(store, task.shard, task.doc_lo, task.doc_hi)
        boiler = load_npy(os.path.join(task.work, BOILERPLATE_NAME))
        sig, info, dropped = boiler_signatures(tokens, offs, boiler, params)
    gids = np.arange(task.doc_lo, task.doc_hi, dtype=np.uint64) + np.uint64(task.doc_base)
    has_tokens = info[:, 3] > 0
    has_ngrams = info[:, 1] > 0
    exact = np.stack(
        [info[has_tokens, 0], np.full(int(has_tokens.sum()), KIND_EXACT, np.uint64), gids[has_tokens]], 1
    )
    keys = band_keys(sig[has_ngrams], params)
    band = np.stack(
        [
            keys.reshape(-1),
            np.full(keys.size, KIND_BAND, np.uint64),
            np.repeat(gids[has_ngrams], params.bands),
        ],
        1,
    )
    rec = np.concatenate([exact.reshape(-1, 3), band.reshape(-1, 3)]).astype(np.uint64)
    part = rec[:, 0] % np.uint64(task.partitions)
    order = np.argsort(part, kind="stable")
    rec = rec[order]
    counts = np.bincount(part.astype(np.int64), minlength=task.partitions)
    if params.confirm is Confirm.ESTIMATE:
        save_npy(unit_path(task.work, task.index, "sig.npy"), sig)
    save_npy(unit_path(task.work, task.index, "info.npy"), info)
    save_npy(unit_path(task.work, task.index, "rec.npy"), rec)
    summary = SigSummary(
        index=task.index,
        docs=task.doc_hi - task.doc_lo,
        tokens=int(info[:, 3].sum()),
        ngrams=int(info[:, 1].sum()),
        degenerate_ngrams=int(info[:, 2].sum()),
        docs_without_ngrams=int((has_tokens & ~has_ngrams).sum()),
        records_per_partition=tuple(int(c) for c in counts),
        boilerplate_ngrams=dropped,
    )
    atomic_write(done, json.dumps(asdict(summary), sort_keys=True).encode())
    return summary
