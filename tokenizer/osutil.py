"""The tokenizer's two operating-system helpers: usable cores and durable file writes.

`tokenizer/` is a package of its own below `shardstore/` and imports nothing of shardstore but its errors
(tests/test_layers.py), so it keeps these two small functions itself; `shardstore.util` has the same two for
the rest of the library. Both follow the same rules: the affinity mask where the OS has one; temp file beside the
target, fsync, rename, fsync the folder.
"""

from __future__ import annotations

import os
import threading

__all__ = ["atomic_write_bytes", "usable_cores"]


def usable_cores() -> int:
    """Cores this process may run on (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows: no affinity API
        return max(1, os.cpu_count() or 1)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to a temp file beside `path`, fsync, rename over `path`, fsync the folder."""
    path = os.fspath(path)
    tmp = f"{path}.tmp.{os.getpid()}.{threading.get_ident()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
