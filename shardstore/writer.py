"""ShardWriter: documents in, finished shard files out, crash-safe.

Tokens stream into a temp file beside the final name while 1 MiB payload blocks are hashed on the fly; when a shard
is full (or at `close()`), the document index and block table are appended, the header page is written last, the
file is fsynced, re-read once for its whole-file checksum (page cache; xxh3 runs at memory speed), atomically renamed
to `{name_prefix}{counter:06d}.shard`, and the directory is fsynced. A crash leaves at most a `*.tmp.*` file that no
reader ever looks at; the store only exists once `write_manifest` commits it.

A shard rolls over *between* documents when the next one would push the file past `max_shard_bytes`; a single
document larger than the limit gets a shard of its own (documents never span shards).
"""

from __future__ import annotations

import os
from typing import IO

import numpy as np
import numpy.typing as npt

from shardstore import format as fmt
from shardstore.errors import ConfigError, ManifestError
from shardstore.manifest import ShardInfo, _fsync_dir, check_name

__all__ = ["DEFAULT_MAX_SHARD_BYTES", "SHARD_SUFFIX", "ShardWriter"]

DEFAULT_MAX_SHARD_BYTES = 256 << 20
SHARD_SUFFIX = ".shard"


class ShardWriter:
    """Write documents (1-D integer token arrays) into size-bounded shard files in `directory`.

    Args:
        directory: where the shards go (created if missing).
        dtype: token dtype of the store, uint16 or uint32 (see `format.dtype_for_vocab`).
        name_prefix: shard `i` of this writer is named `{name_prefix}{i:06d}.shard`.
        max_shard_bytes: roll over to a new shard before a file would exceed this size.
        block_size: checksum block of the payload (power of two, 4 KiB..64 MiB; default 1 MiB).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        dtype: npt.DTypeLike,
        name_prefix: str = "shard-",
        max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
        block_size: int = fmt.BLOCK_SIZE,
    ) -> None:
        self._dtype = np.dtype(dtype).newbyteorder("<")
        if self._dtype.name not in ("uint16", "uint32"):
            raise ConfigError(f"dtype {np.dtype(dtype)} is not a token dtype; use uint16 or uint32")
        if block_size & (block_size - 1) or not fmt.MIN_BLOCK_SIZE <= block_size <= fmt.MAX_BLOCK_SIZE:
            raise ConfigError(f"block_size={block_size} must be a power of two in 4 KiB..64 MiB")
        if max_shard_bytes < fmt.HEADER_SIZE + 64:
            raise ConfigError(f"max_shard_bytes={max_shard_bytes} is too small for even one shard header")
        try:
            if "/" in name_prefix:
                raise ManifestError(f"name_prefix {name_prefix!r} contains '/'")
            check_name(f"{name_prefix}000000{SHARD_SUFFIX}", source="ShardWriter", what="name_prefix")
        except ManifestError as exc:
            raise ConfigError(f"{exc}; use a plain file-name prefix such as 'part-00003-'") from None
        self._dir = os.fspath(directory)
        os.makedirs(self._dir, exist_ok=True)
        self._prefix = name_prefix
        self._max_bytes = max_shard_bytes
        self._block_size = block_size
        self._max_id = (1 << (8 * self._dtype.itemsize)) - 1
        self._infos: list[ShardInfo] = []
        self._closed = False
        self._file: IO[bytes] | None = None
        self._tmp = ""
        self._block = bytearray(block_size)
        self._start_shard_state()

    # -- public ---------------------------------------------------------------------------------------------------

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def shards(self) -> list[ShardInfo]:
        """The shards finished so far."""
        return list(self._infos)

    def add_document(self, tokens: npt.ArrayLike) -> None:
        """Append one document. Ids must fit the dtype; an empty document is kept (it has zero tokens)."""
        if self._closed:
            raise ConfigError("ShardWriter is closed; create a new one to write more documents")
        arr = np.asarray(tokens)
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
            raise ConfigError(
                f"a document must be a 1-D integer array, got shape {arr.shape} dtype {arr.dtype}"
            )
        if arr.size and arr.dtype != self._dtype:
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or hi > self._max_id:
                raise ConfigError(
                    f"token ids {lo}..{hi} do not fit {self._dtype.name}; use a wider dtype (uint32) for this vocab"
                )
        arr = np.ascontiguousarray(arr, dtype=self._dtype)
        if self._num_docs and self._size_with(arr.size) > self._max_bytes:
            self._finish_shard()
        if self._file is None:
            self._open_shard()
        self._append(arr.view(np.uint8).data)
        self._num_tokens += arr.size
        self._doc_ends.append(self._num_tokens)
        self._num_docs += 1

    def close(self) -> list[ShardInfo]:
        """Finish the current shard and return every shard written, in order. Idempotent."""
        if not self._closed:
            if self._num_docs:
                self._finish_shard()
            self._closed = True
        return list(self._infos)

    def abort(self) -> None:
        """Drop the unfinished shard (its temp file); finished shards stay."""
        if self._file is not None:
            self._file.close()
            self._file = None
            if os.path.exists(self._tmp):
                os.unlink(self._tmp)
        self._closed = True

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- internals ------------------------------------------------------------------------------------------------

    def _start_shard_state(self) -> None:
        self._num_tokens = 0
        self._num_docs = 0
        self._doc_ends: list[int] = [0]
        self._fill = 0
        self._block_sums: list[int] = []

    def _size_with(self, extra_tokens: int) -> int:
        """File size if one more document of `extra_tokens` were added (`format.shard_layout`, inlined: per doc)."""
        payload = (self._num_tokens + extra_tokens) * self._dtype.itemsize
        blocks = -(-payload // self._block_size)
        return ((fmt.HEADER_SIZE + payload + 7) & ~7) + (self._num_docs + 2) * 8 + blocks * 8

    def _name(self, index: int) -> str:
        return f"{self._prefix}{index:06d}{SHARD_SUFFIX}"

    def _open_shard(self) -> IO[bytes]:
        final = os.path.join(self._dir, self._name(len(self._infos)))
        self._tmp = f"{final}.tmp.{os.getpid()}"
        f = open(self._tmp, "wb")  # noqa: SIM115 - closed in _finish_shard / abort
        f.write(bytes(fmt.HEADER_SIZE))  # placeholder; the real header is written last
        self._file = f
        return f

    def _append(self, data: memoryview) -> None:
        pos, n = 0, len(data)
        bs = self._block_size
        while pos < n:
            take = min(bs - self._fill, n - pos)
            self._block[self._fill : self._fill + take] = data[pos : pos + take]
            self._fill += take
            pos += take
            if self._fill == bs:
                self._flush_block()

    def _flush_block(self) -> None:
        if self._fill and self._file is not None:
            view = memoryview(self._block)[: self._fill]
            self._block_sums.append(fmt.checksum_bytes(view))
            self._file.write(view)
            self._fill = 0

    def _finish_shard(self) -> None:
        f = self._file or self._open_shard()
        self._flush_block()
        layout = fmt.shard_layout(
            token_bytes=self._dtype.itemsize,
            block_size=self._block_size,
            num_tokens=self._num_tokens,
            num_docs=self._num_docs,
        )
        f.write(bytes(layout.doc_index_offset - layout.payload_offset - layout.payload_nbytes))
        doc_index = np.asarray(self._doc_ends, dtype="<u8").tobytes()
        block_sums = np.asarray(self._block_sums, dtype="<u8").tobytes()
        f.write(doc_index)
        f.write(block_sums)
        header = fmt.ShardHeader(
            token_bytes=self._dtype.itemsize,
            block_size=self._block_size,
            num_tokens=self._num_tokens,
            num_docs=self._num_docs,
            doc_index_checksum=fmt.checksum_bytes(doc_index),
            block_sums_checksum=fmt.checksum_bytes(block_sums),
            layout=layout,
        )
        f.seek(0)
        f.write(header.pack())
        f.flush()
        os.fsync(f.fileno())
        f.close()
        self._file = None
        name = self._name(len(self._infos))
        final = os.path.join(self._dir, name)
        checksum = fmt.file_checksum(self._tmp)
        os.replace(self._tmp, final)
        _fsync_dir(self._dir)
        self._infos.append(
            ShardInfo(
                name=name,
                num_tokens=self._num_tokens,
                num_docs=self._num_docs,
                size=layout.file_size,
                checksum=checksum,
            )
        )
        self._start_shard_state()
