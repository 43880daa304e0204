"""Clusters of duplicates by union-find, the keep rule, and the per-store masks.

Union by smaller id: the root of every component is its smallest global document id, whatever the order the edges
arrive in. The keep rule is therefore "first in store order": stores in command-line order, documents in store
order; every other member is excluded with the reason ``exact duplicate of store S doc D`` (its tokens equal the
kept document's: joined to it by exact edges) or ``near duplicate of store S doc D`` (joined through at least one
confirmed near-duplicate edge), naming the kept document.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from shardstore.curate.units import KIND_EXACT

__all__ = ["Clusters", "cluster"]


def _find(parent: dict[int, int], x: int) -> int:
    root = x
    while parent.get(root, root) != root:
        root = parent[root]
    while parent.get(x, x) != root:  # path compression
        parent[x], x = root, parent[x]
    return root


def _union(parent: dict[int, int], a: int, b: int) -> None:
    ra, rb = _find(parent, a), _find(parent, b)
    if ra != rb:
        lo, hi = (ra, rb) if ra < rb else (rb, ra)
        parent[hi] = lo


@dataclass(frozen=True, slots=True)
class Clusters:
    """Removed documents (global ids, ascending), the document each one duplicates, and whether exactly."""

    removed: np.ndarray  # int64
    kept_of: np.ndarray  # int64, aligned with removed
    exact: np.ndarray  # bool, aligned with removed
    sizes: dict[int, int]  # cluster size -> number of clusters


def cluster(edges: np.ndarray) -> Clusters:
    """Connected components of the (a, b, kind) edges; see the module docstring for the keep rule."""
    parent: dict[int, int] = {}
    exact_parent: dict[int, int] = {}
    for a, b, kind in edges.tolist():
        _union(parent, a, b)
        if kind == KIND_EXACT:
            _union(exact_parent, a, b)
    members = np.unique(edges[:, :2]).tolist() if edges.size else []
    removed, kept_of, exact = [], [], []
    size: Counter[int] = Counter()
    for m in members:
        root = _find(parent, m)
        size[root] += 1
        if root != m:
            removed.append(m)
            kept_of.append(root)
            exact.append(_find(exact_parent, m) == _find(exact_parent, root))
    hist = Counter(size.values())
    return Clusters(
        removed=np.asarray(removed, dtype=np.int64),
        kept_of=np.asarray(kept_of, dtype=np.int64),
        exact=np.asarray(exact, dtype=bool),
        sizes=dict(sorted(hist.items())),
    )
