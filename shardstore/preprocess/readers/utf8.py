"""The UTF-8 policy of the readers: detect invalid UTF-8 without a second pass, and replace, skip or fail."""

from __future__ import annotations

import codecs

from shardstore.errors import InputError
from shardstore.preprocess.inputs import (
    DocPiece,
    InputFile,
    PackedDocs,
    ReadOptions,
    SkipCounts,
    SkipReason,
    Utf8Policy,
)

__all__ = ["Utf8Checker", "decode_packed", "decode_whole", "has_lone_surrogate", "keep_bad_utf8"]


# ----------------------------------------------------------------------------------------------- decoding


class Utf8Checker:
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


def decode_whole(
    data: bytes, file: InputFile, record: int, options: ReadOptions, counts: SkipCounts
) -> str | None:
    """Decode one record's bytes by the UTF-8 policy; None means the record is skipped (and counted)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if keep_bad_utf8(file, record, exc.start, options, counts):
            return data.decode("utf-8", "replace")
        return None


def decode_packed(
    packed: PackedDocs, file: InputFile, options: ReadOptions, counts: SkipCounts
) -> list[DocPiece]:
    """The documents of a packed batch that holds invalid UTF-8 (the encoder refused it), one by one under the
    UTF-8 policy: replaced, skipped (counted), or an `InputError` naming the record (the file's row or line)."""
    view = memoryview(packed.data).cast("B")
    out = []
    for a, b, r in zip(packed.starts.tolist(), packed.ends.tolist(), packed.records.tolist(), strict=True):
        text = decode_whole(bytes(view[a:b]), file, r, options, counts)
        if text is not None:
            out.append(DocPiece(text, r))
    return out


def keep_bad_utf8(
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


def has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
