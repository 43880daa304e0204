"""A real torch DataLoader (forked workers) over a store in S3: same batches as over the local copy, each shard
downloaded once per node, and the cache key is a pure function of (URL, store fingerprint)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from remote_fixtures import build_store, proxy_fixture, quiet_options, upload  # noqa: F401  (fixtures)

from shardstore.remote.manifest_cache import store_key
from shardstore.store.manifest import read_manifest


def _batches(mixture: Any, n: int, **kw: Any) -> list[np.ndarray]:
    from shardstore.torch import make_dataloader

    loader = make_dataloader(mixture, batch_size=4, max_steps=n, **kw)
    return [batch["input_ids"].numpy().copy() for batch in loader]


@pytest.mark.slow
def test_dataloader_with_workers_over_s3_matches_local_and_downloads_once(
    tmp_path: Any, s3_server: Any, proxy: Any
) -> None:
    pytest.importorskip("torch")
    from shardstore.loader.mixture import Mixture

    src = build_store(str(tmp_path / "src"), num_docs=150, seed=4)
    url = upload(s3_server, src)
    base = {"seq_len": 256, "seed": 7}
    local = Mixture.from_dict({**base, "sources": [{"name": "a", "store": src, "weight": 1.0}]})
    remote = Mixture.from_dict(
        {
            **base,
            "sources": [{"name": "a", "store": url, "weight": 1.0}],
            "cache_dir": str(tmp_path / "cache"),
            "storage_options": quiet_options(proxy),
        }
    )
    expected = _batches(local, 12)
    got = _batches(remote, 12, num_workers=2, multiprocessing_context="fork")
    assert len(got) == 12
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a, b)
    for info in read_manifest(src).shards:  # parent + 2 workers, one download each at most
        assert proxy.gets(info.name) <= 1, (info.name, proxy.gets(info.name))
    assert proxy.gets(".shard") >= 2


def test_cache_key_is_pinned() -> None:
    # <sha256(url)[:16]>-<fingerprint[:16]>: stable across versions, so a staged cache stays valid.
    assert store_key("s3://bucket/stores/web", "0123456789abcdef" * 4) == "926a7f76f49be07e-0123456789abcdef"
