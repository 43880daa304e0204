"""manifest.idx: Store.open through a checksum-bound binary index, O(1) Python at 100,000 shards (issue 19.10)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from test_store_util import random_docs, write_store

from shardstore.store.manifest import Manifest, ShardInfo, open_manifest, read_manifest, write_manifest
from shardstore.store.manifest_index import INDEX_NAME, ShardTable
from shardstore.store.store import Store

DOCS = random_docs(4, 30, max_len=700)


def test_the_index_is_used_and_agrees_with_the_json(tmp_path):
    write_store(tmp_path, DOCS, max_shard_bytes=16 << 10, aux_files={"a.txt": b"x"})
    fast, slow = open_manifest(tmp_path), read_manifest(tmp_path)
    assert isinstance(fast.shards, ShardTable) and isinstance(slow.shards, tuple)
    assert fast.shards == slow.shards and list(fast.shards) == list(slow.shards)
    assert (fast.fingerprint, fast.files, fast.tokenizer, fast.format_version) == (
        slow.fingerprint,
        slow.files,
        slow.tokenizer,
        slow.format_version,
    )
    assert fast.to_json_bytes() == (tmp_path / "manifest.json").read_bytes()
    assert np.array_equal(Store.open(tmp_path).doc(7), DOCS[7])


def test_a_stale_or_corrupt_index_is_ignored_and_verify_names_it(tmp_path):
    m = write_store(tmp_path, DOCS, max_shard_bytes=16 << 10)
    stale = (tmp_path / INDEX_NAME).read_bytes()
    write_manifest(
        tmp_path, Manifest(dtype=m.dtype, shards=m.shards[:-1])
    )  # a new commit, then the old index back
    (tmp_path / INDEX_NAME).write_bytes(stale)
    store = Store.open(tmp_path)
    assert isinstance(store.manifest.shards, tuple) and store.num_shards == len(m.shards) - 1
    report = store.verify(raise_on_error=False)
    assert [p.file for p in report.problems] == [str(tmp_path / INDEX_NAME)]
    flipped = bytearray(stale)
    flipped[70] ^= 4
    (tmp_path / INDEX_NAME).write_bytes(bytes(flipped))
    assert isinstance(Store.open(tmp_path).manifest.shards, tuple)


@pytest.mark.slow
def test_opening_100k_shards_costs_under_0_2_s(tmp_path):
    proto = write_store(tmp_path / "p", DOCS[:1]).shards[0]
    shards = [
        ShardInfo(
            f"s{i:06d}", proto.num_tokens, proto.num_docs, proto.size, proto.checksum, proto.header_checksum
        )
        for i in range(100_000)
    ]
    write_manifest(tmp_path, Manifest(dtype="uint16", shards=shards))
    costs = []
    for _ in range(3):
        t = time.process_time()
        store = Store.open(tmp_path)
        costs.append(time.process_time() - t)
    assert store.num_shards == 100_000 and store.num_tokens == 100_000 * proto.num_tokens
    assert min(costs) < 0.2, costs
    assert store.manifest.shards[99_999].name == "s099999"
