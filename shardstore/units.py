"""One work unit of a build: one input file -> its shards, its provenance file, its journal entry.

A unit is a pure function of (input file bytes, read options, tokenizer, eos flag, shard size): its shards are named
`u{unit:06d}-{i:06d}.shard`, so where and when it runs (process pool, Ray task, another node) cannot change a byte.
The unit commits itself, in this order: shards (each temp + fsync + rename, by `ShardWriter`), provenance Parquet
(same), journal entry (same). Before starting it deletes whatever an earlier, killed attempt left with its prefix.

Documents streamed in pieces (huge plain-text files, see `sources`) are encoded piece by piece; their token arrays
are concatenated at the end of the document, because a document is one contiguous run in a shard. Peak memory for
such a document is therefore about its token count x dtype size (~0.5 byte per input byte for English with a 2-byte
dtype) plus one piece of text, instead of text + tokens of the whole document.
"""

from __future__ import annotations

import os
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from shardstore.journal import Journal, UnitResult
from shardstore.manifest import file_info
from shardstore.provenance import unit_file_name, write_unit_provenance
from shardstore.sources import InputFile, ReadOptions, SkipCounts, iter_documents

__all__ = ["UnitTask", "run_unit", "shard_prefix"]

ProgressFn = Callable[[int, int, int], None]  # (docs, text bytes, tokens) since the last call


def shard_prefix(index: int) -> str:
    return f"u{index:06d}-"


@dataclass(frozen=True, slots=True)
class UnitTask:
    """Everything a worker needs to run one unit; plain data, cheap to send to another process."""

    index: int
    file: InputFile
    out: str
    tokenizer_path: str
    tokenizer_fingerprint: str
    read: ReadOptions
    eos: bool
    dtype: str
    max_shard_bytes: int


def clean_unit_leftovers(out: str, index: int) -> None:
    """Delete files an interrupted attempt of this unit may have left (finished or temp shards, provenance)."""
    prefix = shard_prefix(index)
    for name in os.listdir(out):
        if name.startswith(prefix):
            os.unlink(os.path.join(out, name))
    prov_dir = os.path.join(out, "provenance")
    base = os.path.basename(unit_file_name(index))
    if os.path.isdir(prov_dir):
        for name in os.listdir(prov_dir):
            if name.startswith(base):
                os.unlink(os.path.join(prov_dir, name))


def run_unit(task: UnitTask, tokenizer: object, progress: ProgressFn | None = None) -> UnitResult:
    """Run one unit to completion and commit it; a failure is returned (and journaled) as `UnitResult.error`."""
    from shardstore.writer import ShardWriter

    journal = Journal(task.out)
    clean_unit_leftovers(task.out, task.index)
    counts = SkipCounts()
    dtype = np.dtype(task.dtype)
    eos_id = getattr(tokenizer, "eos_id", None) if task.eos else None
    encode = tokenizer.encode_to_numpy  # type: ignore[attr-defined]
    writer = ShardWriter(
        task.out, dtype=dtype, name_prefix=shard_prefix(task.index), max_shard_bytes=task.max_shard_bytes
    )
    records = array("q")
    docs = tokens = text_bytes = 0
    pend_docs = pend_bytes = pend_tokens = 0
    last_report = time.monotonic()
    parts: list[np.ndarray] = []
    try:
        for piece in iter_documents(task.file, task.read, counts):
            ids = encode(piece.text, dtype=dtype)
            nbytes = len(piece.text)  # characters: a cheap stand-in for bytes in the progress figures
            text_bytes += nbytes
            pend_bytes += nbytes
            if not piece.last:
                parts.append(ids)
                continue
            if parts:
                parts.append(ids)
                ids = np.concatenate(parts)
                parts = []
            if eos_id is not None:
                doc = np.empty(ids.size + 1, dtype=dtype)
                doc[:-1] = ids
                doc[-1] = eos_id
                ids = doc
            writer.add_document(ids)
            records.append(piece.record)
            docs += 1
            tokens += ids.size
            pend_docs += 1
            pend_tokens += ids.size
            if progress is not None and pend_docs % 64 == 0:
                now = time.monotonic()
                if now - last_report > 0.25:
                    progress(pend_docs, pend_bytes, pend_tokens)
                    pend_docs = pend_bytes = pend_tokens = 0
                    last_report = now
        shards = tuple(writer.close())
        prov = None
        if docs:
            name = write_unit_provenance(task.out, task.index, task.file.url, records)
            prov = file_info(os.path.join(task.out, name), name=name)
    except Exception as exc:  # one bad file must never lose the others: the unit fails, the build goes on
        writer.abort()
        clean_unit_leftovers(task.out, task.index)
        result = UnitResult(
            index=task.index, url=task.file.url, skipped=dict(counts), error=_describe(exc, task)
        )
        journal.commit(result)
        return result
    if progress is not None and (pend_docs or pend_bytes):
        progress(pend_docs, pend_bytes, pend_tokens)
    result = UnitResult(
        index=task.index,
        url=task.file.url,
        num_docs=docs,
        num_tokens=tokens,
        text_bytes=text_bytes,
        shards=shards,
        provenance=prov,
        skipped=dict(counts),
    )
    journal.commit(result)
    return result


def _describe(exc: Exception, task: UnitTask) -> str:
    text = str(exc)
    if task.file.url not in text:
        text = f"{task.file.url}: {text}"
    from shardstore.errors import ShardStoreError

    if not isinstance(exc, ShardStoreError):
        text = f"{type(exc).__name__}: {text}"
    return text


# -- per-process tokenizer ------------------------------------------------------------------------------------------

_LOADED: dict[str, object] = {}  # path|fingerprint -> Tokenizer, one per worker process (never shared across)


def load_tokenizer(path: str, fingerprint: str) -> object:
    """Load (once per process) the tokenizer at `path` and check it is the one the build was configured with."""
    from shardstore.errors import BuildError

    key = f"{path}|{fingerprint}"
    tok = _LOADED.get(key)
    if tok is None:
        from tokenizer import Tokenizer

        tok = Tokenizer.load(path)
        if tok.fingerprint != fingerprint:
            raise BuildError(
                f"{path}: tokenizer fingerprint {tok.fingerprint} != {fingerprint} recorded for this build; "
                "the file changed during the build"
            )
        _LOADED[key] = tok
    return tok


def run_task(task: UnitTask, progress: ProgressFn | None = None) -> UnitResult:
    """Worker entry point: load the tokenizer for this process if needed, then run the unit."""
    return run_unit(task, load_tokenizer(task.tokenizer_path, task.tokenizer_fingerprint), progress)
