"""What a rank reads at a step, sample by sample: the library side of ``shardstore peek``.

A pure function of (mixture, step, rank, world size, batch size). The global position of the rank's first sample
is ``step * batch_size * world_size + rank * batch_size``; its per-source counts come from the interleave's random
access (`Interleave.counts_at`, closed form under ramps too), so peeking at step 2,000,000 costs the same as at step
0: the interleave's arithmetic for one batch, one batched read, and a binary search per sample for its document.
"""

from __future__ import annotations

import contextlib
from bisect import bisect_right
from typing import Any

from shardstore.errors import ConfigError
from shardstore.loader.batches import BatchReader
from shardstore.loader.kept import KeptStore
from shardstore.loader.mixture import Mixture
from shardstore.mix.interleave import check_range

__all__ = ["doc_at", "peek_rows", "rank_batch_size", "rank_start"]


def rank_batch_size(mixture: Mixture, world_size: int, batch_size: int | None) -> int:
    """The per-rank batch size: ``batch_size``, else the mixture's ``global_batch_size / world_size``."""
    if batch_size is None:
        gbs = mixture.config.global_batch_size
        if gbs is None or world_size < 1 or gbs % world_size:
            raise ConfigError(
                "pass --batch-size (per rank): the mixture sets no global_batch_size divisible by it"
            )
        batch_size = gbs // world_size
    return batch_size


def rank_start(*, step: int, rank: int, world_size: int, batch_size: int) -> int:
    """Global position of the first sample rank ``rank`` reads at ``step`` (the loader's contiguous slices)."""
    if world_size < 1 or not 0 <= rank < world_size or step < 0 or batch_size < 1:
        raise ConfigError(
            f"need step >= 0, batch size >= 1 and 0 <= rank < world size; got {step=} {rank=} {world_size=} "
            f"{batch_size=}"
        )
    start = step * batch_size * world_size + rank * batch_size
    check_range(start, batch_size)
    return start


def doc_at(store: Any, position: int) -> int:
    """Index of the document holding token ``position`` of ``store`` (binary search over document spans)."""
    lo, hi = 0, store.num_docs - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if store.doc_span(mid)[0] <= position:
            lo = mid
        else:
            hi = mid - 1
    return lo


def peek_rows(
    mixture: Mixture, *, step: int, rank: int = 0, world_size: int = 1, batch_size: int | None = None
) -> list[dict[str, Any]]:
    """What rank ``rank`` of ``world_size`` receives at ``step``: one dict per sample (source, window, epoch,
    store, document, provenance, decoded text, input ids)."""
    batch_size = rank_batch_size(mixture, world_size, batch_size)
    start = rank_start(step=step, rank=rank, world_size=world_size, batch_size=batch_size)
    reader = BatchReader(mixture)
    counts = mixture.interleave.counts_at(start)
    src, window = reader.locate(start, counts, batch_size)
    batch = reader.read_windows(src, window)
    ordinal = mixture.interleave.assign(start, counts, batch_size)[1]
    sources = mixture.open_sources()
    provenance: Any = None
    with contextlib.suppress(ImportError):  # provenance is optional
        from shardstore.store.provenance import read_provenance as provenance
    rows = []
    for i in range(batch_size):
        source = sources[int(src[i])]
        first = int(window[i]) * mixture.config.seq_len
        k = bisect_right(source.offsets, first) - 1
        store, local = source.stores[k], first - source.offsets[k]
        if isinstance(store, KeptStore):  # kept position -> the underlying store's position and documents
            store, local = store.store, store.to_store(local)
        doc = doc_at(store, local)
        ids = batch["input_ids"][i].tolist()
        tok = store.tokenizer
        rows.append(
            {
                "global_sample": start + i,
                "source": source.name,
                "window": int(window[i]),
                "epoch": int(ordinal[i] // source.num_windows),
                "store": store.root,
                "doc": doc,
                "provenance": provenance(store, doc) if provenance is not None else None,
                "text": tok.decode(ids) if tok is not None else None,
                "input_ids": ids,
            }
        )
    return rows
