"""Per-document provenance: which input file and which record (line / row / part) every document came from.

Layout inside a store (all listed in the manifest as auxiliary files, so `verify` covers them):

    provenance/units.json              one entry per work unit: url, record kind, first global doc index, doc count
    provenance/unit-000042.parquet     one int64 column `record` per unit (row i = the unit's i-th document)

Design: a unit's documents are contiguous in the store (units are laid out in unit order), so a document index maps
to its unit by bisection over `first_doc`, then to its record by one Parquet row. Per-unit files keep the build
embarrassingly parallel (no global merge at finalize: 8 bytes per document, written by the worker that made the
documents) and let `read_provenance` touch one small file. Files are deterministic (no timestamps), written with
temp + fsync + rename.
"""

from __future__ import annotations

import bisect
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shardstore.errors import FormatError
from shardstore.util.durable import atomic_write

__all__ = [
    "UNITS_FILE",
    "ProvenanceUnit",
    "read_provenance",
    "read_units",
    "unit_file_name",
    "write_unit_provenance",
]

UNITS_FILE = "provenance/units.json"


def unit_file_name(index: int) -> str:
    return f"provenance/unit-{index:06d}.parquet"


def write_unit_provenance(out: str, index: int, url: str, records: Sequence[int]) -> str:
    """Durably write one unit's record column; returns the store-relative file name."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = unit_file_name(index)
    path = os.path.join(out, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    column = pa.array(np.asarray(records, dtype=np.int64))
    table = pa.table({"record": column}).replace_schema_metadata({"url": url, "unit": str(index)})
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
