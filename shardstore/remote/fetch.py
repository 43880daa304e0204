"""Fetching from any fsspec URL: bounded retries with backoff, and verified downloads into a local temp file.

Design:
- Whatever the filesystem does internally (s3fs and botocore retry on their own), this layer owns the *bounded*
  retry policy the user sees: `attempts` tries with exponential backoff and jitter, then a `RemoteError` naming the
  URL, the attempt count and the last cause. A missing object or a denied request is not retried: it cannot heal.
- A plain file is downloaded with `fs.get_file`, the same code path as `fsspec`'s own `get` (so staging runs at the
  speed of the filesystem: s3fs streams one GET, or parallel ranges for big objects), then hashed from the page
  cache (xxh3 runs at >10 GB/s, far above any network). A `.zst` copy is streamed through the decompressor in
  `chunk_size` range reads (one GET per chunk) and hashed as it is written, never holding a whole shard in memory.
- Verification is size + whole-file xxh3_64 against the manifest; a zstd stream that would decompress past the
  expected size is cut off (a corrupt or hostile frame cannot fill the disk).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import xxhash

from shardstore.errors import CacheError, ChecksumError, ConfigError, RemoteError
from shardstore.util.fsurl import url_to_fs
from shardstore.util.outerr import describe_output_error, is_output_error

__all__ = [
    "RetryPolicy",
    "download_verified",
    "fetch_small",
    "join_url",
    "resolve",
    "with_retries",
]

T = TypeVar("T")

# Errors that will not go away by asking again.
_PERMANENT = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`attempts` tries in all; the k-th wait is uniform in [0.5, 1] x min(max_backoff_s, backoff_s * 2**k)."""

    attempts: int = 5
    backoff_s: float = 0.2
    max_backoff_s: float = 8.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError(f"retry attempts={self.attempts} must be >= 1")
        if self.backoff_s < 0 or self.max_backoff_s < self.backoff_s:
            raise ConfigError(
                f"need 0 <= backoff_s ({self.backoff_s}) <= max_backoff_s ({self.max_backoff_s})"
            )

    def delay(self, attempt: int) -> float:
        return min(self.max_backoff_s, self.backoff_s * 2.0**attempt) * (0.5 + 0.5 * random.random())


def resolve(url: str, storage_options: Mapping[str, Any] | None) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) for `url`; an unknown protocol or missing backend is a ConfigError."""
    fs, path = url_to_fs(url, storage_options)
    return fs, path.rstrip("/")


def join_url(url: str, name: str) -> str:
    return f"{url.rstrip('/')}/{name}"


def with_retries(what: str, fn: Callable[[], T], policy: RetryPolicy, *, local: str | None = None) -> T:
    """Call `fn` up to `policy.attempts` times; `what` (a URL) names the thing in the final RemoteError.

    The local disk refusing the bytes (ENOSPC, EDQUOT, EROFS, EFBIG) is a `CacheError` at once, naming the local
    file (`local`, or the file the error names): a retry cannot free space, and the network is not at fault."""
    last: BaseException | None = None
    for attempt in range(policy.attempts):
        if attempt:
            time.sleep(policy.delay(attempt - 1))
        try:
            return fn()
        except (TypeError, AttributeError) as exc:  # a bad option or a bug: asking again cannot help
            raise ConfigError(f"{what}: {type(exc).__name__}: {exc} (check storage_options)") from exc
        except OSError as exc:
            if is_output_error(exc):
                raise CacheError(describe_output_error(exc, local or what)) from exc
            if isinstance(exc, _PERMANENT):
                raise RemoteError(
                    f"{what}: {type(exc).__name__}: {exc} (not retried: check the URL and credentials)"
                ) from exc
            last = exc
        except Exception as exc:  # network stacks raise many unrelated types; all are retried, then reported
            last = exc
    raise RemoteError(
        f"{what}: failed after {policy.attempts} attempts; last error {type(last).__name__}: {last}"
    ) from last


def fetch_small(fs: Any, path: str) -> bytes:
    """The whole content of a small file in one request.

    An explicit range from 0 makes s3fs skip the HEAD it otherwise sends to size the object first (and, for a
    missing one, a LIST): opening a store costs one round trip instead of two or three.
    """
    return bytes(fs.cat_file(path, start=0, end=None))


class _Progress:
    """An fsspec callback forwarding byte increments to `report` (used for progress bars)."""

    def __init__(self, report: Callable[[int], None] | None) -> None:
        self.report = report
        self.done = 0

    def add(self, n: int) -> None:
        self.done += n
        if self.report is not None:
            self.report(n)

    def undo(self) -> None:
        if self.report is not None and self.done:
            self.report(-self.done)
        self.done = 0


def _fsspec_callback(progress: _Progress, *, url: str, size: int) -> Any:
    from fsspec.callbacks import Callback

    class _CB(Callback):  # type: ignore[misc]
        def set_size(self, value: int | None) -> None:
            # The server announces the length before the body: refuse a wrong-sized object before writing it,
            # so a stale or hostile object cannot fill the disk.
            if value is not None and value != size:
                raise ChecksumError(f"{url}: the server has {value} bytes, the manifest lists {size}")
            super().set_size(value)

        def relative_update(self, inc: int = 1) -> None:
            progress.add(int(inc))

        def call(self, *args: Any, **kwargs: Any) -> None:
            return None

    return _CB()


def _download_plain(fs: Any, rpath: str, tmp: str, progress: _Progress, *, url: str, size: int) -> None:
    fs.get_file(rpath, tmp, callback=_fsspec_callback(progress, url=url, size=size))


def _download_zstd(fs: Any, rpath: str, tmp: str, *, size: int, chunk_size: int, progress: _Progress) -> str:
    import zstandard

    hasher = xxhash.xxh3_64()
    written = 0
    with fs.open(rpath, "rb", block_size=chunk_size, cache_type="none") as src, open(tmp, "wb") as dst:
        reader = zstandard.ZstdDecompressor().stream_reader(src, read_size=chunk_size, closefd=False)
        with reader:
            while True:
                piece = reader.read(chunk_size)
                if not piece:
                    break
                written += len(piece)
                if written > size:
                    raise ChecksumError(
                        f"{rpath}: decompresses to more than the {size} bytes the manifest lists"
                    )
                hasher.update(piece)
                dst.write(piece)
                progress.add(len(piece))
    if written != size:
        raise ChecksumError(f"{rpath}: decompressed to {written} bytes, the manifest lists {size}")
    return f"{hasher.intdigest():016x}"


def _file_checksum(path: str) -> str:
    hasher = xxhash.xxh3_64()
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            hasher.update(block)
    return f"{hasher.intdigest():016x}"


def download_verified(
    fs: Any,
    rpath: str,
    tmp: str,
    *,
    url: str,
    size: int,
    checksum: str,
    zstd: bool,
    policy: RetryPolicy,
    chunk_size: int = 16 << 20,
    report: Callable[[int], None] | None = None,
) -> None:
    """Download `rpath` (decompressing if `zstd`) into `tmp`, verified against (size, checksum), fsync'ed.

    Retries (truncating `tmp` each time) under `policy`; on success `tmp` holds exactly the expected bytes and is
    durable, ready for an atomic rename. Raises RemoteError naming `url` otherwise.
    """
    progress = _Progress(report)

    def attempt() -> None:
        progress.undo()
        if zstd:
            got = _download_zstd(fs, rpath, tmp, size=size, chunk_size=chunk_size, progress=progress)
        else:
            _download_plain(fs, rpath, tmp, progress, url=url, size=size)
            actual = os.path.getsize(tmp)
            if actual != size:
                raise ChecksumError(
                    f"{url}: downloaded {actual} bytes, the manifest lists {size} (truncated body?)"
                )
            got = _file_checksum(tmp)
        if got != checksum:
            raise ChecksumError(
                f"{url}: xxh3_64 {got} != manifest checksum {checksum} (corrupted in transit?)"
            )
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    try:
        with_retries(url, attempt, policy, local=tmp)
    except (RemoteError, CacheError):
        progress.undo()
        raise
