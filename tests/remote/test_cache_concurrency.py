"""The cache under concurrency: 8 processes x 3 threads, kill -9 mid-download, eviction under a small cache_limit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np
import pytest
from remote_fixtures import (  # noqa: F401  (fixtures)
    TEST_RETRY,
    build_store,
    cache_files,
    local_store_fixture,
    proxy_fixture,
    quiet_options,
    remote_url_fixture,
    tokens_digest,
    upload,
    watched_cache_peak,
)
from s3proxy import FaultPlan

from shardstore.errors import CacheError
from shardstore.remote.cache import CacheConfig, RemoteOptions, open_remote
from shardstore.store.format import file_checksum
from shardstore.store.manifest import read_manifest
from shardstore.store.store import Store

WORKER = os.path.join(os.path.dirname(os.path.dirname(__file__)), "remote_worker.py")


def _worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, WORKER, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
@pytest.mark.parametrize("faults", [0.0, 0.25], ids=["clean", "faults"])
def test_eight_processes_download_each_shard_once_and_read_identical_tokens(
    tmp_path: Any, local_store: str, remote_url: str, proxy: Any, faults: float
) -> None:
    proxy.set_faults(FaultPlan(rate=faults, match=r"\.shard$", seed=11))
    cache = str(tmp_path / "cache")
    options = json.dumps(quiet_options(proxy))
    procs = [_worker("read", remote_url, cache, options, "3") for _ in range(8)]
    time.sleep(0.5)  # let them all import; they start together when the go-file appears
    open(cache + ".go", "w").close()
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    digests = {out.split()[0] for out, _ in outputs}
    assert digests == {tokens_digest(Store.open(local_store))}
    assert sum(int(out.split()[1]) for out, _ in outputs) == len(read_manifest(local_store).shards)
    for info in read_manifest(local_store).shards:
        if faults == 0.0:
            assert proxy.gets(info.name) == 1, (info.name, proxy.gets(info.name))
        path = next(
            os.path.join(d, "data", info.name) for d in (os.path.join(cache, k) for k in os.listdir(cache))
        )
        assert file_checksum(path) == info.checksum
    if faults:
        assert sum(proxy.faults.values()) >= 2, proxy.faults  # seeded: the first draws are always the same
    assert not [f for f in cache_files(cache) if f.endswith(".part")]


def test_kill_9_in_the_middle_of_a_download_then_the_next_process_completes_it(
    tmp_path: Any, local_store: str, remote_url: str, proxy: Any
) -> None:
    cache = str(tmp_path / "cache")
    proxy.stall(r"shard-000002\.shard$")
    victim = _worker("shard", remote_url, cache, json.dumps(quiet_options(proxy)), "2")
    try:
        assert proxy.stalled.wait(60), "the download never started"
        key_dir = next(os.path.join(cache, k) for k in os.listdir(cache) if not k.startswith("."))
        parts = os.listdir(os.path.join(key_dir, "tmp"))
        assert len(parts) == 1 and parts[0].startswith("shard-000002.shard.")  # half-written temp file
        assert not os.path.exists(os.path.join(key_dir, "data", "shard-000002.shard"))
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    proxy.release()
    _, locator = open_remote(
        remote_url,
        RemoteOptions(cache, quiet_options(proxy)),
        config=CacheConfig(retry=TEST_RETRY),
    )
    start = time.monotonic()
    path = locator.shard_path(2)  # the dead process's lock is gone, its temp file is cleaned up
    assert time.monotonic() - start < 10
    info = read_manifest(local_store).shards[2]
    assert file_checksum(path) == info.checksum and proxy.gets("shard-000002.shard") == 2
    assert os.listdir(os.path.join(locator.directory, "tmp")) == []
    store = Store(locator.manifest, locator, root=remote_url)
    local = Store.open(local_store)
    span = local.shard_token_offsets
    np.testing.assert_array_equal(
        store.tokens(int(span[2]), int(span[3])), local.tokens(int(span[2]), int(span[3]))
    )


@pytest.mark.slow
def test_eviction_keeps_the_cache_within_limit_plus_one_shard(
    tmp_path: Any, s3_server: Any, proxy: Any
) -> None:
    src = build_store(str(tmp_path / "src"), num_docs=200, seed=5, max_shard_bytes=16 << 10)
    shards = read_manifest(src).shards
    assert len(shards) >= 16
    biggest = max(s.size for s in shards)
    limit = 4 * biggest
    url = upload(s3_server, src)
    cache = str(tmp_path / "cache")
    config = CacheConfig(cache_limit=limit, retry=TEST_RETRY, max_prefetch_pins=2)
    _, locator = open_remote(url, RemoteOptions(cache, quiet_options(proxy)), config=config)
    assert locator.max_mapped_shards == 3  # 4 shards fit: 3 mapped + the one being read next
    store = Store(locator.manifest, locator, root=url, max_open_shards=locator.max_mapped_shards)
    local = Store.open(src)
    rng = np.random.default_rng(0)
    span = local.shard_token_offsets
    order = list(range(len(shards))) + [int(i) for i in rng.integers(0, len(shards), size=24)]
    try:
        with watched_cache_peak(cache) as peak:  # the disk, measured apart from the cache's own accounting
            for k, i in enumerate(order):
                store.prefetch(order[k + 1 : k + 3])  # the sampler's lookahead
                lo, hi = int(span[i]), int(span[i + 1])
                np.testing.assert_array_equal(store.tokens(lo, hi), local.tokens(lo, hi))
                assert locator.usage().total <= limit + biggest
    finally:
        locator.close()
    assert 0 < peak[0] <= limit + biggest, (peak[0], limit, biggest)
    assert proxy.gets(".shard") > len(shards)  # shards really were evicted and fetched again


def test_a_limit_smaller_than_the_shards_in_use_is_a_clear_error(
    tmp_path: Any, remote_url: str, proxy: Any
) -> None:
    config = CacheConfig(cache_limit=1000, retry=TEST_RETRY)
    _, locator = open_remote(remote_url, RemoteOptions(str(tmp_path), quiet_options(proxy)), config=config)
    locator.shard_path(0)  # one shard may overshoot the limit while in use
    start = time.monotonic()
    with pytest.raises(
        CacheError,
        match=r"cannot fit shard-000001\.shard .* under cache_limit=1000: 1 files are mapped by this process",
    ):
        locator.shard_path(1)
    assert time.monotonic() - start < 5  # only our own mapping blocks: no point waiting for others
    locator.release(0)
    assert os.path.exists(locator.shard_path(1))  # released shard 0 was evicted to make room
    assert not os.path.exists(os.path.join(locator.directory, "data", "shard-000000.shard"))
    locator.close()


def test_a_shard_mapped_by_another_process_is_never_evicted(
    tmp_path: Any, remote_url: str, proxy: Any
) -> None:
    cache = str(tmp_path)
    holder = _worker("hold", remote_url, cache, json.dumps(quiet_options(proxy)), "0")
    assert holder.stdout is not None and holder.stdin is not None
    held = holder.stdout.readline().strip()
    assert os.path.exists(held), holder.stderr.read() if holder.stderr else ""
    config = CacheConfig(cache_limit=1000, retry=TEST_RETRY, space_timeout_s=60)
    _, locator = open_remote(remote_url, RemoteOptions(cache, quiet_options(proxy)), config=config)
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(locator.shard_path(1)))
    reader.start()
    time.sleep(1.0)
    assert not result and os.path.exists(held)  # waiting: the other process still maps shard 0
    holder.stdin.close()  # the holder exits; its pin goes with it
    holder.wait(timeout=30)
    reader.join(timeout=30)
    assert result and os.path.exists(result[0]) and not os.path.exists(held)
    locator.close()


@pytest.mark.slow
def test_two_processes_share_one_bounded_cache(tmp_path: Any, s3_server: Any, proxy: Any) -> None:
    import hashlib

    src = build_store(str(tmp_path / "src"), num_docs=120, seed=6, max_shard_bytes=16 << 10)
    shards = read_manifest(src).shards
    biggest = max(s.size for s in shards)
    limit = (
        5 * biggest
    )  # each process maps one shard and pins at most one prefetched: 4 fit, plus one overshoot
    url = upload(s3_server, src)
    cache = str(tmp_path / "cache")
    local = Store.open(src)
    span = local.shard_token_offsets
    n = len(shards)
    expected = hashlib.sha256()
    for i in [*range(n), *range(n - 1, -1, -1)]:
        expected.update(local.tokens(int(span[i]), int(span[i + 1])).tobytes())
    with watched_cache_peak(cache) as peak:
        procs = [
            _worker("limited", url, cache, json.dumps(quiet_options(proxy)), str(limit)) for _ in range(2)
        ]
        outputs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
        assert out.strip() == expected.hexdigest()
    assert 0 < peak[0] <= limit + biggest, (peak[0], limit, biggest)
    assert proxy.gets(".shard") > n  # evicted and fetched again
