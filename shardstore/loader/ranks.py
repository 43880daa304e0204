"""Rank and world size of a loader: from the arguments, else from an initialized torch.distributed, else (0, 1).

One helper for the training loader (`shardstore.loader.torch`) and the evaluation loader
(`shardstore.loader.evaluation`).
"""

from __future__ import annotations

import torch
import torch.distributed

from shardstore.errors import ConfigError

__all__ = ["resolve_rank"]


def resolve_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Rank and world size from the arguments, else from an initialized torch.distributed, else (0, 1)."""
    if rank is None or world_size is None:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            rank = dist.get_rank() if rank is None else rank
            world_size = dist.get_world_size() if world_size is None else world_size
        rank = 0 if rank is None else rank
        world_size = 1 if world_size is None else world_size
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"need 0 <= rank < world_size, got {rank=} {world_size=}")
    return rank, world_size
