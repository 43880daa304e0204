"""`manifest.idx`: an mmap-able binary index of `manifest.json`, so opening a 100,000-shard store is O(1) Python.

Parsing the JSON of a 100k-shard manifest and validating 100k `ShardInfo` objects costs ~1 s of CPU and ~140 MB
per process (issue 19), and every DataLoader worker paid it again. The index holds the same shard table as flat
little-endian uint64 records (tokens, docs, size, checksum, header checksum, end of name) plus a names blob and the
manifest's other keys as canonical JSON. A reader maps it (page cache: shared by every process of the node, not
USS), and builds a `ShardInfo` only for the entry it asks about.

Trust: the index header records the size and xxh3_64 of the exact `manifest.json` bytes it was derived from and
the xxh3_64 of its own body. Opening hashes both files (~1 ms per 10 MB) and uses the index only if both match;
otherwise (no index, a stale one from an interrupted commit, a flipped bit) the JSON is parsed and validated as
before. `write_manifest` writes the index before `manifest.json` (the commit point), and `verify` checks that it
is byte-identical to the index derived from the parsed manifest.

Layout (docs/FORMAT.md "manifest.idx"): a 64-byte header `<8sIIQQQQQQ>` (magic SHRDMIDX, version 1, zero,
num_shards, manifest size, manifest xxh3, names length, meta length, body xxh3), then one record of six uint64
per shard (tokens, docs, size, checksum, header checksum, end of name), the names blob, the meta JSON.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Sequence
from typing import Any, overload

import numpy as np

from shardstore.errors import FormatError
from shardstore.store import format as fmt
from shardstore.store.canonjson import canonical, strict_loads
from shardstore.store.rawmap import map_readonly

__all__ = ["INDEX_NAME", "ShardTable", "index_bytes", "open_index", "shard_records"]

INDEX_NAME = "manifest.idx"
_MAGIC = b"SHRDMIDX"
_HEAD = struct.Struct("<8sIIQQQQQQ")
_COLS = 6  # num_tokens, num_docs, size, checksum, header_checksum (0: none), name end offset


def shard_records(shards: Sequence[Any]) -> tuple[np.ndarray, bytes | memoryview]:
    """The shard table as the index stores it: (n, 6) little-endian uint64 records (tokens, docs, size, checksum,
    header checksum or 0, end of name) and the names blob; a view of the index's own when `shards` is a
    ShardTable (no per-shard object), else built from the `ShardInfo`s (what `verify`'s batch checker reads)."""
    if isinstance(shards, ShardTable):
        return shards.records, shards.names
    return _build_records(shards)


def _build_records(shards: Sequence[Any]) -> tuple[np.ndarray, bytes]:
    n = len(shards)
    cols = np.zeros((_COLS, n), dtype="<u8")  # filled by column, written by row (one record per shard)
    encoded = [s.name.encode("ascii") for s in shards]
    for c, values in enumerate(
        (
            (s.num_tokens for s in shards),
            (s.num_docs for s in shards),
            (s.size for s in shards),
            (int(s.checksum, 16) for s in shards),
            (int(s.header_checksum, 16) if s.header_checksum else 0 for s in shards),
            (len(e) for e in encoded),
        )
    ):
        cols[c] = np.fromiter(values, dtype=np.uint64, count=n)
    cols[5] = np.cumsum(cols[5], dtype=np.uint64)
    return np.ascontiguousarray(cols.T), b"".join(encoded)


def index_bytes(manifest: Any, manifest_json: bytes) -> bytes:
    """The index of `manifest`, whose canonical JSON is `manifest_json`."""
    rows, names = _build_records(manifest.shards)  # derived from the entries, never copied from an index
    n = rows.shape[0]
    meta = canonical(manifest.index_meta())
    body = rows.tobytes() + bytes(names) + meta
    head = _HEAD.pack(
        _MAGIC,
        1,
        0,
        n,
        len(manifest_json),
        fmt.checksum_bytes(manifest_json),
        len(names),
        len(meta),
        fmt.checksum_bytes(body),
    )
    return head + body


class ShardTable(Sequence[Any]):
    """The shard list of an indexed manifest: records in a shared mapping, a `ShardInfo` made per lookup."""

    def __init__(self, rows: np.ndarray, names: memoryview, info_type: type) -> None:
        self.num_tokens = rows[:, 0]
        self.num_docs = rows[:, 1]
        self.sizes = rows[:, 2]
        self._rows = rows
        self._names = names
        self.records = rows  # the index's records and names, read-only (`shard_records`)
        self.names = names
        self._info = info_type
        self._n = int(rows.shape[0])
        self._last: tuple[int, Any] = (-1, None)

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> list[Any]: ...
    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += self._n
        last = self._last  # one attribute (read and written whole): safe under threads
        if last[0] == i:  # the same entry twice in a row (a reader, then its locator): no new object
            return last[1]
        if not 0 <= i < self._n:
            raise IndexError(f"shard {i} of {self._n}")
        t, d, size, checksum, head, end = self._rows[i].tolist()
        start = int(self._rows[i - 1, 5]) if i else 0
        info = self._info(
            bytes(self._names[start:end]).decode("ascii"),
            t,
            d,
            size,
            f"{checksum:016x}",
            f"{head:016x}" if head else None,
        )
        self._last = (i, info)  # ShardInfo is frozen: sharing it is safe
        return info

    def __iter__(self) -> Iterator[Any]:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]


def open_index(
    directory: str, manifest_json: memoryview, info_type: type
) -> tuple[dict[str, Any], ShardTable] | None:
    """(meta, shard table) from `directory/manifest.idx` if it is the index of exactly `manifest_json`, else None."""
    path = os.path.join(directory, INDEX_NAME)
    try:
        with fmt.open_regular(path) as f:
            view, fid = map_readonly(f.fileno(), source=path)
    except (OSError, FormatError):
        return None
    if fid.size < _HEAD.size:
        return None
    magic, version, _, n, msize, msum, nlen, mlen, bsum = _HEAD.unpack_from(view, 0)
    body = view[_HEAD.size :]
    if (magic, version, msize) != (_MAGIC, 1, len(manifest_json)) or len(body) != n * _COLS * 8 + nlen + mlen:
        return None
    if fmt.checksum_bytes(manifest_json) != msum or fmt.checksum_bytes(body) != bsum:
        return None
    rows = np.frombuffer(body, dtype="<u8", count=n * _COLS).reshape(n, _COLS)
    names = body[n * _COLS * 8 : n * _COLS * 8 + nlen]
    try:
        meta = strict_loads(bytes(body[n * _COLS * 8 + nlen :]))
    except ValueError:
        return None
    # Cheap consistency (O(n) in numpy, ~0.3 ms at 100k shards): a layout or writer skew that still checksums
    # right is refused rather than read as garbage.
    ends = rows[:, 5]
    if not isinstance(meta, dict) or (n and (int(ends[-1]) != nlen or bool(np.any(ends[1:] < ends[:-1])))):
        return None
    totals = (int(rows[:, 0].sum(dtype=np.uint64)), int(rows[:, 1].sum(dtype=np.uint64)))
    if totals != (meta.get("num_tokens"), meta.get("num_docs")) or meta.get("num_shards") != n:
        return None
    return meta, ShardTable(rows, names, info_type)
