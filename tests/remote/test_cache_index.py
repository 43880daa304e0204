"""Remote stores open through a node-local manifest.idx (issue 19): the first process of a node parses the
manifest JSON and writes the index beside its cache; every later process (ranks, spawned workers) maps it."""

from __future__ import annotations

import os
import pickle
from typing import Any

import pytest
from remote_fixtures import (  # noqa: F401  (fixtures)
    TEST_RETRY,
    build_store,
    local_store_fixture,
    proxy_fixture,
    quiet_options,
    remote_url_fixture,
    tokens_digest,
    upload,
)

from shardstore.remote.cache import CacheConfig, RemoteOptions, open_remote
from shardstore.store.manifest import Manifest
from shardstore.store.manifest_index import INDEX_NAME, ShardTable
from shardstore.store.store import Store

CONFIG = CacheConfig(retry=TEST_RETRY)


def _open(url: str, cache: str, via: Any) -> Any:
    return open_remote(url, RemoteOptions(cache, quiet_options(via)), config=CONFIG)[1]


@pytest.fixture
def no_json_parse(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count JSON manifest parses (each one is what every process paid before)."""
    parses: list[str] = []
    real = Manifest.from_json_bytes.__func__  # type: ignore[attr-defined]

    def counting(cls: type, data: bytes, *, source: str) -> Manifest:
        parses.append(source)
        return real(cls, data, source=source)

    monkeypatch.setattr(Manifest, "from_json_bytes", classmethod(counting))
    return parses


def test_later_opens_on_the_node_use_the_index(
    tmp_path: Any, local_store: str, remote_url: str, proxy: Any, no_json_parse: list[str]
) -> None:
    cache = str(tmp_path / "cache")
    first = _open(remote_url, cache, proxy)
    assert len(no_json_parse) == 1 and not isinstance(first.manifest.shards, ShardTable)
    assert os.path.isfile(os.path.join(first.directory, INDEX_NAME))
    second = _open(remote_url, cache, proxy)  # another rank of the node
    assert len(no_json_parse) == 1 and isinstance(second.manifest.shards, ShardTable)
    assert second.manifest.fingerprint == first.manifest.fingerprint == Store.open(local_store).fingerprint
    store = Store.open(remote_url, cache_dir=cache, storage_options=quiet_options(proxy))
    assert len(no_json_parse) == 1 and isinstance(store.manifest.shards, ShardTable)
    assert tokens_digest(store) == tokens_digest(Store.open(local_store))
    spawned = pickle.loads(pickle.dumps(second))  # a spawn-started DataLoader worker rebuilds the locator
    assert len(no_json_parse) == 1 and isinstance(spawned.manifest.shards, ShardTable)
    assert spawned.shard_path(0) == second.shard_path(0)


def test_a_corrupt_or_foreign_index_is_not_used(
    tmp_path: Any, s3_server: Any, remote_url: str, proxy: Any, no_json_parse: list[str]
) -> None:
    cache = str(tmp_path / "cache")
    loc = _open(remote_url, cache, proxy)
    idx = os.path.join(loc.directory, INDEX_NAME)
    with open(idx, "r+b") as f:
        f.seek(100)
        b = f.read(1)
        f.seek(100)
        f.write(bytes([b[0] ^ 0x40]))
    again = _open(remote_url, cache, proxy)
    assert len(no_json_parse) == 2 and not isinstance(again.manifest.shards, ShardTable)
    assert isinstance(_open(remote_url, cache, proxy).manifest.shards, ShardTable)  # rewritten, valid again
    # Another store at the same URL (rebuilt; this module's last use of remote_url): the old cache's index
    # describes other manifest bytes, so it is not used.
    import s3fs

    rebuilt = build_store(str(tmp_path / "rebuilt"), seed=5)
    fs = s3fs.S3FileSystem(**s3_server.storage_options)
    for name in sorted(os.listdir(rebuilt)):
        fs.put_file(os.path.join(rebuilt, name), f"{remote_url[len('s3://') :]}/{name}")
    parses = len(no_json_parse)
    other = _open(remote_url, cache, proxy)
    assert len(no_json_parse) == parses + 1 and not isinstance(other.manifest.shards, ShardTable)
    assert other.manifest.fingerprint == Store.open(rebuilt).fingerprint != loc.manifest.fingerprint
    assert other.directory != loc.directory
