"""zstd input streams that detect truncation, for `shardstore.preprocess.readers`.

`zstandard`'s stream reader is the fastest way to decompress here (straight into the caller's buffer), but it
silently stops at a truncated frame. `ZstdReader` therefore feeds it through `ZstdFrameWalker`, a pass-through reader
that follows the frame structure (frame headers, block headers, checksums, skippable frames; RFC 8878) without
decompressing and checks at the end that the input stopped between frames. Corrupt data raises `InputError` too.
"""

from __future__ import annotations

import io
from typing import IO, Any, cast

from shardstore.errors import InputError

__all__ = ["ZstdFrameWalker", "ZstdReader"]

_READ_SIZE = 1 << 20


class ZstdFrameWalker:
    """A pass-through reader of a zstd byte stream that follows its frame structure (frame headers, block headers,
    skippable frames) without decompressing, so that the end of the input can be checked to fall on a frame
    boundary: `zstandard`'s stream reader, which is otherwise the fastest way to decompress here, silently stops at
    a truncated frame. Costs a few Python operations per block (<= 128 KiB), nothing per byte."""

    _MAGIC, _FHD, _BLOCK, _SKIPSIZE = range(4)
    _DID_BYTES = (0, 1, 2, 4)
    _FCS_BYTES = (0, 2, 4, 8)

    def __init__(self, raw: IO[bytes], name: str) -> None:
        self._raw = raw
        self._name = name
        self._state = self._MAGIC
        self._want = 4  # header bytes the current state needs
        self._buf = bytearray()
        self._skip = 0  # payload bytes to pass over before the next header
        self._checksum = False
        self.offset = 0  # compressed bytes seen

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if data:
            self._feed(data)
        return data

    def check_end(self) -> None:
        if self._state != self._MAGIC or self._buf or self._skip:
            raise InputError(
                f"{self._name}: truncated zstd stream (the last frame never ends; {self.offset} compressed bytes)"
            )

    def _feed(self, data: bytes) -> None:
        pos, n = 0, len(data)
        while pos < n:
            if self._skip:
                take = min(self._skip, n - pos)
                self._skip -= take
                pos += take
                continue
            take = min(self._want - len(self._buf), n - pos)
            self._buf += data[pos : pos + take]
            pos += take
            if len(self._buf) == self._want:
                self._header(self.offset + pos - self._want)
        self.offset += n

    def _header(self, at: int) -> None:
        value = int.from_bytes(self._buf, "little")
        self._buf = bytearray()
        if self._state == self._MAGIC:
            if value == 0xFD2FB528:
                self._state, self._want = self._FHD, 1
            elif 0x184D2A50 <= value <= 0x184D2A5F:  # skippable frame
                self._state, self._want = self._SKIPSIZE, 4
            else:
                raise InputError(f"{self._name}: corrupt zstd data: no frame magic at compressed byte {at}")
        elif self._state == self._FHD:
            single = (value >> 5) & 1
            if value & 0x08:
                raise InputError(
                    f"{self._name}: corrupt zstd data: reserved bit set in frame header at byte {at}"
                )
            self._checksum = bool(value & 0x04)
            fcs = self._FCS_BYTES[value >> 6] or single  # flag 0 means 1 byte with Single_Segment, else none
            self._skip = (0 if single else 1) + self._DID_BYTES[value & 3] + fcs
            self._state, self._want = self._BLOCK, 3
        elif self._state == self._BLOCK:
            kind, size = (value >> 1) & 3, value >> 3
            if kind == 3:
                raise InputError(
                    f"{self._name}: corrupt zstd data: reserved block type at compressed byte {at}"
                )
            self._skip = 1 if kind == 1 else size  # an RLE block stores its one byte
            if value & 1:  # last block of the frame; then its optional content checksum
                self._skip += 4 if self._checksum else 0
                self._state, self._want = self._MAGIC, 4
        else:  # skippable frame size
            self._skip = value
            self._state, self._want = self._MAGIC, 4


class ZstdReader(io.RawIOBase):
    """Streaming zstd decoder over possibly several concatenated frames that raises on truncation.

    Decompresses with `zstandard`'s stream reader straight into the caller's buffer (no intermediate bytes objects:
    about 1.5x the throughput of `decompressobj` here), and checks through `ZstdFrameWalker` that the input ends
    on a frame boundary."""

    def __init__(self, raw: IO[bytes], name: str) -> None:
        import zstandard

        self._name = name
        self._zstd = zstandard
        self._walker = ZstdFrameWalker(raw, name)
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            cast(IO[bytes], self._walker), read_size=_READ_SIZE, read_across_frames=True, closefd=False
        )
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._done:
            return 0
        try:
            n = self._reader.readinto(buffer)
        except self._zstd.ZstdError as exc:
            raise InputError(f"{self._name}: corrupt zstd data: {exc}") from exc
        if not n:
            self._walker.check_end()
            self._done = True
        return int(n)
