"""What each store of a mixture leaves out of training: its sources' masks and held-out splits, resolved.

For every store of every source this computes, once per process when the mixture opens:

1. the documents its source's ``exclude`` masks name (a MASKDIR contributes the mask of that store, if any; a
   mask file must belong to one of the source's stores: `MismatchError` naming it otherwise);
2. if any source has ``heldout`` / ``heldout_tokens``: every document's content hash
   (`shardstore.store.docarrays.content_hashes`, read from the store's persistent index when one is sound:
   `shardstore.store.hash_index.document_hashes`) and held-out score (`shardstore.mix.keep.heldout_scores`, keyed by
   the mixture seed). A source's held-out side is its unmasked documents scoring below its threshold; the
   training side of *every* source then also drops any document whose content equals a held-out one (exact
   copies, in any store of any source), so held-out content never reaches training;
3. a `KeptStore` over the rest (`shardstore.loader.kept`).

Cost: masks are read and verified whole (small files). Held-out splits hash every token of every store of the
mixture once per store fingerprint (a few ns per token), persisted by `shardstore.store.hash_index`; later opens
read 8 bytes per document. The hashes are dropped afterwards, the kept index stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from shardstore.errors import MismatchError
from shardstore.loader.kept import KeptStore
from shardstore.mix.config import MixtureConfig, SourceConfig
from shardstore.mix.keep import KeptIndex, heldout_scores, threshold_for_fraction, threshold_for_tokens
from shardstore.store.docarrays import doc_lengths, doc_spans
from shardstore.store.hash_index import document_hashes
from shardstore.store.mask import Mask, find_masks, is_mask_dir, read_mask

__all__ = ["SourceCounts", "apply_exclusions"]


@dataclass(frozen=True, slots=True)
class SourceCounts:
    """Tokens of one source: kept for training, excluded by masks (or as copies of held-out documents), held out."""

    kept_tokens: int
    excluded_tokens: int
    heldout_tokens: int
    heldout_docs: int
    # per mask applied: {"mask": path or URL, "fingerprint", "store", "docs", "tokens"} (what it excludes by itself;
    # documents two masks both name count for each)
    masks: tuple[dict[str, Any], ...] = ()


def _source_masks(
    cfg: MixtureConfig, sc: SourceConfig, stores: list[Any], resolve: Any
) -> list[list[tuple[str, Mask]]]:
    """The (path, mask) pairs of each store of source `sc`."""
    per_store: list[list[tuple[str, Mask]]] = [[] for _ in stores]
    options = cfg.storage_options
    for entry in sc.exclude:
        ref = resolve(cfg, entry)
        if is_mask_dir(ref, options):
            for i, st in enumerate(stores):
                per_store[i].extend(find_masks(ref, st.fingerprint, st.num_docs, storage_options=options))
            continue
        mask = read_mask(ref, storage_options=options)
        matched = [i for i, st in enumerate(stores) if st.fingerprint == mask.store_fingerprint]
        if not matched:
            fps = ", ".join(st.fingerprint for st in stores)
            raise MismatchError(
                f"{ref}: mask of source {sc.name!r} is for store {mask.store_fingerprint}, which is not one of the "
                f"source's stores ({fps}); write it against the store, or remove it from exclude"
            )
        for i in matched:
            mask.check_store(stores[i].fingerprint, stores[i].num_docs, source=ref)
            per_store[i].append((ref, mask))
    return per_store


def apply_exclusions(
    cfg: MixtureConfig, opened: list[list[Any]], resolve: Any
) -> tuple[list[list[KeptStore]], list[SourceCounts], dict[str, Any]]:
    """(kept stores per source, token counts per source, the fingerprint part) for `cfg`'s sources.

    Args:
        opened: the `Store` objects of each source, in config order.
        resolve: ``resolve(cfg, path)``, the mixture's path resolution (relative to the config file).
    """
    masks = [_source_masks(cfg, sc, stores, resolve) for sc, stores in zip(cfg.sources, opened, strict=True)]
    masked: list[list[np.ndarray]] = [
        [
            Mask.union([m for _, m in ms]).excluded_ids() if ms else np.zeros(0, dtype=np.int64)
            for ms in per_store
        ]
        for per_store in masks
    ]
    heldout: list[list[np.ndarray]] = [[np.zeros(0, dtype=np.int64) for _ in s] for s in opened]
    copies: list[list[np.ndarray]] = [[np.zeros(0, dtype=np.int64) for _ in s] for s in opened]
    if any(sc.has_heldout for sc in cfg.sources):
        heldout, copies = _heldout(cfg, opened, masked)
    kept: list[list[KeptStore]] = []
    counts: list[SourceCounts] = []
    for s, stores in enumerate(opened):
        row: list[KeptStore] = []
        excl_tokens = held_tokens = held_docs = 0
        per_mask: list[dict[str, Any]] = []
        for i, st in enumerate(stores):
            for path, m in masks[s][i]:
                m_starts, m_stops = doc_spans(st, m.excluded_ids())
                per_mask.append(
                    {
                        "mask": path,
                        "fingerprint": m.fingerprint,
                        "store": st.root,
                        "docs": m.num_excluded,
                        "tokens": int((m_stops - m_starts).sum()),
                    }
                )
            drop = np.union1d(np.union1d(masked[s][i], heldout[s][i]), copies[s][i])
            starts, stops = doc_spans(st, drop)
            index = KeptIndex.from_excluded_spans(st.num_tokens, starts, stops)
            h_starts, h_stops = doc_spans(st, heldout[s][i])
            h = int((h_stops - h_starts).sum())
            held_tokens += h
            held_docs += int(heldout[s][i].size)
            excl_tokens += index.excluded_tokens - h
            row.append(
                KeptStore(
                    st,
                    index,
                    masks=[(path, m.fingerprint) for path, m in masks[s][i]],
                    heldout_docs=heldout[s][i],
                    excluded_docs=int(drop.size),
                )
            )
        kept.append(row)
        kept_tokens = sum(k.num_tokens for k in row)
        counts.append(SourceCounts(kept_tokens, excl_tokens, held_tokens, held_docs, tuple(per_mask)))
    part = {
        sc.name: {
            "masks": sorted(fp for k in row for _, fp in k.masks),
            "heldout": sc.heldout,
            "heldout_tokens": sc.heldout_tokens,
        }
        for sc, row in zip(cfg.sources, kept, strict=True)
    }
    return kept, counts, part


def _heldout(
    cfg: MixtureConfig, opened: list[list[Any]], masked: list[list[np.ndarray]]
) -> tuple[list[list[np.ndarray]], list[list[np.ndarray]]]:
    """(held-out ids, ids of copies of held-out content) per store of each source."""
    hashes = [[document_hashes(st) for st in stores] for stores in opened]
    heldout: list[list[np.ndarray]] = []
    held_hashes: list[np.ndarray] = []
    for s, sc in enumerate(cfg.sources):
        scores = [heldout_scores(h, cfg.seed) for h in hashes[s]]
        eligible = []
        for i, st in enumerate(opened[s]):
            ok = np.ones(st.num_docs, dtype=bool)
            ok[masked[s][i]] = False
            eligible.append(ok)
        if sc.heldout_tokens is not None:
            lengths = [doc_lengths(st) for st in opened[s]]
            all_scores = np.concatenate([sc_[ok] for sc_, ok in zip(scores, eligible, strict=True)])
            all_lengths = np.concatenate([ln[ok] for ln, ok in zip(lengths, eligible, strict=True)])
            t = threshold_for_tokens(all_scores, all_lengths, sc.heldout_tokens)
        else:
            t = threshold_for_fraction(sc.heldout or 0.0)
        ids = [np.flatnonzero((score < t) & ok) for score, ok in zip(scores, eligible, strict=True)]
        heldout.append(ids)
        held_hashes.extend(h[i] for h, i in zip(hashes[s], ids, strict=True))
    pool = np.unique(np.concatenate(held_hashes)) if held_hashes else np.zeros(0, dtype=np.uint64)
    copies = [
        [np.setdiff1d(np.flatnonzero(np.isin(h, pool)), own) for h, own in zip(hs, ids, strict=True)]
        for hs, ids in zip(hashes, heldout, strict=True)
    ]
    return heldout, copies
