"""A persistent per-store index of document content hashes, so a held-out split costs O(documents) to open.

A held-out split needs every document's content hash (`shardstore.store.docarrays.content_hashes`), which reads
every token of the store: 0.75-1.8 s per 8*10**7 tokens here, and for a remote store a download of every shard.
The hashes depend only on the store's bytes, so they are computed once per store fingerprint and kept in a file:

    <dir>/<store fingerprint>.hidx        header (64 + 128 bytes) then num_docs little-endian uint64 hashes
    <dir>/<store fingerprint>.hidx.lock   flock(2)ed by the one process computing it (empty, never deleted)

Header: magic ``SSHIDX01``, format version (u32), `CONTENT_HASH_VERSION` (u32), num_docs (u64), the body's
xxh3-64 (u64), the store fingerprint (128 bytes, ASCII, NUL padded), then the xxh3-64 of those bytes (u64).

Where (`index_dirs`): ``<store>/.hashidx/`` beside a local store whose folder is writable, else
``<cache root>/.hashidx/`` (the store's ``cache_dir``, else `default_cache_dir`, the node-local root remote stores
are cached under; dot-folders are not cache keys, so eviction never touches it).

Trust: a file is used only if its header checksum, magic, versions, fingerprint, num_docs, size and body checksum
all match this store. Anything else (truncated, flipped bit, another store's or an older hash version's file) is
never used: the hashes are recomputed and the file atomically replaced. Reading costs one xxh3 pass over 8 bytes
per document (~1 ms per 10**5 documents) instead of a pass over every token.

Concurrency: the first opens of several processes (DataLoader workers, ranks on a node) serialize on the lock:
one computes and publishes the file by `atomic_write` (temp file, fsync, rename), the others wait and then read
it. If no folder is writable the hashes are computed in memory, as without an index.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
from collections.abc import Iterator
from typing import Protocol

import numpy as np
import xxhash

from shardstore.store import docarrays
from shardstore.store.docarrays import CONTENT_HASH_VERSION
from shardstore.store.locator import LocalLocator, Locator
from shardstore.util.durable import atomic_write
from shardstore.util.remote_options import RemoteOptions, default_cache_dir

__all__ = ["INDEX_DIR", "check_index_file", "document_hashes", "index_dirs", "index_path", "read_index"]

INDEX_DIR = ".hashidx"
_MAGIC = b"SSHIDX01"
_FORMAT = 1
_HEAD = struct.Struct("<8sIIQQ128s")
_HEAD_SIZE = _HEAD.size + 8  # plus the header's own checksum


class HashedStore(docarrays.DocStore, Protocol):
    @property
    def fingerprint(self) -> str: ...
    @property
    def root(self) -> str: ...
    @property
    def remote_options(self) -> RemoteOptions | None: ...
    @property
    def locator(self) -> Locator: ...


def index_dirs(store: HashedStore) -> list[str]:
    """The folders to look in / write to, in order: beside a writable local store, then the node-local cache."""
    dirs = []
    local = isinstance(store.locator, LocalLocator)  # a remote root is a bucket path, never a local folder
    if local and os.path.isdir(store.root) and os.access(store.root, os.W_OK):
        dirs.append(os.path.join(store.root, INDEX_DIR))
    options = store.remote_options
    cache = options.cache_dir if options is not None and options.cache_dir else default_cache_dir()
    dirs.append(os.path.join(cache, INDEX_DIR))
    return dirs


def index_path(folder: str, fingerprint: str) -> str:
    return os.path.join(folder, f"{fingerprint}.hidx")


def encode(fingerprint: str, hashes: np.ndarray) -> bytes:
    body = np.ascontiguousarray(hashes, dtype="<u8").tobytes()
    fp = fingerprint.encode("ascii")
    head = _HEAD.pack(_MAGIC, _FORMAT, CONTENT_HASH_VERSION, hashes.size, xxhash.xxh3_64_intdigest(body), fp)
    return head + struct.pack("<Q", xxhash.xxh3_64_intdigest(head)) + body


def _decode(data: bytes) -> tuple[str, np.ndarray] | str:
    """(fingerprint, hashes) of a well-formed index, else the reason it is not one."""
    if len(data) < _HEAD_SIZE:
        return f"truncated ({len(data)} bytes)"
    head = data[: _HEAD.size]
    (seal,) = struct.unpack_from("<Q", data, _HEAD.size)
    if xxhash.xxh3_64_intdigest(head) != seal:
        return "header checksum mismatch"
    magic, fmt, version, n, body_sum, fp = _HEAD.unpack(head)
    if magic != _MAGIC or fmt != _FORMAT:
        return f"not a hash index of format {_FORMAT}"
    if version != CONTENT_HASH_VERSION:
        return f"hash version {version}, not {CONTENT_HASH_VERSION}"
    body = data[_HEAD_SIZE:]
    if len(body) != 8 * n:
        return f"body is {len(body)} bytes, header says {n} documents"
    if xxhash.xxh3_64_intdigest(body) != body_sum:
        return "body checksum mismatch"
    return fp.rstrip(b"\x00").decode("ascii", "replace"), np.frombuffer(body, dtype="<u8").astype(np.uint64)


def read_index(path: str, fingerprint: str, num_docs: int) -> np.ndarray | None:
    """The hashes in `path` if it is a sound index of the store (fingerprint, num_docs), else None."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    got = _decode(data)
    if isinstance(got, str):
        return None
    fp, hashes = got
    return hashes if fp == fingerprint and hashes.size == num_docs else None


def check_index_file(path: str) -> list[str]:
    """Problems of one file under a store's `INDEX_DIR` (for `verify`): [] when sound, or harmless (a lock)."""
    name = os.path.basename(path)
    if name.endswith(".lock") or ".hidx.tmp." in name:
        return []
    if not name.endswith(".hidx"):
        return [f"{name}: not a hash index file"]
    try:
        with open(path, "rb") as f:
            got = _decode(f.read())
    except OSError as exc:
        return [f"cannot read: {exc}"]
    if isinstance(got, str):
        return [f"{got}; delete it (it is recomputed on the next open)"]
    if got[0] != name[: -len(".hidx")]:
        return [f"is the index of store {got[0]}, not of {name[: -len('.hidx')]}; delete it"]
    return []


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # drops the flock


def document_hashes(store: HashedStore) -> np.ndarray:
    """Every document's content hash, in store order: from a sound index file, else computed and persisted."""
    fp, n = store.fingerprint, store.num_docs
    dirs = index_dirs(store)
    for folder in dirs:
        hashes = read_index(index_path(folder, fp), fp, n)
        if hashes is not None:
            return hashes
    computed: np.ndarray | None = None
    for folder in dirs:
        path = index_path(folder, fp)
        try:
            os.makedirs(folder, exist_ok=True)
            with _locked(path + ".lock"):
                hashes = read_index(path, fp, n)  # another process may have written it while we waited
                if hashes is None:
                    if computed is None:
                        computed = docarrays.content_hashes(store)
                    hashes = computed
                    atomic_write(path, encode(fp, hashes))
                return hashes
        except OSError:
            continue  # not writable after all (read-only mount, full disk): try the next folder
    return computed if computed is not None else docarrays.content_hashes(store)
