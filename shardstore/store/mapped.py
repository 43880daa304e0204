"""One memory-mapped shard: zero-copy numpy views of its sections, bound to its manifest, verified block by block.

What is checked, and when (see docs/FORMAT.md "What a reader promises"):
- Every mapping: the file's identity (`rawmap.FileId`: device, inode, size, ctime) by one fstat, its size against
  the manifest, and the header checksum the shard stores against the one the manifest lists for *this index*
  (manifest v2). The header checksum covers the counts and the checksums of the document index and block table,
  which cover every payload byte, so a shard swapped with another, copied over another name, or listed by
  another store's manifest is refused at O(1) cost. A v1 manifest has no header checksums: the whole-file checksum
  is compared instead, once per file identity (O(bytes); rebuild to get v2).
- Once per file identity (`ShardFacts`, kept by the Store across unmap and remap, within a bounded LRU): header
  parse, the document index (checksum and monotonicity: O(docs)) and the block table checksum. A remap of the same
  file skips them. A file identity that `verify` (or an earlier mapping) checked in full is "vouched" by the
  store's compact table (`mapcache.VerifiedTable`): its mapping parses the header (O(1)) and trusts every block.
- Payload blocks, on the first touch *per mapping*: a `stat` of the path must still show the mapped device, inode
  and size (a shard truncated or replaced under a reader is a FormatError, never SIGBUS), then the block is hashed
  unless this file identity already verified it. Once every block was touched in this mapping the shard is `trusted` and reads
  skip all checks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from shardstore.errors import ChecksumError, FormatError
from shardstore.store import format as fmt
from shardstore.store.rawmap import FileId, file_id, map_readonly

__all__ = ["MappedShard", "ShardFacts"]


@dataclass(slots=True)
class ShardFacts:
    """What this process knows about one file identity: its parsed header and which blocks passed their hash."""

    fid: FileId
    header: fmt.ShardHeader
    stored_header_checksum: int
    verified: bytearray
    whole_file_ok: bool = False  # v1 manifests: the whole-file checksum matched (once per identity)
    bound_to: set[int] = field(default_factory=set)  # shard indices whose manifest entry this file matched


class MappedShard:
    """Numpy views of a mapped shard's sections, its per-mapping touch bitmap and its identity's facts."""

    __slots__ = (
        "block_shift",
        "facts",
        "index",
        "num_tokens",
        "offsets",
        "path",
        "payload",
        "sums",
        "tokens",
        "touched",
        "trusted",
        "used",
        "verified",
    )

    def __init__(self, index: int, path: str, view: memoryview, facts: ShardFacts) -> None:
        header = facts.header
        lay = header.layout
        self.index = index
        self.path = path
        self.facts = facts
        self.num_tokens = header.num_tokens
        self.tokens = np.frombuffer(
            view, dtype=header.dtype, count=header.num_tokens, offset=lay.payload_offset
        )
        self.offsets = np.frombuffer(
            view, dtype="<u8", count=header.num_docs + 1, offset=lay.doc_index_offset
        )
        self.sums = np.frombuffer(view, dtype="<u8", count=lay.num_blocks, offset=lay.block_sums_offset)
        self.payload = self.tokens.view(np.uint8)
        self.block_shift = (
            header.block_size // header.token_bytes
        ).bit_length() - 1  # tokens per block = 2**shift
        self.verified = facts.verified  # per file identity: survives unmap/remap of the same file
        self.touched = bytearray(lay.num_blocks)  # per mapping: the size/identity re-check at first touch
        self.trusted = lay.num_blocks == 0
        self.used = True  # CLOCK reference bit (see mapcache.ShardMaps and budget.MapBudget)

    @classmethod
    def open(
        cls,
        index: int,
        path: str,
        info: fmt.ShardRecord,
        *,
        known: ShardFacts | None,
        vouched: tuple[FileId, int] | None = None,
    ) -> MappedShard:
        """Map and check shard `index` at `path` against its manifest entry `info`.

        `known` are the facts of an earlier mapping of this index; they are reused only if the file is still the
        same (identity). `vouched` is (file identity, stored header checksum) of a file of this index checked in
        full before: if it is this file, only the header is parsed. Raises FormatError/ChecksumError naming the
        file and offset.
        """
        try:
            fd = fmt.open_regular_fd(path)
            try:
                view, fid = map_readonly(fd, source=path, expect_size=info.size)
            finally:
                os.close(fd)
        except FileNotFoundError:
            raise FormatError(f"{path}: shard listed in the manifest is missing") from None
        except OSError as exc:
            raise FormatError(f"{path}: cannot map shard: {exc}") from exc
        if known is not None and known.fid == fid:
            facts = known
        elif vouched is not None and vouched[0] == fid:
            facts = _vouched(index, path, view, fid, info, vouched[1])
        else:
            facts = _first_look(path, view, fid, info)
        if index not in facts.bound_to:
            _bind(index, path, view, facts, info)
        return cls(index, path, view, facts)

    def check_blocks(self, lo: int, hi: int) -> None:
        """Touch every payload block holding tokens [lo, hi): re-check the file, hash the block once per identity."""
        touched = self.touched
        for b in range(lo >> self.block_shift, ((hi - 1) >> self.block_shift) + 1):
            if not touched[b]:
                self._touch(b)
        if touched.count(0) == 0:
            self.trusted = True

    def _touch(self, b: int) -> None:
        try:
            now = file_id(os.stat(self.path))
        except OSError as exc:
            raise FormatError(
                f"{self.path}: shard vanished under a live mapping ({exc}); re-open the store"
            ) from None
        # Device, inode and size: a truncated or replaced file. Not ctime: the node-local cache's LRU clock
        # (utime) changes it on every use; a changed ctime only makes the next *mapping* re-verify.
        if now[:3] != self.facts.fid[:3]:
            raise FormatError(
                f"{self.path}: shard changed on disk while mapped (size {self.facts.fid.size} -> {now.size}, "
                f"inode {self.facts.fid.ino} -> {now.ino}): truncated or replaced under a reader; re-open the store"
            )
        if not self.verified[b]:
            self._verify_block(b)
        self.touched[b] = 1

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


def _first_look(path: str, view: memoryview, fid: FileId, info: fmt.ShardRecord) -> ShardFacts:
    """Header, document index and block table of a file identity seen for the first time: O(docs + blocks)."""
    facts = _header_facts(path, view, fid, info)
    header = facts.header
    lay = header.layout
    offsets = np.frombuffer(view, dtype="<u8", count=header.num_docs + 1, offset=lay.doc_index_offset)
    if fmt.checksum_bytes(offsets) != header.doc_index_checksum:
        raise ChecksumError(f"{path}: document index at offset {lay.doc_index_offset}: checksum mismatch")
    sums = view[lay.block_sums_offset : lay.file_size]
    if fmt.checksum_bytes(sums) != header.block_sums_checksum:
        raise ChecksumError(
            f"{path}: block checksum table at offset {lay.block_sums_offset}: checksum mismatch"
        )
    fmt.check_doc_index(offsets, header, source=path)
    return facts


def _vouched(
    index: int, path: str, view: memoryview, fid: FileId, info: fmt.ShardRecord, stored: int
) -> ShardFacts:
    """The facts of a file identity every byte of which was checked as shard `index` (O(1): the header only)."""
    facts = _header_facts(path, view, fid, info)
    if facts.stored_header_checksum != stored:  # cannot happen for the same identity; then check it afresh
        return _first_look(path, view, fid, info)
    facts.verified[:] = b"\x01" * len(facts.verified)
    facts.whole_file_ok = True
    facts.bound_to.add(index)
    return facts


def _header_facts(path: str, view: memoryview, fid: FileId, info: fmt.ShardRecord) -> ShardFacts:
    head = bytes(view[: fmt.HEADER_SIZE])
    header = fmt.parse_header(head, source=path)
    lay = header.layout
    if (header.num_tokens, header.num_docs, lay.file_size) != (info.num_tokens, info.num_docs, fid.size):
        raise FormatError(
            f"{path}: header counts ({header.num_tokens} tokens, {header.num_docs} docs, "
            f"{lay.file_size} bytes) differ from the manifest entry {info}"
        )
    return ShardFacts(fid, header, fmt.stored_header_checksum(head), bytearray(lay.num_blocks))


def _bind(index: int, path: str, view: memoryview, facts: ShardFacts, info: fmt.ShardRecord) -> None:
    """Prove this file is the one the manifest lists as shard `index` (not only some valid shard)."""
    expected = info.header_checksum
    if expected is not None:
        actual = f"{facts.stored_header_checksum:016x}"
        if actual != expected:
            raise ChecksumError(
                f"{path}: header checksum {actual} != {expected} that the manifest lists for shard {index}: "
                "this file is another shard (swapped, copied over, or another store's manifest); "
                "restore the store's files or rebuild it"
            )
    elif not facts.whole_file_ok:  # v1 manifest: no header checksum recorded; bind by the whole-file checksum
        actual = f"{fmt.checksum_bytes(view):016x}"
        if actual != info.checksum:
            raise ChecksumError(
                f"{path}: whole-file checksum {actual} != manifest {info.checksum} for shard {index}: this file "
                "is another shard or corrupt; restore the store's files or rebuild it"
            )
        facts.whole_file_ok = True
        facts.verified[:] = b"\x01" * len(facts.verified)  # every byte was just hashed against the manifest
    facts.bound_to.add(index)
