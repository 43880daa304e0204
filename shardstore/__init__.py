"""shardstore: raw text corpora -> verified, memory-mapped shards -> exact, resumable training batches.

Public names are imported lazily so that `import shardstore` does no work and pulls in no optional dependency.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shardstore.errors import ShardStoreError

__version__ = "0.1.0"

__all__ = ["BuildReport", "Mixture", "ShardStoreError", "Store", "build"]

_LAZY = {
    "Store": ("shardstore.store.store", "Store"),
    "build": ("shardstore.preprocess.pipeline", "build"),
    "BuildReport": ("shardstore.preprocess.pipeline", "BuildReport"),
    "Mixture": ("shardstore.loader.mixture", "Mixture"),
}

if TYPE_CHECKING:
    from shardstore.loader.mixture import Mixture
    from shardstore.preprocess.pipeline import BuildReport, build
    from shardstore.store.store import Store


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'shardstore' has no attribute {name!r}")
