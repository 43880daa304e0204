"""The loader over a store in (moto) S3, staged through the node-local cache: same batches, same state."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch
from storeutil import counting_store

from shardstore.loader.mixture import Mixture
from shardstore.torch import make_dataloader


def _upload(s3_server, local_dir: Path) -> str:
    import s3fs

    bucket = s3_server.new_bucket()
    fs = s3fs.S3FileSystem(**s3_server.storage_options)
    for name in sorted(os.listdir(local_dir)):
        fs.put_file(str(local_dir / name), f"{bucket}/nums/{name}")
    return f"s3://{bucket}/nums"


def test_remote_store_gives_the_same_batches_and_state(s3_server, tmp_path: Path) -> None:
    counting_store(tmp_path / "nums", 0, 16 * 40 + 1)
    counting_store(tmp_path / "more", 30000, 16 * 10 + 1)
    url = _upload(s3_server, tmp_path / "nums")

    def mixture(store: str) -> Mixture:
        d = {
            "seq_len": 16,
            "seed": 9,
            "sources": [
                {"name": "nums", "store": store, "weight": 2},
                {"name": "more", "store": "more", "weight": 1},
            ],
        }
        return Mixture.from_dict(d, base_dir=str(tmp_path))

    local = make_dataloader(mixture(str(tmp_path / "nums")), batch_size=4, max_steps=6)
    remote = make_dataloader(
        mixture(url),
        batch_size=4,
        max_steps=6,
        cache_dir=tmp_path / "cache",
        storage_options=s3_server.storage_options,
    )
    assert remote.dataset.prefetch  # remote stores get lookahead hints for the next step's shards
    for a, b in zip(local, remote, strict=True):
        assert torch.equal(a["input_ids"], b["input_ids"])
    # the state binds to store *content*: a local run's checkpoint resumes against the remote copy
    state = local.state_dict()
    remote.load_state_dict(state)
    assert remote.state_dict() == state
    assert any(name.endswith(".shard") for _, _, files in os.walk(tmp_path / "cache") for name in files)


def test_small_cache_limit_through_the_loader_evicts_and_stays_bounded(s3_server, tmp_path: Path) -> None:
    """A remote store several times larger than `cache_limit`, read through make_dataloader: correct batches,
    and the cache on disk never holds more than the limit plus one shard."""
    from remote_fixtures import build_store, upload

    from shardstore.store.store import Store

    local = build_store(str(tmp_path / "big"), num_docs=120, max_shard_bytes=8 << 10)
    store = Store.open(local)
    shard_bytes = max(s.size for s in store.manifest.shards)
    assert store.num_shards >= 12
    total = sum(s.size for s in store.manifest.shards)
    limit = 4 * shard_bytes
    assert total > 3 * limit
    url = upload(s3_server, local, prefix="big")

    def mixture(ref: str) -> Mixture:
        return Mixture.from_dict(
            {"seq_len": 64, "seed": 3, "sources": [{"name": "big", "store": ref, "weight": 1}]}
        )

    steps = store.num_tokens // (2 * 64 * 8)  # half an epoch already cycles every shard through 4 cache slots
    want = make_dataloader(mixture(local), batch_size=8, max_steps=steps)
    got = make_dataloader(
        mixture(url),
        batch_size=8,
        max_steps=steps,
        cache_dir=tmp_path / "cache",
        storage_options=s3_server.storage_options,
        cache_limit=limit,
    )

    def shard_bytes_on_disk() -> int:
        total = 0
        for d, _, files in os.walk(tmp_path / "cache"):
            for f in files:
                # a file may be evicted (or renamed into place) between listing and stat
                if ".shard" in f:
                    with contextlib.suppress(FileNotFoundError):
                        total += os.path.getsize(os.path.join(d, f))
        return total

    peak = 0
    for a, b in zip(want, got, strict=True):
        assert torch.equal(a["input_ids"], b["input_ids"])
        peak = max(peak, shard_bytes_on_disk())
    assert 0 < peak <= limit + shard_bytes


def test_cache_limit_in_the_mixture_file_accepts_sizes() -> None:
    d = {"seq_len": 8, "seed": 0, "cache_limit": "2M", "sources": [{"name": "a", "store": "x", "weight": 1}]}
    assert Mixture.from_dict(d).config.cache_limit == 2 << 20
    import pytest

    from shardstore.errors import ConfigError

    with pytest.raises(ConfigError, match="cache_limit"):
        Mixture.from_dict({**d, "cache_limit": -5})
