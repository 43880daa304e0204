"""HF Trainer runs for test_frameworks_hf.py: a random-init tiny GPT-2 (from a config, no hub) on make_dataloader.

Importable (the test forks runs of `train`, so transformers is imported once) and runnable under torchrun:
``python -m torch.distributed.run --nproc_per_node=2 fw_hf.py MIX OUT`` trains 10 steps (checkpoint-10), then a
fresh `ShardstoreTrainer` and loader resume from it to step 20, on 2 gloo ranks.

A forward pre-hook on the model appends ``{"step", "rank", "hash", "labels_are_inputs"}`` for each step to a
JSON-lines log: what the model was really called with, after everything the Trainer did to the batch.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import torch
from transformers import GPT2Config, GPT2LMHeadModel, TrainerCallback, TrainingArguments

from shardstore.torch import make_dataloader
from shardstore.torch.hf import ShardstoreTrainer


def input_hash(input_ids: torch.Tensor) -> str:
    return hashlib.sha1(input_ids.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


def tiny_gpt2(seq_len: int = 16) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=512,
        n_positions=seq_len,
        n_embd=16,
        n_layer=1,
        n_head=2,
        bos_token_id=None,  # GPT-2's 50256 is outside this vocabulary
        eos_token_id=None,
        resid_pdrop=0.0,  # deterministic: the tests compare losses
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        loss_type="ForCausalLM",
    )
    return GPT2LMHeadModel(config)


class KillAt(TrainerCallback):
    """SIGKILL this process at the end of training step `step`."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def _rank() -> int:
    dist = torch.distributed
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def make_trainer(
    mix: Path,
    out: Path,
    *,
    max_steps: int,
    batch_size: int = 4,
    num_workers: int = 0,
    kill_at: int | None = None,
    labels: str = "hf",
) -> ShardstoreTrainer:
    out.mkdir(parents=True, exist_ok=True)
    loader = make_dataloader(mix, batch_size=batch_size, num_workers=num_workers, labels=labels)
    model = tiny_gpt2()
    log = out / "hashes.jsonl"
    trainer: ShardstoreTrainer | None = None

    def record(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        if not module.training or trainer is None:
            return
        ids, lab = kwargs["input_ids"], kwargs["labels"]
        row = {
            "step": trainer.state.global_step + 1,
            "rank": _rank(),
            "hash": input_hash(ids),
            "labels_are_inputs": bool(torch.equal(ids, lab)),
            "keys": sorted(k for k, v in kwargs.items() if v is not None),
        }
        with open(log, "a") as f:
            f.write(json.dumps(row) + "\n")

    model.register_forward_pre_hook(record, with_kwargs=True)
    args = TrainingArguments(
        output_dir=str(out),
        max_steps=max_steps,
        save_strategy="steps",
        save_steps=10,
        logging_steps=1000,
        report_to=[],
        use_cpu=True,
        learning_rate=1e-3,
        lr_scheduler_type="constant",
        seed=0,
        disable_tqdm=True,
        ddp_backend="gloo" if "WORLD_SIZE" in os.environ else None,  # a backend means "distributed" to HF
    )
    trainer = ShardstoreTrainer(
        model=model,
        args=args,
        train_dataloader=loader,
        callbacks=[KillAt(kill_at)] if kill_at is not None else None,
    )
    return trainer


def train(mix: Path, out: Path, *, resume: str | bool | None = None, **kw: Any) -> None:
    make_trainer(mix, out, **kw).train(resume_from_checkpoint=resume)


def main(argv: list[str]) -> None:
    mix, out = Path(argv[0]), Path(argv[1])
    torch.set_num_threads(1)
    train(mix, out, max_steps=10)
    train(mix, out, max_steps=20, resume=str(out / "checkpoint-10"))
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
        # Under torchrun, leave without the interpreter's teardown. Every output is written and closed by now. Left
        # to tear down, a rank aborted in about 1 of 6 loaded runs ("terminate called without an active exception",
        # SIGABRT: a C++ thread of torch's still up at exit, even after destroy_process_group).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
