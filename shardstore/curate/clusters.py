"""Clusters of duplicates by union-find, the keep rule, and the per-store masks.

The root of every component is its smallest global document id, whatever the order the edges arrive in. The keep
rule is therefore "first in store order": stores in command-line order, documents in store order; every other
member is excluded with the reason ``exact duplicate of store S doc D`` (its tokens equal the kept document's:
joined to it by exact edges) or ``near duplicate of store S doc D`` (joined through at least one confirmed
near-duplicate edge), naming the kept document.

Memory is bounded by `memory_limit` (`cluster_files`): the edges stay in their files and are read in chunks;
each chunk's edges are lifted to the current roots of their ends, the components of that small root graph are
found by min-label propagation (`components`), and one gather relabels every member (``label = label[label]``,
block by block). What is held is the sorted member ids (8 bytes per duplicate document), two label arrays (16
bytes per duplicate document, memory-mapped from the work folder when they do not fit in a quarter of the
limit) and one chunk of edges (about ``memory_limit / 8``). Chunking never changes the answer: labels are
component minima, whatever the order edges arrive in.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from shardstore.curate.units import KIND_EXACT, load_npy

__all__ = ["Clusters", "cluster", "cluster_files", "components"]

_EDGE_BYTES = 200  # temporaries per edge of a chunk (ends, labels, sorts, searches), generously
_LABEL_BYTES = 24  # per member: its id and two labels
_BLOCK = 1 << 20  # members relabelled at a time


def components(a: np.ndarray, b: np.ndarray, size: int) -> np.ndarray:
    """The smallest member index of each node's component, for nodes 0..size-1 joined by edges (a[i], b[i]).

    Min-label propagation with full pointer jumping, all in numpy arrays (no Python object per edge or per node):
    each round hooks the larger root of every edge's ends under the smaller one, then jumps every label chain to its end; it ends when
    no label changes.
    """
    label = np.arange(size, dtype=np.int64)
    while True:
        la, lb = label[a], label[b]  # roots: every label is its chain's end
        low = np.minimum(la, lb)
        new = label.copy()
        np.minimum.at(new, la, low)  # hook the larger root under the smaller (pointers only ever decrease)
        np.minimum.at(new, lb, low)
        while True:  # pointer jumping to the end: every node takes its label's label until none changes
            jumped = new[new]
            if np.array_equal(jumped, new):
                break
            new = jumped
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
    """Connected components of the (a, b, kind) edges held in memory; see the module docstring for the keep rule."""
    return _cluster(lambda: iter([np.asarray(edges).reshape(-1, 3)]), spill_dir=None, memory_limit=1 << 62)


def cluster_files(paths: Sequence[str], *, memory_limit: int, spill_dir: str) -> Clusters:
    """`cluster` of the edges of the ``.npy`` files `paths` (uint64 [k, 3]), within `memory_limit` bytes (see
    the module docstring); label arrays that do not fit go to `spill_dir`."""
    chunk = max(1024, memory_limit // 8 // _EDGE_BYTES)

    def chunks() -> Iterator[np.ndarray]:
        for path in paths:
            edges = load_npy(path, mmap=True)
            for lo in range(0, edges.shape[0], chunk):
                yield np.asarray(edges[lo : lo + chunk])

    return _cluster(chunks, spill_dir=spill_dir, memory_limit=memory_limit)


def _cluster(
    chunks: Callable[[], Iterable[np.ndarray]], *, spill_dir: str | None, memory_limit: int
) -> Clusters:
    members = np.empty(0, np.int64)
    for e in chunks():  # pass 1: the sorted distinct ends (one merge per chunk)
        both = np.concatenate([members, np.unique(np.asarray(e[:, :2], dtype=np.int64))])
        both.sort(kind="stable")  # two sorted runs: merged in linear time
        if both.size:
            members = both[np.concatenate([[True], both[1:] != both[:-1]])]
    m = members.size
    if m == 0:
        empty = np.empty(0, np.int64)
        return Clusters(removed=empty, kept_of=empty, exact=np.empty(0, bool), sizes={})
    spill = spill_dir is not None and m * _LABEL_BYTES > memory_limit // 4
    label, exact_label = (
        _labels(m, spill_dir if spill else None, "label"),
        _labels(m, spill_dir if spill else None, "exact"),
    )
    for e in chunks():  # pass 2: merge each chunk's edges into the labels
        a = np.searchsorted(members, np.asarray(e[:, 0], dtype=np.int64))
        b = np.searchsorted(members, np.asarray(e[:, 1], dtype=np.int64))
        _merge(label, a, b)
        ex = np.asarray(e[:, 2]) == KIND_EXACT
        _merge(exact_label, a[ex], b[ex])
    root = np.asarray(label)
    idx = np.arange(m, dtype=np.int64)
    gone = root != idx
    counts = np.bincount(root, minlength=m)
    hist = Counter(counts[counts > 0].tolist())
    exact_root = np.asarray(exact_label)
    out = Clusters(
        removed=members[gone],
        kept_of=members[root[gone]],
        exact=exact_root[gone] == exact_root[root[gone]],
        sizes=dict(sorted(hist.items())),
    )
    for arr in (label, exact_label):
        if isinstance(arr, np.memmap):
            path = arr.filename
            del arr
            if path is not None:
                os.remove(path)
    return out


def _labels(m: int, spill_dir: str | None, name: str) -> np.ndarray:
    """``arange(m)`` (every member its own root), in memory or memory-mapped from `spill_dir`."""
    if spill_dir is None:
        return np.arange(m, dtype=np.int64)
    arr = np.lib.format.open_memmap(os.path.join(spill_dir, f"clusters.{name}.npy"), "w+", np.int64, (m,))
    for lo in range(0, m, _BLOCK):
        arr[lo : lo + _BLOCK] = np.arange(lo, min(m, lo + _BLOCK), dtype=np.int64)
    return arr


def _merge(label: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Join the components of members a[i] and b[i] in `label` (every entry its component's minimum, in place)."""
    if a.size == 0:
        return
    la, lb = np.asarray(label[a]), np.asarray(label[b])  # current roots of the ends
    roots, inv = np.unique(np.concatenate([la, lb]), return_inverse=True)
    low = roots[components(inv[: a.size], inv[a.size :], roots.size)]  # each root's new root
    moved = low != roots
    if not moved.any():
        return
    label[roots[moved]] = low[moved]  # an old root points to its new root, itself a root
    for lo in range(0, label.shape[0], _BLOCK):  # every member takes its root's new root
        hi = min(label.shape[0], lo + _BLOCK)
        label[lo:hi] = label[np.asarray(label[lo:hi])]
