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

from collections.abc import Iterator
from typing import Any

from shardstore.errors import ConfigError, InputError
from shardstore.preprocess.inputs import (
    Compression,
    DocPiece,
    InputFile,
    InputFormat,
    PackedDocs,
    ReadOptions,
    SkipCounts,
)
from shardstore.preprocess.readers.jsonl import jsonl_record, read_jsonl_blocks
from shardstore.preprocess.readers.parquet import read_parquet
from shardstore.preprocess.readers.streams import open_raw, open_stream, read_errors, span_lines
from shardstore.preprocess.readers.txt import read_txt_split, read_txt_whole

# ----------------------------------------------------------------------------------------------- readers


def _native_scan() -> Any:
    """The native JSON Lines scanner (a seam: tests swap in None to run the per-line reference path)."""
    from shardstore._native._jsonl import scan

    return scan


def read_batches(
    file: InputFile,
    options: ReadOptions,
    counts: SkipCounts,
    *,
    span: tuple[int, int] | None = None,
    digest: Any = None,
) -> Iterator[DocPiece | PackedDocs]:
    """See `shardstore.preprocess.sources.iter_batches` (`digest`: an `inputdigest.InputDigest` fed the raw bytes
    of non-Parquet inputs as they are read)."""
    if span is not None and not (
        file.format is InputFormat.PARQUET
        or (file.format is InputFormat.JSONL and file.compression is Compression.NONE)
    ):
        raise ConfigError(f"{file.url}: only uncompressed JSON Lines and Parquet files can be read in ranges")
    raw = open_raw(file, options)
    try:
        if file.format is InputFormat.PARQUET:
            yield from read_parquet(file, raw, options, counts, span)
            return
        if digest is not None:
            raw = digest.wrap(raw)
        stream = open_stream(file, raw)
        try:
            if file.format is InputFormat.JSONL:
                scan = _native_scan()
                if scan is not None:
                    yield from read_jsonl_blocks(file, stream, options, counts, span, scan)
                else:
                    lines = enumerate(stream) if span is None else span_lines(stream, *span)
                    for lineno, line in lines:
                        piece = jsonl_record(line, lineno, file, options, counts)
                        if piece is not None:
                            yield piece
            elif options.split_on is not None:
                yield from read_txt_split(file, stream, options, counts)
            else:
                yield from read_txt_whole(file, stream, options, counts)
        except read_errors() as exc:
            raise InputError(f"{file.url}: cannot read to the end ({type(exc).__name__}: {exc})") from exc
        finally:
            if stream is not raw:
                stream.close()
    finally:
        raw.close()
