"""From provenance back to documents: which document of a store came from (input file, record).

The reverse of `shardstore.store.provenance.read_provenance`, for `shardstore mask write --provenance`: a list of
(file, record) pairs (a benchmark leak found in the raw data, a takedown request) becomes document ids. It reads
``provenance/units.json`` and the record column of each unit whose file is asked for (one Parquet file per unit,
8 bytes per document), never the shards.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from shardstore.errors import ConfigError
from shardstore.store.provenance import UNITS_FILE, ProvenanceUnit, read_units

__all__ = ["docs_of_records"]


def _path(store: Any, name: str) -> str:
    if store.manifest.file(name) is None:
        raise ConfigError(f"{store.root}: the store has no provenance ({name} is not in its manifest)")
    return str(store.file_path(name))


def docs_of_records(store: Any, records: Sequence[tuple[str, int]]) -> np.ndarray:
    """The document id of each (input file URL as recorded, record) pair, in the given order (int64).

    Raises `ConfigError` naming the first pair that no document of the store came from."""
    import pyarrow.parquet as pq

    found = read_units(store)
    if found is None:
        raise ConfigError(f"{store.root}: the store has no provenance ({UNITS_FILE} is not in its manifest)")
    by_file: dict[str, list[ProvenanceUnit]] = {}
    for u in found[1]:
        by_file.setdefault(u.url, []).append(u)
    lookup: dict[tuple[str, int], int] = {}
    for url in {f for f, _ in records}:
        for u in by_file.get(url, []):
            if u.file is None:  # a unit that made no documents
                continue
            column = pq.read_table(_path(store, u.file), columns=["record"]).column(0).to_numpy()
            first = u.first_doc
            for i, rec in enumerate(column.tolist()):
                lookup.setdefault((url, int(rec)), first + i)
    out = np.empty(len(records), dtype=np.int64)
    for i, (url, rec) in enumerate(records):
        doc = lookup.get((url, int(rec)))
        if doc is None:
            known = sorted(by_file)[:3]
            raise ConfigError(
                f"no document of {store.root} came from record {rec} of {url!r} (provenance files: {known}...)"
            )
        out[i] = doc
    return out
