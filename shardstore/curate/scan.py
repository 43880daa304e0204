"""The scan stage of `decontaminate`: every n-gram of every document looked up in the eval sets' n-gram table.

The table is an open-addressing hash set (load <= 1/2) of the eval sets' unique n-gram hashes with a bit filter
in front (8 bits per n-gram, at least 2**16), both built by each task from ``hashes.npy`` in the work folder.
The hot loop (``_native/minhash.cc: scan``) is a rolling hash and one filter probe per token; only filter hits
touch the table, and only table hits pay for the distinct-token check of the degenerate rule. Output per unit:
``s<unit>.hits.npy`` uint64 [hits, 2] = (global document id, n-gram id), unique, sorted (resume: skip if present).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from shardstore.curate.ngramtable import NgramTable
from shardstore.curate.units import doc_slice, load_npy, save_npy
from shardstore.store.store import Store

__all__ = ["NgramTable", "ScanTask", "run_scan_task"]


@dataclass(frozen=True, slots=True)
class ScanTask:
    index: int
    work: str
    store_path: str
    shard: int
    doc_lo: int
    doc_hi: int
    doc_base: int
    n: int
    min_distinct: int


def hits_path(work: str, index: int) -> str:
    return os.path.join(work, f"s{index:06d}.hits.npy")


def run_scan_task(task: ScanTask) -> int:
    """Scan one unit; returns its number of unique (document, n-gram) hits."""
    out = hits_path(task.work, task.index)
    if os.path.exists(out):
        return int(load_npy(out, mmap=True).shape[0])
    table = NgramTable(load_npy(os.path.join(task.work, "hashes.npy")))
    with Store.open(task.store_path) as store:
        tokens, offs = doc_slice(store, task.shard, task.doc_lo, task.doc_hi)
        hits = table.scan(tokens, offs, task.n, task.min_distinct).astype(np.uint64)
    hits[:, 0] += np.uint64(task.doc_base + task.doc_lo)
    hits = np.unique(hits, axis=0) if hits.size else hits.reshape(0, 2)
    save_npy(out, hits)
    return int(hits.shape[0])
