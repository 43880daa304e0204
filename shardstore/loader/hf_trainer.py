"""`ShardstoreTrainer`: Hugging Face's `Trainer` on a shardstore loader, resuming exactly.

What the plain `Trainer` does with a loader, and what this changes:

* It builds its own `DataLoader` from ``train_dataset`` and passes it through ``accelerator.prepare``, which
  replaces the sampler. Here ``get_train_dataloader`` returns the shardstore loader as it is: it already gives
  each rank its slice of the global batch (rank and world size from ``torch.distributed``).
* On resume it skips the batches already trained by replaying them (``skip_first_batches``: O(steps), and with
  our loader a crash). Here ``ignore_data_skip`` is forced on and the loader's state, saved beside the model in
  ``checkpoint-N/shardstore_loader.json`` (a few integers, JSON), is loaded before training starts: O(1).
* HF causal LMs shift ``labels`` themselves, so the loader must be built with ``labels="hf"`` (or
  ``"hf_doc_masked"``); the default ``"next"`` labels would train on token t+2 and are refused.

The state file is written by the world's process zero in ``on_save``, after the Trainer wrote the checkpoint (the
state is the same on every rank). A checkpoint without it (a crash between the two writes) is refused on resume
with a message, never resumed from the start silently.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, TrainOutput, get_last_checkpoint

from shardstore.errors import ConfigError, StateError
from shardstore.loader.labels import Labels
from shardstore.loader.torch import ShardStoreDataLoader
from shardstore.util.durable import atomic_write

__all__ = ["STATE_FILE", "ShardstoreCallback", "ShardstoreTrainer", "load_loader_state"]

STATE_FILE = "shardstore_loader.json"


class ShardstoreCallback(TrainerCallback):
    """Writes the loader's state into each ``checkpoint-N/`` the Trainer saves (process zero only)."""

    def __init__(self, loader: ShardStoreDataLoader) -> None:
        self.loader = loader

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        data = json.dumps(self.loader.state_dict(), sort_keys=True).encode()
        atomic_write(folder / STATE_FILE, data)


def load_loader_state(loader: ShardStoreDataLoader, checkpoint: str | os.PathLike[str]) -> None:
    """Load ``checkpoint/shardstore_loader.json`` into the loader; `StateError` naming the file if it is missing."""
    path = Path(checkpoint) / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise StateError(
            f"{path} is missing: this checkpoint was not written by ShardstoreTrainer, or the run died between "
            "the Trainer's checkpoint and the loader state. Resume from an earlier checkpoint"
        ) from None
    except json.JSONDecodeError as exc:
        raise StateError(f"{path} is not valid JSON ({exc})") from None
    loader.load_state_dict(state)


class ShardstoreTrainer(Trainer):
    """A `Trainer` that trains on ``train_dataloader`` (from `make_dataloader(..., labels="hf")`) and saves and
    restores its state with every checkpoint. Other arguments are the `Trainer`'s (no ``train_dataset``)."""

    def __init__(self, *args: Any, train_dataloader: ShardStoreDataLoader, **kwargs: Any) -> None:
        if not isinstance(train_dataloader, ShardStoreDataLoader):
            raise ConfigError(
                f"train_dataloader must come from shardstore.torch.make_dataloader, got {type(train_dataloader)}"
            )
        if kwargs.get("train_dataset") is not None:
            raise ConfigError("ShardstoreTrainer reads train_dataloader; pass no train_dataset")
        if train_dataloader.mix_dataset.labels is Labels.NEXT:
            raise ConfigError(
                "make_dataloader(..., labels='next') gives labels already shifted, and HF models shift them again "
                "(training on token t+2): build the loader with labels='hf' (or 'hf_doc_masked')"
            )
        super().__init__(*args, **kwargs)
        # resume by the loader's state, not by replaying batches (skip_first_batches cannot rebuild our loader)
        self.args.ignore_data_skip = True
        self.shardstore_loader = train_dataloader
        self.add_callback(ShardstoreCallback(train_dataloader))

    def get_train_dataloader(self) -> ShardStoreDataLoader:  # type: ignore[override]
        return self.shardstore_loader

    def train(
        self,
        resume_from_checkpoint: str | bool | None = None,
        trial: Any = None,
        ignore_keys_for_eval: list[str] | None = None,
    ) -> TrainOutput:
        """`Trainer.train`, after loading the loader state of the checkpoint it resumes from."""
        checkpoint: str | None
        if resume_from_checkpoint is True:
            checkpoint = get_last_checkpoint(self.args.output_dir)
            if checkpoint is None:
                raise ConfigError(
                    f"resume_from_checkpoint=True, but {self.args.output_dir} has no checkpoint"
                )
        else:
            checkpoint = resume_from_checkpoint or None
        if checkpoint is not None:
            load_loader_state(self.shardstore_loader, checkpoint)
        return super().train(
            resume_from_checkpoint=checkpoint, trial=trial, ignore_keys_for_eval=ignore_keys_for_eval
        )
