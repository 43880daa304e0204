"""Plain text: one document per file, or split on a separator; huge documents streamed in pieces cut only
where no pre-token crosses (see `shardstore.preprocess.sources`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO

from shardstore.errors import ConfigError, InputError
from shardstore.preprocess.inputs import (
    READ_BLOCK,
    DocPiece,
    InputFile,
    ReadOptions,
    SkipCounts,
    SkipReason,
    Utf8Policy,
)

__all__ = ["read_txt_split", "read_txt_whole"]


from shardstore.preprocess.readers.utf8 import Utf8Checker, decode_whole, keep_bad_utf8


def read_txt_whole(
    file: InputFile, stream: IO[bytes], options: ReadOptions, counts: SkipCounts
) -> Iterator[DocPiece]:
    """A whole file is one document; streamed in safe pieces when larger than `options.piece_chars`.

    A NUL byte (binary content) or invalid UTF-8 under the skip policy drops the document when found before the
    first piece was handed out; in a streamed document found later it raises `InputError` (the unit fails), since
    pieces already handed out cannot be taken back.
    """
    checker = Utf8Checker()
    chunks: list[str] = []  # decoded text not handed out yet; joined only when a piece is cut
    size = 0
    tail = ""  # the last 2 characters buffered, to see cut points across block boundaries
    cut_possible = False  # whether `chunks` holds a safe cut point at all
    pending: str | None = None  # a piece held back until we know whether it is the last one
    streamed = False
    while True:
        data = stream.read(READ_BLOCK)
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
            keep_bad_utf8(file, 0, checker.bad_offset or 0, options, counts)
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


def read_txt_split(
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
        data = stream.read(READ_BLOCK)
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
    text = decode_whole(data, file, record, options, counts)
    if text is None:
        return None
    return DocPiece(text, record)
