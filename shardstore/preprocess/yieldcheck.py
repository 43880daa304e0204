"""The yield check: reading that would turn non-empty input into (almost) nothing is an error, not a success.

A wrong `--text-field` used to "succeed": every JSON line was counted as `missing_text_field`, the build wrote 0
documents and exited 0. Bad records stay *counted, not fatal* (invariant 11), but only up to a share of the
records: `max_skipped_fraction` (default 0.9: "almost nothing" is fewer than 1 record in 10 becoming a document;
1.0 turns the check off). Beyond it the input fails with one line that says what was found instead: the fields of
the file's first record.

The share is judged per work unit for inputs of many records (JSON Lines, Parquet, `.txt` split on a separator),
and over the whole build, which is the only judge of whole-file `.txt` inputs (one record each: one binary file in
a folder of texts is messy data, a folder of binary files is a mistake). What counts as a record: every line / row / document read, except
blank lines (not records at all) and records kept with replaced bytes (`invalid_utf8_replaced`, which are
documents). Empty documents count as records but never fail an input alone (an empty file is not a mistake).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from shardstore.errors import BuildError, ConfigError, InputError
from shardstore.preprocess.inputs import InputFile, InputFormat, ReadOptions, SkipCounts, SkipReason
from shardstore.preprocess.modes import DEFAULT_MAX_SKIPPED_FRACTION

__all__ = [
    "DEFAULT_MAX_SKIPPED_FRACTION",
    "below_yield",
    "check_build_yield",
    "check_fraction",
    "check_yield",
    "first_record_fields",
    "skipped_records",
    "yield_message",
]

_NOT_RECORDS = frozenset({SkipReason.BLANK_LINE.value, SkipReason.INVALID_UTF8_REPLACED.value})
_FIELD_REASONS = (SkipReason.MISSING_FIELD.value, SkipReason.NOT_A_STRING.value)


def check_fraction(value: float, *, name: str = "max_skipped_fraction") -> float:
    """Validate a threshold: a number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ConfigError(
            f"{name}={value!r} must be a number from 0 to 1 (1 = never fail on skipped records)"
        )
    return float(value)


def skipped_records(counts: Mapping[str, int]) -> dict[str, int]:
    """The skip counts that are records which did not become documents (blank lines and replaced bytes are not)."""
    return {k: int(v) for k, v in counts.items() if k not in _NOT_RECORDS and v}


def below_yield(docs: int, skipped: Mapping[str, int], max_skipped_fraction: float) -> bool:
    """True when more than `max_skipped_fraction` of the records were skipped (empty documents alone never)."""
    bad = sum(v for k, v in skipped.items() if k != SkipReason.EMPTY.value)
    total = docs + sum(skipped.values())
    return bool(bad) and (total - docs) / total > max_skipped_fraction


def check_yield(
    file: InputFile,
    docs: int,
    counts: Mapping[str, int],
    options: ReadOptions,
    max_skipped_fraction: float,
) -> None:
    """Raise `InputError` when more than `max_skipped_fraction` of the records of `file` (one work unit) were skipped.

    `docs`: documents the unit gave; `counts`: its skip counts by reason (`SkipReason` values). Whole-file `.txt`
    units are judged only over the whole build (`below_yield`), not here."""
    if file.format is InputFormat.TXT and options.split_on is None:
        return
    skipped = skipped_records(counts)
    if below_yield(docs, skipped, max_skipped_fraction):
        raise InputError(yield_message(file, docs, skipped, options, max_skipped_fraction))


def check_build_yield(results: Iterable[Any], text_field: str, max_skipped_fraction: float) -> None:
    """The yield check of a whole build over its unit results (`num_docs`, `skipped`): whole-file `.txt` inputs
    have one record each, so only this check judges them. Raises `BuildError`."""
    docs, counts = 0, SkipCounts()
    for r in results:
        docs += r.num_docs
        counts.merge(r.skipped)
    skipped = skipped_records(counts)
    if below_yield(docs, skipped, max_skipped_fraction):
        read = ReadOptions(text_field=text_field)
        raise BuildError(yield_message(None, docs, skipped, read, max_skipped_fraction))


def yield_message(
    file: InputFile | None,
    docs: int,
    skipped: Mapping[str, int],
    options: ReadOptions,
    max_skipped_fraction: float,
    *,
    where: str = "the build",
) -> str:
    """The one line of a failed yield check (`file` None: all the inputs together, named by `where`)."""
    total = docs + sum(skipped.values())
    reasons = ", ".join(f"{k}={v:,}" for k, v in sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0])))
    where = file.url if file is not None else where
    head = f"{where}: only {docs:,} of {total:,} records became documents ({reasons})"
    top = max(skipped, key=lambda k: (skipped[k], k))
    if file is not None and top in _FIELD_REASONS and file.format is not InputFormat.TXT:
        fields = first_record_fields(file, options)
        what = "lack" if top == SkipReason.MISSING_FIELD.value else "have a non-string"
        head += f": they {what} the text field {options.text_field!r}"
        if fields:
            head += (
                f"; the first record has the fields {fields}: pass one of them as --text-field (text_field=)"
            )
        else:
            head += "; pass the right --text-field (text_field=)"
    else:
        head += "; check the input files and options"
    return (
        f"{head}, or raise --max-skipped-fraction (max_skipped_fraction=, now {max_skipped_fraction:g}; 1 "
        "accepts any share) if the data really is this messy"
    )


def first_record_fields(file: InputFile, options: ReadOptions) -> list[str]:
    """The keys of the first JSON object of a JSON Lines file (or the columns of a Parquet file); [] if none.

    Reads at most the first 64 lines; used only to word an error, so any failure to read gives []."""
    from shardstore.preprocess.readers.streams import open_raw, open_stream

    try:
        raw = open_raw(file, options)
        try:
            if file.format is InputFormat.PARQUET:
                import pyarrow.parquet as pq

                return list(pq.ParquetFile(raw).schema_arrow.names)
            stream = open_stream(file, raw)
            for _, line in zip(range(64), stream, strict=False):
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    return [str(k) for k in obj]
        finally:
            raw.close()
    except (OSError, ValueError, InputError):
        return []
    return []
