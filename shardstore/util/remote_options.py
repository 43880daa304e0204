"""`RemoteOptions`: where and how remote (fsspec URL) stores are reached and cached, as one value.

The public entry points keep their keywords (``Store.open(url, cache_dir=..., storage_options=..., cache_limit=...)``,
``make_dataloader(...)``, the mixture file's ``cache_dir`` / ``storage_options`` / ``cache_limit`` keys) and build one
`RemoteOptions` at the edge; inside, that one object travels (the store's re-open arguments, `open_remote`, `stage`).
It lives in util because the store opens remote stores and may not import the remote layer at module level.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shardstore.errors import ConfigError

__all__ = ["RemoteOptions", "default_cache_dir"]


def default_cache_dir() -> str:
    """The per-user cache root: $SHARDSTORE_CACHE, $XDG_CACHE_HOME/shardstore or ~/.cache/shardstore."""
    if env := os.environ.get("SHARDSTORE_CACHE"):
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "shardstore")


@dataclass(frozen=True, slots=True, init=False)
class RemoteOptions:
    """Options of remote stores; None everywhere means the defaults.

    Args:
        cache_dir: node-local cache root (default: $SHARDSTORE_CACHE, else ~/.cache/shardstore).
        storage_options: fsspec options for the URL's backend (endpoint, credentials).
        cache_limit: bytes the cache root may hold (default: $SHARDSTORE_CACHE_LIMIT, else unbounded).
    """

    cache_dir: str | None = None
    storage_options: Mapping[str, Any] | None = None
    cache_limit: int | None = None

    def __init__(
        self,
        cache_dir: str | os.PathLike[str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        cache_limit: int | None = None,
    ) -> None:
        if storage_options is not None and not isinstance(storage_options, Mapping):
            raise ConfigError(
                f"storage_options must be a mapping (or None), got {type(storage_options).__name__}"
            )
        if cache_limit is not None and (
            isinstance(cache_limit, bool) or not isinstance(cache_limit, int) or cache_limit <= 0
        ):
            raise ConfigError(f"cache_limit={cache_limit!r} must be a positive number of bytes (or None)")
        object.__setattr__(self, "cache_dir", None if cache_dir is None else os.fspath(cache_dir))
        object.__setattr__(
            self, "storage_options", None if storage_options is None else dict(storage_options)
        )
        object.__setattr__(self, "cache_limit", cache_limit)

    def overridden_by(self, other: RemoteOptions) -> RemoteOptions:
        """These options with every field that `other` sets (not None) taken from `other`."""
        return RemoteOptions(
            self.cache_dir if other.cache_dir is None else other.cache_dir,
            self.storage_options if other.storage_options is None else other.storage_options,
            self.cache_limit if other.cache_limit is None else other.cache_limit,
        )

    def is_default(self) -> bool:
        return self.cache_dir is None and self.storage_options is None and self.cache_limit is None
