"""Full verification of a store: every byte of every shard and auxiliary file against the manifest.

It never stops at the first problem: the report lists each one (file, block, byte offset) so `shardstore verify`
can print them all. Shards are mapped one at a time outside the Store's LRU, and a shard that passes is marked
fully verified in the Store, so later reads skip their first-touch block checks.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from shardstore.errors import ManifestError, ShardStoreError
from shardstore.store import format as fmt
from shardstore.util.sealed import check_store_state

if TYPE_CHECKING:
    from shardstore.store.locator import Locator
    from shardstore.store.manifest import Manifest


class VerifiedStore(Protocol):
    """What `verify_store` needs of a store (`Store` implements it)."""

    @property
    def manifest(self) -> Manifest: ...
    @property
    def locator(self) -> Locator: ...
    @property
    def root(self) -> str: ...
    def mark_fully_verified(self, index: int, num_blocks: int) -> None: ...


__all__ = ["VerifyReport", "verify_store"]


@dataclass(slots=True)
class VerifyReport:
    """What a full verification found."""

    root: str
    files_checked: int = 0
    bytes_checked: int = 0
    problems: list[fmt.Problem] = field(default_factory=list)
    not_covered: list[str] = field(default_factory=list)  # files of the store directory no check covers

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_if_failed(self) -> None:
        """Raise ChecksumError (or FormatError) describing the first problem, if any."""
        fmt.raise_problems(self.problems)


def _check_shard(store: VerifiedStore, index: int, report: VerifyReport) -> None:
    info = store.manifest.shards[index]
    try:
        path = store.locator.shard_path(index)
    except ShardStoreError as exc:
        kind = "manifest" if isinstance(exc, ManifestError) else "format"
        report.problems.append(fmt.Problem(info.name, 0, str(exc), kind=kind))
        return
    try:
        with fmt.open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else None
    except (OSError, ShardStoreError) as exc:
        report.problems.append(fmt.Problem(path, 0, f"cannot read shard: {exc}"))
        return
    if mm is None:
        problems = fmt.check_shard_bytes(memoryview(b""), source=path, info=info)
    else:
        with mm:
            view = memoryview(mm)
            try:
                problems = fmt.check_shard_bytes(view, source=path, info=info)
                num_blocks = (
                    fmt.parse_header(view[: fmt.HEADER_SIZE], source=path).layout.num_blocks
                    if not problems
                    else 0
                )
            finally:
                view.release()
    report.files_checked += 1
    report.bytes_checked += size
    report.problems.extend(problems)
    if not problems:
        store.mark_fully_verified(index, num_blocks)


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
                fmt.Problem(path, min(size, entry.size), f"file is {size} bytes, manifest says {entry.size}")
            )
            return
        actual = fmt.file_checksum(path)
    except (OSError, ShardStoreError) as exc:
        report.problems.append(fmt.Problem(name, 0, f"cannot read auxiliary file: {exc}"))
        return
    report.files_checked += 1
    report.bytes_checked += size
    if actual != entry.checksum:
        report.problems.append(
            fmt.Problem(path, 0, f"whole-file checksum {actual} != manifest {entry.checksum}")
        )


def verify_store(store: VerifiedStore, *, on_file: Callable[[str], None] | None = None) -> VerifyReport:
    """Check every shard and auxiliary file of `store`; `on_file(name)` is called after each (progress)."""
    report = VerifyReport(root=store.root)
    for index, info in enumerate(store.manifest.shards):
        _check_shard(store, index, report)
        if on_file is not None:
            on_file(info.name)
    for entry in store.manifest.files:
        _check_file(store, entry.name, report)
        if on_file is not None:
            on_file(entry.name)
    _check_build_state(store.root, report)
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
