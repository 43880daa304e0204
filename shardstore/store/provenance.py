"""Per-document provenance: which input file and which record (line / row / part) every document came from.

Layout inside a store (all listed in the manifest as auxiliary files, so `verify` covers them):

    provenance/units.json              one entry per work unit: url, record kind, first global doc index, doc count
    provenance/unit-000042.parquet     per unit (row i = the unit's i-th document): `record` (int64) and
                                       `text_bytes` (uint64, the document's text in UTF-8 bytes as it was read)

Design: a unit's documents are contiguous in the store (units are laid out in unit order), so a document index maps
to its unit by bisection over `first_doc`, then to its record by one Parquet row. Per-unit files keep the build
embarrassingly parallel (no global merge at finalize: 16 bytes per document before compression, written by the
worker that made the documents) and let `read_provenance` touch one small file. Files are deterministic (no
timestamps), written with temp + fsync + rename, journaled with their checksum by the unit and listed in the
manifest, so the text sizes share the record column's crash safety and integrity. Stores built before the `text_bytes` column existed have
only `record`: `read_text_bytes` then returns None.
"""

from __future__ import annotations

import bisect
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shardstore.errors import FormatError
from shardstore.util.durable import atomic_write

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "TEXT_BYTES_COLUMN",
    "UNITS_FILE",
    "ProvenanceUnit",
    "read_provenance",
    "read_text_bytes",
    "read_units",
    "unit_file_name",
    "write_unit_provenance",
]

UNITS_FILE = "provenance/units.json"
TEXT_BYTES_COLUMN = "text_bytes"


def unit_file_name(index: int) -> str:
    return f"provenance/unit-{index:06d}.parquet"


def write_unit_provenance(
    out: str, index: int, url: str, records: Sequence[int], text_bytes: Sequence[int]
) -> str:
    """Durably write one unit's record and text-size columns; returns the store-relative file name."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(text_bytes) != len(records):
        raise ValueError(f"{len(records)} records but {len(text_bytes)} text sizes")
    name = unit_file_name(index)
    path = os.path.join(out, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    columns = {
        "record": pa.array(np.asarray(records, dtype=np.int64)),
        TEXT_BYTES_COLUMN: pa.array(np.asarray(text_bytes, dtype=np.uint64)),
    }
    table = pa.table(columns).replace_schema_metadata({"url": url, "unit": str(index)})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", write_statistics=False)
    atomic_write(path, sink.getvalue().to_pybytes())
    return name


def _aux_path(store: Any, name: str) -> str | None:
    """Local path of a store's auxiliary file, for a Store object or a local store directory."""
    if isinstance(store, str | os.PathLike):
        path = os.path.join(os.fspath(store), name)
        return path if os.path.exists(path) else None
    manifest = getattr(store, "manifest", None)
    if manifest is not None and manifest.file(name) is None:
        return None
    for attr in ("file_path", "aux_path"):
        fn = getattr(store, attr, None)
        if callable(fn):
            return str(fn(name))
    locator = getattr(store, "locator", None) or getattr(store, "_locator", None)
    if locator is not None:
        return str(locator.file_path(name))
    root = getattr(store, "path", None) or getattr(store, "root", None)
    if root is None:
        return None
    path = os.path.join(str(root), name)
    return path if os.path.exists(path) else None


@dataclass(frozen=True, slots=True)
class ProvenanceUnit:
    """One entry of `provenance/units.json`: a work unit's input file and its documents' place in the store."""

    unit: int
    url: str
    file: str | None  # the unit's record file (`unit_file_name`)
    first_doc: int
    num_docs: int
    record_kind: str


def read_units(store: Any) -> tuple[str, list[ProvenanceUnit]] | None:
    """The path of a store's provenance index and its units, in store order; None when it has no provenance.

    `store` is a `shardstore.Store` or the path of a local store directory. Raises `FormatError` naming the file
    when the index cannot be read or an entry lacks a field."""
    path = _aux_path(store, UNITS_FILE)
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            entries = json.loads(f.read())["units"]
        units = [
            ProvenanceUnit(
                unit=int(u["unit"]),
                url=str(u["url"]),
                file=None if u["file"] is None else str(u["file"]),
                first_doc=int(u["first_doc"]),
                num_docs=int(u["num_docs"]),
                record_kind=str(u["record_kind"]),
            )
            for u in entries
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FormatError(f"{path}: corrupt provenance index ({exc})") from exc
    return path, units


def read_provenance(store: Any, doc_index: int) -> dict[str, Any] | None:
    """Where document `doc_index` came from: `{doc, unit, file, record, record_kind}`; None without provenance.

    `store` is a `shardstore.Store` or the path of a local store directory. `record` is 0-based: the line of a
    JSON Lines file, the row of a Parquet file, the part of a `--split-on` text file, 0 for a whole text file.

    Raises:
        IndexError: `doc_index` is outside the store.
        FormatError: the provenance files are corrupt.
    """
    found = read_units(store)
    if found is None:
        return None
    units = found[1]
    firsts = [u.first_doc for u in units]
    total = sum(u.num_docs for u in units)
    if not 0 <= doc_index < total:
        raise IndexError(f"doc_index={doc_index} is outside 0..{total - 1} (the store has {total} documents)")
    pos = bisect.bisect_right(firsts, doc_index) - 1
    unit = units[pos]
    if unit.file is None:
        raise FormatError(f"{found[0]}: unit {unit.unit} holds document {doc_index} but names no record file")
    record = _read_record(store, unit.file, doc_index - unit.first_doc)
    return {
        "doc": doc_index,
        "unit": unit.unit,
        "file": unit.url,
        "record": record,
        "record_kind": unit.record_kind,
    }


def _read_record(store: Any, name: str, row: int) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = _aux_path(store, name)
    if path is None:
        raise FormatError(f"provenance file {name!r} is missing from the store")
    try:
        pf = pq.ParquetFile(path)
        # Row groups are large; find the one holding `row` and read only it.
        start = 0
        for g in range(pf.num_row_groups):
            n = pf.metadata.row_group(g).num_rows
            if row < start + n:
                return int(pf.read_row_group(g, columns=["record"]).column(0)[row - start].as_py())
            start += n
    except (pa.ArrowException, OSError) as exc:
        raise FormatError(f"{path}: corrupt provenance file ({exc})") from exc
    raise FormatError(f"{path}: has {start} rows, but document row {row} was expected")


def read_text_bytes(store: Any) -> np.ndarray | None:
    """Every document's text size in UTF-8 bytes, in store order (uint64); None when the store has no provenance
    or its provenance predates text sizes (a unit file without the `text_bytes` column).

    `store` is a `shardstore.Store` (each file is then checked against its manifest checksum first) or the path of
    a local store directory. Raises `FormatError`, one line naming the file, when a file is missing, corrupt, or
    its column is not one unsigned integer per document of its unit."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    found = read_units(store)
    if found is None:
        return None
    index_path, units = found
    parts = []
    next_doc = 0
    for u in units:
        if u.first_doc != next_doc:
            raise FormatError(f"{index_path}: unit {u.unit} starts at document {u.first_doc}, not {next_doc}")
        next_doc += u.num_docs
        if u.num_docs == 0 and u.file is None:
            continue
        if u.file is None:
            raise FormatError(f"{index_path}: unit {u.unit} holds {u.num_docs} documents but names no file")
        path = _aux_path(store, u.file)
        if path is None:
            raise FormatError(f"provenance file {u.file!r} is missing from the store")
        try:
            pf = pq.ParquetFile(path)
            if TEXT_BYTES_COLUMN not in pf.schema_arrow.names:
                return None  # built before text sizes were recorded
            column = pf.read(columns=[TEXT_BYTES_COLUMN]).column(0)
        except (pa.ArrowException, OSError) as exc:
            raise FormatError(f"{path}: corrupt provenance file ({' '.join(str(exc).split())})") from exc
        if column.type != pa.uint64() or column.null_count:
            raise FormatError(
                f"{path}: column {TEXT_BYTES_COLUMN} is {column.type} with {column.null_count} nulls, "
                "expected uint64 without nulls"
            )
        if len(column) != u.num_docs:
            raise FormatError(
                f"{path}: {len(column)} text sizes for the {u.num_docs} documents of unit {u.unit}"
            )
        parts.append(column.to_numpy())
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)
