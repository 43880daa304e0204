"""Lightning runs for test_frameworks_lightning.py: a tiny model on make_dataloader, with per-step input hashes.

Importable (the test forks runs of `train` from its own process, so Lightning is imported once) and runnable as a
script under torchrun for DDP: ``python -m torch.distributed.run --nproc_per_node=2 fw_lightning.py MIX OUT``
runs 10 steps with a checkpoint, then a fresh Trainer and a fresh loader resume from it to step 20.

Each training step appends ``{"step", "rank", "hash"}`` (sha1 of the ``input_ids`` bytes) to a JSON-lines log;
the test compares them with the batches of a plain, uninterrupted iteration of the same loader.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from shardstore import Mixture
from shardstore.torch import MixtureDataset, MixtureSampler, make_dataloader

VOCAB = 512


def input_hash(input_ids: torch.Tensor) -> str:
    return hashlib.sha1(input_ids.contiguous().numpy().tobytes()).hexdigest()[:16]


class TinyLM(pl.LightningModule):
    """Embedding + linear head: enough to train on the batches, cheap enough for a test."""

    def __init__(self, hash_log: Path) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(VOCAB, 16)
        self.head = torch.nn.Linear(16, VOCAB)
        self.hash_log = hash_log

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        with open(self.hash_log, "a") as f:
            f.write(
                json.dumps(
                    {
                        "step": self.global_step + 1,
                        "rank": self.global_rank,
                        "hash": input_hash(batch["input_ids"]),
                    }
                )
                + "\n"
            )
        logits = self.head(self.emb(batch["input_ids"]))
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class KillAt(pl.Callback):
    """SIGKILL this process after training step `step` (no cleanup, no checkpoint of its own)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def train(
    mix: Path,
    out: Path,
    *,
    max_steps: int,
    batch_size: int = 4,
    num_workers: int = 0,
    resume: Path | None = None,
    kill_at: int | None = None,
    devices: int = 1,
    stateful_dataloader: bool = False,
) -> None:
    """One Lightning fit: checkpoints every 10 steps into ``out/ckpt/step=N.ckpt``, hashes into ``out/hashes``.
    ``stateful_dataloader``: torchdata's StatefulDataLoader over our dataset and sampler instead of our loader."""
    out.mkdir(parents=True, exist_ok=True)
    loader: Any
    if stateful_dataloader:
        from torchdata.stateful_dataloader import StatefulDataLoader

        mixture = Mixture.from_file(mix)
        sampler = MixtureSampler(mixture, batch_size=batch_size)
        loader = StatefulDataLoader(
            MixtureDataset(mixture), sampler=sampler, batch_size=None, num_workers=num_workers
        )
    else:  # no max_steps, no other option: nothing needed for an exact resume
        loader = make_dataloader(mix, batch_size=batch_size, num_workers=num_workers)
    callbacks: list[pl.Callback] = [
        pl.callbacks.ModelCheckpoint(
            dirpath=out / "ckpt", filename="{step}", every_n_train_steps=10, save_top_k=-1
        )
    ]
    if kill_at is not None:
        callbacks.append(KillAt(kill_at))
    trainer = pl.Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        callbacks=callbacks,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(TinyLM(out / "hashes.jsonl"), train_dataloaders=loader, ckpt_path=resume)


def main(argv: list[str]) -> None:
    """torchrun entry: 10 steps (checkpoint at 10), then a new Trainer and loader resume to 20."""
    mix, out = Path(argv[0]), Path(argv[1])
    torch.set_num_threads(1)
    train(mix, out, max_steps=10, devices=2)
    train(mix, out, max_steps=20, devices=2, resume=out / "ckpt" / "step=10.ckpt")
    # An orderly shutdown: a rank that exits with gloo's threads still running can abort in teardown ("terminate
    # called without an active exception", seen once in CI after both fits had finished).
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
