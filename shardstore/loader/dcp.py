"""`LoaderState`: the loader as a `torch.distributed.checkpoint` `Stateful`, under one global key.

torchtitan-style checkpointing stores the data loader under a per-rank key (``dataloader.dp_rank_<r>``), because
a general loader's state differs per rank. That pins a checkpoint to its world size: resuming 1 rank's checkpoint
on 2 fails with ``Missing key ... dp_rank_1``. The shardstore state is global (the position of the next global
batch and the per-source counts there: the same integers on every rank), so one key serves every world size, in
both directions, and each rank takes its own slice of the next global batch after loading.

The value is the state dict as one JSON string (``json.dumps``; a few hundred bytes). DCP deduplicates it (every
rank saves the same key) and stores it as a bytes item of its own container format; nothing shardstore-specific
is pickled.

DCP's `Stateful` is a runtime-checkable protocol: the two methods are all it needs, so this module does not import
``torch.distributed.checkpoint`` (~3 s) for users who never checkpoint with it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from shardstore.errors import ConfigError, StateError
from shardstore.loader.torch import MixtureSampler, ShardStoreDataLoader

__all__ = ["STATE_KEY", "LoaderState"]

STATE_KEY = "shardstore_state_json"


class LoaderState:
    """Wraps a `ShardStoreDataLoader` (or a `MixtureSampler`, under `StatefulDataLoader`'s sampler) for DCP:
    ``dcp.save({"dataloader": LoaderState(loader), ...})`` and the same dict to ``dcp.load``."""

    def __init__(self, loader: ShardStoreDataLoader | MixtureSampler) -> None:
        if not isinstance(loader, ShardStoreDataLoader | MixtureSampler):
            raise ConfigError(
                f"LoaderState wraps a loader from make_dataloader or a MixtureSampler, got {type(loader).__name__}"
            )
        self.loader = loader

    def state_dict(self) -> dict[str, Any]:
        return {STATE_KEY: json.dumps(self.loader.state_dict(), sort_keys=True)}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        raw = state_dict.get(STATE_KEY) if isinstance(state_dict, Mapping) else None
        if not isinstance(raw, str):
            raise StateError(
                f"the checkpoint's loader entry has no {STATE_KEY!r} string (keys: {sorted(state_dict)}): "
                "it was not saved by shardstore.torch.LoaderState"
            )
        try:
            state = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise StateError(f"the checkpoint's loader state is not valid JSON ({exc})") from None
        self.loader.load_state_dict(state)
