"""JSON Lines: 4 MiB blocks scanned by the native scanner into `PackedDocs`, other lines on the reference
path (`_jsonl_record`), see the package docstring."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import IO, Any, cast

import numpy as np

from shardstore.preprocess.inputs import (
    DocPiece,
    InputFile,
    PackedDocs,
    ReadOptions,
    SkipCounts,
    SkipReason,
)

__all__ = ["jsonl_record", "read_jsonl_blocks"]


from shardstore.preprocess.readers.streams import seek_span_start
from shardstore.preprocess.readers.utf8 import has_lone_surrogate, keep_bad_utf8

# Bytes read (decompressed) at a time: long runs of decoding, then of encoding, which evict each other's working set
# (measured: 4 MiB better than 1 MiB or 512 KiB for .zst by ~3% of the unit's CPU, 8-16 MiB no better) ...
_SCAN_BLOCK = 1 << 22
# ... and at most this much packed into one `PackedDocs` (one encode call, one shard write). Whole blocks: each call
# down the line (encode, writer, hashing, write syscall) costs ~50 us of fixed work, which at 256 KiB windows was
# 3-4% of the unit; scanning a window just before encoding it (cache-warm) did not make up for it.
_PACK_BYTES = 1 << 22
# Scan blocks kept for reuse by later reads in this process: a new 4 MiB block costs 1024 page faults and its
# zeroing, per file (glibc hands a freed block of this size back to the kernel), ~2% of a unit's CPU.
_SPARE_BLOCKS: list[bytearray] = []


def _take_block(size: int) -> bytearray:
    """A spare scan block of `size` bytes that nothing else references any more (its `PackedDocs` are gone), or a
    new one. Blocks still referenced are dropped from the spares: their holders own them."""
    while size == _SCAN_BLOCK:
        try:
            block = _SPARE_BLOCKS.pop()
        except IndexError:
            break
        if sys.getrefcount(block) == 2:  # this name and the call's argument
            return block
    return bytearray(size)


def _give_block(block: bytearray) -> None:
    if len(block) == _SCAN_BLOCK and len(_SPARE_BLOCKS) < 2:
        _SPARE_BLOCKS.append(block)


def read_jsonl_blocks(
    file: InputFile,
    stream: IO[bytes],
    options: ReadOptions,
    counts: SkipCounts,
    span: tuple[int, int] | None,
    scan: Any,
) -> Iterator[DocPiece | PackedDocs]:
    """JSON Lines in blocks: the native scan packs plain documents, other lines take `jsonl_record`.

    A yielded `PackedDocs` owns its block: a block is reused (`_take_block`) only once nothing else references it.
    The unfinished last line moves to the next block, which doubles in size while a single line does not fit, so a
    huge line is read in linear time.
    """
    from shardstore._native._jsonl import DONE, FALLBACK

    field = options.text_field.encode("utf-8")
    by_offset = span is not None  # records of a range are byte offsets (line numbers are unknown there)
    offset = 0 if span is None else seek_span_start(stream, span[0])  # file offset of buf[0]
    stop = None if span is None else span[1]
    lineno = 0  # line number of the next line (whole-file reads)
    buf = _take_block(_SCAN_BLOCK)
    fill = 0
    eof = False
    readinto = cast(Any, stream).readinto  # every stream here has it (files, zstd/gzip readers, fsspec files)
    while True:
        while not eof and fill < len(buf):
            with memoryview(buf) as view, view[fill:] as tail:
                n = readinto(tail)
            if n:
                fill += n
            else:
                eof = True
        # Lines must start before `limit`; documents are packed (and then encoded) ~_PACK_BYTES at a time.
        limit = fill if stop is None else max(0, min(fill, stop - offset))
        pos = 0
        while True:
            window = min(limit, pos + _PACK_BYTES)
            pos, reason, lines, starts, ends, records = scan(
                buf, pos, window, fill, eof, field, offset if by_offset else lineno, by_offset
            )
            if lines:
                yield PackedDocs(
                    buf,
                    np.frombuffer(starts, dtype=np.int64),
                    np.frombuffer(ends, dtype=np.int64),
                    np.frombuffer(records, dtype=np.int64),
                )
                lineno += lines
            if reason != FALLBACK:
                if reason == DONE and pos < limit:
                    continue  # the next window of this block
                break
            nl = buf.find(b"\n", pos, fill)
            end = fill if nl < 0 else nl + 1
            line = bytes(memoryview(buf)[pos:end])
            piece = jsonl_record(line, offset + pos if by_offset else lineno, file, options, counts)
            if piece is not None:
                yield piece
            lineno += 1
            pos = end
        if eof or (reason == DONE and stop is not None and offset + pos >= stop):
            _give_block(buf)
            return
        rest = fill - pos
        grown = _take_block(max(_SCAN_BLOCK, 2 * rest))
        grown[:rest] = memoryview(buf)[pos:fill]
        _give_block(buf)
        buf, fill, offset = grown, rest, offset + pos


_NO_VALUE = object()


def _fast_json_loads() -> Any:
    """`orjson.loads` when installed (about 2x faster here), else None. It rejects invalid UTF-8 and lone
    surrogates, which then take the `json` path, so results are identical with or without it."""
    try:
        import orjson
    except ImportError:
        return None
    return orjson.loads


_FAST_LOADS = _fast_json_loads()


def jsonl_record(
    line: bytes, lineno: int, file: InputFile, options: ReadOptions, counts: SkipCounts
) -> DocPiece | None:
    """The reference reading of one JSON line (the policies and counts); None when the record is skipped."""
    field_name = options.text_field
    fast = _FAST_LOADS
    obj: Any
    if fast is not None and b"\x00" not in line:
        # The common record, in as few operations as possible; anything else (including a line orjson rejects)
        # takes the full path below, which gives the same result for this case.
        try:
            obj = fast(line)
        except ValueError:
            pass
        else:
            if type(obj) is dict:
                text = obj.get(field_name)
                if type(text) is str and text:
                    return DocPiece(text, lineno)
    if b"\x00" in line:
        counts.add(SkipReason.BINARY)
        return None
    bad_at = -1
    decoded = ""
    obj = _NO_VALUE
    if fast is not None:
        try:  # strict UTF-8, no lone surrogates: anything unusual falls back to the exact slow path below
            obj = fast(line)
        except ValueError:
            obj = _NO_VALUE
    if obj is _NO_VALUE:
        if not line or line.isspace():
            counts.add(SkipReason.BLANK_LINE)
            return None
        try:
            decoded = line.decode("utf-8")
        except UnicodeDecodeError as exc:  # the policy applies only if the record is otherwise a document
            decoded, bad_at = line.decode("utf-8", "replace"), exc.start
        try:
            obj = json.loads(decoded)
        except ValueError:
            counts.add(SkipReason.MALFORMED_JSON)
            return None
    if not isinstance(obj, dict):
        counts.add(SkipReason.NOT_AN_OBJECT)
        return None
    if field_name not in obj:
        counts.add(SkipReason.MISSING_FIELD)
        return None
    text = obj[field_name]
    if not isinstance(text, str):
        counts.add(SkipReason.NOT_A_STRING)
        return None
    if bad_at >= 0 and "\ufffd" in text:
        if not keep_bad_utf8(file, lineno, bad_at, options, counts):
            return None
    elif "\\u" in decoded and has_lone_surrogate(text):  # JSON escapes can encode invalid UTF-16
        if not keep_bad_utf8(file, lineno, 0, options, counts):
            return None
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if not text:
        counts.add(SkipReason.EMPTY)
        return None
    return DocPiece(text, lineno)
