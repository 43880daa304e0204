"""Where documents came from, for the reports: per-source counts and decoded examples with provenance.

A store built by `shardstore build` lists its work units in ``provenance/units.json`` (input file, first document,
count; `shardstore.store.provenance`): one bisection maps a document to its input file, one Parquet row to its
record. Stores without provenance report everything under the source ``"?"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shardstore.errors import ShardStoreError
from shardstore.store.provenance import read_provenance, read_units
from shardstore.store.store import Store

__all__ = ["describe_doc", "per_source"]

UNKNOWN = "?"


def _units(store: Store) -> tuple[np.ndarray, list[str]] | None:
    found = read_units(store)
    if found is None:
        return None
    units = found[1]
    return np.asarray([u.first_doc for u in units], dtype=np.int64), [u.url for u in units]


def per_source(store: Store, removed: np.ndarray, removed_tokens: np.ndarray) -> list[dict[str, Any]]:
    """``[{file, docs, removed_docs, removed_tokens}]`` per input file (in store order) of `store`."""
    table = _units(store)
    if table is None:
        return [
            {
                "file": UNKNOWN,
                "docs": store.num_docs,
                "removed_docs": int(removed.size),
                "removed_tokens": int(removed_tokens.sum()),
            }
        ]
    firsts, urls = table
    docs_of = np.diff(np.append(firsts, store.num_docs))
    unit = np.searchsorted(firsts, removed, "right") - 1
    out: dict[str, dict[str, Any]] = {}
    for i, url in enumerate(urls):
        row = out.setdefault(url, {"file": url, "docs": 0, "removed_docs": 0, "removed_tokens": 0})
        row["docs"] += int(docs_of[i])
    rd = np.bincount(unit, minlength=len(urls)) if unit.size else np.zeros(len(urls), np.int64)
    rt = np.bincount(unit, weights=removed_tokens, minlength=len(urls)) if unit.size else rd
    for i, url in enumerate(urls):
        out[url]["removed_docs"] += int(rd[i])
        out[url]["removed_tokens"] += int(rt[i])
    return list(out.values())


def describe_doc(store: Store, name: str, doc: int, *, max_tokens: int = 48) -> dict[str, Any]:
    """``{store, doc, file, record, text}``: text is the decoded start of the document (None without tokenizer)."""
    where: dict[str, Any] = {"store": name, "doc": int(doc), "file": None, "record": None}
    try:
        prov = read_provenance(store, int(doc))
    except ShardStoreError:
        prov = None
    if prov is not None:
        where["file"], where["record"] = prov["file"], prov["record"]
    tok = store.tokenizer
    toks = store.doc(int(doc))[:max_tokens]
    where["text"] = None if tok is None else tok.decode([int(t) for t in toks])
    return where
