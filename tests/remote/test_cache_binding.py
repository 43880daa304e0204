"""Files swapped or copied over in a node-local cache's data folder are refused, never served (issue 16.1)."""

from __future__ import annotations

import os
import shutil
from typing import Any

import numpy as np
import pytest
from remote_fixtures import upload
from test_store_util import write_store

from shardstore.errors import ChecksumError
from shardstore.store.store import Store

# four shards of two 1000-token documents each: equal sizes, different tokens
DOCS = [np.random.default_rng(50 + i).integers(0, 60000, 1000, dtype=np.uint16) for i in range(8)]


@pytest.fixture(scope="module")
def remote(tmp_path_factory: Any, s3_server: Any) -> str:
    root = tmp_path_factory.mktemp("bound")
    m = write_store(root, DOCS, max_shard_bytes=4096 + 4000 + 32, block_size=4096)
    assert [(s.num_tokens, s.size) for s in m.shards] == [(2000, m.shards[0].size)] * 4
    return upload(s3_server, str(root))


def _data(cache: Any) -> Any:
    (key,) = [d for d in os.listdir(cache) if not d.startswith(".")]
    return cache / key / "data"


def _reads(store: Store) -> int:
    refused = 0
    for i, d in enumerate(DOCS):
        try:
            got = store.doc(i)
        except ChecksumError:
            refused += 1
            continue
        assert np.array_equal(got, d), f"document {i}: wrong tokens served from the cache"
    return refused


@pytest.mark.parametrize("accident", ["swap", "copy"])
def test_cache_data_folder_accidents_are_refused(
    tmp_path: Any, remote: str, s3_server: Any, accident: str
) -> None:
    opts = s3_server.storage_options
    assert _reads(Store.open(remote, cache_dir=str(tmp_path), storage_options=opts)) == 0  # stages all 4
    data = _data(tmp_path)
    a, b = data / "shard-000001.shard", data / "shard-000002.shard"
    if accident == "swap":
        os.rename(a, data / "t"), os.rename(b, a), os.rename(data / "t", b)
    else:
        shutil.copyfile(a, b)
    store = Store.open(remote, cache_dir=str(tmp_path), storage_options=opts)
    assert _reads(store) == (4 if accident == "swap" else 2)
