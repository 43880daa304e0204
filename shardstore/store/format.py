"""The bytes of one shard file (format version 1; byte by byte in docs/FORMAT.md).

A shard is self-describing and laid out so that reading it costs one `mmap` and no copies:

    [0, 4096)                 header: magic, version, token width, counts, section offsets, checksums; zero padded
    [4096, 4096 + P)          token payload, P = num_tokens * token_bytes, little-endian uint16/uint32, page aligned
    [align8(4096 + P), +D)    document index: num_docs + 1 cumulative token offsets, uint64 (first 0, last num_tokens)
    [.., +B)                  block checksum table: one xxh3_64 per `block_size` bytes of payload, uint64

Every section offset is a pure function of (token_bytes, block_size, num_tokens, num_docs), so a header whose offsets
or file size disagree with its counts is rejected before any section is touched. Checksums are xxh3_64 (seed 0):
the header covers itself (bytes [0, 96)), and carries the checksums of the document index and of the block table;
the block table carries one checksum per payload block. A reader therefore verifies any token by hashing only the
1 MiB block it lives in. The whole-file xxh3_64 (what the manifest lists as a shard's `checksum`) is computed over
the file as stored, so a downloaded copy is verified with one streaming pass.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

import numpy as np
import xxhash

from shardstore.errors import ChecksumError, FormatError, ManifestError

__all__ = [
    "BLOCK_SIZE",
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "MAGIC",
    "Problem",
    "ShardHeader",
    "ShardRecord",
    "check_shard_bytes",
    "checksum_bytes",
    "dtype_for_vocab",
    "file_checksum",
    "parse_header",
    "shard_layout",
    "stored_header_checksum",
    "verify_shard_file",
]

MAGIC = b"SHRDSTOR"
FORMAT_VERSION = 1
HEADER_SIZE = 4096  # the payload starts here: page aligned for zero-copy mmap
BLOCK_SIZE = 1 << 20  # default checksum block of the token payload
MIN_BLOCK_SIZE = 1 << 12
MAX_BLOCK_SIZE = 1 << 26
MAX_TOKENS = 1 << 48  # a sanity bound far above any real shard; rejects absurd counts before allocation

# magic, version, token_bytes, flags, block_size, num_tokens, num_docs, num_blocks, payload_offset,
# doc_index_offset, block_sums_offset, file_size, doc_index_checksum, block_sums_checksum | header_checksum
_HEADER = struct.Struct("<8sIHH11Q")
_CHECKED_PREFIX = _HEADER.size - 8  # the header checksum covers bytes [0, 96)
HEADER_USED = _HEADER.size  # 104; bytes [104, 4096) must be zero
_TOKEN_DTYPES: dict[int, np.dtype] = {2: np.dtype("<u2"), 4: np.dtype("<u4")}


def checksum_bytes(data: Any) -> int:
    """xxh3_64 (seed 0) of a buffer, as an int: the one checksum function of the format."""
    return xxhash.xxh3_64_intdigest(data)


def checksum_stream() -> Any:
    """The streaming form of `checksum_bytes`: `.update(buffer)`, `.intdigest()`, `.reset()`."""
    return xxhash.xxh3_64()


def dtype_for_vocab(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (vocab_size <= 65536), else uint32."""
    if vocab_size <= 0 or vocab_size > 1 << 32:
        raise FormatError(f"vocab_size={vocab_size} is outside 1..2**32; a shard stores uint16 or uint32 ids")
    return np.dtype("<u2") if vocab_size <= 1 << 16 else np.dtype("<u4")


def _align8(n: int) -> int:
    return (n + 7) & ~7


@dataclass(frozen=True, slots=True)
class ShardLayout:
    """Where each section of a shard lives; a pure function of the counts."""

    payload_offset: int
    payload_nbytes: int
    doc_index_offset: int
    block_sums_offset: int
    num_blocks: int
    file_size: int


def shard_layout(*, token_bytes: int, block_size: int, num_tokens: int, num_docs: int) -> ShardLayout:
    """The section offsets and file size of a shard with these counts."""
    payload = num_tokens * token_bytes
    num_blocks = -(-payload // block_size)
    doc_index_offset = _align8(HEADER_SIZE + payload)
    block_sums_offset = doc_index_offset + (num_docs + 1) * 8
    return ShardLayout(
        payload_offset=HEADER_SIZE,
        payload_nbytes=payload,
        doc_index_offset=doc_index_offset,
        block_sums_offset=block_sums_offset,
        num_blocks=num_blocks,
        file_size=block_sums_offset + num_blocks * 8,
    )


@dataclass(frozen=True, slots=True)
class ShardHeader:
    """The parsed, validated header of a shard."""

    token_bytes: int
    block_size: int
    num_tokens: int
    num_docs: int
    doc_index_checksum: int
    block_sums_checksum: int
    layout: ShardLayout

    @property
    def dtype(self) -> np.dtype:
        return _TOKEN_DTYPES[self.token_bytes]

    def pack(self) -> bytes:
        """The full 4096-byte header page, checksum included."""
        lay = self.layout
        body = _HEADER.pack(
            MAGIC,
            FORMAT_VERSION,
            self.token_bytes,
            0,
            self.block_size,
            self.num_tokens,
            self.num_docs,
            lay.num_blocks,
            lay.payload_offset,
            lay.doc_index_offset,
            lay.block_sums_offset,
            lay.file_size,
            self.doc_index_checksum,
            self.block_sums_checksum,
            0,
        )[:_CHECKED_PREFIX]
        return body + struct.pack("<Q", checksum_bytes(body)) + bytes(HEADER_SIZE - HEADER_USED)


_HEADER_PAD = bytes(HEADER_SIZE - HEADER_USED)


def stored_header_checksum(buf: bytes | bytearray | memoryview) -> int:
    """The header checksum a shard stores at bytes [96, 104) (what a v2 manifest lists as `header_checksum`)."""
    return int(struct.unpack_from("<Q", buf, _CHECKED_PREFIX)[0])


def parse_header(buf: bytes | bytearray | memoryview, *, source: str) -> ShardHeader:
    """Parse and validate the first page of a shard; any inconsistency raises FormatError naming `source`."""
    if len(buf) < HEADER_SIZE:
        raise FormatError(
            f"{source}: file is {len(buf)} bytes, shorter than the {HEADER_SIZE}-byte shard header (truncated?)"
        )
    fields = _HEADER.unpack_from(buf, 0)
    magic, version, token_bytes, flags, block_size, num_tokens, num_docs, num_blocks = fields[:8]
    payload_off, doc_off, sums_off, file_size, doc_sum, sums_sum, header_sum = fields[8:]
    if magic != MAGIC:
        raise FormatError(
            f"{source}: bad magic {magic!r} at offset 0, expected {MAGIC!r}: not a shardstore shard"
        )
    if version != FORMAT_VERSION:
        raise FormatError(
            f"{source}: shard format version {version} at offset 8 is not supported (this reader knows "
            f"{FORMAT_VERSION}); upgrade shardstore or rebuild the store"
        )
    actual = checksum_bytes(bytes(buf[:_CHECKED_PREFIX]))
    if actual != header_sum:
        raise ChecksumError(
            f"{source}: header checksum mismatch (bytes 0..{_CHECKED_PREFIX}, stored {header_sum:016x}, "
            f"computed {actual:016x}): the header is corrupt"
        )
    if bytes(buf[HEADER_USED:HEADER_SIZE]) != _HEADER_PAD:  # one compare (counting zeros cost 10x more)
        raise FormatError(
            f"{source}: header padding (bytes {HEADER_USED}..{HEADER_SIZE}) is not zero: corrupt"
        )
    if token_bytes not in _TOKEN_DTYPES or flags != 0:
        raise FormatError(f"{source}: token width {token_bytes} / flags {flags} at offset 12 are invalid")
    if block_size & (block_size - 1) or not MIN_BLOCK_SIZE <= block_size <= MAX_BLOCK_SIZE:
        raise FormatError(
            f"{source}: block size {block_size} at offset 16 is not a power of two in 4 KiB..64 MiB"
        )
    if num_tokens > MAX_TOKENS or num_docs > MAX_TOKENS:
        raise FormatError(f"{source}: absurd counts {num_tokens=} {num_docs=} in the header")
    layout = shard_layout(
        token_bytes=token_bytes, block_size=block_size, num_tokens=num_tokens, num_docs=num_docs
    )
    stored = (num_blocks, payload_off, doc_off, sums_off, file_size)
    expected = (layout.num_blocks, layout.payload_offset, layout.doc_index_offset, layout.block_sums_offset)
    if stored != (*expected, layout.file_size):
        raise FormatError(
            f"{source}: section table {stored} disagrees with the counts (expected {(*expected, layout.file_size)})"
        )
    return ShardHeader(
        token_bytes=token_bytes,
        block_size=block_size,
        num_tokens=num_tokens,
        num_docs=num_docs,
        doc_index_checksum=doc_sum,
        block_sums_checksum=sums_sum,
        layout=layout,
    )


def check_doc_index(offsets: np.ndarray, header: ShardHeader, *, source: str) -> None:
    """Semantic checks of an already checksum-verified document index."""
    ends = offsets[:: max(offsets.size - 1, 1)].tolist()  # first and last, as Python ints: one numpy call
    if ends[0] != 0 or ends[-1] != header.num_tokens:
        raise FormatError(
            f"{source}: document index at offset {header.layout.doc_index_offset} must run from 0 to "
            f"{header.num_tokens}, got {int(offsets[0])}..{int(offsets[-1])}"
        )
    if offsets.size > 2 and not (offsets[1:] >= offsets[:-1]).all():  # (.all(): no np.any dispatch layer)
        bad = int(np.argmax(offsets[1:] < offsets[:-1]))
        raise FormatError(
            f"{source}: document index decreases at entry {bad + 1} "
            f"(offset {header.layout.doc_index_offset + 8 * (bad + 1)})"
        )


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a file: what `shardstore verify` prints, one per line."""

    file: str
    offset: int
    message: str
    block: int | None = None
    kind: str = "format"  # which error it raises as: "format", "checksum" or "manifest"

    def __str__(self) -> str:
        where = (
            f"block {self.block}, byte offset {self.offset}"
            if self.block is not None
            else f"offset {self.offset}"
        )
        return f"{self.file}: {where}: {self.message}"


def raise_problems(problems: list[Problem]) -> None:
    """Raise the error of the first problem (ChecksumError, ManifestError or FormatError), if there is one."""
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        cls = {"checksum": ChecksumError, "manifest": ManifestError}.get(first.kind, FormatError)
        raise cls(f"{first}{more}")


class ShardRecord(Protocol):
    """What the manifest records about a shard (`manifest.ShardInfo` is one): the checks below compare it."""

    @property
    def size(self) -> int: ...
    @property
    def checksum(self) -> str: ...
    @property
    def num_tokens(self) -> int: ...
    @property
    def num_docs(self) -> int: ...
    @property
    def header_checksum(self) -> str | None: ...


def check_shard_bytes(buf: memoryview, *, source: str, info: ShardRecord | None = None) -> list[Problem]:
    """Check every byte of a mapped shard; returns the problems (empty when all is well).

    With `info`, also checks the counts, size and whole-file checksum recorded in the manifest.
    """
    return check_shard_bytes_header(buf, source=source, info=info)[0]


def check_shard_bytes_header(
    buf: memoryview, *, source: str, info: ShardRecord | None = None
) -> tuple[list[Problem], ShardHeader | None]:
    """`check_shard_bytes`, also returning the parsed header (None if the header itself is bad)."""
    problems, header = _check_sections(buf, source=source, info=info)
    if info is not None and not problems and info.header_checksum is not None:
        # Every byte is covered by a section check above, and the header checksum covers the checksums of every
        # section: comparing it to the manifest's binds the file to its entry without hashing every byte again.
        head = f"{stored_header_checksum(buf):016x}"
        if head != info.header_checksum:
            problems.append(
                Problem(
                    source,
                    0,
                    f"header checksum {head} != manifest {info.header_checksum}: another shard's file",
                    kind="checksum",
                )
            )
    elif info is not None and not problems:
        # v1 manifest (no header checksums): this catches a valid shard that is not the listed one.
        actual = f"{checksum_bytes(buf):016x}"
        if actual != info.checksum:
            problems.append(
                Problem(
                    source, 0, f"whole-file checksum {actual} != manifest {info.checksum}", kind="checksum"
                )
            )
    return problems, header


def _check_sections(
    buf: memoryview, *, source: str, info: ShardRecord | None
) -> tuple[list[Problem], ShardHeader | None]:
    problems: list[Problem] = []
    if info is not None and len(buf) != info.size:
        why = "truncated" if len(buf) < info.size else "has trailing bytes"
        msg = f"file is {len(buf)} bytes, manifest says {info.size}: {why}"
        return [Problem(source, min(len(buf), info.size), msg)], None
    try:
        header = parse_header(buf, source=source)
    except FormatError as exc:
        kind = "checksum" if isinstance(exc, ChecksumError) else "format"
        problems.append(Problem(source, 0, str(exc), kind=kind))
        return problems, None
    lay = header.layout
    if len(buf) != lay.file_size:
        problems.append(
            Problem(
                source,
                min(len(buf), lay.file_size),
                f"file is {len(buf)} bytes, header says {lay.file_size} (truncated?)",
            )
        )
        return problems, None
    if info is not None and (info.num_tokens, info.num_docs) != (header.num_tokens, header.num_docs):
        problems.append(
            Problem(source, 0, f"header counts differ from the manifest ({info.num_tokens}, {info.num_docs})")
        )
    pad_start = lay.payload_offset + lay.payload_nbytes
    if bytes(buf[pad_start : lay.doc_index_offset]).count(0) != lay.doc_index_offset - pad_start:
        problems.append(Problem(source, pad_start, "padding before the document index is not zero"))
    doc_bytes = buf[lay.doc_index_offset : lay.block_sums_offset]
    if checksum_bytes(doc_bytes) != header.doc_index_checksum:
        problems.append(
            Problem(source, lay.doc_index_offset, "document index checksum mismatch", kind="checksum")
        )
    else:
        try:
            check_doc_index(np.frombuffer(doc_bytes, dtype="<u8"), header, source=source)
        except FormatError as exc:
            problems.append(Problem(source, lay.doc_index_offset, str(exc)))
    sums_bytes = buf[lay.block_sums_offset : lay.file_size]
    if checksum_bytes(sums_bytes) != header.block_sums_checksum:
        problems.append(
            Problem(source, lay.block_sums_offset, "block checksum table is corrupt", kind="checksum")
        )
        return problems, None
    sums = np.frombuffer(sums_bytes, dtype="<u8")
    for b in range(lay.num_blocks):
        start = lay.payload_offset + b * header.block_size
        stop = min(start + header.block_size, pad_start)
        if checksum_bytes(buf[start:stop]) != int(sums[b]):
            problems.append(Problem(source, start, "token block checksum mismatch", block=b, kind="checksum"))
    return problems, header


def open_regular(path: str) -> BinaryIO:
    """Open a regular file for reading; anything else (FIFO, device, directory) raises FormatError instead of
    blocking or reading garbage. OSError (e.g. FileNotFoundError) propagates."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # O_NONBLOCK: opening a FIFO must not hang
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FormatError(f"{path}: not a regular file (mode {stat.filemode(mode)}); refusing to read it")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def open_regular_fd(path: str) -> int:
    """`open_regular` as a raw descriptor (no file object: ~20 us less per file); the caller closes it."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FormatError(f"{path}: not a regular file (mode {stat.filemode(mode)}); refusing to read it")
        os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _map_file(path: str) -> tuple[mmap.mmap | None, int]:
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return None, 0
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), size


def file_checksum(path: str | os.PathLike[str]) -> str:
    """Whole-file xxh3_64 as 16 hex digits (what the manifest lists for shards and auxiliary files)."""
    mm, _ = _map_file(os.fspath(path))
    if mm is None:
        return f"{checksum_bytes(b''):016x}"
    with mm:
        return f"{checksum_bytes(memoryview(mm)):016x}"


def verify_shard_file(path: str | os.PathLike[str], info: ShardRecord) -> None:
    """Check a complete shard file against its manifest entry; raises ChecksumError/FormatError on any problem.

    The message names the file, and the block and byte offset of the first problem found.
    """
    path = os.fspath(path)
    try:
        mm, _ = _map_file(path)
    except OSError as exc:
        raise FormatError(f"{path}: cannot read shard: {exc}") from exc
    if mm is None:
        problems = check_shard_bytes(memoryview(b""), source=path, info=info)
    else:
        with mm:
            view = memoryview(mm)
            try:
                problems = check_shard_bytes(view, source=path, info=info)
            finally:
                view.release()
    raise_problems(problems)
