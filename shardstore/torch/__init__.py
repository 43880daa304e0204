"""Public entry point of the torch integration (`from shardstore.torch import make_dataloader`).

The code lives in the loader layer, `shardstore.loader.torch`; this module only re-exports its public names.
"""

from __future__ import annotations

from shardstore.loader.torch import (
    STATE_FORMAT,
    DocInfo,
    MixtureDataset,
    MixtureSampler,
    ShardStoreDataLoader,
    make_dataloader,
    resolve_rank,
)

__all__ = [
    "STATE_FORMAT",
    "DocInfo",
    "MixtureDataset",
    "MixtureSampler",
    "ShardStoreDataLoader",
    "make_dataloader",
    "resolve_rank",
]
