"""Helpers of the remote-cache tests: tiny deterministic stores, uploaded to the moto server, read through a proxy."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from shardstore.remote.fetch import RetryPolicy
from shardstore.store.manifest import Manifest, file_info, write_manifest
from shardstore.store.writer import ShardWriter

sys.path.insert(0, os.path.dirname(__file__))
from s3proxy import S3Proxy

# Fast, still bounded retries for tests: the library's own layer (RetryPolicy) is the one under test, so the
# client libraries below it give up quickly.
TEST_RETRY = RetryPolicy(attempts=8, backoff_s=0.005, max_backoff_s=0.05)


def quiet_options(proxy: S3Proxy) -> dict[str, Any]:
    opts = proxy.storage_options()
    opts["config_kwargs"] = {"retries": {"max_attempts": 1, "mode": "standard"}}
    return opts


def build_store(
    directory: str, *, num_docs: int = 120, seed: int = 0, max_shard_bytes: int = 24 << 10
) -> str:
    """A uint16 store of random documents (100..1500 tokens each) cut into ~`max_shard_bytes` shards."""
    rng = np.random.default_rng(seed)
    with ShardWriter(
        directory, dtype="uint16", max_shard_bytes=max_shard_bytes, block_size=1 << 12
    ) as writer:
        for _ in range(num_docs):
            writer.add_document(rng.integers(0, 60000, size=int(rng.integers(100, 1500)), dtype=np.uint16))
    with open(os.path.join(directory, "notes.json"), "w") as f:  # an auxiliary file listed in the manifest
        f.write(f'{{"seed": {seed}}}\n')
    files = (file_info(os.path.join(directory, "notes.json")),)
    write_manifest(directory, Manifest(dtype="uint16", shards=tuple(writer.shards), files=files))
    return directory


def upload(s3_server: Any, local_dir: str, *, prefix: str = "store") -> str:
    """Copy a local store into a fresh bucket; returns its s3:// URL."""
    import s3fs

    bucket = s3_server.new_bucket()
    fs = s3fs.S3FileSystem(**s3_server.storage_options)
    for name in sorted(os.listdir(local_dir)):
        fs.put_file(os.path.join(local_dir, name), f"{bucket}/{prefix}/{name}")
    return f"s3://{bucket}/{prefix}"


def tokens_digest(store: Any) -> str:
    return hashlib.sha256(store.tokens(0, store.num_tokens).tobytes()).hexdigest()


def cache_files(cache_root: str) -> dict[str, int]:
    """Every file under `*/data` and `*/tmp` of a cache root -> its size on disk."""
    out: dict[str, int] = {}
    for dirpath, _, names in os.walk(cache_root):
        if os.sep + "data" in dirpath or dirpath.endswith(os.sep + "tmp"):
            for name in names:
                path = os.path.join(dirpath, name)
                with contextlib.suppress(FileNotFoundError):
                    out[os.path.relpath(path, cache_root)] = os.path.getsize(path)
    return out


def cache_bytes_in_use(cache_root: str) -> int:
    """Bytes on disk under a cache root, from a walk that cannot over-count: a walk is not a snapshot, so each key's
    tmp/ is listed before its data/ (a download reserved after an eviction is then seen only if the evicted file is
    already gone), and each shard counts once (a .part committed into data/ between the two listings is seen twice)."""
    per_shard: dict[tuple[str, str], int] = {}

    def add(key: str, shard: str, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            per_shard[(key, shard)] = max(per_shard.get((key, shard), 0), os.path.getsize(path))

    keys = sorted(os.listdir(cache_root)) if os.path.isdir(cache_root) else []  # not created yet
    for key in keys:
        tmp, data = os.path.join(cache_root, key, "tmp"), os.path.join(cache_root, key, "data")
        if not os.path.isdir(tmp):
            continue
        for entry in os.scandir(tmp):  # <flat name>.<size>.<pid>.<rand>.part
            add(key, entry.name.rsplit(".", 4)[0], entry.path)
        for dirpath, _, names in os.walk(data):
            for name in names:
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, data).replace(os.sep, "/")
                add(key, urllib.parse.quote(rel, safe=""), path)
    return sum(per_shard.values())


@contextlib.contextmanager
def watched_cache_peak(cache_root: str) -> Iterator[list[int]]:
    """Watch a cache's disk use from a thread, independently of the cache's own accounting; yields [peak bytes]."""
    peak = [0]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], cache_bytes_in_use(cache_root))
            time.sleep(0.001)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        yield peak
    finally:
        stop.set()
        watcher.join()


@pytest.fixture(scope="module", name="local_store")
def local_store_fixture(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_store(str(tmp_path_factory.mktemp("store")))


@pytest.fixture(scope="module", name="remote_url")
def remote_url_fixture(s3_server: Any, local_store: str) -> str:
    return upload(s3_server, local_store)


@pytest.fixture(name="proxy")
def proxy_fixture(s3_server: Any) -> Iterator[S3Proxy]:
    with S3Proxy(s3_server.endpoint) as p:
        yield p
