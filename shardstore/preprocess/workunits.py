"""Work units: input files, large ones split into ranges, numbered in a fixed order.

A file larger than `unit_bytes` becomes several units when its format allows reading a part of it:
- uncompressed JSON Lines: byte ranges `[k * unit_bytes, (k + 1) * unit_bytes)`; a range owns the lines that start
  in it (see `shardstore.preprocess.readers`), so the ranges partition the lines and their documents concatenate, in order,
  to exactly the documents of the whole file. Provenance records of such units are byte offsets (a line number
  would need every earlier byte of the file to be read first).
- Parquet: consecutive row groups, cut once their compressed size reaches `unit_bytes` (row numbers stay exact).
Compressed streams (.gz, .zst) and plain text cannot be entered in the middle: they stay one unit.

The plan is a pure function of the file list, the file contents (sizes, Parquet footers) and `unit_bytes`, so every
node and every run computes the same units, and unit `i` always writes the same shards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shardstore.errors import InputError
from shardstore.preprocess.sources import Compression, InputFile, InputFormat

__all__ = ["WorkUnit", "plan_units"]


@dataclass(frozen=True, slots=True)
class WorkUnit:
    """One unit: a file, or a `span` of it (byte range for JSON Lines, row-group range for Parquet)."""

    file: InputFile
    span: tuple[int, int] | None = None
    size: int = 0  # bytes of input it covers (for load balancing and progress)

    def record_kind(self, split_on: str | None) -> str:
        if self.file.format is InputFormat.PARQUET:
            return "row"
        if self.file.format is InputFormat.JSONL:
            return "line" if self.span is None else "byte_offset"
        return "part" if split_on is not None else "file"


def plan_units(
    files: Sequence[InputFile], *, unit_bytes: int, storage_options: Mapping[str, Any] | None = None
) -> list[WorkUnit]:
    """The ordered work units of `files`; files up to `unit_bytes` (or not splittable) are one unit each."""
    units: list[WorkUnit] = []
    for f in files:
        if f.size <= unit_bytes:
            units.append(WorkUnit(f, None, f.size))
        elif f.format is InputFormat.JSONL and f.compression is Compression.NONE:
            units.extend(
                WorkUnit(f, (start, min(start + unit_bytes, f.size)), min(unit_bytes, f.size - start))
                for start in range(0, f.size, unit_bytes)
            )
        elif f.format is InputFormat.PARQUET:
            units.extend(_parquet_units(f, unit_bytes, storage_options))
        else:
            units.append(WorkUnit(f, None, f.size))
    return units


def _parquet_units(
    f: InputFile, unit_bytes: int, storage_options: Mapping[str, Any] | None
) -> list[WorkUnit]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shardstore.preprocess.readers.streams import open_raw
    from shardstore.preprocess.sources import ReadOptions

    raw = open_raw(f, ReadOptions(storage_options=storage_options))
    try:
        meta = pq.ParquetFile(raw).metadata
    except (pa.ArrowException, OSError, ValueError):
        return [
            WorkUnit(f, None, f.size)
        ]  # unreadable: one unit, whose run reports the error naming the file
    finally:
        raw.close()
    sizes = []
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        sizes.append(sum(rg.column(c).total_compressed_size for c in range(rg.num_columns)))
    if len(sizes) <= 1:
        return [WorkUnit(f, None, f.size)]
    units: list[WorkUnit] = []
    first, acc = 0, 0
    for g, size in enumerate(sizes):
        acc += size
        if acc >= unit_bytes or g == len(sizes) - 1:
            units.append(WorkUnit(f, (first, g + 1), acc))
            first, acc = g + 1, 0
    if len(units) == 1:
        return [WorkUnit(f, None, f.size)]
    if units[-1].span is None or units[-1].span[1] != len(sizes):  # pragma: no cover - by construction
        raise InputError(f"{f.url}: internal error planning row-group ranges")
    return units
