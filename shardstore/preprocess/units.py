"""One work unit of a build: one input file -> its shards, its provenance file, its journal entry.

A unit is a pure function of (input file bytes, read options, tokenizer, eos flag, shard size): its shards are named
`u{unit:06d}-{i:06d}.shard`, so where and when it runs (process pool, Ray task, another node) cannot change a byte.
Each attempt writes into its own folder `.build/attempts/u{unit}-{host}-{pid}-{random}/`: shards (temp + fsync +
rename, by `ShardWriter`), provenance Parquet (same). Then it commits (`Journal.claim`): its sealed journal entry is
created only if no other writer created it (`link(2)`), and only then do its files move into the store. An attempt
that loses that race (a paused writer whose unit another build finished meanwhile) deletes only its own folder;
no attempt ever deletes a file another writer committed. The input's fingerprint is computed as it is read
(`inputdigest`).

Hot path: readers hand out most documents as `PackedDocs` (a block of JSON lines or an Arrow string array: one buffer
plus spans); `Tokenizer.encode_packed` turns one into a single id array with EOS after every document, which goes to
the shard writer in one `ShardWriter.add_documents` call: no Python object per document anywhere. Documents that come
one by one (`DocPiece`: plain text, unusual JSON lines) are encoded a batch at a time, their id arrays joined into one
buffer with the EOS id between documents, and written the same way. Documents streamed in pieces (huge plain-text
files, see `sources`) are encoded piece by piece and handed to the writer as they come (`begin/extend/end_document`), so peak memory for such a
document is one piece of text plus its ids, not the document's token count.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from shardstore.errors import BuildError, InvalidUtf8Error
from shardstore.preprocess.inputdigest import InputDigest, digest_parquet, is_parquet
from shardstore.preprocess.journal import Journal, UnitResult
from shardstore.preprocess.locks import host_tag
from shardstore.preprocess.readers.utf8 import decode_packed
from shardstore.preprocess.sources import (
    DocPiece,
    InputFile,
    PackedDocs,
    ReadOptions,
    SkipCounts,
    iter_batches,
)
from shardstore.preprocess.yieldcheck import DEFAULT_MAX_SKIPPED_FRACTION, check_yield
from shardstore.store.manifest import file_info
from shardstore.store.provenance import write_unit_provenance
from shardstore.store.writer import SHARD_SUFFIX
from shardstore.util.outerr import describe_output_error, is_output_error

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
    span: tuple[int, int] | None = None  # part of the file (see `shardstore.preprocess.workunits`)
    build: str = ""  # digest of the byte-determining options (recorded in the journal entry)
    max_skipped_fraction: float = DEFAULT_MAX_SKIPPED_FRACTION  # see `yieldcheck`: beyond it the unit fails


def new_attempt(index: int) -> str:
    """A fresh attempt folder name for unit `index`: unit, host, pid and a random part (see `locks.owner_alive`)."""
    return f"u{index:06d}-{host_tag()}-{os.getpid()}-{secrets.token_hex(4)}"


def drop_stray_shards(out: str, result: UnitResult) -> None:
    """After this writer committed unit `result.index`: delete the unit's shards beyond the ones its entry lists
    (left by an earlier committed attempt that made more shards, before its entry was moved aside). Probes
    `u{unit}-{k}.shard` upwards from the first unlisted `k`: O(1) per unit, not a listing of the store. Only the
    committer calls this, so no other writer's committed file can be among them."""
    k = len(result.shards)
    while True:
        path = os.path.join(out, f"{shard_prefix(result.index)}{k:06d}{SHARD_SUFFIX}")
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        k += 1


_BATCH_DOCS = 256
_BATCH_CHARS = 1 << 20


class _DocSink:
    """Assembles encoded pieces into documents (EOS appended) and feeds the shard writer; counts as it goes."""

    def __init__(self, writer: Any, dtype: np.dtype, eos_id: int | None, progress: ProgressFn | None) -> None:
        self.writer = writer
        self.dtype = dtype
        self.eos_id = eos_id
        self.eos = b"" if eos_id is None else np.array([eos_id], dtype=dtype).tobytes()
        self.progress = progress
        self.records = array("q")
        self.text_sizes = array("Q")  # each document's text in UTF-8 bytes (provenance `text_bytes`)
        self._stream_bytes = 0  # text bytes of the document open in the writer so far
        self.docs = self.tokens = self.text_bytes = 0
        self._streaming = False  # a document arriving in pieces is open in the writer
        self._pending = [0, 0, 0]
        self._last_report = time.monotonic()

    def add_packed(self, packed: PackedDocs, tokenizer: Any) -> None:
        """Encode and write a packed batch of whole documents (EOS appended by the encoder)."""
        ids, lengths = tokenizer.encode_packed(
            packed.data, packed.starts, packed.ends, append_id=self.eos_id, dtype=self.dtype
        )
        self.writer.add_documents(ids, lengths)
        self.records.frombytes(packed.records.astype(np.int64, copy=False).tobytes())
        self.text_sizes.frombytes((packed.ends - packed.starts).astype(np.uint64).tobytes())
        self._tally(len(packed), ids.size, packed.nbytes)

    def _tally(self, docs: int, tokens: int, text_bytes: int) -> None:
        self.docs += docs
        self.tokens += tokens
        self.text_bytes += text_bytes
        self._pending[0] += docs
        self._pending[1] += text_bytes
        self._pending[2] += tokens

    def add_batch(
        self, batch: Sequence[DocPiece], encoded: Sequence[np.ndarray], sizes: Sequence[int]
    ) -> None:
        """Write the documents (or pieces) of one encoded batch (`sizes`: each piece's UTF-8 bytes), in order."""
        extra = 1 if self.eos else 0
        parts: list[Any] = []  # whole documents, id arrays and EOS bytes alternating, joined once
        lengths: list[int] = []
        for piece, ids, size in zip(batch, encoded, sizes, strict=True):
            if piece.last and not self._streaming:
                parts.append(ids)
                if extra:
                    parts.append(self.eos)
                lengths.append(ids.size + extra)
                self.records.append(piece.record)
                self.text_sizes.append(size)
                continue
            self._stream_bytes += size
            self._write_whole(parts, lengths)
            parts, lengths = [], []
            if not self._streaming:
                self.writer.begin_document()
                self._streaming = True
            self.writer.extend_document(ids)
            n = ids.size
            if piece.last:
                if extra:
                    self.writer.extend_document(np.frombuffer(self.eos, dtype=self.dtype))
                    n += 1
                self.writer.end_document()
                self._streaming = False
                self.records.append(piece.record)
                self.text_sizes.append(self._stream_bytes)
                self._stream_bytes = 0
            self._tally(1 if piece.last else 0, n, 0)
        self._write_whole(parts, lengths)
        self._tally(0, 0, sum(sizes))

    def _write_whole(self, parts: list[Any], lengths: list[int]) -> None:
        if not lengths:
            return
        self.writer.add_documents(np.frombuffer(b"".join(parts), dtype=self.dtype), lengths)
        self._tally(len(lengths), sum(lengths), 0)

    def report(self, *, force: bool = False) -> None:
        if self.progress is None or not any(self._pending):
            return
        now = time.monotonic()
        if force or now - self._last_report > 0.25:
            self.progress(*self._pending)
            self._pending = [0, 0, 0]
            self._last_report = now


def run_unit(task: UnitTask, tokenizer: Any, progress: ProgressFn | None = None) -> UnitResult:
    """Run one unit to completion and commit it; a failure is returned (and journaled) as `UnitResult.error`.

    Texts are encoded in batches (`encode_batch_to_numpy` on one thread: the process is the unit of parallelism),
    which halves the per-call overhead of the tokenizer for short documents.
    """
    from shardstore.store.writer import ShardWriter

    cpu_start = time.process_time()  # the process runs one unit at a time (inline or a pool worker)
    journal = Journal(task.out)
    if os.path.exists(
        journal.entry_path(task.index)
    ):  # committed by another writer since this run planned it
        return UnitResult(index=task.index, url=task.file.url, committed_by_other=True)
    attempt = new_attempt(task.index)
    folder = os.path.join(journal.attempts_dir, attempt)
    os.makedirs(folder)
    counts = SkipCounts()
    dtype = np.dtype(task.dtype)
    writer = ShardWriter(
        folder, dtype=dtype, name_prefix=shard_prefix(task.index), max_shard_bytes=task.max_shard_bytes
    )
    sink = _DocSink(writer, dtype, tokenizer.eos_id if task.eos else None, progress)
    stop = (
        None if task.span is None else task.span[1]
    )  # a span of a JSON Lines file owns lines starting in it
    digest = None if is_parquet(task.file) else InputDigest(task.file, task.read.storage_options, stop=stop)

    def flush(batch: list[DocPiece], sizes: list[int]) -> None:
        if not batch:
            return
        encoded = tokenizer.encode_batch_to_numpy([p.text for p in batch], num_threads=1, dtype=dtype)
        sink.add_batch(batch, encoded, sizes)
        del encoded  # a streamed piece's ids (worst-case-sized encoder buffers) go now, not at the next batch
        batch.clear()
        sizes.clear()
        sink.report()

    try:
        batch: list[DocPiece] = []
        sizes: list[int] = []  # UTF-8 bytes of each piece of the batch
        chars = 0  # their sum
        for piece in iter_batches(task.file, task.read, counts, span=task.span, digest=digest):
            if isinstance(piece, PackedDocs):
                flush(batch, sizes)  # documents stay in reading order
                chars = 0
                try:
                    sink.add_packed(piece, tokenizer)
                except (
                    InvalidUtf8Error
                ):  # unchecked Parquet strings: the policy, row by row (nothing was written)
                    docs = decode_packed(piece, task.file, task.read, counts)
                    flush(docs, [_utf8_size(d.text) for d in docs])
                sink.report()
                continue
            batch.append(piece)
            sizes.append(_utf8_size(piece.text))
            chars += sizes[-1]
            if len(batch) >= _BATCH_DOCS or chars >= _BATCH_CHARS:
                flush(batch, sizes)
                chars = 0
        flush(batch, sizes)
        check_yield(task.file, sink.docs, counts, task.read, task.max_skipped_fraction)
        shards = tuple(writer.close())
        prov = None
        if sink.docs:
            name = write_unit_provenance(folder, task.index, task.file.url, sink.records, sink.text_sizes)
            prov = file_info(os.path.join(folder, name), name=name)
        if digest is not None:
            fingerprint = digest.with_stat()
        else:
            fingerprint = digest_parquet(task.file, task.span, task.read.storage_options)
        fingerprint["span"] = None if task.span is None else list(task.span)
    except Exception as exc:  # one bad file must never lose the others: the unit fails, the build goes on
        writer.abort()
        shutil.rmtree(folder, ignore_errors=True)
        if is_output_error(exc):  # the store's disk, not the input: stop the build with one clear line
            raise BuildError(f"unit {task.index}: {describe_output_error(exc, task.out)}") from exc  # type: ignore[arg-type]
        result = UnitResult(
            index=task.index,
            url=task.file.url,
            skipped=dict(counts),
            error=_describe(exc, task),
            cpu_seconds=time.process_time() - cpu_start,
        )
        journal.commit_failure(result)
        return result
    sink.report(force=True)
    result = UnitResult(
        index=task.index,
        url=task.file.url,
        num_docs=sink.docs,
        num_tokens=sink.tokens,
        text_bytes=sink.text_bytes,
        shards=shards,
        provenance=prov,
        skipped=dict(counts),
        cpu_seconds=time.process_time() - cpu_start,  # all but the journal commit's own fsyncs
        input=fingerprint,
        build=task.build,
        attempt=attempt,
    )
    try:
        claimed = journal.claim(result)
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        if is_output_error(exc):
            raise BuildError(f"unit {task.index}: {describe_output_error(exc, task.out)}") from exc
        raise
    if not claimed:  # another writer committed this unit meanwhile: theirs stands, ours goes
        shutil.rmtree(folder, ignore_errors=True)
        return replace(result, committed_by_other=True)
    drop_stray_shards(task.out, result)
    return result


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


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
        tok.encode("warm up")  # builds the native tables now, not inside the first unit
        _LOADED[key] = tok
    return tok


@functools.cache
def _warm_provenance_writer() -> None:
    """Import and first use of the Parquet writer of the provenance files (~40 ms measured here), once per process
    and before the first unit, so that units (and their CPU accounting) see only work that grows with the input."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [0]}), io.BytesIO())


def run_task(task: UnitTask, progress: ProgressFn | None = None) -> UnitResult:
    """Worker entry point: load the tokenizer for this process if needed, then run the unit."""
    tokenizer = load_tokenizer(task.tokenizer_path, task.tokenizer_fingerprint)
    _warm_provenance_writer()
    return run_unit(task, tokenizer, progress)
