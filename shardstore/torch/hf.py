"""Hugging Face `Trainer` integration (`from shardstore.torch.hf import ShardstoreTrainer`); imports transformers.

The code lives in the loader layer, `shardstore.loader.hf_trainer`; this module only re-exports its public names.
"""

from __future__ import annotations

from shardstore.loader.hf_trainer import STATE_FILE, ShardstoreCallback, ShardstoreTrainer, load_loader_state

__all__ = ["STATE_FILE", "ShardstoreCallback", "ShardstoreTrainer", "load_loader_state"]
