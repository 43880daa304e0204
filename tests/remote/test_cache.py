"""The node-local cache of remote stores, single process: lazy fetches, verification, zstd copies, CLI, locks."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
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
)
from s3proxy import Fault, FaultPlan

from shardstore.errors import CacheError, ConfigError, ManifestError, RemoteError
from shardstore.remote.cache import CacheConfig, RemoteOptions, default_cache_dir, open_remote, parse_size
from shardstore.remote.cachedir import flock, try_flock
from shardstore.remote.fetch import RetryPolicy, with_retries
from shardstore.store.compress import compress_store, parse_compression_index
from shardstore.store.format import file_checksum
from shardstore.store.manifest import read_manifest
from shardstore.store.store import Store

CONFIG = CacheConfig(retry=TEST_RETRY)


def _open(url: str, cache: str, via: Any, **kw: Any) -> tuple[Store, Any]:
    _, locator = open_remote(url, RemoteOptions(cache, quiet_options(via)), config=kw.pop("config", CONFIG))
    return Store(locator.manifest, locator, root=url, **kw), locator


def test_open_fetches_only_the_manifest_then_only_the_shards_read(
    tmp_path: Any, local_store: str, remote_url: str, proxy: Any
) -> None:
    store = Store.open(remote_url, cache_dir=str(tmp_path), storage_options=quiet_options(proxy))
    local = Store.open(local_store)
    assert (store.num_tokens, store.fingerprint) == (local.num_tokens, local.fingerprint)
    assert proxy.gets(".shard") == 0 and proxy.gets("manifest.json") == 1
    assert sum(proxy.requests.values()) == 2  # opening is one GET each of manifest.json and compression.json
    assert len(local.manifest.shards) >= 6
    np.testing.assert_array_equal(store.doc(0), local.doc(0))
    assert proxy.gets(".shard") == 1 and proxy.gets("shard-000000.shard") == 1
    assert tokens_digest(store) == tokens_digest(local)
    assert all(proxy.gets(s.name) == 1 for s in local.manifest.shards)
    # A second open on the node reads everything from the cache.
    proxy.reset_counts()
    again = Store.open(remote_url, cache_dir=str(tmp_path), storage_options=quiet_options(proxy))
    assert tokens_digest(again) == tokens_digest(local) and proxy.gets(".shard") == 0
    # Cached files are exactly the remote bytes, under <root>/<sha256(url)[:16]>-<fingerprint[:16]>/data/.
    (key,) = [d for d in os.listdir(tmp_path) if not d.startswith(".")]
    assert key.endswith("-" + local.fingerprint[:16]) and len(key) == 33
    for info in local.manifest.shards:
        assert file_checksum(tmp_path / key / "data" / info.name) == info.checksum
    assert os.listdir(tmp_path / key / "tmp") == []
    with open(store.file_path("notes.json")) as f:
        assert f.read() == '{"seed": 0}\n'


def test_prefetch_downloads_in_background_and_pins(tmp_path: Any, remote_url: str, proxy: Any) -> None:
    store, locator = _open(remote_url, str(tmp_path), proxy)
    store.prefetch([2, 3])
    deadline = time.monotonic() + 30
    while proxy.gets(".shard") < 2 or locator._inflight:
        assert time.monotonic() < deadline, dict(proxy.requests)
        time.sleep(0.01)
    assert proxy.gets("shard-000002.shard") == 1 and proxy.gets("shard-000003.shard") == 1
    assert set(locator._prefetched) == {"shard-000002.shard", "shard-000003.shard"}
    span = store.shard_token_offsets
    store.tokens(
        int(span[2]), int(span[3])
    )  # the prefetched shard is now in use, not just pinned for prefetch
    assert "shard-000002.shard" not in locator._prefetched
    assert proxy.gets(".shard") == 2
    locator.close()


def test_default_cache_dir_and_sizes(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.delenv("SHARDSTORE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == os.path.join(str(tmp_path), "shardstore")
    monkeypatch.setenv("SHARDSTORE_CACHE", "/nvme/cache")
    assert default_cache_dir() == "/nvme/cache"
    assert [parse_size(s) for s in ("123", "2K", "1.5M", "3G", "1TiB", "10gb")] == [
        123,
        2048,
        1572864,
        3 << 30,
        1 << 40,
        10 << 30,
    ]
    for bad in ("", "lots", "-5G", "0"):
        with pytest.raises(ConfigError, match="cache size"):
            parse_size(bad)
    with pytest.raises(ConfigError, match="cache_limit"):
        CacheConfig(cache_limit=0)


def test_retries_are_bounded_and_permanent_errors_are_not_retried() -> None:
    calls: list[int] = []

    def flaky() -> int:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError("reset by peer")
        return 7

    policy = RetryPolicy(attempts=3, backoff_s=0.001, max_backoff_s=0.002)
    assert with_retries("s3://b/x", flaky, policy) == 7 and len(calls) == 3
    calls.clear()
    with pytest.raises(
        RemoteError, match=r"s3://b/x: failed after 2 attempts; last error ConnectionResetError"
    ):
        with_retries("s3://b/x", flaky, RetryPolicy(attempts=2, backoff_s=0.001, max_backoff_s=0.002))
    assert len(calls) == 2

    def missing() -> None:
        calls.append(1)
        raise FileNotFoundError("no such key")

    calls.clear()
    with pytest.raises(RemoteError, match="not retried"):
        with_retries("s3://b/y", missing, policy)
    assert len(calls) == 1


def test_every_fault_kind_is_survived_and_only_verified_files_land(
    tmp_path: Any, local_store: str, remote_url: str, proxy: Any
) -> None:
    proxy.set_faults(FaultPlan(rate=0.4, match=r"\.shard$", seed=3))
    store, locator = _open(remote_url, str(tmp_path), proxy)
    assert tokens_digest(store) == tokens_digest(Store.open(local_store))
    assert set(proxy.faults) == set(Fault), proxy.faults  # every kind of fault was actually injected
    files = cache_files(str(tmp_path))
    assert not [f for f in files if f.endswith(".part")]
    for info in read_manifest(local_store).shards:
        assert file_checksum(os.path.join(locator.directory, "data", info.name)) == info.checksum


def test_persistent_corruption_fails_with_url_and_shard_and_leaves_nothing(
    tmp_path: Any, remote_url: str, proxy: Any
) -> None:
    proxy.set_faults(FaultPlan(rate=1.0, kinds=(Fault.CORRUPT,), match=r"shard-000001\.shard$"))
    store, locator = _open(remote_url, str(tmp_path), proxy)
    store.tokens(0, 10)  # shard 0 is fine
    span = store.shard_token_offsets
    with pytest.raises(RemoteError) as info:
        store.tokens(int(span[1]), int(span[1]) + 10)
    message = str(info.value)
    assert f"{remote_url}/shard-000001.shard" in message and "after 8 attempts" in message
    assert "manifest checksum" in message
    assert proxy.gets("shard-000001.shard") == 8
    assert not os.path.exists(os.path.join(locator.directory, "data", "shard-000001.shard"))
    assert os.listdir(os.path.join(locator.directory, "tmp")) == []
    # The fault clears: the next read succeeds.
    proxy.set_faults(FaultPlan())
    store.tokens(int(span[1]), int(span[1]) + 10)


def test_missing_shard_is_a_clear_error_without_retries(tmp_path: Any, s3_server: Any, proxy: Any) -> None:
    import s3fs

    url = upload(s3_server, build_store(str(tmp_path / "src"), num_docs=30))
    s3fs.S3FileSystem(**s3_server.storage_options).rm(url.removeprefix("s3://") + "/shard-000001.shard")
    store, _ = _open(url, str(tmp_path / "cache"), proxy)
    span = store.shard_token_offsets
    with pytest.raises(RemoteError, match=r"shard-000001\.shard: FileNotFoundError.*not retried"):
        store.tokens(int(span[1]), int(span[1]) + 1)


def test_zstd_copies_are_fetched_and_decompressed_into_the_cache(
    tmp_path: Any, s3_server: Any, proxy: Any
) -> None:
    src = build_store(str(tmp_path / "src"), num_docs=60)
    local = Store.open(src)
    digest = tokens_digest(local)
    packed = compress_store(src, keep_originals=False)
    assert set(packed) == {s.name for s in local.manifest.shards}
    assert not any(name.endswith(".shard") for name in os.listdir(src))
    assert json.loads((tmp_path / "src" / "compression.json").read_text())["fingerprint"] == local.fingerprint
    url = upload(s3_server, src)
    store, locator = _open(url, str(tmp_path / "cache"), proxy)
    assert tokens_digest(store) == digest
    assert proxy.gets(".zst") == len(packed) and proxy.gets(".shard") == 0
    for info in local.manifest.shards:  # the cache holds the decompressed bytes the manifest describes
        assert file_checksum(os.path.join(locator.directory, "data", info.name)) == info.checksum


def test_compression_index_for_another_build_is_ignored_and_hostile_one_rejected() -> None:
    names = {"a.shard": 1000}
    good = {"format": "shardstore-compression", "version": 1, "codec": "zstd", "fingerprint": "f" * 64}
    body = dict(good, files={"a.shard": {"file": "a.shard.zst", "size": 500}})
    parsed = parse_compression_index(json.dumps(body).encode(), source="x", fingerprint="f" * 64, names=names)
    assert parsed is not None and parsed["a.shard"].size == 500
    assert (
        parse_compression_index(json.dumps(body).encode(), source="x", fingerprint="e" * 64, names=names)
        is None
    )
    for files in (
        {"a.shard": {"file": "../../etc/passwd", "size": 5}},
        {"b.shard": {"file": "b.zst", "size": 5}},
        {"a.shard": {"file": "a.zst", "size": 10**12}},
        {"a.shard": {"file": "a.zst", "size": True}},
    ):
        data = json.dumps(dict(good, files=files)).encode()
        with pytest.raises(ManifestError, match="x: "):
            parse_compression_index(data, source="x", fingerprint="f" * 64, names=names)


def test_stage_and_info_cli(tmp_path: Any, local_store: str, remote_url: str, proxy: Any) -> None:
    env = dict(os.environ, AWS_ENDPOINT_URL=proxy.endpoint, AWS_ACCESS_KEY_ID="testing")
    env.update(AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    cache = str(tmp_path / "cache")
    cli = [sys.executable, "-m", "shardstore"]
    info = subprocess.run(
        [*cli, "info", remote_url, "--json", "--cache-dir", cache], env=env, capture_output=True, text=True
    )
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["num_tokens"] == Store.open(local_store).num_tokens
    assert proxy.gets(".shard") == 0  # info needs only the manifest
    out = subprocess.run(
        [*cli, "stage", remote_url, "--cache", cache], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    n = len(read_manifest(local_store).shards) + 1  # and notes.json
    assert f"staged {n} files" in out.stdout and f"downloaded {n} " in out.stdout and "MB/s" in out.stdout
    assert all(proxy.gets(s.name) == 1 for s in read_manifest(local_store).shards)
    proxy.reset_counts()
    store = Store.open(remote_url, cache_dir=cache, storage_options=quiet_options(proxy))
    assert tokens_digest(store) == tokens_digest(Store.open(local_store)) and proxy.gets(".shard") == 0
    bad = subprocess.run(
        [*cli, "stage", remote_url + "-nope", "--cache", cache], env=env, capture_output=True, text=True
    )
    assert (
        bad.returncode == 1 and bad.stderr.startswith("shardstore: error:") and "manifest.json" in bad.stderr
    )


def test_compress_cli(tmp_path: Any) -> None:
    src = build_store(str(tmp_path / "src"), num_docs=20)
    out = subprocess.run(
        [sys.executable, "-m", "shardstore", "compress", src], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "compressed" in out.stdout and os.path.exists(os.path.join(src, "shard-000000.shard.zst"))
    Store.open(src).verify()  # the plain shards are untouched (raises on any problem)
    store = Store.open(src)
    assert tokens_digest(store) == tokens_digest(
        Store.open(build_store(str(tmp_path / "again"), num_docs=20))
    )


def test_locator_pickles_and_survives_fork(
    tmp_path: Any, local_store: str, remote_url: str, proxy: Any
) -> None:
    store, locator = _open(remote_url, str(tmp_path), proxy)
    store.tokens(0, 5)
    clone = pickle.loads(pickle.dumps(locator))
    assert clone.directory == locator.directory and clone.manifest.fingerprint == locator.manifest.fingerprint
    assert os.path.exists(clone.shard_path(0))
    pid = os.fork()
    if pid == 0:  # child: its own pins and pool; reads work
        code = 1
        try:
            path = locator.shard_path(1)
            code = (
                0
                if os.path.getsize(path) == locator.manifest.shards[1].size and len(locator._fds) == 1
                else 2
            )
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_flock_is_released_when_its_holder_is_killed(tmp_path: Any) -> None:
    path = str(tmp_path / "x.lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import fcntl,os,time; fd=os.open({path!r}, os.O_RDWR|os.O_CREAT); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert try_flock(path) is None
        with pytest.raises(CacheError, match="still locked by another process"):
            flock(path, timeout_s=0.05)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    fd = flock(path, timeout_s=5)  # the kernel dropped the dead holder's lock
    os.close(fd)


def test_any_fsspec_url_works_memory_filesystem(tmp_path: Any) -> None:
    import fsspec

    src = build_store(str(tmp_path / "src"), num_docs=25, seed=9)
    fs = fsspec.filesystem("memory")
    for name in os.listdir(src):
        fs.pipe(f"/h6-cache-test/{name}", (tmp_path / "src" / name).read_bytes())
    try:
        store = Store.open("memory://h6-cache-test", cache_dir=str(tmp_path / "cache"))
        assert tokens_digest(store) == tokens_digest(Store.open(src))
        assert store.locator.downloads == len(store.manifest.shards)
    finally:
        fs.rm("/h6-cache-test", recursive=True)


def test_an_object_of_the_wrong_size_is_refused_before_it_is_written(
    tmp_path: Any, s3_server: Any, proxy: Any
) -> None:
    import s3fs

    src = build_store(str(tmp_path / "src"), num_docs=30)
    url = upload(s3_server, src)
    key = url.removeprefix("s3://") + "/shard-000001.shard"
    s3fs.S3FileSystem(**s3_server.storage_options).pipe(key, b"\0" * (4 << 20))  # replaced after the manifest
    config = CacheConfig(retry=RetryPolicy(attempts=2, backoff_s=0.001, max_backoff_s=0.002))
    store, locator = _open(url, str(tmp_path / "cache"), proxy, config=config)
    span = store.shard_token_offsets
    with pytest.raises(
        RemoteError, match=r"shard-000001\.shard: the server has 4194304 bytes, the manifest lists"
    ):
        store.tokens(int(span[1]), int(span[1]) + 1)
    assert not os.path.exists(os.path.join(locator.directory, "data", "shard-000001.shard"))
    assert os.listdir(os.path.join(locator.directory, "tmp")) == []
