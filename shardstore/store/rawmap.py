"""Map a file read-only and close its descriptor: a mapping holds no file descriptor.

`mmap.mmap` keeps a dup of the descriptor for the life of the mapping (Python < 3.13 has no `trackfd=False`), so a
process with thousands of mapped shards held thousands of fds (2,566 for 10 sources, issue 19) and failed under
`ulimit -n 1024`. Here libc's `mmap` is called through ctypes, the fd is closed at once, and the mapping is exposed
as a read-only memoryview over a ctypes array; `munmap` runs when the last view of it is collected (a
`weakref.finalize` on the array), so arrays already handed out stay valid after their shard is evicted.

A mapping's `FileId` (device, inode, size, change time in ns) is taken by `fstat` of the same descriptor that was
mapped, so it names exactly the bytes mapped. Cost: open + fstat + mmap + close, ~10 us.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import weakref
from functools import cache
from typing import NamedTuple

from shardstore.errors import FormatError

__all__ = ["FileId", "file_id", "map_readonly"]


class FileId(NamedTuple):
    """What makes a file "the same file" for verification state: a replaced or rewritten file differs."""

    dev: int
    ino: int
    size: int
    ctime_ns: int


def file_id(st: os.stat_result) -> FileId:
    return FileId(st.st_dev, st.st_ino, st.st_size, st.st_ctime_ns)


@cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    libc.munmap.restype = ctypes.c_int
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    return libc


def _unmap(addr: int, size: int) -> None:
    _libc().munmap(addr, size)


def map_fd(fd: int, size: int, *, source: str) -> memoryview:
    """A read-only view of the first `size` (> 0) bytes of `fd`; the caller may close `fd` right after."""
    libc = _libc()
    addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    if addr is None or addr == ctypes.c_void_p(-1).value:
        err = ctypes.get_errno()
        raise FormatError(f"{source}: cannot map {size} bytes: {os.strerror(err)}")
    array = (ctypes.c_char * size).from_address(addr)
    weakref.finalize(array, _unmap, addr, size)
    return memoryview(array).cast("B").toreadonly()


def map_readonly(fd: int, *, source: str, expect_size: int | None = None) -> tuple[memoryview, FileId]:
    """Map all of the open file `fd` read-only; returns the view and the identity of the mapped file.

    The view holds no descriptor: close `fd` when done with it. An empty file maps to an empty view. With
    `expect_size`, a file of another size raises FormatError (truncated or replaced) before anything is mapped.
    """
    fid = file_id(os.fstat(fd))
    if expect_size is not None and fid.size != expect_size:
        raise FormatError(
            f"{source}: file is {fid.size} bytes, the manifest says {expect_size}: truncated or replaced; "
            "rebuild or re-download the store"
        )
    if fid.size == 0:
        return memoryview(b""), fid
    return map_fd(fd, fid.size, source=source), fid
