"""The loader over a store in (moto) S3, staged through the node-local cache: same batches, same state."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from storeutil import counting_store

from shardstore.mixture import Mixture
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
