"""The manifest of a remote store, opened through a node-local `manifest.idx` by every process after the first.

Each rank of a node fetches the remote `manifest.json` (one GET: the bytes decide which cache directory is current,
so a store rebuilt under the same URL is never confused with its old copy). Parsing and validating the JSON of a
100,000-shard manifest costs ~0.9-1.5 s of CPU and ~100-150 MB per process (issue 19). So the first process of a
node writes the binary index of those bytes (`store.manifest_index`) beside its cache, and every later process
(the other ranks, spawn-started DataLoader workers) maps it instead: measured 61 ms and 33 MB per process
(benchmarks/bench_scale_store.py, "remote"; fsspec's import included).

An index is used only if it is the index of exactly the fetched bytes (size and xxh3 of the manifest, and of its own
body: `manifest_index.open_index`) and sits in the cache directory named by its own fingerprint; a stale, foreign or
corrupt one is ignored and rewritten.
"""

from __future__ import annotations

import hashlib
import os

from shardstore.remote.fetch import join_url
from shardstore.store.manifest import MANIFEST_NAME, Manifest, ShardInfo
from shardstore.store.manifest_index import INDEX_NAME, index_bytes, open_index
from shardstore.util.durable import atomic_write

__all__ = ["load_manifest", "store_key", "write_index"]


def store_key(url: str, fingerprint: str) -> str:
    """The cache directory name of the store at `url` with this fingerprint."""
    return f"{hashlib.sha256(url.encode()).hexdigest()[:16]}-{fingerprint[:16]}"


def load_manifest(cache_root: str, url: str, manifest_bytes: bytes) -> tuple[Manifest, bool]:
    """(manifest of `manifest_bytes`, whether it came through a node-local `manifest.idx`)."""
    source = join_url(url, MANIFEST_NAME)
    prefix = store_key(url, "")
    try:
        keys = sorted(e.name for e in os.scandir(cache_root) if e.name.startswith(prefix) and e.is_dir())
    except OSError:
        keys = []
    view = memoryview(manifest_bytes)
    for key in keys:
        found = open_index(os.path.join(cache_root, key), view, ShardInfo)
        if found is not None and key == store_key(url, str(found[0].get("fingerprint"))):
            return Manifest.from_index(found[0], found[1], source=source), True
    return Manifest.from_json_bytes(manifest_bytes, source=source), False


def write_index(directory: str, manifest: Manifest, manifest_bytes: bytes) -> None:
    """Write the index of `manifest_bytes` into the store's cache `directory` (not fsync'ed: it checks itself)."""
    atomic_write(os.path.join(directory, INDEX_NAME), index_bytes(manifest, manifest_bytes), fsync=False)
