"""One memory-mapped shard: zero-copy numpy views of its sections, checked on mapping, verified block by block.

`MappedShard.open` costs one open + fstat + mmap, a 4 KiB header parse, and hashing the document index and block
table (8 bytes per document / per MiB of tokens). Payload blocks are hashed on first touch by `check_blocks`,
against the shared per-process bitmap the Store hands in; once every block of a shard is verified the shard is
`trusted` and reads skip the check entirely.
"""

from __future__ import annotations

import mmap
import os
from typing import TYPE_CHECKING

import numpy as np

from shardstore.errors import ChecksumError, FormatError
from shardstore.store import format as fmt

if TYPE_CHECKING:
    from collections.abc import Callable

    from shardstore.store.manifest import ShardInfo

__all__ = ["MappedShard"]


class MappedShard:
    """Numpy views of a mapped shard's sections and its block-verification bitmap."""

    __slots__ = (
        "block_shift",
        "index",
        "num_tokens",
        "offsets",
        "path",
        "payload",
        "sums",
        "tokens",
        "trusted",
        "used",
        "verified",
    )

    def __init__(
        self, index: int, path: str, mm: mmap.mmap, header: fmt.ShardHeader, verified: bytearray
    ) -> None:
        lay = header.layout
        self.index = index
        self.path = path
        self.num_tokens = header.num_tokens
        self.tokens = np.frombuffer(
            mm, dtype=header.dtype, count=header.num_tokens, offset=lay.payload_offset
        )
        self.offsets = np.frombuffer(mm, dtype="<u8", count=header.num_docs + 1, offset=lay.doc_index_offset)
        self.sums = np.frombuffer(mm, dtype="<u8", count=lay.num_blocks, offset=lay.block_sums_offset)
        self.payload = self.tokens.view(np.uint8)
        self.block_shift = (
            header.block_size // header.token_bytes
        ).bit_length() - 1  # tokens per block = 2**shift
        self.verified = verified
        self.trusted = verified.count(0) == 0
        self.used = True  # CLOCK reference bit (see Store._get)

    @classmethod
    def open(
        cls, index: int, path: str, info: ShardInfo, *, bitmap: Callable[[int, int], bytearray]
    ) -> MappedShard:
        """Map and check shard `index` at `path` against its manifest entry; `bitmap(index, num_blocks)` gives the
        process-wide verified-blocks bitmap. Raises FormatError/ChecksumError naming the file and offset."""
        try:
            with fmt.open_regular(path) as f:
                size = os.fstat(f.fileno()).st_size
                if size != info.size:
                    raise FormatError(
                        f"{path}: file is {size} bytes, the manifest says {info.size}: truncated or replaced; "
                        "rebuild or re-download the store"
                    )
                mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            raise FormatError(f"{path}: shard listed in the manifest is missing") from None
        except OSError as exc:
            raise FormatError(f"{path}: cannot map shard: {exc}") from exc
        header = fmt.parse_header(mm[: fmt.HEADER_SIZE], source=path)
        lay = header.layout
        if (header.num_tokens, header.num_docs, lay.file_size) != (info.num_tokens, info.num_docs, size):
            raise FormatError(
                f"{path}: header counts ({header.num_tokens} tokens, {header.num_docs} docs, "
                f"{lay.file_size} bytes) differ from the manifest entry {info}"
            )
        shard = cls(index, path, mm, header, bitmap(index, lay.num_blocks))
        if fmt.checksum_bytes(shard.offsets) != header.doc_index_checksum:
            raise ChecksumError(f"{path}: document index at offset {lay.doc_index_offset}: checksum mismatch")
        if fmt.checksum_bytes(shard.sums) != header.block_sums_checksum:
            raise ChecksumError(
                f"{path}: block checksum table at offset {lay.block_sums_offset}: checksum mismatch"
            )
        fmt.check_doc_index(shard.offsets, header, source=path)
        return shard

    def check_blocks(self, lo: int, hi: int) -> None:
        """Verify (once per process) every payload block holding tokens [lo, hi) of this shard."""
        verified = self.verified
        for b in range(lo >> self.block_shift, ((hi - 1) >> self.block_shift) + 1):
            if not verified[b]:
                self._verify_block(b)
        if verified.count(0) == 0:
            self.trusted = True

    def _verify_block(self, b: int) -> None:
        per_block = (1 << self.block_shift) * self.tokens.itemsize
        lo = b * per_block
        data = self.payload[lo : lo + per_block]
        if fmt.checksum_bytes(data) != int(self.sums[b]):
            offset = fmt.HEADER_SIZE + lo
            raise ChecksumError(
                f"{self.path}: token block {b} (byte offset {offset}..{offset + data.size}) fails its checksum: "
                "the shard is corrupt; rebuild or re-download it"
            )
        self.verified[b] = 1
