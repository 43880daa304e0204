"""Clusters of duplicates by union-find, the keep rule, and the per-store masks.

The root of every component is its smallest global document id, whatever the order the edges arrive in (numpy
min-label propagation over the documents that have an edge: memory O(duplicates + edges), see `components`). The keep rule is therefore "first in store order": stores in command-line order, documents in store
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


def components(a: np.ndarray, b: np.ndarray, size: int) -> np.ndarray:
    """The smallest member index of each node's component, for nodes 0..size-1 joined by edges (a[i], b[i]).

    Min-label propagation with pointer jumping, all in numpy arrays: memory is 8 bytes per node plus the edge
    arrays (no Python object per edge or per document), so the driver holds O(duplicate documents + edges) at
    about 40 bytes per edge and 24 per duplicate document. Each round halves the label chains; it ends when no
    label changes.
    """
    label = np.arange(size, dtype=np.int64)
    while True:
        low = np.minimum(label[a], label[b])
        new = label.copy()
        np.minimum.at(new, a, low)
        np.minimum.at(new, b, low)
        new = new[new]  # pointer jumping: a node takes its label's label
        if np.array_equal(new, label):
            return label
        label = new


@dataclass(frozen=True, slots=True)
class Clusters:
    """Removed documents (global ids, ascending), the document each one duplicates, and whether exactly."""

    removed: np.ndarray  # int64
    kept_of: np.ndarray  # int64, aligned with removed
    exact: np.ndarray  # bool, aligned with removed
    sizes: dict[int, int]  # cluster size -> number of clusters


def cluster(edges: np.ndarray) -> Clusters:
    """Connected components of the (a, b, kind) edges; see the module docstring for the keep rule."""
    if not edges.size:
        empty = np.empty(0, np.int64)
        return Clusters(removed=empty, kept_of=empty, exact=np.empty(0, bool), sizes={})
    ends = np.asarray(edges[:, :2], dtype=np.int64)
    members, idx = np.unique(ends, return_inverse=True)  # members ascending: index order = store order
    idx = idx.reshape(-1, 2)
    root = components(idx[:, 0], idx[:, 1], members.size)
    ex = np.asarray(edges[:, 2]) == KIND_EXACT
    exact_root = components(idx[ex, 0], idx[ex, 1], members.size)
    gone = root != np.arange(members.size)
    counts = np.bincount(root, minlength=members.size)
    hist = Counter(counts[counts > 0].tolist())
    return Clusters(
        removed=members[gone],
        kept_of=members[root[gone]],
        exact=exact_root[gone] == exact_root[root[gone]],
        sizes=dict(sorted(hist.items())),
    )
