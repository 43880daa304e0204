"""Locators: where a store's files are on local disk.

A Store never opens paths itself; it asks its locator. `LocalLocator` serves a local directory (and `file://`
URLs); the node-local cache (`shardstore.remote.cache.open_remote`) provides one that downloads, verifies and evicts
shards of remote stores. The protocol is four methods, so any other storage can plug in.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from typing import Protocol

from shardstore.errors import ManifestError
from shardstore.store.manifest import Manifest

__all__ = ["LocalLocator", "Locator", "split_url"]


class Locator(Protocol):
    """Where a store's files are on local disk."""

    def shard_path(self, index: int) -> str:
        """Local path of a complete shard file (may download; blocks until it is there)."""
        ...

    def file_path(self, name: str) -> str:
        """Local path of an auxiliary file listed in the manifest."""
        ...

    def prefetch(self, indices: Sequence[int]) -> None:
        """Hint: these shards will be read soon."""
        ...

    def release(self, index: int) -> None:
        """The Store unmapped this shard; a cache may now evict it."""
        ...

    @property
    def max_mapped_shards(self) -> int | None:
        """How many shards the Store may keep mapped at once (a bounded cache cannot evict mapped ones); None: any."""
        ...


class LocalLocator:
    """Files of a store in a local directory; refuses any path (or symlink) that resolves outside of it."""

    def __init__(self, root: str, manifest: Manifest) -> None:
        self._root = root
        self._real_root = os.path.realpath(root)
        self._manifest = manifest

    def _resolve(self, name: str) -> str:
        path = os.path.join(self._root, name)
        if "/" not in name:
            # One lstat instead of realpath's walk over every part of the root: a plain name that is no symlink
            # lies directly in the (already resolved) root. Anything else takes the full check below.
            try:
                if not stat.S_ISLNK(os.lstat(path).st_mode):
                    return path
            except OSError:
                return path  # missing: the open reports it, naming the path
        real = os.path.realpath(path)
        if not real.startswith(self._real_root + os.sep):
            raise ManifestError(
                f"{path}: resolves to {real}, outside the store {self._real_root}; refusing it"
            )
        return path

    @property
    def manifest(self) -> Manifest:
        """The manifest whose files this locator serves."""
        return self._manifest

    @property
    def root(self) -> str:
        """The store directory (a plain shard name is a file directly in it: the batch checker's paths)."""
        return self._root

    def shard_path(self, index: int) -> str:
        return self._resolve(self._manifest.shards[index].name)

    def file_path(self, name: str) -> str:
        if self._manifest.file(name) is None:
            raise ManifestError(f"{self._root}: the manifest lists no file {name!r}")
        return self._resolve(name)

    def prefetch(self, indices: Sequence[int]) -> None:
        """Local files need no staging."""

    def release(self, index: int) -> None:
        """Local files are never evicted."""

    @property
    def max_mapped_shards(self) -> int | None:
        return None


def split_url(path_or_url: str | os.PathLike[str]) -> tuple[str | None, str]:
    """(protocol, location): protocol None means a local path (plain paths and `file://` URLs)."""
    s = os.fspath(path_or_url)
    if "://" in s:
        proto, rest = s.split("://", 1)
        if proto == "file":
            return None, rest
        return proto, s
    return None, s
