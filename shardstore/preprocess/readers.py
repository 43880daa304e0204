"""Per-format readers behind `shardstore.preprocess.sources.iter_documents`: byte streams, UTF-8 policy, JSON Lines, Parquet,
plain text.

Design:
- Compressed streams are decoded here (gzip, zstd) rather than by fsspec so that truncation is detected. gzip:
  ISA-L's inflate (`isal.igzip`, ~3x zlib's speed) when installed, else the standard library's. zstd: the stream
  reader of `zstandard` silently stops at a truncated frame, so ours decompresses with it (straight into the line
  reader's buffer, the fastest way here) while a pass-through walker of the frame and block headers checks that
  the input ends between frames.
- JSON Lines are read in blocks of 4 MiB and scanned by the native `shardstore._native._jsonl.scan`: every
  line that is plainly a document (strict JSON object, valid UTF-8, the text field once, a non-empty string) has its
  text unescaped in place, and the block goes on as one `PackedDocs`. The first other line stops the scan and takes
  the reference path (`_jsonl_record`: `orjson` when installed, then the standard library, which implements the
  policies and counts), then the scan goes on; so every line is judged by one of two paths that agree, and the
  documents do not depend on which (tested line by line against the reference).
- Parquet string columns go out as `PackedDocs` over the Arrow buffers themselves (no copy, no str per row); other
  column types take the per-row path.
- Invalid UTF-8 is detected without a second pass: decode with 'replace' and compare the number of U+FFFD in the
  output with the number of encoded U+FFFD sequences in the input.
- Ranges (`span`): a byte range of an uncompressed JSON Lines file owns the lines that start inside it (the reader
  seeks to `start - 1` and skips the rest of a line already begun), so consecutive ranges partition the lines
  exactly; a Parquet span is a range of row groups.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import re
import sys
import zlib
from collections.abc import Iterator
from typing import IO, Any, cast

import numpy as np

from shardstore.errors import ConfigError, InputError
from shardstore.preprocess.sources import (
    _BLOCK,
    Compression,
    DocPiece,
    InputFile,
    InputFormat,
    PackedDocs,
    ReadOptions,
    SkipCounts,
    SkipReason,
    Utf8Policy,
)
from shardstore.preprocess.zstdio import ZstdReader
from shardstore.util.fsurl import is_url, url_to_fs

__all__ = ["read_batches"]


# ----------------------------------------------------------------------------------------------- byte streams

_STREAM_BUFFER = 1 << 16


def _open_raw(file: InputFile, options: ReadOptions) -> IO[bytes]:
    if is_url(file.url):
        fs, path = url_to_fs(file.url, options.storage_options)
        try:
            return fs.open(path, "rb")
        except OSError as exc:
            raise InputError(f"cannot open {file.url!r}: {exc}") from exc
    try:
        if file.format is InputFormat.PARQUET:
            import pyarrow as pa

            # Arrow's own file reads into Arrow's memory pool, which keeps its pages; through a Python file every
            # column chunk was a new bytes object, ~2,700 page faults per 17 MB file.
            return cast(IO[bytes], pa.OSFile(file.url))
        # A small buffer: the block readers' reads (>= it) go straight into their own buffers, no extra copy.
        return open(file.url, "rb", buffering=_STREAM_BUFFER)
    except OSError as exc:
        raise InputError(f"cannot open {file.url!r}: {exc}") from exc


def _gzip_module() -> Any:
    """`isal.igzip` (ISA-L's inflate, ~3x zlib's speed here: 0.7 -> 2.2 GB/s of output) when installed, else the
    standard library's `gzip`; the same file API and the same errors for truncation and CRC mismatches."""
    try:
        from isal import igzip
    except ImportError:
        return gzip
    return igzip


def _read_errors() -> tuple[type[BaseException], ...]:
    """What reading a (compressed) stream raises on truncated or corrupt input: OSError, EOFError, zlib's error and
    `isal`'s own."""
    try:
        from isal import isal_zlib
    except ImportError:
        return (OSError, EOFError, zlib.error)
    return (OSError, EOFError, zlib.error, cast(type[BaseException], isal_zlib.error))  # stubs: an instance


def _open_stream(file: InputFile, raw: IO[bytes]) -> IO[bytes]:
    if file.compression is Compression.GZIP:
        return cast(IO[bytes], _gzip_module().GzipFile(fileobj=raw, mode="rb"))
    if file.compression is Compression.ZSTD:
        return io.BufferedReader(ZstdReader(raw, file.url), buffer_size=_STREAM_BUFFER)
    return raw


# ----------------------------------------------------------------------------------------------- decoding


class _Utf8Checker:
    """Decodes blocks of one document with 'replace' and tells whether any byte sequence was invalid.

    A replacement character in the output is a real U+FFFD of the input unless the output has more of them than
    the input has encoded U+FFFD sequences (EF BF BD), which is counted across block boundaries.
    """

    __slots__ = ("_dec", "_fffd_in", "_fffd_out", "_tail", "bad_offset", "offset")

    def __init__(self) -> None:
        self._dec = codecs.getincrementaldecoder("utf-8")("replace")
        self._tail = b""
        self._fffd_in = 0
        self._fffd_out = 0
        self.offset = 0
        self.bad_offset: int | None = None

    def decode(self, data: bytes, final: bool = False) -> str:
        text = self._dec.decode(data, final)
        n_out = text.count("\ufffd")
        if n_out:
            self._fffd_out += n_out
            self._fffd_in += (self._tail + data).count(b"\xef\xbf\xbd")
            if self.bad_offset is None and self._fffd_out > self._fffd_in:
                self.bad_offset = self.offset + _first_invalid(data)
        self._tail = data[-2:]
        self.offset += len(data)
        return text

    @property
    def invalid(self) -> bool:
        return self._fffd_out > self._fffd_in


def _first_invalid(data: bytes) -> int:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return 0


def _decode_whole(
    data: bytes, file: InputFile, record: int, options: ReadOptions, counts: SkipCounts
) -> str | None:
    """Decode one record's bytes by the UTF-8 policy; None means the record is skipped (and counted)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if _keep_bad_utf8(file, record, exc.start, options, counts):
            return data.decode("utf-8", "replace")
        return None


def _keep_bad_utf8(
    file: InputFile, record: int, offset: int, options: ReadOptions, counts: SkipCounts
) -> bool:
    """Apply the UTF-8 policy to a record with invalid bytes: True = keep it with U+FFFD, False = skip it."""
    policy = options.utf8_errors
    if policy is Utf8Policy.FAIL:
        raise InputError(
            f"{file.url}: invalid UTF-8 in record {record} at byte {offset} of the record "
            "(use utf8_errors='replace' or 'skip' to keep going)"
        )
    if policy is Utf8Policy.SKIP:
        counts.add(SkipReason.INVALID_UTF8)
        return False
    counts.add(SkipReason.INVALID_UTF8_REPLACED)
    return True


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# ----------------------------------------------------------------------------------------------- readers


def read_batches(
    file: InputFile, options: ReadOptions, counts: SkipCounts, *, span: tuple[int, int] | None = None
) -> Iterator[DocPiece | PackedDocs]:
    """See `shardstore.preprocess.sources.iter_batches`."""
    if span is not None and not (
        file.format is InputFormat.PARQUET
        or (file.format is InputFormat.JSONL and file.compression is Compression.NONE)
    ):
        raise ConfigError(f"{file.url}: only uncompressed JSON Lines and Parquet files can be read in ranges")
    raw = _open_raw(file, options)
    try:
        if file.format is InputFormat.PARQUET:
            yield from _read_parquet(file, raw, options, counts, span)
            return
        stream = _open_stream(file, raw)
        try:
            if file.format is InputFormat.JSONL:
                scan = _native_scan()
                if scan is not None:
                    yield from _read_jsonl_blocks(file, stream, options, counts, span, scan)
                else:
                    lines = enumerate(stream) if span is None else _span_lines(stream, *span)
                    for lineno, line in lines:
                        piece = _jsonl_record(line, lineno, file, options, counts)
                        if piece is not None:
                            yield piece
            elif options.split_on is not None:
                yield from _read_txt_split(file, stream, options, counts)
            else:
                yield from _read_txt_whole(file, stream, options, counts)
        except _read_errors() as exc:
            raise InputError(f"{file.url}: cannot read to the end ({type(exc).__name__}: {exc})") from exc
        finally:
            if stream is not raw:
                stream.close()
    finally:
        raw.close()


def _seek_span_start(stream: IO[bytes], start: int) -> int:
    """Position the stream at the first line that starts at or after `start`; returns that offset."""
    if start > 0:
        stream.seek(start - 1)
        if stream.read(1) != b"\n":
            stream.readline()  # a line begun before `start` belongs to the previous range
    return stream.tell()


def _span_lines(stream: IO[bytes], start: int, stop: int) -> Iterator[tuple[int, bytes]]:
    """(byte offset, line) for every line that starts in [start, stop)."""
    pos = _seek_span_start(stream, start)
    while pos < stop:
        line = stream.readline()
        if not line:
            return
        yield pos, line
        pos += len(line)


def _native_scan() -> Any:
    """The native JSON Lines scanner, or None when the extension is not built (the per-line path then reads)."""
    try:
        from shardstore._native._jsonl import scan
    except ImportError:
        return None
    return scan


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


def _read_jsonl_blocks(
    file: InputFile,
    stream: IO[bytes],
    options: ReadOptions,
    counts: SkipCounts,
    span: tuple[int, int] | None,
    scan: Any,
) -> Iterator[DocPiece | PackedDocs]:
    """JSON Lines in blocks: the native scan packs plain documents, other lines take `_jsonl_record`.

    A yielded `PackedDocs` owns its block: a block is reused (`_take_block`) only once nothing else references it.
    The unfinished last line moves to the next block, which doubles in size while a single line does not fit, so a
    huge line is read in linear time.
    """
    from shardstore._native._jsonl import DONE, FALLBACK

    field = options.text_field.encode("utf-8")
    by_offset = span is not None  # records of a range are byte offsets (line numbers are unknown there)
    offset = 0 if span is None else _seek_span_start(stream, span[0])  # file offset of buf[0]
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
            piece = _jsonl_record(line, offset + pos if by_offset else lineno, file, options, counts)
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


def _jsonl_record(
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
        if not _keep_bad_utf8(file, lineno, bad_at, options, counts):
            return None
    elif "\\u" in decoded and _has_lone_surrogate(text):  # JSON escapes can encode invalid UTF-16
        if not _keep_bad_utf8(file, lineno, 0, options, counts):
            return None
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if not text:
        counts.add(SkipReason.EMPTY)
        return None
    return DocPiece(text, lineno)


_PARQUET_BATCH = 512  # rows per record batch: ~1.5 MB of text for 3 KB documents, encoded while cache-warm


def _read_parquet(
    file: InputFile, raw: IO[bytes], options: ReadOptions, counts: SkipCounts, span: tuple[int, int] | None
) -> Iterator[DocPiece | PackedDocs]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    column = options.text_field
    try:
        pf = pq.ParquetFile(raw)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InputError(f"{file.url}: not a readable Parquet file ({exc})") from exc
    names = pf.schema_arrow.names
    if column not in names:
        raise InputError(
            f"{file.url}: no column {column!r} (columns: {names}); pass text_field=/--text-field"
        )
    groups = list(range(pf.num_row_groups)) if span is None else list(range(*span))
    if groups and not 0 <= groups[0] <= groups[-1] < pf.num_row_groups:
        raise InputError(
            f"{file.url}: row groups {span} are outside 0..{pf.num_row_groups - 1} (file changed?)"
        )
    row = sum(pf.metadata.row_group(g).num_rows for g in range(groups[0])) if groups else 0
    try:
        for batch in pf.iter_batches(
            columns=[column], batch_size=_PARQUET_BATCH, row_groups=groups, use_threads=False
        ):
            col = batch.column(0)
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                packed = _pack_strings(col, row, counts)
                row += len(col)
                if packed is not None:
                    yield packed
                continue
            for value in col.to_pylist():
                record = row
                row += 1
                if (
                    type(value) is str and value
                ):  # the common case first; the checks below give the same result
                    yield DocPiece(value, record)
                    continue
                if value is None:
                    counts.add(SkipReason.MISSING_FIELD)
                    continue
                if isinstance(value, bytes):
                    if b"\x00" in value:
                        counts.add(SkipReason.BINARY)
                        continue
                    value = _decode_whole(value, file, record, options, counts)
                    if value is None:
                        continue
                elif not isinstance(value, str):
                    counts.add(SkipReason.NOT_A_STRING)
                    continue
                if not value:
                    counts.add(SkipReason.EMPTY)
                    continue
                yield DocPiece(value, record)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{file.url}: Parquet read failed after row {row} ({exc})") from exc


def _pack_strings(col: Any, row: int, counts: SkipCounts) -> PackedDocs | None:
    """The non-empty, non-null values of an Arrow string / large_string array as `PackedDocs` over its own buffers
    (row numbers from `row`); nulls count as a missing field and empty strings as empty documents, as per row."""
    import pyarrow as pa

    n = len(col)
    if n == 0:
        return None
    _, offsets_buf, data = col.buffers()
    width = 8 if pa.types.is_large_string(col.type) else 4
    offsets: np.ndarray[Any, np.dtype[np.int64]] = np.frombuffer(
        offsets_buf, dtype=np.int64 if width == 8 else np.int32, count=n + 1, offset=col.offset * width
    ).astype(np.int64)
    keep = offsets[1:] > offsets[:-1]
    if col.null_count:
        valid = col.is_valid().to_numpy(zero_copy_only=False)
        counts.add(SkipReason.MISSING_FIELD, col.null_count)
        empty = int(np.count_nonzero(valid & ~keep))
        keep &= valid
    else:
        empty = n - int(np.count_nonzero(keep))
    if empty:
        counts.add(SkipReason.EMPTY, empty)
    index = np.flatnonzero(keep)
    if index.size == 0:
        return None
    if index.size == n:
        return PackedDocs(data, offsets[:-1], offsets[1:], np.arange(row, row + n, dtype=np.int64))
    return PackedDocs(data, offsets[:-1][index], offsets[1:][index], row + index.astype(np.int64))


def _read_txt_whole(
    file: InputFile, stream: IO[bytes], options: ReadOptions, counts: SkipCounts
) -> Iterator[DocPiece]:
    """A whole file is one document; streamed in safe pieces when larger than `options.piece_chars`.

    A NUL byte (binary content) or invalid UTF-8 under the skip policy drops the document when found before the
    first piece was handed out; in a streamed document found later it raises `InputError` (the unit fails), since
    pieces already handed out cannot be taken back.
    """
    checker = _Utf8Checker()
    chunks: list[str] = []  # decoded text not handed out yet; joined only when a piece is cut
    size = 0
    tail = ""  # the last 2 characters buffered, to see cut points across block boundaries
    cut_possible = False  # whether `chunks` holds a safe cut point at all
    pending: str | None = None  # a piece held back until we know whether it is the last one
    streamed = False
    while True:
        data = stream.read(_BLOCK)
        final = not data
        if b"\x00" in data:
            if streamed:
                raise InputError(
                    f"{file.url}: NUL byte near byte {checker.offset}: binary content in a text file"
                )
            counts.add(SkipReason.BINARY)
            return
        text = checker.decode(data, final)
        if checker.invalid and options.utf8_errors is not Utf8Policy.REPLACE:
            if streamed and options.utf8_errors is Utf8Policy.SKIP:
                raise InputError(
                    f"{file.url}: invalid UTF-8 at byte {checker.bad_offset} of a document streamed in pieces; "
                    "it cannot be skipped any more (use utf8_errors='replace')"
                )
            _keep_bad_utf8(file, 0, checker.bad_offset or 0, options, counts)
            return
        if text:
            cut_possible = cut_possible or _CUT.search(tail + text) is not None
            tail = (tail + text)[-2:]
            chunks.append(text)
            size += len(text)
        # Text without any cut point is held whole (no safe place to split it); everything else is cut near
        # `piece_chars`. Joining only when cutting and searching only new text keeps this linear in the size.
        while size > options.piece_chars and cut_possible:
            buf = "".join(chunks)
            cut = _safe_cut(buf, options.piece_chars)
            if cut is None:
                found = _CUT.search(buf, options.piece_chars)
                cut = None if found is None else found.start() + 1
            if cut is None:  # pragma: no cover - cut_possible said there is one
                chunks, cut_possible = [buf], False
                break
            if pending is not None:
                streamed = True
                yield DocPiece(pending, 0, last=False)
            pending, rest = buf[:cut], buf[cut:]
            chunks, size = [rest], len(rest)
            cut_possible = _CUT.search(rest) is not None
        if final:
            break
    buf = "".join(chunks)
    if checker.invalid:
        counts.add(SkipReason.INVALID_UTF8_REPLACED)
    if pending is not None:
        yield DocPiece(pending, 0, last=False)
    elif not buf:
        counts.add(SkipReason.EMPTY)
        return
    yield DocPiece(buf, 0, last=True)


_CUT = re.compile("[A-Za-z] (?=[A-Za-z])")  # a safe cut point is right after the letter of a match


def _is_ascii_letter(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def _safe_cut(buf: str, target: int) -> int | None:
    """Largest index i <= target with buf[i-1], buf[i+1] ASCII letters and buf[i] == ' ', or None."""
    end = min(target, len(buf) - 2)
    while True:
        i = buf.rfind(" ", 1, end + 1)
        if i <= 0:
            return None
        if _is_ascii_letter(buf[i - 1]) and _is_ascii_letter(buf[i + 1]):
            return i
        end = i - 1


def _read_txt_split(
    file: InputFile, stream: IO[bytes], options: ReadOptions, counts: SkipCounts
) -> Iterator[DocPiece]:
    """`--split-on SEP`: each separator-delimited part is a document (record = part index)."""
    sep = options.split_on
    if sep is None:  # pragma: no cover - dispatch guarantees it
        raise ConfigError("split_on is required here")
    sep_bytes = sep.encode("utf-8")
    buf = bytearray()
    record = 0
    eof = False
    while not eof:
        data = stream.read(_BLOCK)
        eof = not data
        # Only bytes new in this block (plus a separator's overlap) can hold a new separator: re-splitting the whole
        # buffer every block would be quadratic in the size of a long part.
        seen = max(0, len(buf) - len(sep_bytes) + 1)
        buf += data
        if not eof and buf.find(sep_bytes, seen) < 0:
            continue
        parts = bytes(buf).split(sep_bytes)
        buf = bytearray() if eof else bytearray(parts.pop())
        if eof and parts and not parts[-1]:
            parts.pop()  # a separator at the very end does not start another (empty) document
        for part in parts:
            doc = _txt_part(part, file, record, options, counts)
            record += 1
            if doc is not None:
                yield doc


def _txt_part(
    data: bytes, file: InputFile, record: int, options: ReadOptions, counts: SkipCounts
) -> DocPiece | None:
    if not data:
        counts.add(SkipReason.EMPTY)
        return None
    if b"\x00" in data:
        counts.add(SkipReason.BINARY)
        return None
    text = _decode_whole(data, file, record, options, counts)
    if text is None:
        return None
    return DocPiece(text, record)
