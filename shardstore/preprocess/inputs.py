"""The input types of preprocessing: formats, compression, the UTF-8 policy, skip reasons, files, read options and
the documents the readers yield (see `shardstore.preprocess.sources` for how they are used).

Kept apart from `sources` (expansion and entry points) and `readers/` (one module per format) so that both import
these types and neither imports the other's internals.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from shardstore.errors import ConfigError
from shardstore.preprocess.modes import Utf8Policy
from shardstore.util.modes import parse_mode

__all__ = [
    "READ_BLOCK",
    "Compression",
    "DocPiece",
    "InputFile",
    "InputFormat",
    "PackedDocs",
    "ReadOptions",
    "SkipCounts",
    "SkipReason",
    "Utf8Policy",
    "detect_format",
]

READ_BLOCK = 1 << 20  # bytes per read() of a plain stream


class InputFormat(StrEnum):
    TXT = "txt"
    JSONL = "jsonl"
    PARQUET = "parquet"


class Compression(StrEnum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


class SkipReason(StrEnum):
    """Reasons a record of input did not become a document (or was altered), as counted in reports."""

    EMPTY = "empty_document"
    BLANK_LINE = "blank_line"
    MALFORMED_JSON = "malformed_json"
    NOT_AN_OBJECT = "json_not_an_object"
    MISSING_FIELD = "missing_text_field"
    NOT_A_STRING = "text_not_a_string"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_UTF8_REPLACED = "invalid_utf8_replaced"  # kept, with replacement characters
    BINARY = "binary_content"


class SkipCounts(dict[str, int]):
    """Per-reason counters (reason value -> count)."""

    def add(self, reason: SkipReason, n: int = 1) -> None:
        self[reason.value] = self.get(reason.value, 0) + n

    def merge(self, other: Mapping[str, int]) -> None:
        for key, value in other.items():
            self[key] = self.get(key, 0) + int(value)


_SUFFIXES: tuple[tuple[str, InputFormat, Compression], ...] = (
    (".jsonl.zst", InputFormat.JSONL, Compression.ZSTD),
    (".jsonl.zstd", InputFormat.JSONL, Compression.ZSTD),
    (".jsonl.gz", InputFormat.JSONL, Compression.GZIP),
    (".jsonl", InputFormat.JSONL, Compression.NONE),
    (".ndjson", InputFormat.JSONL, Compression.NONE),
    (".txt.zst", InputFormat.TXT, Compression.ZSTD),
    (".txt.gz", InputFormat.TXT, Compression.GZIP),
    (".txt", InputFormat.TXT, Compression.NONE),
    (".parquet", InputFormat.PARQUET, Compression.NONE),
)


def detect_format(path: str) -> tuple[InputFormat, Compression] | None:
    """(format, compression) from the file name suffix, or None if the suffix is not a supported input."""
    lower = path.lower()
    for suffix, fmt, comp in _SUFFIXES:
        if lower.endswith(suffix):
            return fmt, comp
    return None


@dataclass(frozen=True, slots=True)
class InputFile:
    """One input file: its URL or path (as spelled by the user's argument), size in bytes and format."""

    url: str
    size: int
    format: InputFormat
    compression: Compression


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How to read inputs. `storage_options` go to fsspec for URLs (e.g. s3fs credentials and endpoint)."""

    text_field: str = "text"
    split_on: str | None = None
    utf8_errors: Utf8Policy = Utf8Policy.REPLACE
    piece_chars: int = 8 << 20
    storage_options: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.text_field:
            raise ConfigError("text_field must be a non-empty column/field name, got ''")
        if self.split_on == "":
            raise ConfigError("split_on must be a non-empty separator or None (whole file = one document)")
        object.__setattr__(self, "utf8_errors", parse_mode(Utf8Policy, self.utf8_errors, name="utf8_errors"))
        if self.piece_chars < 1024:
            raise ConfigError(f"piece_chars={self.piece_chars} is too small; use at least 1024")


@dataclass(frozen=True, slots=True)
class DocPiece:
    """Text of (part of) a document. `record` is the 0-based line / row / piece index inside its file."""

    text: str
    record: int
    last: bool = True  # False while more pieces of the same document follow


@dataclass(frozen=True, slots=True, eq=False)
class PackedDocs:
    """Whole documents side by side in one buffer: document i is the UTF-8 text `data[starts[i]:ends[i]]` of record
    `records[i]`. The buffer belongs to this object (a reader reuses a buffer only once nothing references it any
    more: no PackedDocs, array or view of it); the int64 arrays are read-only."""

    data: Any  # a bytes-like object: bytearray, bytes, pyarrow.Buffer
    starts: np.ndarray
    ends: np.ndarray
    records: np.ndarray

    def __len__(self) -> int:
        return int(self.starts.size)

    @property
    def nbytes(self) -> int:
        """UTF-8 bytes of text in all the documents."""
        return int((self.ends - self.starts).sum())

    def pieces(self) -> Iterator[DocPiece]:
        view = memoryview(self.data).cast("B")
        for a, b, r in zip(self.starts.tolist(), self.ends.tolist(), self.records.tolist(), strict=True):
            yield DocPiece(str(view[a:b], "utf-8"), r)
