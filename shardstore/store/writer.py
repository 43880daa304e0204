"""ShardWriter: documents in, finished shard files out, crash-safe.

Tokens stream into a temp file beside the final name while 1 MiB payload blocks are hashed on the fly; when a shard
is full (or at `close()`), the document index and block table are appended, the header page is written last, the
file is fsynced, re-read once for its whole-file checksum (page cache; xxh3 runs at memory speed), atomically renamed
to `{name_prefix}{counter:06d}.shard`, and the directory is fsynced. A crash leaves at most a `*.tmp.*` file that no
reader ever looks at; the store only exists once `write_manifest` commits it.

A shard rolls over *between* documents when the next one would push the file past `max_shard_bytes`; a single
document larger than the limit gets a shard of its own (documents never span shards).

Three ways in, all giving the same bytes for the same documents:
- `add_document(tokens)`: one whole document.
- `add_documents(tokens, lengths)`: many documents concatenated in one array (the build's hot path). The rollover
  points are found vectorized (the file size after k more documents is monotonic in k), and the payload is copied
  into the checksum blocks in block-sized slices, so the cost per call no longer grows with the number of documents.
- `begin_document()` / `extend_document(tokens)` / `end_document()`: one document in pieces, for documents too large
  to hold (a 200 MB text). Whether the shard rolls over before it is only known at its end, so while the current
  shard already holds documents the pieces go to a spill file beside the shard and are copied in at the end through
  one block buffer; in an empty shard they stream straight in. Memory stays bounded by a piece, not the document.
"""

from __future__ import annotations

import mmap
import os
from io import BufferedRandom
from typing import IO

import numpy as np
import numpy.typing as npt

from shardstore.errors import ConfigError, ManifestError
from shardstore.store import format as fmt
from shardstore.store.manifest import ShardInfo, check_name
from shardstore.util.durable import fsync_dir

_CHECKSUM_WINDOW = 16 << 20  # a multiple of mmap.ALLOCATIONGRANULARITY

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
        self._streaming = False
        self._stream_tokens = 0
        self._spill: BufferedRandom | None = None
        self._spill_path = ""
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
        self._check_open()
        arr = self._as_tokens(tokens, "a document")
        if self._num_docs and self._size_with(arr.size) > self._max_bytes:
            self._finish_shard()
        if self._file is None:
            self._open_shard()
        self._append(arr.view(np.uint8).data)
        self._num_tokens += arr.size
        self._doc_ends.append(self._num_tokens)
        self._num_docs += 1

    def add_documents(self, tokens: npt.ArrayLike, lengths: npt.ArrayLike) -> None:
        """Append `len(lengths)` documents stored back to back in `tokens` (document i is the next `lengths[i]` ids).

        Same shards, bytes and rollover points as calling `add_document` once per document.
        """
        self._check_open()
        arr = self._as_tokens(tokens, "tokens")
        lens = np.asarray(lengths)
        if lens.ndim != 1 or (lens.size and lens.dtype.kind not in "iu"):
            raise ConfigError(
                f"lengths must be a 1-D integer array, got shape {lens.shape} dtype {lens.dtype}"
            )
        lens = lens.astype(np.int64, copy=False)
        if lens.size and int(lens.min()) < 0:
            raise ConfigError(f"lengths must be >= 0, got {int(lens.min())}")
        ends = np.cumsum(lens)
        if (int(ends[-1]) if ends.size else 0) != arr.size:
            raise ConfigError(
                f"lengths sum to {int(ends[-1]) if ends.size else 0} but tokens has {arr.size} ids"
            )
        data = arr.view(np.uint8).data
        isz = self._dtype.itemsize
        if (
            lens.size and self._size_with(arr.size, lens.size) <= self._max_bytes
        ):  # the common case: no rollover
            if self._file is None:
                self._open_shard()
            self._append(data)
            self._doc_ends.extend((ends + self._num_tokens).tolist())
            self._num_tokens += arr.size
            self._num_docs += lens.size
            return
        first = 0  # index of the first document not written yet
        while first < lens.size:
            base = int(ends[first - 1]) if first else 0
            # File size after adding documents first..k (inclusive), for every k at once (`_size_with`, vectorized).
            payload = (self._num_tokens + ends[first:] - base) * isz
            blocks = -(-payload // self._block_size)
            count = np.arange(1, lens.size - first + 1, dtype=np.int64)
            size = ((fmt.HEADER_SIZE + payload + 7) & ~7) + (self._num_docs + count + 1) * 8 + blocks * 8
            over = size > self._max_bytes
            if not self._num_docs:
                over[0] = (
                    False  # a document always fits an empty shard (it gets a shard of its own if too big)
                )
            stop = first + (int(np.argmax(over)) if over.any() else lens.size - first)
            if stop > first:
                if self._file is None:
                    self._open_shard()
                end = int(ends[stop - 1])
                self._append(data[base * isz : end * isz])
                self._doc_ends.extend((self._num_tokens + ends[first:stop] - base).tolist())
                self._num_tokens += end - base
                self._num_docs += stop - first
                first = stop
            if first < lens.size:
                self._finish_shard()

    def begin_document(self) -> None:
        """Start a document that arrives in pieces (`extend_document`), finished by `end_document`."""
        self._check_open()
        if self._streaming:
            raise ConfigError("begin_document: the previous streamed document was not ended (end_document)")
        self._streaming = True
        self._stream_tokens = 0
        if (
            self._num_docs
        ):  # the shard may have to roll over before this document: hold it aside until its end
            path = os.path.join(self._dir, f"{self._prefix}spill.tmp.{os.getpid()}")
            self._spill = open(path, "w+b")  # noqa: SIM115 - closed in end_document / abort
            self._spill_path = path
        elif self._file is None:
            self._open_shard()

    def extend_document(self, tokens: npt.ArrayLike) -> None:
        """Append ids to the document begun by `begin_document`."""
        if not self._streaming:
            raise ConfigError("extend_document without begin_document")
        arr = self._as_tokens(tokens, "a document piece")
        if self._spill is not None:
            self._spill.write(arr.view(np.uint8).data)
        else:
            self._append(arr.view(np.uint8).data)
        self._stream_tokens += arr.size

    def end_document(self) -> None:
        """Finish the streamed document: same bytes as `add_document` of all its pieces concatenated."""
        if not self._streaming:
            raise ConfigError("end_document without begin_document")
        n = self._stream_tokens
        spill, self._spill = self._spill, None
        if spill is not None:
            try:
                if self._size_with(n) > self._max_bytes:
                    self._finish_shard()
                if self._file is None:
                    self._open_shard()
                spill.seek(0)
                buf = bytearray(self._block_size)
                while True:
                    got = spill.readinto(buf)
                    if not got:
                        break
                    self._append(memoryview(buf)[:got])
            finally:
                spill.close()
                os.unlink(self._spill_path)
        self._streaming = False
        self._num_tokens += n
        self._doc_ends.append(self._num_tokens)
        self._num_docs += 1

    def close(self) -> list[ShardInfo]:
        """Finish the current shard and return every shard written, in order. Idempotent."""
        if self._streaming:
            raise ConfigError("close: a streamed document was begun but not ended (end_document)")
        if not self._closed:
            if self._num_docs:
                self._finish_shard()
            self._closed = True
        return list(self._infos)

    def abort(self) -> None:
        """Drop the unfinished shard (its temp file); finished shards stay."""
        if self._spill is not None:
            self._spill.close()
            self._spill = None
            if os.path.exists(self._spill_path):
                os.unlink(self._spill_path)
        self._streaming = False
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

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError("ShardWriter is closed; create a new one to write more documents")
        if self._streaming:
            raise ConfigError("a streamed document is open: end it (end_document) before adding others")

    def _as_tokens(self, tokens: npt.ArrayLike, what: str) -> np.ndarray:
        """`tokens` as a contiguous array of the store dtype; ids that do not fit are an error."""
        arr = np.asarray(tokens)
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
            raise ConfigError(f"{what} must be a 1-D integer array, got shape {arr.shape} dtype {arr.dtype}")
        if arr.size and arr.dtype != self._dtype:
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or hi > self._max_id:
                raise ConfigError(
                    f"token ids {lo}..{hi} do not fit {self._dtype.name}; use a wider dtype (uint32) for this vocab"
                )
        return np.ascontiguousarray(arr, dtype=self._dtype)

    def _start_shard_state(self) -> None:
        self._num_tokens = 0
        self._num_docs = 0
        self._doc_ends: list[int] = [0]
        self._fill = 0  # bytes of the current, partial block (hashed so far by `_hasher`)
        self._hasher = fmt.checksum_stream()
        self._block_sums: list[int] = []

    def _size_with(self, extra_tokens: int, extra_docs: int = 1) -> int:
        """File size if `extra_docs` more documents holding `extra_tokens` ids were added (`format.shard_layout`,
        inlined: it runs per document)."""
        payload = (self._num_tokens + extra_tokens) * self._dtype.itemsize
        blocks = -(-payload // self._block_size)
        return ((fmt.HEADER_SIZE + payload + 7) & ~7) + (self._num_docs + extra_docs + 1) * 8 + blocks * 8

    def _file_checksum(self, path: str) -> str:
        """`format.file_checksum`, over read-only mappings of at most 16 MiB at a time: no copy out of the page cache
        (reading it back cost as much CPU as writing it), and this process's RSS never holds more than one window
        of the shard (mapping it whole was once the largest item of a huge document's peak)."""
        h = fmt.checksum_stream()
        with open(path, "rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size
            for offset in range(0, size, _CHECKSUM_WINDOW):
                length = min(_CHECKSUM_WINDOW, size - offset)
                with mmap.mmap(f.fileno(), length, offset=offset, access=mmap.ACCESS_READ) as window:
                    h.update(window)
        return f"{h.intdigest():016x}"

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
        """Write payload bytes, hashing them block by block as they pass (no copy into a block buffer)."""
        f = self._file
        if f is None:  # pragma: no cover - callers open the shard first
            raise ConfigError("internal: no shard open")
        pos, n = 0, len(data)
        bs = self._block_size
        while pos < n:
            take = min(bs - self._fill, n - pos)
            view = data[pos : pos + take]
            if take == bs:  # a whole block straight from the source
                self._block_sums.append(fmt.checksum_bytes(view))
            else:
                self._hasher.update(view)
                self._fill += take
            f.write(view)
            pos += take
            if self._fill == bs:
                self._flush_block()

    def _flush_block(self) -> None:
        if self._fill:
            self._block_sums.append(self._hasher.intdigest())
            self._hasher.reset()
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
        packed = header.pack()
        f.write(packed)
        f.flush()
        os.fsync(f.fileno())
        f.close()
        self._file = None
        name = self._name(len(self._infos))
        final = os.path.join(self._dir, name)
        checksum = self._file_checksum(self._tmp)
        os.replace(self._tmp, final)
        fsync_dir(self._dir)
        self._infos.append(
            ShardInfo(
                name=name,
                num_tokens=self._num_tokens,
                num_docs=self._num_docs,
                size=layout.file_size,
                checksum=checksum,
                header_checksum=f"{fmt.stored_header_checksum(packed):016x}",
            )
        )
        self._start_shard_state()
