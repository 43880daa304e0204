"""The finalize step of a build: provenance index, report and, last, the manifest (the commit point).

Shards are listed in unit order, so completion order, worker count, executor and node count cannot change the
manifest. The provenance index (`provenance/units.json`, listed in the manifest) records each unit's input
fingerprint (`inputdigest`: url, size, byte range read, xxh3-64), and the manifest's provenance carries
`inputs_xxh3_64`, one digest over all of them: the store's fingerprint thus pins the exact input bytes, at O(1)
manifest size. The report (`build_report.json`) holds wall-clock figures, so it is sealed (`util.sealed`) but not
listed in the manifest.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import xxhash

from shardstore.errors import BuildError
from shardstore.preprocess.build_types import BuildReport
from shardstore.preprocess.inputs import InputFile, InputFormat, SkipCounts
from shardstore.preprocess.journal import UnitResult
from shardstore.preprocess.workunits import WorkUnit
from shardstore.store.manifest import MANIFEST_NAME, FileInfo, Manifest, ShardInfo, TokenizerInfo, file_info
from shardstore.store.provenance import UNITS_FILE
from shardstore.util.durable import atomic_write
from shardstore.util.sealed import canonical_json, read_sealed, write_sealed

__all__ = [
    "BUILDER_VERSION",
    "REPORT_NAME",
    "TOKENIZER_NAME",
    "build_manifest",
    "compress",
    "input_fingerprint",
    "skip_totals",
    "sweep_stale_temps",
    "unit_name",
    "write_report",
]

TOKENIZER_NAME = "tokenizer.json"
REPORT_NAME = "build_report.json"
BUILDER_VERSION = 1
_STAT_KEYS = ("mtime_ns", "ino", "tag")  # identity hints of the journal, not part of any store file


def unit_name(unit: WorkUnit) -> str:
    """The input file of a unit, with its range when it is a part of the file."""
    if unit.span is None:
        return unit.file.url
    what = "row groups" if unit.file.format is InputFormat.PARQUET else "bytes"
    return f"{unit.file.url} ({what} {unit.span[0]}..{unit.span[1]})"


def skip_totals(results: Any) -> dict[str, int]:
    total = SkipCounts()
    for r in results:
        total.merge(r.skipped)
    return dict(sorted(total.items()))


def input_fingerprint(result: UnitResult) -> dict[str, Any] | None:
    """A unit's input fingerprint as the store records it (no file-system identity hints)."""
    if result.input is None:
        return None
    return {k: v for k, v in sorted(result.input.items()) if k not in _STAT_KEYS}


def build_manifest(
    out: str,
    files: Sequence[InputFile],
    units: Sequence[WorkUnit],
    results: Mapping[int, UnitResult],
    failed: Mapping[int, UnitResult],
    tok: Any,
    dtype: str,
    options: Mapping[str, Any],
    split_on: str | None,
) -> Manifest:
    """Write the provenance index and return the manifest (not yet written: it is the commit point)."""
    shards: list[ShardInfo] = []
    prov_files: list[FileInfo] = []
    entries: list[dict[str, Any]] = []
    first_doc = 0
    for i in sorted(results):
        r = results[i]
        for s in r.shards:
            path = os.path.join(out, s.name)
            if not os.path.isfile(path) or os.path.getsize(path) != s.size:
                raise BuildError(
                    f"{path}: journaled as finished but missing or resized; re-run the same command (the build "
                    "redoes that unit)"
                )
        shards.extend(r.shards)
        if r.provenance is not None:
            prov_files.append(r.provenance)
        unit = units[i]
        entries.append(
            {
                "unit": i,
                "url": unit.file.url,
                "span": None if unit.span is None else list(unit.span),
                "record_kind": unit.record_kind(split_on),
                "first_doc": first_doc,
                "num_docs": r.num_docs,
                "num_tokens": r.num_tokens,
                "file": r.provenance.name if r.provenance else None,
                "skipped": dict(sorted(r.skipped.items())),
                "input": input_fingerprint(r),
            }
        )
        first_doc += r.num_docs
    units_path = os.path.join(out, UNITS_FILE)
    os.makedirs(os.path.dirname(units_path), exist_ok=True)
    atomic_write(units_path, canonical_json({"units": entries}), skip_if_same=True)
    aux = [
        file_info(os.path.join(out, TOKENIZER_NAME), name=TOKENIZER_NAME),
        file_info(units_path, name=UNITS_FILE),
    ]
    fingerprints = [e["input"] for e in entries]
    provenance = {
        "builder": f"shardstore.build v{BUILDER_VERSION}",
        "options": {k: v for k, v in options.items() if k != "inputs"},
        "num_inputs": len(files),
        "input_bytes": sum(f.size for f in files),
        "inputs_xxh3_64": xxhash.xxh3_64_hexdigest(canonical_json(fingerprints)),
        "failed_inputs": [unit_name(units[i]) for i in sorted(failed)],
        "skipped": skip_totals(results.values()),
    }
    return Manifest(
        dtype=dtype,
        shards=tuple(shards),
        files=tuple(aux + prov_files),
        tokenizer=TokenizerInfo.from_tokenizer(tok),
        provenance=provenance,
    )


_TOP_LEVEL = (MANIFEST_NAME, TOKENIZER_NAME, REPORT_NAME, os.path.basename(UNITS_FILE))


def sweep_stale_temps(out: str, *, min_age_s: float = 60.0) -> None:
    """Delete temp files that a killed finalize left beside the store's top-level files. Only old ones: a temp
    file that young may belong to another node finalizing at this very moment."""
    now = time.time()
    for folder in (out, os.path.join(out, "provenance")):
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            continue
        for name in names:
            if any(name.startswith(f"{base}.tmp") for base in _TOP_LEVEL):
                path = os.path.join(folder, name)
                try:
                    if now - os.path.getmtime(path) > min_age_s:
                        os.unlink(path)
                except FileNotFoundError:
                    pass


def write_report(out: str, report: BuildReport) -> None:
    write_sealed(os.path.join(out, REPORT_NAME), report.to_dict())


def report_is_corrupt(out: str) -> bool:
    got = read_sealed(os.path.join(out, REPORT_NAME))
    return got is not None and got[1] is None


def compress(out: str) -> None:
    from shardstore.store.compress import compress_store

    compress_store(out)
