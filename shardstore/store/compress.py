"""zstd copies of a store's shards for object storage, and the index that tells a cache they exist.

`compress_store(path)` writes `<shard>.zst` beside each shard (temp file, fsync, rename) and then, as its commit
point, `compression.json`: for each shard the name of its compressed copy and that copy's size, plus the store
fingerprint the copies were made from. The manifest is not touched, so the store fingerprint and every checksum
still describe the *decompressed* bytes: a cache streams a `.zst` through the decompressor and verifies what comes
out against the manifest, exactly as it would verify a plain download. An index whose fingerprint differs from the
manifest's (the store was rebuilt after compressing) is ignored.

Token ids compress to roughly 55-70% of their size with zstd level 3 (measured on BPE tokens of English text), and
decompression runs at >1 GB/s per core, so compressed shards win whenever the link is slower than that.
`keep_originals=False` deletes the plain shards after the index is committed: such a directory is only meant to be
uploaded and opened through a URL (the cache needs the `.zst` copies, a local `Store.open` needs the originals).

A run holds an exclusive flock on the store's `manifest.json` (no extra file in the store), so two runs on one store
cannot race; the second one stops with a clear error. Holding it, a run first deletes the temp files
(`*.zst.tmp.<pid>.<thread>`, `compression.json.tmp.*`) that earlier, killed runs left, but only those whose
writer process no longer exists on this host: a temp file of a live process is never touched.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from shardstore.errors import ConfigError, ManifestError
from shardstore.util.durable import atomic_write, atomic_writer, fsync_dir
from shardstore.util.procs import pid_alive

__all__ = ["COMPRESSION_NAME", "CompressedFile", "compress_store", "parse_compression_index"]

COMPRESSION_NAME = "compression.json"
_FORMAT = "shardstore-compression"
_VERSION = 1
_MAX_INDEX_BYTES = 1 << 28


@dataclass(frozen=True, slots=True)
class CompressedFile:
    """The compressed copy of one manifest file: its name in the store and its (compressed) size in bytes."""

    name: str
    size: int


def _compress_file(src: str, dst: str, *, level: int, threads: int) -> int:
    import zstandard

    cctx = zstandard.ZstdCompressor(
        level=level, write_checksum=True, write_content_size=True, threads=threads
    )
    # the folder is fsynced once, after all shards (compress_store)
    with open(src, "rb") as fin, atomic_writer(dst, sync_dir=False) as fout:
        cctx.copy_stream(
            fin, fout, size=os.fstat(fin.fileno()).st_size, read_size=1 << 22, write_size=1 << 22
        )
    return os.path.getsize(dst)


_TEMP = re.compile(r"(?:.+\.zst|" + re.escape(COMPRESSION_NAME) + r")\.tmp\.(\d+)\.\d+")


def sweep_dead_temps(root: str) -> list[str]:
    """Delete compress temp files in `root` whose writer process is gone; returns their names."""
    removed = []
    for name in sorted(os.listdir(root)):
        m = _TEMP.fullmatch(name)
        if m is not None and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(root, name))
                removed.append(name)
    return removed


@contextlib.contextmanager
def _one_run(root: str) -> Iterator[None]:
    """Exclusive flock on the manifest for the whole run (ConfigError if another run holds it)."""
    from shardstore.store.manifest import MANIFEST_NAME

    fd = os.open(os.path.join(root, MANIFEST_NAME), os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"{root}: another `shardstore compress` is running on this store; wait for it to finish"
            ) from None
        except OSError as exc:  # no flock on this file system: go on, pids still guard the sweep
            if exc.errno not in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
        yield
    finally:
        os.close(fd)


def compress_store(
    path: str | os.PathLike[str], *, level: int = 3, keep_originals: bool = True, threads: int = 0
) -> dict[str, CompressedFile]:
    """Write `<shard>.zst` for every shard of the local store at `path` and commit `compression.json`.

    Idempotent: re-running rewrites identical bytes. Returns shard name -> its compressed copy.

    Args:
        level: zstd level (1..19); 3 is a good speed/size trade-off for token ids.
        keep_originals: False deletes the plain shards once the index is committed (upload-only directories).
        threads: zstd worker threads (0: single-threaded, deterministic output; -1: one per core).
    """
    from shardstore.store.manifest import read_manifest

    if not 1 <= level <= 22:
        raise ConfigError(f"zstd level={level} must be within 1..22 (3 is a good default)")
    root = os.fspath(path)
    manifest = read_manifest(root)
    with _one_run(root):
        sweep_dead_temps(root)
        return _compress_all(root, manifest, level=level, keep_originals=keep_originals, threads=threads)


def _compress_all(
    root: str, manifest: Any, *, level: int, keep_originals: bool, threads: int
) -> dict[str, CompressedFile]:
    result: dict[str, CompressedFile] = {}
    for shard in manifest.shards:
        src = os.path.join(root, shard.name)
        dst = src + ".zst"
        if not os.path.exists(src):
            if os.path.exists(dst):  # originals already removed by an earlier keep_originals=False run
                result[shard.name] = CompressedFile(shard.name + ".zst", os.path.getsize(dst))
                continue
            raise ConfigError(f"{src}: shard listed in the manifest is missing; cannot compress")
        if os.path.getsize(src) != shard.size:
            raise ConfigError(
                f"{src}: {os.path.getsize(src)} bytes, manifest lists {shard.size}; run `shardstore verify`"
            )
        result[shard.name] = CompressedFile(
            shard.name + ".zst", _compress_file(src, dst, level=level, threads=threads)
        )
    fsync_dir(root)
    index = {
        "format": _FORMAT,
        "version": _VERSION,
        "codec": "zstd",
        "fingerprint": manifest.fingerprint,
        "files": {name: {"file": c.name, "size": c.size} for name, c in sorted(result.items())},
    }
    atomic_write(
        os.path.join(root, COMPRESSION_NAME), (json.dumps(index, sort_keys=True, indent=1) + "\n").encode()
    )
    if not keep_originals:
        for shard in manifest.shards:
            src = os.path.join(root, shard.name)
            if os.path.exists(src):
                os.unlink(src)
        fsync_dir(root)
    return result


def parse_compression_index(
    data: bytes, *, source: str, fingerprint: str, names: Mapping[str, int]
) -> dict[str, CompressedFile] | None:
    """Validate `compression.json` against the manifest (shard name -> size); None if it is for another build.

    Hostile content (unknown names, paths that escape the store, absurd sizes) raises ManifestError.
    """
    from shardstore.store.manifest import check_name

    if len(data) > _MAX_INDEX_BYTES:
        raise ManifestError(f"{source}: {len(data)} bytes is too large for a compression index")
    try:
        obj: Any = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ManifestError(f"{source}: not valid JSON ({exc}); re-run `shardstore compress`") from None
    if not isinstance(obj, dict) or obj.get("format") != _FORMAT or obj.get("version") != _VERSION:
        raise ManifestError(f"{source}: not a {_FORMAT} v{_VERSION} index")
    if obj.get("codec") != "zstd":
        raise ManifestError(f"{source}: codec {obj.get('codec')!r} is not supported (only 'zstd')")
    if obj.get("fingerprint") != fingerprint:
        return None
    files = obj.get("files")
    if not isinstance(files, dict):
        raise ManifestError(f"{source}: 'files' must be an object of shard name -> compressed copy")
    result: dict[str, CompressedFile] = {}
    for name, entry in files.items():
        if name not in names:
            raise ManifestError(f"{source}: {name!r} is not a shard of the manifest")
        if not isinstance(entry, dict) or set(entry) != {"file", "size"}:
            raise ManifestError(f"{source}: entry of {name!r} must have exactly 'file' and 'size'")
        file = check_name(entry["file"], source=source, what="compressed file name")
        size = entry["size"]
        if type(size) is not int or not 0 < size <= 2 * names[name] + (1 << 20):
            raise ManifestError(f"{source}: compressed size {size!r} of {name!r} is impossible")
        result[name] = CompressedFile(file, size)
    return result
