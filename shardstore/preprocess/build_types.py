"""Typed options (`BuildConfig`) and result (`BuildReport`) of `shardstore.build`.

`BuildConfig` marks which options change the bytes of the store ("(bytes)"): exactly those are recorded in the
journal and compared on resume. `BuildReport` is what the CLI prints and what `build_report.json` holds (wall-clock
figures included, which is why that file is not part of the manifest).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shardstore.errors import ConfigError
from shardstore.preprocess.executors import Executor
from shardstore.preprocess.sources import ReadOptions, Utf8Policy
from shardstore.preprocess.yieldcheck import DEFAULT_MAX_SKIPPED_FRACTION, check_fraction
from shardstore.util.cores import usable_cores
from shardstore.util.modes import parse_mode

__all__ = ["BuildConfig", "BuildReport"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildConfig:
    """Every option of a build. Only the ones marked (bytes) can change the store; the rest are scheduling."""

    inputs: tuple[str, ...]
    tokenizer: str  # path of the tokenizer JSON (bytes)
    out: str
    workers: int | None = None  # local processes; None = usable cores
    text_field: str = "text"  # (bytes)
    split_on: str | None = None  # (bytes)
    utf8_errors: Utf8Policy = Utf8Policy.REPLACE  # (bytes)
    eos: bool = True  # (bytes)
    max_shard_bytes: int = 256 << 20  # (bytes)
    unit_bytes: int = (
        256 << 20
    )  # (bytes) larger JSON Lines / Parquet files are split into units of about this size
    allow_partial: bool = False
    num_nodes: int = 1
    node_rank: int = 0
    finalize: bool = False  # only finalize: write the manifest if every unit is present
    executor: Executor = Executor.LOCAL
    storage_options: Mapping[str, Any] | None = None
    progress: bool = True
    compress: bool = False
    rebuild_changed: bool = (
        False  # rebuild the units whose input bytes changed (else such a resume is refused)
    )
    max_skipped_fraction: float = DEFAULT_MAX_SKIPPED_FRACTION  # a unit skipping more of its records fails
    force: bool = False  # build into a non-empty directory that is not a store

    def __post_init__(self) -> None:
        if isinstance(self.inputs, str):
            object.__setattr__(self, "inputs", (self.inputs,))
        object.__setattr__(self, "inputs", tuple(os.fspath(i) for i in self.inputs))
        if not self.inputs:
            raise ConfigError("no inputs given: pass at least one file, directory, glob or URL")
        object.__setattr__(self, "utf8_errors", parse_mode(Utf8Policy, self.utf8_errors, name="utf8_errors"))
        object.__setattr__(self, "executor", parse_mode(Executor, self.executor, name="executor"))
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise ConfigError(f"workers={self.workers!r} must be a positive integer or None (all cores)")
        if self.num_nodes < 1 or not 0 <= self.node_rank < self.num_nodes:
            raise ConfigError(
                f"node_rank={self.node_rank} must be in 0..{self.num_nodes - 1} for num_nodes={self.num_nodes}"
            )
        if self.unit_bytes < 4096:
            raise ConfigError(
                f"unit_bytes={self.unit_bytes} is too small; use at least 4096 (default 256 MiB)"
            )
        if self.max_shard_bytes < (1 << 13):
            raise ConfigError(f"max_shard_bytes={self.max_shard_bytes} is too small; use at least 8192")
        object.__setattr__(self, "max_skipped_fraction", check_fraction(self.max_skipped_fraction))
        ReadOptions(text_field=self.text_field, split_on=self.split_on, utf8_errors=self.utf8_errors)

    @property
    def num_workers(self) -> int:
        if self.workers is not None:
            return self.workers
        return usable_cores()


@dataclass(slots=True, kw_only=True)
class BuildReport:
    """What a build did. Totals are for the whole store; `*_run` figures are for this invocation only.

    `text_bytes_run` (and the MB/s derived from it) counts UTF-8 bytes of document text (after JSON unescaping).
    `cpu_seconds_run` sums the CPU time of the processes while they ran this invocation's units (read, decompress,
    parse, encode, write, checksum, fsync, provenance): the build's cost per core, without start-up.
    """

    out: str
    num_units: int
    units_done_before: int = 0
    units_run: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # url -> message
    num_docs: int = 0
    num_tokens: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    docs_run: int = 0
    tokens_run: int = 0
    text_bytes_run: int = 0
    cpu_seconds_run: float = 0.0
    seconds: float = 0.0
    complete: bool = False  # manifest written (now or before)
    nothing_to_do: bool = False
    fingerprint: str | None = None
    message: str = ""
    inputs: list[Any] = field(default_factory=list)  # per unit: url, size, byte range read, xxh3-64 of it
    ignored_files: list[str] = field(default_factory=list)  # found in directories/globs, not inputs (suffix)

    def to_dict(self) -> dict[str, Any]:
        secs = max(self.seconds, 1e-9)
        return {
            "out": self.out,
            "num_units": self.num_units,
            "units_done_before": self.units_done_before,
            "units_run": self.units_run,
            "failed": dict(self.failed),
            "num_docs": self.num_docs,
            "num_tokens": self.num_tokens,
            "skipped": dict(sorted(self.skipped.items())),
            "run": {
                "docs": self.docs_run,
                "tokens": self.tokens_run,
                "text_bytes": self.text_bytes_run,
                "seconds": round(self.seconds, 3),
                "docs_per_s": round(self.docs_run / secs, 1),
                "tokens_per_s": round(self.tokens_run / secs, 1),
                "mb_per_s": round(self.text_bytes_run / secs / 1e6, 3),
                "cpu_seconds": round(self.cpu_seconds_run, 3),
                "mb_per_cpu_s": round(self.text_bytes_run / max(self.cpu_seconds_run, 1e-9) / 1e6, 3),
            },
            "complete": self.complete,
            "nothing_to_do": self.nothing_to_do,
            "fingerprint": self.fingerprint,
            "message": self.message,
            "inputs": list(self.inputs),
            "ignored_files": {"count": len(self.ignored_files), "files": list(self.ignored_files)},
        }

    def summary(self) -> str:
        """A few human-readable lines for the CLI."""
        d = self.to_dict()
        run = d["run"]
        lines = [self.message] if self.message else []
        lines.append(
            f"store {self.out}: {self.num_docs:,} documents, {self.num_tokens:,} tokens "
            f"({self.units_run} of {self.num_units} units run now, {self.units_done_before} were done before)"
        )
        if self.units_run:
            lines.append(
                f"this run: {self.docs_run:,} docs, {self.tokens_run:,} tokens in {run['seconds']:.1f}s "
                f"({run['docs_per_s']:,.0f} docs/s, {run['tokens_per_s']:,.0f} tokens/s, {run['mb_per_s']:.2f} MB/s; "
                f"{run['mb_per_cpu_s']:.1f} MB per CPU-second of the units)"
            )
        if self.skipped:
            lines.append(
                "skipped/altered input: " + ", ".join(f"{k}={v:,}" for k, v in sorted(self.skipped.items()))
            )
        if self.ignored_files:
            shown = ", ".join(self.ignored_files[:5]) + (", ..." if len(self.ignored_files) > 5 else "")
            lines.append(
                f"ignored {len(self.ignored_files)} file(s) of the input directories that are not inputs "
                f"(not .txt/.jsonl/.json Lines/.parquet; listed in the report): {shown}"
            )
        for url, msg in sorted(self.failed.items()):
            lines.append(f"FAILED {msg if url in msg else url + ': ' + msg}")
        if self.fingerprint:
            lines.append(f"fingerprint {self.fingerprint}")
        return "\n".join(lines)
