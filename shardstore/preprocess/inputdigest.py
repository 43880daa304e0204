"""Input fingerprints: an xxh3-64 of the bytes a work unit read, computed while it reads them.

A unit's reader sees the raw (still compressed) bytes of its input through `HashingReader`, which feeds each
`readinto` to xxh3 as the bytes pass: no second read, and xxh3 runs at memory speed (> 10 GB/s here), against a
unit that encodes tens of MB/s per core, so the cost is too small to measure (benchmarks/RESULTS.md, issue 17).
The fingerprint covers the contiguous byte range `[lo, hi)` the unit's documents depend on: the whole file for a
whole-file unit; for a byte range `[start, stop)` of a JSON Lines file, from `start - 1` (the reader looks there
to find the first line it owns) to the end of the last line it owns (the first newline at or after `stop - 1`).
Bytes up to `stop` are hashed as they stream past; the rest of that last line (usually a few hundred bytes) is
read once more at the end, and the reader's read-ahead beyond it is not hashed, so an edit in one range changes
that range's fingerprint only (or also its neighbour's, when it touches the line that crosses their boundary).
Equal fingerprints mean equal documents; a change is never missed.

Parquet is read by Arrow's C++ file, out of Python's reach: its units hash their byte range (the row groups'
column chunks, the whole file for a whole-file unit) in a second pass over the page cache, after reading.

Change detection on resume (`changed`): a local file whose (size, mtime_ns, inode) equal the recorded ones is
taken as unchanged without reading it (as make and rsync do); otherwise its recorded range is hashed again and
compared. Remote inputs are compared by size and by ETag / mtime (a changed tag: the range is fetched and hashed
again); where the file system reports neither, by size only.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from typing import IO, Any

import xxhash

from shardstore.preprocess.inputs import InputFile, InputFormat
from shardstore.util.fsurl import is_url, url_to_fs

__all__ = ["HashingReader", "InputDigest", "changed", "hash_range", "parquet_range"]

_CHUNK = 1 << 22


def _stat_of(file: InputFile, storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    if is_url(file.url):
        try:
            fs, path = url_to_fs(file.url, storage_options)
            info = fs.info(path)
        except Exception:
            return {}
        tag = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified")
        return {} if tag is None else {"tag": str(tag)}
    try:
        st = os.stat(file.url)
    except OSError:
        return {}
    return {"mtime_ns": st.st_mtime_ns, "ino": st.st_ino}


class InputDigest:
    """The fingerprint of one unit's input, filled by a `HashingReader` (or `hash_range` for Parquet)."""

    def __init__(
        self, file: InputFile, storage_options: Mapping[str, Any] | None = None, *, stop: int | None = None
    ) -> None:
        self.file = file
        self.storage_options = storage_options
        self.stop = stop  # end of a line-owning byte range: bytes past it are hashed only to the line's end
        self.stat = _stat_of(file, storage_options)  # before reading: a later edit shows up as a change
        self.lo: int | None = None
        self.hi = 0
        self.gap = False  # the reader skipped bytes: the range is hashed again at the end
        self._h = xxhash.xxh3_64()

    def wrap(self, raw: IO[bytes]) -> IO[bytes]:
        """A buffered stream over `raw` that feeds this digest."""
        return io.BufferedReader(HashingReader(raw, self), buffer_size=1 << 16)

    def feed(self, pos: int, view: memoryview) -> None:
        if self.stop is not None and pos + len(view) > self.stop:
            view = view[: max(0, self.stop - pos)]
            if not view:
                return
        end = pos + len(view)
        if self.lo is None:
            self.lo = self.hi = pos
        if pos > self.hi or pos < self.lo:
            self.gap = True
        if self.gap:
            self.lo, self.hi = min(self.lo, pos), max(self.hi, end)
        elif end > self.hi:
            self._h.update(view[self.hi - pos :])
            self.hi = end

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe record: url, size, the hashed range, its xxh3-64, and the file's identity hints."""
        lo = 0 if self.lo is None else self.lo
        if not self.gap and self.stop is not None and self.hi == self.stop < self.file.size:
            self._finish_line()
        if self.gap:
            digest = hash_range(self.file.url, lo, self.hi, self.storage_options)
        else:
            digest = self._h.hexdigest()
        return {"url": self.file.url, "size": self.file.size, "range": [lo, self.hi], "xxh3_64": digest}

    def _finish_line(self) -> None:
        """Hash the rest of the line that crosses `stop` (the last line the range owns)."""
        if is_url(self.file.url):
            fs, path = url_to_fs(self.file.url, self.storage_options)
            f: Any = fs.open(path, "rb")
        else:
            f = open(self.file.url, "rb")  # noqa: SIM115 - closed below
        with f:
            f.seek(self.hi - 1)
            if f.read(1) == b"\n":
                return
            while True:
                chunk = f.read(1 << 16)
                if not chunk:
                    return
                cut = chunk.find(b"\n")
                part = chunk if cut < 0 else chunk[: cut + 1]
                self._h.update(part)
                self.hi += len(part)
                if cut >= 0:
                    return

    def with_stat(self) -> dict[str, Any]:
        return {**self.to_dict(), **self.stat}


class HashingReader(io.RawIOBase):
    """A raw stream that hashes every byte read through it (positions tracked, so seeks are handled)."""

    def __init__(self, raw: IO[bytes], digest: InputDigest) -> None:
        self._raw = raw
        self._digest = digest
        self._pos = raw.tell() if raw.seekable() else 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._raw.seekable()

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        n = self._raw.readinto(view)  # type: ignore[attr-defined]
        if n:
            self._digest.feed(self._pos, view[:n])
            self._pos += n
        return n or 0

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = self._raw.seek(offset, whence)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self._raw.close()
        super().close()


def hash_range(url: str, lo: int, hi: int, storage_options: Mapping[str, Any] | None = None) -> str:
    """xxh3-64 of bytes [lo, hi) of a file or URL (a short file hashes what there is)."""
    h = xxhash.xxh3_64()
    if is_url(url):
        fs, path = url_to_fs(url, storage_options)
        f: Any = fs.open(path, "rb")
    else:
        f = open(url, "rb")  # noqa: SIM115 - closed below
    with f:
        f.seek(lo)
        left = hi - lo
        while left > 0:
            chunk = f.read(min(_CHUNK, left))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


def parquet_range(file: InputFile, span: tuple[int, int] | None, storage_options: Any) -> tuple[int, int]:
    """Byte range of a Parquet unit: the whole file, or its row groups' column chunks."""
    if span is None:
        return 0, file.size
    import pyarrow.parquet as pq

    if is_url(file.url):
        fs, path = url_to_fs(file.url, storage_options)
        with fs.open(path, "rb") as f:
            meta = pq.ParquetFile(f).metadata
    else:
        meta = pq.ParquetFile(file.url).metadata
    lo, hi = file.size, 0
    for g in range(*span):
        rg = meta.row_group(g)
        for c in range(rg.num_columns):
            col = rg.column(c)
            start = col.data_page_offset
            if col.dictionary_page_offset is not None and col.dictionary_page_offset > 0:
                start = min(start, col.dictionary_page_offset)
            lo, hi = min(lo, start), max(hi, start + col.total_compressed_size)
    return (lo, hi) if lo < hi else (0, file.size)


def digest_parquet(file: InputFile, span: tuple[int, int] | None, storage_options: Any) -> dict[str, Any]:
    d = InputDigest(file, storage_options)
    lo, hi = parquet_range(file, span, storage_options)
    rec = {"url": file.url, "size": file.size, "range": [lo, hi]}
    return {**rec, "xxh3_64": hash_range(file.url, lo, hi, storage_options), **d.stat}


def changed(
    record: Mapping[str, Any],
    file: InputFile,
    storage_options: Any,
    stats: dict[str, dict[str, Any]] | None = None,
) -> bool:
    """True if the input bytes a unit recorded (`InputDigest.with_stat`) differ from the file now.

    `stats` caches the file's identity hints per URL over one resume check (one stat or HEAD per file, not per
    unit). A remote file whose file system reports no ETag/mtime is compared by size only: re-downloading every
    input on every re-run would cost more than the build's own check is worth (docs/build-state.md)."""
    if record.get("url") != file.url or record.get("size") != file.size:
        return True
    if stats is None:
        stats = {}
    now = stats.get(file.url)
    if now is None:
        now = stats[file.url] = _stat_of(file, storage_options)
    hints = {k: record[k] for k in ("mtime_ns", "ino", "tag") if k in record}
    if hints and all(now.get(k) == v for k, v in hints.items()):
        return False
    if not hints and is_url(file.url):
        return False
    rng = record.get("range")
    if not isinstance(rng, list) or len(rng) != 2 or not all(type(x) is int for x in rng):
        return True
    try:
        return hash_range(file.url, rng[0], rng[1], storage_options) != record.get("xxh3_64")
    except OSError:
        return True


def is_parquet(file: InputFile) -> bool:
    return file.format is InputFormat.PARQUET
