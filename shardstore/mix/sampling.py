"""Packing windows and the per-epoch shuffle: pure index math, no files.

Packing. A source is the concatenation of its stores' tokens (documents already end with EOS when the builder adds
it). Sample ``i`` of a source is the window of ``seq_len + 1`` tokens starting at token ``i * seq_len`` (stride
``seq_len``): ``input_ids = w[:-1]``, ``labels = w[1:]``, so every sample carries exactly ``seq_len`` training
tokens and consecutive windows share one token. A source of ``T`` tokens has ``(T - 1) // seq_len`` windows; the
tail that does not fill a window is never drawn (at most ``seq_len`` tokens per source).

Document boundaries (for masking) are defined on the ``seq_len`` input positions of a window:

* ``position_ids[r, i] = i - b`` where ``b`` is the last position ``<= i`` of row ``r`` at which a document begins,
  or 0 (the row start) if none does. A row that starts mid-document restarts its positions at 0.
* ``cu_seqlens`` (flash-attention varlen style, int32) are the cumulative lengths of the segments of the flattened
  ``[B * seq_len]`` inputs, cut at every row start and every document start: ``[0, ..., B * seq_len]``.

Shuffle. Each (seed, source name, epoch) keys a bijection of ``[0, N)``: a 6-round balanced Feistel network on the
smallest even bit width covering ``N`` (at most 4N values), with cycle walking (re-encrypt until the value falls in
``[0, N)``; fewer than 4 rounds of walking on average). It is O(1) memory, random access, and vectorized over numpy
arrays: permuting a batch of 32 indices costs a few microseconds. Keys come from BLAKE2b of the seed, the source
*name* (so reordering or re-weighting sources keeps every source's order) and the epoch, so epochs differ.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from shardstore.errors import ConfigError

__all__ = [
    "FeistelPermutation",
    "num_windows",
    "permutation",
]

_ROUNDS = 6
_KEY_DOMAIN = b"shardstore.feistel.v1\x00"
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def num_windows(num_tokens: int, seq_len: int) -> int:
    """Number of ``seq_len + 1`` token windows (stride ``seq_len``) in ``num_tokens`` concatenated tokens."""
    if seq_len < 1:
        raise ConfigError(f"seq_len must be >= 1, got {seq_len=}")
    if num_tokens < 0:
        raise ConfigError(f"num_tokens must be >= 0, got {num_tokens=}")
    return max(0, (num_tokens - 1) // seq_len)


def _mix(x: np.ndarray, key: np.uint64) -> np.ndarray:
    """SplitMix64 finalizer of ``x ^ key``: a cheap, well-avalanching round function on uint64 arrays."""
    z = x ^ key
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@dataclass(frozen=True, slots=True)
class FeistelPermutation:
    """A keyed bijection of ``range(size)``; ``perm(indices)`` maps an int array elementwise."""

    size: int
    keys: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ConfigError(f"a permutation needs size >= 1, got size={self.size}")
        if len(self.keys) != _ROUNDS:
            raise ConfigError(f"a permutation needs {_ROUNDS} round keys, got {len(self.keys)}")

    @property
    def half_bits(self) -> int:
        bits = max(2, (self.size - 1).bit_length())
        return (bits + 1) // 2

    def _encrypt(self, x: np.ndarray) -> np.ndarray:
        half = np.uint64(self.half_bits)
        mask = np.uint64((1 << self.half_bits) - 1)
        left, right = x >> half, x & mask
        for key in self.keys:
            left, right = right, left ^ (_mix(right, np.uint64(key)) & mask)
        return (left << half) | right

    def __call__(self, indices: np.ndarray | int) -> np.ndarray:
        """Images of ``indices`` (each in ``[0, size)``) as an int64 array of the same shape."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= self.size):
            raise ConfigError(f"permutation index out of range [0, {self.size}): {idx.min()}..{idx.max()}")
        if self.size == 1:
            return np.zeros_like(idx)
        shape = idx.shape
        y = self._encrypt(idx.reshape(-1).astype(np.uint64))
        limit = np.uint64(self.size)
        out_of_range = y >= limit
        while out_of_range.any():  # cycle walking: stays inside the cycle of x, so it ends in [0, size)
            y[out_of_range] = self._encrypt(y[out_of_range])
            out_of_range = y >= limit
        return y.astype(np.int64).reshape(shape)


def permutation(seed: int, source: str, epoch: int, size: int) -> FeistelPermutation:
    """The bijection of ``range(size)`` used for ``source`` in ``epoch`` under ``seed`` (a pure function)."""
    if epoch < 0:
        raise ConfigError(f"epoch must be >= 0, got {epoch=}")
    material = b"\x00".join([_KEY_DOMAIN, str(int(seed)).encode(), source.encode(), str(int(epoch)).encode()])
    digest = hashlib.blake2b(material, digest_size=8 * _ROUNDS).digest()
    keys = tuple(int.from_bytes(digest[8 * i : 8 * i + 8], "little") for i in range(_ROUNDS))
    return FeistelPermutation(size=size, keys=keys)
