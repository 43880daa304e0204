"""Durable writes: a file becomes visible only by an atomic rename after fsync (DESIGN invariant 3).

Every file shardstore commits goes through `atomic_write` or `atomic_writer`: the bytes go to a temp file beside the
target (``<name>.tmp.<pid>.<thread>``, so concurrent writers never share one, and cleanup code can recognise leftovers
by the ``<name>.tmp`` prefix), are fsynced, renamed over the target, and the folder is fsynced so that the rename
itself survives a crash. A crash leaves the old file or the new one, never a torn one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

__all__ = ["atomic_write", "atomic_writer", "fsync_dir"]


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """fsync a folder, so that renames and creations inside it are durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_writer(
    path: str | os.PathLike[str], *, fsync: bool = True, sync_dir: bool = True
) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces `path` atomically when the block ends without an exception.

    Args:
        fsync: fsync the file before the rename (False only for notes nothing depends on).
        sync_dir: fsync the folder after the rename; a caller writing many files may do it once at the end.
    """
    path = os.fspath(path)
    tmp = f"{path}.tmp.{os.getpid()}.{threading.get_ident()}"
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = path  # a failed write() names no file: name the target (ENOSPC messages need it)
        raise
    if fsync and sync_dir:
        fsync_dir(os.path.dirname(os.path.abspath(path)))


def atomic_write(
    path: str | os.PathLike[str], data: bytes, *, fsync: bool = True, skip_if_same: bool = False
) -> bool:
    """Write `data` to `path` durably (see the module doc). Returns False if nothing was written.

    Args:
        fsync: False skips both fsyncs (the rename stays atomic): for notes whose loss in a crash costs nothing.
        skip_if_same: leave `path` untouched when it already holds exactly `data` (re-runs write nothing).
    """
    if skip_if_same:
        try:
            if os.path.getsize(path) == len(data):
                with open(path, "rb") as f:
                    if f.read() == data:
                        return False
        except FileNotFoundError:
            pass
    with atomic_writer(path, fsync=fsync) as f:
        f.write(data)
    return True
