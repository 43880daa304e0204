"""Test oracle: the definition of ``position_ids`` and ``cu_seqlens`` from document-start marks.

`shardstore.loader.batches.BatchReader` computes the same arrays a faster way (segment starts of the flattened marks);
tests pin the equality against these direct, obviously-right definitions.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cu_seqlens_from_marks", "position_ids_from_marks"]


def position_ids_from_marks(marks: np.ndarray) -> np.ndarray:
    """``position_ids`` [B, L] (int64) from a bool array marking input positions where a document begins."""
    rows, length = marks.shape
    pos = np.broadcast_to(np.arange(length, dtype=np.int64), (rows, length))
    last_start = np.where(marks, pos, 0)
    np.maximum.accumulate(last_start, axis=1, out=last_start)
    return pos - last_start


def cu_seqlens_from_marks(marks: np.ndarray) -> np.ndarray:
    """``cu_seqlens`` (int32) of the flattened inputs, cut at every row start and every marked document start."""
    rows, length = marks.shape
    cuts = marks.copy()
    cuts[:, 0] = True
    starts = np.flatnonzero(cuts.ravel())
    return np.append(starts, rows * length).astype(np.int32)
