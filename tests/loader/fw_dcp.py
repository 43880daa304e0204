"""torchrun helper for test_frameworks_dcp.py: 2 gloo ranks load a 1-rank DCP checkpoint and save a 2-rank one.

``python -m torch.distributed.run --nproc_per_node=2 fw_dcp.py MIX IN_CKPT OUT_CKPT LOG``: each rank builds a
fresh loader (half the global batch), ``dcp.load``s IN_CKPT into `LoaderState`, reads 3 steps (hashes to
LOG.rank<r>), then ``dcp.save``s OUT_CKPT.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp

from shardstore.torch import LoaderState, make_dataloader

GLOBAL_BATCH, STEPS = 8, 3


def input_hash(input_ids: torch.Tensor) -> str:
    return hashlib.sha1(input_ids.contiguous().numpy().tobytes()).hexdigest()[:16]


def main(argv: list[str]) -> None:
    mix, ckpt_in, ckpt_out, log = argv
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    loader = make_dataloader(mix, batch_size=GLOBAL_BATCH // world)
    app = {"dataloader": LoaderState(loader)}
    dcp.load(app, checkpoint_id=ckpt_in)
    it = iter(loader)
    hashes = [input_hash(next(it)["input_ids"]) for _ in range(STEPS)]
    Path(f"{log}.rank{rank}").write_text(json.dumps(hashes))
    dcp.save(app, checkpoint_id=ckpt_out)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
