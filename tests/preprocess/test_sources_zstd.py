"""zstd input: the fast stream reader plus the frame walker decode every kind of frame layout, and a stream cut
anywhere except between frames is reported as truncated (the stream reader alone would stop silently)."""

from __future__ import annotations

import io
import random
import struct

import pytest
import zstandard

from shardstore.errors import InputError
from shardstore.preprocess.zstdio import ZstdReader


def _read_all(blob: bytes) -> bytes:
    reader = io.BufferedReader(ZstdReader(io.BytesIO(blob), "t.jsonl.zst"), buffer_size=4096)
    return reader.read()


def _payload(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    words = [bytes(rng.choices(b"abcdefgh ", k=rng.randint(1, 9))) for _ in range(200)]
    return b"\n".join(rng.choice(words) for _ in range(n))


def _frames() -> list[tuple[str, bytes, bytes]]:
    """(what, frame bytes, decompressed bytes) for frame headers with and without size, checksum, several blocks."""
    out = []
    big = _payload(60_000, 1) + bytes(
        random.Random(2).randbytes(200_000)
    )  # > 128 KiB: several blocks, raw ones
    for what, comp in [
        ("plain", zstandard.ZstdCompressor()),
        ("checksum", zstandard.ZstdCompressor(write_checksum=True)),
        ("no size", zstandard.ZstdCompressor(write_content_size=False)),
        ("level 19", zstandard.ZstdCompressor(level=19, write_checksum=True)),
    ]:
        out.append((what, comp.compress(big), big))
    stream = io.BytesIO()
    with zstandard.ZstdCompressor(write_checksum=True).stream_writer(stream, closefd=False) as w:
        w.write(big[:1000])
        w.flush(zstandard.FLUSH_BLOCK)
        w.write(b"\x00" * 5000)  # an RLE-friendly run
    out.append(("streamed", stream.getvalue(), big[:1000] + b"\x00" * 5000))
    out.append(("empty", zstandard.ZstdCompressor().compress(b""), b""))
    out.append(("skippable", struct.pack("<II", 0x184D2A53, 5) + b"hello", b""))
    return out


def test_every_frame_layout_decodes_exactly():
    frames = _frames()
    for what, blob, data in frames:
        assert _read_all(blob) == data, what
    assert _read_all(b"".join(f[1] for f in frames)) == b"".join(f[2] for f in frames)
    assert _read_all(b"") == b""


def test_a_cut_anywhere_but_between_frames_is_truncation():
    small = [
        zstandard.ZstdCompressor(write_checksum=c).compress(_payload(300, s))
        for s, c in ((3, True), (4, False))
    ]
    skip = struct.pack("<II", 0x184D2A50, 3) + b"abc"
    blob = small[0] + skip + small[1]
    boundaries = {0, len(small[0]), len(small[0]) + len(skip), len(blob)}
    for cut in range(len(blob) + 1):
        if cut in boundaries:
            _read_all(blob[:cut])
        else:
            with pytest.raises(InputError, match=r"t\.jsonl\.zst: (truncated|corrupt)"):
                _read_all(blob[:cut])


def test_garbage_after_a_frame_is_corrupt_data():
    blob = zstandard.ZstdCompressor().compress(b"abc\n") + b"not zstd at all"
    with pytest.raises(InputError, match="corrupt zstd data"):
        _read_all(blob)
