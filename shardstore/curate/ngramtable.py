"""The n-gram lookup table of decontamination's scan (and of dedup's boilerplate fix-up): an open-addressing hash set
(load <= 1/2) of unique n-gram hashes with a bit filter in front (8 bits per n-gram, at least 2**16)."""

from __future__ import annotations

import numpy as np

from shardstore._native import _minhash

__all__ = ["NgramTable"]


class NgramTable:
    """The lookup structure over sorted unique hashes; the id of a hash is its position in them."""

    def __init__(self, hashes: np.ndarray) -> None:
        hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
        cap = 1 << max(4, int(2 * max(1, hashes.size) - 1).bit_length())
        fbits = 1 << max(16, int(8 * max(1, hashes.size) - 1).bit_length())
        self.keys = np.empty(cap, dtype=np.uint64)
        self.vals = np.empty(cap, dtype=np.uint32)
        self.filter = np.empty(fbits // 64, dtype=np.uint64)
        _minhash.fill_table(hashes, self.keys, self.vals, self.filter)

    def scan(self, tokens: np.ndarray, offsets: np.ndarray, n: int, min_distinct: int) -> np.ndarray:
        """(document index in `offsets`, n-gram id) of every hit, uint32 [hits, 2] (repeats included)."""
        toks = np.ascontiguousarray(tokens)
        if toks.dtype not in (np.uint16, np.uint32):
            toks = toks.astype(np.uint32)
        raw = _minhash.scan(
            toks,
            toks.dtype.itemsize,
            np.ascontiguousarray(offsets, dtype=np.uint64),
            n,
            min_distinct,
            self.keys,
            self.vals,
            self.filter,
        )
        return np.frombuffer(raw, dtype=np.uint32).reshape(-1, 2)
