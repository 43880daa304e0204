"""shardstore: raw text corpora -> verified, memory-mapped shards -> exact, resumable training batches.

Public names are imported lazily so that `import shardstore` does no work and pulls in no optional dependency.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shardstore.errors import ShardStoreError

__version__ = "0.1.0"

__all__ = ["BuildReport", "Mixture", "ShardStoreError", "Store", "build"]

_LAZY = {
    "Store": ("shardstore.store", "Store"),
    "build": ("shardstore.pipeline", "build"),
    "BuildReport": ("shardstore.pipeline", "BuildReport"),
    "Mixture": ("shardstore.mixture", "Mixture"),
}

if TYPE_CHECKING:
    from shardstore.mixture import Mixture
    from shardstore.pipeline import BuildReport, build
    from shardstore.store import Store


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'shardstore' has no attribute {name!r}")
