"""Public entry point of the torch integration (`from shardstore.torch import make_dataloader`).

The code lives in the loader layer, `shardstore.loader.torch`; this module only re-exports its public names.
"""

from __future__ import annotations

from shardstore.loader.dcp import LoaderState
from shardstore.loader.evaluation import IGNORE_INDEX, make_eval_dataloader
from shardstore.loader.torch import (
    STATE_FORMAT,
    UNBOUNDED_STEPS,
    DocInfo,
    Labels,
    MixtureDataset,
    MixtureSampler,
    ShardStoreDataLoader,
    Split,
    make_dataloader,
    resolve_rank,
)

__all__ = [
    "IGNORE_INDEX",
    "STATE_FORMAT",
    "UNBOUNDED_STEPS",
    "DocInfo",
    "Labels",
    "LoaderState",
    "MixtureDataset",
    "MixtureSampler",
    "ShardStoreDataLoader",
    "Split",
    "make_dataloader",
    "make_eval_dataloader",
    "resolve_rank",
]
