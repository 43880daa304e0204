"""Batch-sized numpy arrays whose memory is reused once nothing references them any more.

Why. A loader step allocates ~1 MiB of int64 output (input_ids + labels, [2, 32, 2048]) plus scratch. glibc serves
such sizes from fresh mmap'd or re-grown heap pages depending on its adaptive thresholds, and a fresh page costs a
fault and zeroing on first write: measured here (2 shared cores, a VM) ~3.5 us per 4 KiB page, i.e. up to ~0.9 ms
for 1 MiB, several times the cost of filling it. Reusing memory makes the cost of a step independent of that heap
state.

How, exactly. `ArrayRecycler.empty` hands out a plain ndarray whose ``base`` is a small `_Lease` object owning the
memory. Everything derived from the array (numpy views, ``torch.from_numpy`` tensors and their views, pinned-memory
sources, the DataLoader's queues) keeps the lease alive through its base chain; when the last of them is gone, the
lease's ``__del__`` returns the memory to the recycler's free list. Memory is therefore reused only after it became
unreachable, the same guarantee as freeing it, never while a caller can still read it. A recycler keeps at most
`keep` free arrays per shape and dtype; it pickles as an empty recycler (spawned DataLoader workers get their own).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ArrayRecycler"]


class _Lease:
    """Owns one array's memory while handed out; gives it back to the recycler when collected."""

    __slots__ = ("__array_interface__", "_free", "array")

    def __init__(self, array: np.ndarray, interface: dict[str, Any], free: list[Any]) -> None:
        self.array = array
        self._free = free
        self.__array_interface__ = interface

    def __del__(self) -> None:
        # list.append is atomic: safe from any thread or the garbage collector
        self._free.append((self.array, self.__array_interface__))


class ArrayRecycler:
    """Allocates arrays (`empty`) that reuse the memory of earlier ones no longer referenced anywhere."""

    __slots__ = ("_free", "keep")

    def __init__(self, *, keep: int = 4) -> None:
        self.keep = keep
        self._free: dict[tuple[tuple[int, ...], str], list[tuple[np.ndarray, dict[str, Any]]]] = {}

    def empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """An uninitialized C-contiguous array (like `np.empty`), backed by recycled memory when some is free."""
        dtype = np.dtype(dtype)
        key = (tuple(shape), dtype.str)
        free = self._free.get(key)
        if free is None:
            free = self._free[key] = []
        while len(free) > self.keep:  # bound what is kept when many batches were released at once
            free.pop()
        try:
            memory, interface = free.pop()
        except IndexError:
            memory = np.empty(shape, dtype=dtype)
            interface = memory.__array_interface__  # built once per buffer (~1 us), reused with it
        return np.asarray(_Lease(memory, interface, free))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_new_recycler, (self.keep,))


def _new_recycler(keep: int) -> ArrayRecycler:
    return ArrayRecycler(keep=keep)
