"""The node-local cache directory: layout, file locks, space reservations and LRU eviction.

One cache root may hold many stores and be used by any number of processes and threads at once. Coordination
uses only `flock(2)` on small files in the cache itself: no daemon, no shared memory that can go stale. The kernel
drops a process's flocks when it dies (even by `kill -9`), so a lock is never left behind; flocks on separate
`open()`s conflict even inside one process, so threads coordinate through the same files.

    <root>/.evict.lock                        exclusive while a process reserves space / evicts (milliseconds)
    <root>/<key>/data/<name>                  complete, verified files only: they appear by rename after fsync
    <root>/<key>/locks/<flat>.lock            exclusive while <name> is being downloaded (one download per node)
    <root>/<key>/pins/<flat>.pin              shared while a process has <name> mapped or pinned for prefetch;
                                              eviction needs it exclusively, without waiting, so never takes a
                                              file in use anywhere on the node
    <root>/<key>/tmp/<flat>.<size>.<pid>.<rand>.part
                                              a download in progress; it reserves <size> bytes. One whose download
                                              lock is free belongs to a dead process and is deleted.

Size bound: a reservation is made under `.evict.lock` after evicting least-recently-used unpinned files. A demand
download (a reader is waiting) may proceed when the bytes already used are within `limit`; a prefetch only when its
own bytes fit too. So the total (files + reservations) never exceeds `limit` plus one file. Lock files are never
deleted (deleting a lock file that another process may be about to lock is a race); they are empty.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

from shardstore.errors import CacheError

__all__ = ["CacheDir", "Reservation", "Usage", "flat_name"]

_EVICT_LOCK = ".evict.lock"


def flat_name(name: str) -> str:
    """A manifest name (may contain '/') as a single path component; manifest names never contain '%'."""
    return urllib.parse.quote(name, safe="")


def _open_lock(path: str) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        raise CacheError(
            f"{path}: cannot create lock file: {exc}; check the cache directory's permissions"
        ) from exc


def try_flock(path: str, *, shared: bool = False) -> int | None:
    """An fd holding the flock on `path`, or None if another holder conflicts (never waits)."""
    fd = _open_lock(path)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise CacheError(f"{path}: flock failed: {exc}") from exc
    return fd


def flock(path: str, *, shared: bool = False, timeout_s: float | None = None) -> int:
    """An fd holding the flock on `path`; waits (up to `timeout_s`, then CacheError) for conflicting holders."""
    if timeout_s is None:
        fd = _open_lock(path)
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        return fd
    deadline = time.monotonic() + timeout_s
    delay = 0.002
    while True:
        got = try_flock(path, shared=shared)
        if got is not None:
            return got
        if time.monotonic() > deadline:
            raise CacheError(
                f"{path}: still locked by another process after {timeout_s:.0f}s (a download that hangs?); "
                "raise the lock timeout or check the remote"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


@dataclass(frozen=True, slots=True)
class Usage:
    """Bytes in the cache root: complete files, live reservations, and what is pinned (not evictable)."""

    files: int
    reserved: int

    @property
    def total(self) -> int:
        return self.files + self.reserved


@dataclass(frozen=True, slots=True)
class Reservation:
    """`part`: the temp file to download into, or None when there is no room; then `pinned` lists the
    (store dir, name) of files in use that eviction had to skip, and `reserved` the bytes of downloads in flight."""

    part: str | None
    pinned: tuple[tuple[str, str], ...] = ()
    reserved: int = 0


@dataclass(frozen=True, slots=True)
class _Entry:
    mtime: float
    size: int
    key_dir: str
    name: str


class CacheDir:
    """The cache of one store (`<root>/<key>`) inside a shared cache root."""

    def __init__(self, root: str, key: str) -> None:
        self.root = os.path.abspath(root)
        self.dir = os.path.join(self.root, key)
        for sub in ("data", "locks", "pins", "tmp"):
            try:
                os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
            except OSError as exc:
                raise CacheError(f"{self.dir}: cannot create the cache directory: {exc}") from exc

    def data_path(self, name: str) -> str:
        return os.path.join(self.dir, "data", name)

    def _lock_path(self, key_dir: str, name: str) -> str:
        return os.path.join(key_dir, "locks", flat_name(name) + ".lock")

    def _pin_path(self, key_dir: str, name: str) -> str:
        return os.path.join(key_dir, "pins", flat_name(name) + ".pin")

    # ---- locks -----------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def download_lock(self, name: str, *, timeout_s: float) -> Iterator[None]:
        fd = flock(self._lock_path(self.dir, name), timeout_s=timeout_s)
        try:
            yield
        finally:
            os.close(fd)

    def pin(self, name: str) -> int:
        """A shared pin on `name` (an fd; close it to unpin): no process evicts the file while it is held."""
        return flock(self._pin_path(self.dir, name), shared=True)

    # ---- downloads -------------------------------------------------------------------------------------------
    def clean_stale(self, name: str) -> None:
        """Delete temp files of `name` left by dead processes; call with its download lock held."""
        prefix = flat_name(name) + "."
        tmp_dir = os.path.join(self.dir, "tmp")
        for entry in os.scandir(tmp_dir):
            if entry.name.startswith(prefix) and entry.name.endswith(".part"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)

    def reserve(self, name: str, size: int, *, limit: int | None, demand: bool) -> Reservation:
        """Create the temp file that will receive `name`, after making room under `limit`.

        Call with the download lock of `name` held. A demand reservation succeeds when what is already used fits
        the limit (this file may then overshoot it by its own size); a prefetch one only if this file fits too.
        Without room, the result says which pinned files blocked eviction and how much others have reserved.
        """
        part = os.path.join(
            self.dir, "tmp", f"{flat_name(name)}.{size}.{os.getpid()}.{secrets.token_hex(4)}.part"
        )
        if limit is None:
            return Reservation(self._create(part))
        fd = flock(os.path.join(self.root, _EVICT_LOCK))
        try:
            usage, candidates = self._scan()
            used = usage.total
            pinned: list[tuple[str, str]] = []
            for entry in sorted(candidates, key=lambda e: e.mtime):
                if used + size <= limit:
                    break
                if self._evict(entry):
                    used -= entry.size
                else:
                    pinned.append((entry.key_dir, entry.name))
            if used + size <= limit or (demand and used <= limit):
                return Reservation(self._create(part))
            return Reservation(None, tuple(pinned), usage.reserved)
        finally:
            os.close(fd)

    def _create(self, part: str) -> str:
        try:
            os.close(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))
        except OSError as exc:
            raise CacheError(f"{part}: cannot create a temp file in the cache: {exc}") from exc
        return part

    def commit(self, part: str, name: str) -> str:
        """Atomically move a verified, fsync'ed temp file into place; returns the final path."""
        final = self.data_path(name)
        parent = os.path.dirname(final)
        os.makedirs(parent, exist_ok=True)
        os.replace(part, final)
        dfd = os.open(parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return final

    # ---- accounting and eviction -----------------------------------------------------------------------------
    def usage(self) -> Usage:
        """Bytes used by the whole cache root (all stores): files plus live reservations."""
        return self._scan(clean=False)[0]

    def _scan(self, *, clean: bool = True) -> tuple[Usage, list[_Entry]]:
        files = reserved = 0
        entries: list[_Entry] = []
        try:
            key_dirs = [e.path for e in os.scandir(self.root) if e.is_dir() and not e.name.startswith(".")]
        except FileNotFoundError:
            return Usage(0, 0), []
        for key_dir in key_dirs:
            data = os.path.join(key_dir, "data")
            for dirpath, _, names in os.walk(data):
                for fname in names:
                    path = os.path.join(dirpath, fname)
                    try:
                        st = os.stat(path)
                    except FileNotFoundError:
                        continue
                    files += st.st_size
                    rel = os.path.relpath(path, data).replace(os.sep, "/")
                    entries.append(_Entry(st.st_mtime, st.st_size, key_dir, rel))
            reserved += self._scan_reservations(key_dir, clean=clean)
        return Usage(files, reserved), entries

    def _scan_reservations(self, key_dir: str, *, clean: bool) -> int:
        reserved = 0
        tmp_dir = os.path.join(key_dir, "tmp")
        try:
            parts = [e for e in os.scandir(tmp_dir) if e.name.endswith(".part")]
        except FileNotFoundError:
            return 0
        for entry in parts:
            fields = entry.name.rsplit(".", 4)
            if len(fields) != 5 or not fields[1].isdigit():
                continue
            flat, size = fields[0], int(fields[1])
            lock = os.path.join(key_dir, "locks", flat + ".lock")
            fd = try_flock(lock)
            if fd is None:  # its download is alive
                reserved += size
                continue
            try:  # nobody downloads this name: the temp file is a dead process's leftover
                if clean:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
            finally:
                os.close(fd)
        return reserved

    def _evict(self, entry: _Entry) -> bool:
        fd = try_flock(self._pin_path(entry.key_dir, entry.name))
        if fd is None:
            return False
        try:
            os.unlink(os.path.join(entry.key_dir, "data", entry.name))
        except FileNotFoundError:
            return False
        finally:
            os.close(fd)
        return True
