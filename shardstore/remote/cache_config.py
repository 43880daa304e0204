"""Configuration of the node-local cache: `CacheConfig`, the default cache root, and byte sizes like '500G'.

Kept apart from cache.py so the locator module stays one concept; everything here is re-exported there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from shardstore.errors import ConfigError
from shardstore.remote.fetch import RetryPolicy
from shardstore.util.remote_options import default_cache_dir
from shardstore.util.sizes import parse_size

__all__ = ["CacheConfig", "default_cache_dir", "parse_size", "resolve_config"]


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """How a remote store is cached.

    Args:
        cache_limit: bytes the whole cache root may hold (None: unbounded, or $SHARDSTORE_CACHE_LIMIT). It must
            fit the shards mapped at once on the node, plus one.
        retry: attempts and backoff for every remote read.
        prefetch_workers: background download threads per process.
        max_prefetch_pins: prefetched shards kept from eviction until read (the lookahead).
        lock_timeout_s: how long to wait for another process's download of the same file.
        space_timeout_s: how long a read waits for other processes to release shards when the cache is full.
        prefer_compressed: fetch `.zst` copies when `compression.json` lists them.
        chunk_size: bytes per range read when streaming a `.zst` copy.
    """

    cache_limit: int | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    prefetch_workers: int = 4
    max_prefetch_pins: int = 32
    lock_timeout_s: float = 1800.0
    space_timeout_s: float = 300.0
    prefer_compressed: bool = True
    chunk_size: int = 16 << 20

    def __post_init__(self) -> None:
        if self.cache_limit is not None and self.cache_limit <= 0:
            raise ConfigError(f"cache_limit={self.cache_limit} must be a positive number of bytes (or None)")
        if self.prefetch_workers < 1 or self.max_prefetch_pins < 0:
            raise ConfigError(
                f"need prefetch_workers >= 1 and max_prefetch_pins >= 0, got {self.prefetch_workers}, {self.max_prefetch_pins}"
            )
        if min(self.lock_timeout_s, self.space_timeout_s) <= 0 or self.chunk_size < 1 << 16:
            raise ConfigError(
                f"need lock_timeout_s, space_timeout_s > 0 and chunk_size >= 64 KiB, got {self.lock_timeout_s}, "
                f"{self.space_timeout_s}, {self.chunk_size}"
            )


def resolve_config(config: CacheConfig | None, cache_limit: int | None) -> CacheConfig:
    """`config` with the limit from the argument, else its own, else $SHARDSTORE_CACHE_LIMIT."""
    config = config or CacheConfig()
    if (
        cache_limit is None
        and config.cache_limit is None
        and (env := os.environ.get("SHARDSTORE_CACHE_LIMIT"))
    ):
        cache_limit = parse_size(env)
    if cache_limit is not None:
        config = replace(config, cache_limit=cache_limit)
    return config
