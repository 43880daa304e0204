"""`RemoteOptions`: the one object for the remote triple; the public keywords still build it at the edge."""

from __future__ import annotations

import pickle

import pytest

from shardstore.errors import ConfigError
from shardstore.mix.config import MixtureConfig, SourceConfig
from shardstore.util.remote_options import RemoteOptions


def test_fields_are_normalized_and_validated(tmp_path) -> None:
    opts = RemoteOptions(tmp_path, {"anon": True}, 1 << 20)
    assert (opts.cache_dir, opts.storage_options, opts.cache_limit) == (
        str(tmp_path),
        {"anon": True},
        1 << 20,
    )
    assert pickle.loads(pickle.dumps(opts)) == opts  # travels in a Store's re-open arguments to workers
    assert RemoteOptions().is_default() and not opts.is_default()
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ConfigError, match="cache_limit"):
            RemoteOptions(cache_limit=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="storage_options must be a mapping"):
        RemoteOptions(storage_options="anon")  # type: ignore[arg-type]


def test_overrides_take_only_what_they_set() -> None:
    base = RemoteOptions("/c", {"a": 1}, 10)
    assert base.overridden_by(RemoteOptions()) == base
    assert base.overridden_by(RemoteOptions(cache_limit=20)) == RemoteOptions("/c", {"a": 1}, 20)
    assert base.overridden_by(RemoteOptions("/d", {"b": 2})) == RemoteOptions("/d", {"b": 2}, 10)


def test_mixture_remote_and_dataloader_style_override(tmp_path) -> None:
    from shardstore.loader.mixture import Mixture

    cfg = MixtureConfig(
        seq_len=4, seed=0, sources=(SourceConfig("a", ("s",), 1),), cache_dir="/c", cache_limit=10
    )
    mix = Mixture(cfg)
    assert mix.remote == RemoteOptions("/c", None, 10)
    assert mix.with_remote(RemoteOptions()) is mix
    other = mix.with_remote(RemoteOptions(storage_options={"anon": True}, cache_limit=99))
    assert other.remote == RemoteOptions("/c", {"anon": True}, 99)
    assert (other.config.cache_dir, other.config.storage_options, other.config.cache_limit) == (
        "/c",
        {"anon": True},
        99,
    )


def test_store_open_takes_one_or_the_other(tmp_path) -> None:
    from shardstore.store.store import Store

    with pytest.raises(ConfigError, match="either remote="):
        Store.open("s3://b/s", remote=RemoteOptions("/c"), cache_dir="/d")
