"""Full verification of a store: every byte of every file in its directory, read once, against the manifest.

- Each shard is read once, in order. Up to 1 MiB it is one `read` and checked in memory: for a local store, by the
  native batch checker (`_native/verifybatch.cc`: 4,096 files per call, GIL released, no Python per file; ~30 us
  of Python per file made `verify` 0.56x `cat` on 100,000 tiny shards, issue 19). A file it does not pass (any
  problem, or a symlink or a name with '/') is checked again by the Python checker below, which names the file,
  offset and rule, so each message has one implementation; only a bad file is read twice. Above 1 MiB, it is mapped and each payload block is hashed for the block table and fed,
  while it is in cache, to the streaming whole-file checksum, so no byte is fetched twice from disk or DRAM
  (issue 19: block sums over the whole file, then the whole file again, read everything twice).
- Auxiliary files listed in the manifest are checked by size and whole-file checksum. The manifest checks itself
  (`manifest_checksum`); its binary index (`manifest.idx`, if present) must be the one derived from it.
- Every other file under the store directory is *named* in the report as not covered (`shardstore verify` prints
  `NOT COVERED name`): nothing there is read by a Store, and nothing is silently trusted. Files whose own
  checksums another module checks (the build journal, `build_report.json`) are listed here with that module's
  verdict when a checker is registered by name in `COVERED_ELSEWHERE` (empty until they carry checksums).
- It never stops at the first problem: the report lists each one (file, block, byte offset). A shard that passes
  is recorded in the Store as fully verified for that file identity (`mapcache.VerifiedTable`: 48 bytes a shard,
  bounded), so later mappings skip the document index and the block hashes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from shardstore._native import _verifybatch
from shardstore.errors import ChecksumError, FormatError, ManifestError, ShardStoreError
from shardstore.store import format as fmt
from shardstore.store.hash_index import INDEX_DIR, check_index_file
from shardstore.store.locator import LocalLocator
from shardstore.store.manifest_index import shard_records
from shardstore.store.mapcache import fid_row
from shardstore.store.rawmap import file_id, map_readonly
from shardstore.util.sealed import check_store_state

if TYPE_CHECKING:
    from shardstore.store.locator import Locator
    from shardstore.store.manifest import Manifest, ShardInfo


class VerifiedStore(Protocol):
    """What `verify_store` needs of a store (`Store` implements it)."""

    @property
    def manifest(self) -> Manifest: ...
    @property
    def locator(self) -> Locator: ...
    @property
    def root(self) -> str: ...
    def mark_verified(self, indices: np.ndarray, fids: np.ndarray, stored: np.ndarray) -> None: ...


__all__ = ["VerifyReport", "check_batch", "check_shard_fd", "verify_store"]

_READ_WHOLE = 1 << 20  # shards up to this size are read with one read() call and checked in memory (L2-sized)
_BATCH = 4096  # tiny shards per native call (progress callbacks come per batch)
OK, BAD, DEFERRED = 0, 1, 2  # statuses of the native checker (see check_batch)


@dataclass(slots=True)
class VerifyReport:
    """What a full verification found."""

    root: str
    files_checked: int = 0
    bytes_checked: int = 0
    problems: list[fmt.Problem] = field(default_factory=list)
    not_covered: list[str] = field(default_factory=list)  # files in the store folder that nothing checks

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_if_failed(self) -> None:
        """Raise ChecksumError (or FormatError) describing the first problem, if any."""
        fmt.raise_problems(self.problems)


def _read_exact(fd: int, buf: memoryview) -> int:
    got = 0
    while got < len(buf):
        n = os.readv(fd, [buf[got:]])
        if n == 0:
            break
        got += n
    return got


_Checked = tuple[fmt.ShardHeader, int] | None  # (header, its stored checksum) when the shard is sound


def check_shard_fd(
    fd: int, size: int, *, source: str, info: fmt.ShardRecord, into: bytearray | None = None
) -> tuple[list[fmt.Problem], _Checked]:
    """Check an open shard against its manifest entry, reading each byte once from disk.

    Returns (problems, checked): `checked` is (header, stored header checksum) when there are no problems. A
    shard up to 1 MiB is read into `into` when given (a buffer of exactly `size` bytes: the caller keeps the
    checked bytes, `runs.ShardRuns`), else into a fresh one.
    """
    if size != info.size:
        why = "truncated" if size < info.size else "has trailing bytes"
        return [
            fmt.Problem(
                source, min(size, info.size), f"file is {size} bytes, manifest says {info.size}: {why}"
            )
        ], None
    if size <= _READ_WHOLE:
        data = into if into is not None and len(into) == size else bytearray(size)
        if _read_exact(fd, memoryview(data)) != size:
            return [fmt.Problem(source, 0, "file shrank while it was read")], None
        view = memoryview(data)
        # in memory: the disk is read once
        problems, header = fmt.check_shard_bytes_header(view, source=source, info=info)
        if problems or header is None:
            return problems, None
        return [], (header, fmt.stored_header_checksum(view))
    return _check_streaming(fd, size, source=source, info=info)


def _check_streaming(
    fd: int, size: int, *, source: str, info: fmt.ShardRecord
) -> tuple[list[fmt.Problem], _Checked]:
    """Large shards, mapped (no copy): header, then each payload block hashed for its table entry and, while it
    is in cache, fed to the whole-file hash; then the tables. One pass over the file, no byte fetched twice."""
    view, _ = map_readonly(fd, source=source)
    if len(view) != size:
        return [fmt.Problem(source, min(len(view), size), "file changed size while it was read")], None
    head = view[: fmt.HEADER_SIZE]
    try:
        header = fmt.parse_header(head, source=source)
    except FormatError as exc:
        kind = "checksum" if isinstance(exc, ChecksumError) else "format"
        return [fmt.Problem(source, 0, str(exc), kind=kind)], None
    lay = header.layout
    if (info.num_tokens, info.num_docs, size) != (header.num_tokens, header.num_docs, lay.file_size):
        return [
            fmt.Problem(
                source, 0, f"header counts differ from the manifest ({info.num_tokens}, {info.num_docs})"
            )
        ], None
    whole = fmt.checksum_stream()
    whole.update(head)
    sums: list[int] = []
    problems: list[fmt.Problem] = []
    pos = lay.payload_offset
    end = lay.payload_offset + lay.payload_nbytes
    while pos < end:
        mv = view[pos : min(pos + header.block_size, end)]
        sums.append(fmt.checksum_bytes(mv))
        whole.update(mv)
        pos += len(mv)
    tail = view[end : lay.file_size]  # padding, document index, block table
    whole.update(tail)

    pad = lay.doc_index_offset - end
    doc = tail[pad : pad + (lay.block_sums_offset - lay.doc_index_offset)]
    table = tail[pad + len(doc) :]
    if bytes(tail[:pad]).count(0) != pad:
        problems.append(fmt.Problem(source, end, "padding before the document index is not zero"))
    if fmt.checksum_bytes(doc) != header.doc_index_checksum:
        problems.append(
            fmt.Problem(source, lay.doc_index_offset, "document index checksum mismatch", kind="checksum")
        )
    else:
        try:
            fmt.check_doc_index(np.frombuffer(doc, dtype="<u8"), header, source=source)
        except FormatError as exc:
            problems.append(fmt.Problem(source, lay.doc_index_offset, str(exc)))
    if fmt.checksum_bytes(table) != header.block_sums_checksum:
        problems.append(
            fmt.Problem(source, lay.block_sums_offset, "block checksum table is corrupt", kind="checksum")
        )
    else:
        stored = np.frombuffer(table, dtype="<u8").tolist()
        for b, (got, want) in enumerate(zip(sums, stored, strict=True)):
            if got != want:
                off = lay.payload_offset + b * header.block_size
                problems.append(
                    fmt.Problem(source, off, "token block checksum mismatch", block=b, kind="checksum")
                )
    actual = f"{whole.intdigest():016x}"
    if not problems and actual != info.checksum:
        problems.append(
            fmt.Problem(
                source, 0, f"whole-file checksum {actual} != manifest {info.checksum}", kind="checksum"
            )
        )
    return problems, None if problems else (header, fmt.stored_header_checksum(head))


def _check_shard(store: VerifiedStore, index: int, info: ShardInfo, report: VerifyReport) -> None:
    try:
        path = store.locator.shard_path(index)
    except ShardStoreError as exc:
        kind = "manifest" if isinstance(exc, ManifestError) else "format"
        report.problems.append(fmt.Problem(info.name, 0, str(exc), kind=kind))
        return
    try:
        fd = fmt.open_regular_fd(path)
        try:
            st = os.fstat(fd)
            problems, checked = check_shard_fd(fd, st.st_size, source=path, info=info)
        finally:
            os.close(fd)
    except (OSError, ShardStoreError) as exc:
        report.problems.append(fmt.Problem(path, 0, f"cannot read shard: {exc}"))
        return
    report.files_checked += 1
    report.bytes_checked += st.st_size
    report.problems.extend(problems)
    if checked is not None:
        _, head_sum = checked
        if info.header_checksum is not None and f"{head_sum:016x}" != info.header_checksum:
            msg = f"header checksum {head_sum:016x} != manifest {info.header_checksum}: another shard's file"
            report.problems.append(fmt.Problem(path, 0, msg, kind="checksum"))
        else:
            store.mark_verified(
                np.array([index], dtype=np.int64),
                np.array([fid_row(file_id(st))], dtype=np.uint64),
                np.array([head_sum], dtype=np.uint64),
            )


class Batch:
    """What `check_batch` found for shards [lo, hi): per shard a status (OK, BAD: a problem the Python checker will
    name, DEFERRED: not tried natively), and for OK ones the file identity and stored header checksum."""

    __slots__ = ("bytes_read", "fids", "lo", "status", "stored")

    def __init__(self, lo: int, hi: int) -> None:
        self.lo = lo
        self.status = np.empty(hi - lo, dtype=np.uint8)
        self.fids = np.empty((hi - lo, 4), dtype=np.uint64)
        self.stored = np.empty(hi - lo, dtype=np.uint64)
        self.bytes_read = 0

    def ok(self) -> np.ndarray:
        """Store indices of the shards that passed, int64."""
        return np.flatnonzero(self.status == OK) + self.lo


def check_batch(
    root: str,
    records: tuple[np.ndarray, bytes | memoryview],
    lo: int,
    hi: int,
    *,
    into: bytearray | None = None,
    into_at: np.ndarray | None = None,
) -> Batch:
    """Check the tiny shards [lo, hi) of the local store at `root` natively (every byte, against its manifest
    record: `manifest_index.shard_records`); with `into`, shard i's bytes are kept at ``into[into_at[i - lo]:]``."""
    rows, names = records
    batch = Batch(lo, hi)
    at = None if into_at is None else np.ascontiguousarray(into_at, dtype=np.uint64)
    batch.bytes_read = _verifybatch.check_shards(
        os.fsencode(root), names, rows, lo, hi, _READ_WHOLE, batch.status, batch.fids, batch.stored, into, at
    )
    return batch


def _check_local_shards(
    store: VerifiedStore, root: str, report: VerifyReport, on_file: Callable[[str], None] | None
) -> list[str]:
    """The shards of a local store, in batches; returns their names."""
    manifest = store.manifest
    records = shard_records(manifest.shards)
    rows, blob = records
    ends = rows[:, 5].tolist()
    text = bytes(blob).decode("ascii")
    names = [text[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    for lo in range(0, len(names), _BATCH):
        hi = min(lo + _BATCH, len(names))
        batch = check_batch(root, records, lo, hi)
        ok = batch.ok()
        report.files_checked += int(ok.size)
        report.bytes_checked += int(rows[ok, 2].sum())
        good = batch.status == OK
        store.mark_verified(ok, batch.fids[good], batch.stored[good])
        for j in np.flatnonzero(~good).tolist():  # in order, so the problems are listed in shard order
            _check_shard(store, lo + j, manifest.shards[lo + j], report)
        if on_file is not None:
            for name in names[lo:hi]:
                on_file(name)
    return names


def _check_file(store: VerifiedStore, name: str, report: VerifyReport) -> None:
    entry = store.manifest.file(name)
    if entry is None:  # cannot happen for names taken from the manifest; kept total
        return
    try:
        path = store.locator.file_path(name)
        with fmt.open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            if size != entry.size:
                report.problems.append(
                    fmt.Problem(
                        path, min(size, entry.size), f"file is {size} bytes, manifest says {entry.size}"
                    )
                )
                return
            data = bytearray(size)
            got = _read_exact(f.fileno(), memoryview(data))
        actual = f"{fmt.checksum_bytes(memoryview(data)[:got]):016x}"
    except (OSError, ShardStoreError) as exc:
        report.problems.append(fmt.Problem(name, 0, f"cannot read auxiliary file: {exc}"))
        return
    report.files_checked += 1
    report.bytes_checked += size
    if actual != entry.checksum:
        report.problems.append(
            fmt.Problem(path, 0, f"whole-file checksum {actual} != manifest {entry.checksum}")
        )


# Files of a store folder that another module checks by their own checksums: name -> checker(path) -> problems.
def _check_hash_index(path: str) -> list[fmt.Problem]:
    name = os.path.join(INDEX_DIR, os.path.basename(path))
    return [fmt.Problem(name, 0, msg, kind="checksum") for msg in check_index_file(path)]


COVERED_ELSEWHERE: dict[str, Callable[[str], list[fmt.Problem]]] = {INDEX_DIR: _check_hash_index}


def _walk(root: str) -> list[str]:
    """Every file under `root`, as relative '/'-separated names, sorted (symlinks are listed, not followed)."""
    names: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        rel = os.path.relpath(folder, root)
        for fname in sorted(files):
            names.append(fname if rel == "." else f"{rel.replace(os.sep, '/')}/{fname}")
    return names


def _check_manifest_files(store: VerifiedStore, report: VerifyReport) -> None:
    """manifest.json parses and validates in full (a Store opened through the index only hashed it), describes
    this store, and manifest.idx (if present) is byte for byte the index derived from it."""
    from shardstore.store.manifest import MANIFEST_NAME, Manifest
    from shardstore.store.manifest_index import INDEX_NAME, index_bytes

    path = os.path.join(store.root, MANIFEST_NAME)
    try:
        with fmt.open_regular(path) as f:
            data = f.read()
        parsed = Manifest.from_json_bytes(data, source=path)
    except (OSError, ShardStoreError) as exc:
        report.problems.append(fmt.Problem(path, 0, f"manifest: {exc}", kind="manifest"))
        return
    report.files_checked += 1
    report.bytes_checked += len(data)
    if parsed.fingerprint != store.manifest.fingerprint:
        report.problems.append(
            fmt.Problem(path, 0, "manifest changed since the store was opened", kind="manifest")
        )
    idx = os.path.join(store.root, INDEX_NAME)
    if not os.path.lexists(idx):
        return
    try:
        with fmt.open_regular(idx) as f:
            got = f.read()
    except (OSError, ShardStoreError) as exc:
        report.problems.append(fmt.Problem(idx, 0, f"cannot read the manifest index: {exc}"))
        return
    report.files_checked += 1
    report.bytes_checked += len(got)
    if got != index_bytes(parsed, data):
        msg = "is not the index of manifest.json (stale or corrupt); delete it or rewrite the manifest"
        report.problems.append(fmt.Problem(idx, 0, msg, kind="checksum"))


def _list_uncovered(store: VerifiedStore, shard_names: set[str], report: VerifyReport) -> None:
    from shardstore.store.manifest import MANIFEST_NAME
    from shardstore.store.manifest_index import INDEX_NAME

    root = store.root
    if not os.path.isdir(root):  # a remote store: its cache folder is the cache's business
        return
    _check_manifest_files(store, report)
    covered = shard_names | {f.name for f in store.manifest.files}
    covered |= {MANIFEST_NAME, INDEX_NAME}
    for name in _walk(root):
        if name in covered or name == "build_report.json" or name.startswith(".build/"):
            continue  # the sealed build state: `_check_build_state` checks it (or names it not covered)
        checker = COVERED_ELSEWHERE.get(name.split("/", 1)[0] if "/" in name else name)
        if checker is not None:
            report.problems.extend(checker(os.path.join(root, name)))
            report.files_checked += 1
        else:
            report.not_covered.append(name)


def verify_store(store: VerifiedStore, *, on_file: Callable[[str], None] | None = None) -> VerifyReport:
    """Check every shard and auxiliary file of `store`; `on_file(name)` is called after each (progress).

    `report.not_covered` names every other file in the store directory (nothing checks or reads them)."""
    report = VerifyReport(root=store.root)
    shards = store.manifest.shards
    locator = store.locator
    if isinstance(locator, LocalLocator) and len(shards):
        names = _check_local_shards(store, locator.root, report, on_file)
    else:  # a remote store: each shard through its locator (download, then check)
        names = []
        for index, info in enumerate(shards):
            names.append(info.name)
            _check_shard(store, index, info, report)
            if on_file is not None:
                on_file(info.name)
    for entry in store.manifest.files:
        _check_file(store, entry.name, report)
        if on_file is not None:
            on_file(entry.name)
    _check_build_state(store.root, report)
    _list_uncovered(store, set(names), report)
    return report


def _check_build_state(root: str, report: VerifyReport) -> None:
    """The sealed build state beside a local store (`build_report.json`, `.build/`): see `util.sealed`."""
    if not os.path.isdir(root):
        return
    bad, uncovered = check_store_state(root)
    for name in bad:
        report.problems.append(
            fmt.Problem(
                os.path.join(root, name),
                0,
                "build state file is corrupt (its xxh3 seal does not match); the store's data is not affected: "
                "re-run the build command to rewrite it, or delete it",
            )
        )
    report.not_covered.extend(uncovered)
