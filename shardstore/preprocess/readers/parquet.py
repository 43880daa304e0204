"""Parquet: string columns as `PackedDocs` over the Arrow buffers (no copy, no str per row); other column
types per row; a span is a range of row groups.

Arrow does not check that Parquet strings are UTF-8. The encoder does, at no extra cost: a packed batch with invalid
bytes raises `InvalidUtf8Error` before anything is written, and the unit then applies the UTF-8 policy to that
batch row by row (`readers.utf8.decode_packed`), with the file's row numbers. (Checking each batch here with
Arrow's `validate(full=True)` cost 6 ms per 1.8 MB of mixed-script text, 0.3 GB/s: a fifth of encoding it.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import numpy as np

from shardstore.errors import InputError
from shardstore.preprocess.inputs import (
    DocPiece,
    InputFile,
    PackedDocs,
    ReadOptions,
    SkipCounts,
    SkipReason,
)

__all__ = ["read_parquet"]


from shardstore.preprocess.readers.utf8 import decode_whole

_PARQUET_BATCH = 512  # rows per record batch: ~1.5 MB of text for 3 KB documents, encoded while cache-warm


def read_parquet(
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
                    value = decode_whole(value, file, record, options, counts)
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
