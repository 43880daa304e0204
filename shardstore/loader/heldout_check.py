"""The proof of separation behind ``shardstore mix check-heldout MIX``: no held-out content in the training stream.

It does not trust the bookkeeping that built the split. It reads the training side of every source the way the
loader does (through each store's `KeptStore`, i.e. the kept-token stream the windows are cut from), cuts it at
the kept documents' starts, hashes every document it finds (`shardstore.store.docarrays.hash_documents`), and
looks each hash up among the hashes of every held-out document of every source (read through the held-out views
of `shardstore.loader.evaluation`). A hash match is then compared token by token, so the figure counts exact
copies only (a hash collision is not a leak). The scan is chunked (16M kept tokens at a time); its cost is one
read and one hash pass over the training side, a few ns per token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shardstore.loader.evaluation import heldout_sources
from shardstore.loader.mixture import Mixture
from shardstore.store.docarrays import hash_documents

__all__ = ["HeldoutCheck", "check_heldout"]

_CHUNK = 1 << 24


@dataclass(frozen=True, slots=True)
class HeldoutCheck:
    """What the scan found. `ok` is True when no held-out content appears in the training stream."""

    heldout_docs: int
    heldout_tokens: int
    train_docs: int
    train_tokens: int
    leaked_docs: int
    leaked_tokens: int
    examples: list[dict[str, Any]] = field(default_factory=list)  # a few leaks: source, kept position, length

    @property
    def ok(self) -> bool:
        return self.leaked_docs == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "heldout_docs": self.heldout_docs,
            "heldout_tokens": self.heldout_tokens,
            "train_docs": self.train_docs,
            "train_tokens": self.train_tokens,
            "leaked_docs": self.leaked_docs,
            "leaked_tokens": self.leaked_tokens,
            "examples": self.examples,
        }


def _documents(store: Any, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(tokens, document offsets, position of the first) of the whole documents of the stream `store` (a `Store`
    or a `KeptStore`) that begin in ``[start, stop)``."""
    starts = store.doc_starts(start, stop)
    if not starts.size:
        return np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64), start
    end = store.doc_starts(stop, store.num_tokens)
    last = int(end[0]) if end.size else store.num_tokens
    first = int(starts[0])
    tokens = np.empty(last - first, dtype=np.int64)
    store.read_into(first, tokens)
    return tokens, np.append(starts - first, last - first), first


def _heldout_index(mixture: Mixture) -> tuple[dict[int, list[np.ndarray]], int, int]:
    """hash -> the held-out documents (tokens) with that hash; held-out documents and tokens."""
    index: dict[int, list[np.ndarray]] = {}
    docs = tokens = 0
    for src in heldout_sources(mixture):
        for view in src.stores:
            for a in range(0, view.num_tokens, _CHUNK):
                toks, offs, _ = _documents(view, a, min(view.num_tokens, a + _CHUNK))
                for h, lo, hi in zip(hash_documents(toks, offs).tolist(), offs[:-1], offs[1:], strict=True):
                    index.setdefault(h, []).append(toks[lo:hi])
                docs += offs.size - 1
                tokens += toks.size
    return index, docs, tokens


def check_heldout(mixture: Mixture, *, max_examples: int = 5) -> HeldoutCheck:
    """Scan the training side of `mixture` for held-out content (see the module docstring)."""
    index, h_docs, h_tokens = _heldout_index(mixture)
    pool = np.array(sorted(index), dtype=np.uint64)
    t_docs = t_tokens = l_docs = l_tokens = 0
    examples: list[dict[str, Any]] = []
    for src in mixture.open_sources():
        for k, store in enumerate(src.stores):
            base = src.offsets[k]
            for a in range(0, store.num_tokens, _CHUNK):
                toks, offs, first = _documents(store, a, min(store.num_tokens, a + _CHUNK))
                hashes = hash_documents(toks, offs)
                t_docs += hashes.size
                t_tokens += toks.size
                for i in np.flatnonzero(np.isin(hashes, pool)).tolist():
                    doc = toks[offs[i] : offs[i + 1]]
                    if any(np.array_equal(doc, other) for other in index[int(hashes[i])]):
                        l_docs += 1
                        l_tokens += doc.size
                        if len(examples) < max_examples:
                            where = base + first + int(offs[i])
                            examples.append({"source": src.name, "position": where, "tokens": int(doc.size)})
    return HeldoutCheck(h_docs, h_tokens, t_docs, t_tokens, l_docs, l_tokens, examples)
