"""Train a small GPT on a shardstore mixture: the example to copy, top to bottom.

    python benchmarks/train_gpt.py --mix mix.toml --model tiny --steps 20 --batch-size 8
    torchrun --standalone --nproc_per_node 8 benchmarks/train_gpt.py --mix mix.toml --model 124m --batch-size 128 \
        --num-workers 4 --steps 5000 --ckpt-dir ckpt --ckpt-every 500        # then the same with --resume

The shardstore parts are `open_data` (a `Mixture` and `make_dataloader`) and the loader's `state_dict()` /
`load_state_dict()` in the checkpoint. The rest is a plain loop: the model is `gpt_model.py` beside this file
(nanoGPT-style; presets `124m`, `20m`, `10m`, `tiny`; its loss comes back per source), bf16 autocast and
`torch.compile` on GPU, fused AdamW, DDP under torchrun (nccl on GPU, gloo on CPU).

- `--batch-size` is the *global* batch in samples, split evenly over ranks: a 2-process and a 1-process run consume
  the same global batches, and a checkpoint of one resumes on the other.
- Checkpoint: `model.pt` + `optim.pt` (tensors only, loaded with `weights_only=True`), every rank's loader state
  (JSON) and `meta.json`, written to a temporary folder, renamed, then `LATEST` replaced atomically.
- Every `--log-every N` steps it prints the loss per token of each source (grouped by the batch's `source_ids`) and
  the data wait, both means over the N steps since the previous line (the last line covers what is left);
  `--eval-every N` adds the held-out loss per source every N steps and at the end: one pass of the eval loader
  (`make_dataloader(mixture, split="heldout")`, the mixture's `heldout` documents, never trained on). `--json`
  prints each line as a JSON object, `--plot FILE.png` draws each source's loss over the steps at the end.
- `feed` (train_harness.py) hands the loop its batches one step ahead (copied to the GPU on a side stream while the
  previous step runs) and holds the benchmark and test hooks: per-step metrics and sample-hash logs, data-wait
  timing, `--crash-at-step`, `--data gpu-synthetic`. To strip them, iterate the loader directly.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from gpt_model import GPT, PRESETS, model_config  # benchmarks/gpt_model.py, beside this script
from train_harness import DataMode, Feeder, add_harness_args, check_options, synthetic_batches

from shardstore.util.durable import atomic_write, fsync_dir


@dataclass(slots=True)
class TrainConfig:
    mix: str | None = None  # the mixture file (sources, weights, seq_len, seed)
    model: str = "tiny"
    steps: int = 20
    batch_size: int = 8  # global, in samples
    num_workers: int = 0
    lr: float = 6e-4
    seed: int = 1337
    device: str = "auto"  # auto|cpu|cuda
    compile: str = "auto"  # auto|on|off
    ckpt_dir: str | None = None
    ckpt_every: int = 0
    resume: bool = False
    log_every: int = 10  # console line: means over the steps since the previous line
    print_json: bool = False  # console lines as JSON objects
    plot: str | None = None  # PNG of the loss per source over steps, at the end
    eval_every: int = 0  # held-out loss per source every N steps and at the end (0: never)
    # benchmark and test hooks, see train_harness.py
    data: DataMode = DataMode.LOADER
    synthetic_batches: int = 8
    seq_len: int = 256  # gpu-synthetic without --mix
    vocab_size: int = 8192  # gpu-synthetic without --mix
    warmup_steps: int = 5
    crash_at_step: int = 0
    hash_log: str | None = None
    metrics_log: str | None = None
    summary_json: str | None = None


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mix", help="mixture TOML (sources, weights, seq_len, seed)")
    p.add_argument("--model", default="tiny", choices=sorted(PRESETS))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=8, help="global batch in samples (split over ranks)")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--lr", type=float, default=6e-4)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--compile", default="auto", choices=["auto", "on", "off"])
    p.add_argument("--ckpt-dir")
    p.add_argument("--ckpt-every", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from --ckpt-dir's latest checkpoint")
    p.add_argument("--log-every", type=int, default=10, help="print loss per source, data wait every N steps")
    p.add_argument("--json", dest="print_json", action="store_true", help="console lines as JSON objects")
    p.add_argument("--plot", metavar="FILE.png", help="draw the loss per source over steps (matplotlib)")
    p.add_argument("--eval-every", type=int, default=0, help="held-out loss per source every N steps")
    add_harness_args(p)
    return TrainConfig(**vars(p.parse_args(argv)))


# ---------------------------------------------------------------------------------------------------------------
# Distributed setup and data


@dataclass(frozen=True, slots=True)
class Dist:
    rank: int
    world_size: int
    device: torch.device


def setup_distributed(cfg: TrainConfig) -> Dist:
    """torchrun's environment: one process per GPU (nccl), or per CPU process (gloo)."""
    world_size, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world_size > 1:
        dist.init_process_group(backend="nccl" if cuda else "gloo", device_id=device if cuda else None)
    if cfg.batch_size % world_size:
        raise SystemExit(
            f"--batch-size {cfg.batch_size} (global) must be divisible by world size {world_size}"
        )
    return Dist(rank, world_size, device)


def open_data(cfg: TrainConfig, d: Dist) -> tuple[Any, Any, list[str], int, int]:
    """(loader, held-out loader, source names, seq_len, vocabulary size of the stores); loaders None without a
    mixture, the held-out one None without ``--eval-every``."""
    if cfg.mix is None:
        return None, None, ["synthetic"], cfg.seq_len, cfg.vocab_size
    from shardstore import Mixture
    from shardstore.torch import make_dataloader

    mixture = Mixture.from_file(cfg.mix)
    vocab = mixture.open_sources()[0].stores[0].tokenizer.vocab_size
    local_batch = cfg.batch_size // d.world_size  # this rank's share of the global batch
    pin = d.device.type == "cuda"
    loader = make_dataloader(
        mixture, batch_size=local_batch, rank=d.rank, world_size=d.world_size, num_workers=cfg.num_workers,
        pin_memory=pin,
    )  # fmt: skip
    heldout = None
    if cfg.eval_every:  # every held-out document once per pass, split over ranks; padding has labels -100
        heldout = make_dataloader(
            mixture,
            split="heldout",
            batch_size=local_batch,
            rank=d.rank,
            world_size=d.world_size,
            pin_memory=pin,
        )
    return loader, heldout, list(mixture.names), mixture.config.seq_len, vocab


@torch.no_grad()
def evaluate(model: Any, heldout: Any, num_sources: int, d: Dist, autocast: Any) -> tuple[Any, Any]:
    """One pass over the held-out split: per-source sums of token losses and token counts, over all ranks."""
    model.eval()
    sums = torch.zeros(num_sources, device=d.device)
    counts = torch.zeros(num_sources, device=d.device)
    for batch in heldout:
        x, y = batch["input_ids"].to(d.device), batch["labels"].to(d.device)
        source_ids = batch["source_ids"].clamp(min=0).to(d.device)  # padding rows (-1) have no label: count 0
        with autocast:
            _, s, c = model(x, y, source_ids, num_sources)
        sums += s
        counts += c
    if d.world_size > 1:
        dist.all_reduce(sums)
        dist.all_reduce(counts)
    model.train()
    return sums, counts


# ---------------------------------------------------------------------------------------------------------------
# Checkpoint


def save_checkpoint(cfg: TrainConfig, d: Dist, step: int, model: Any, opt: Any, loader_state: Any) -> None:
    """Every rank writes its loader state, rank 0 the model and optimizer; then one atomic rename commits it."""
    root = Path(cfg.ckpt_dir)  # type: ignore[arg-type]
    final, tmp = root / f"step_{step:08d}", root / f".step_{step:08d}.tmp"
    if d.rank == 0:
        tmp.mkdir(parents=True, exist_ok=True)
    barrier(d)
    if loader_state is not None:
        atomic_write(tmp / f"loader_rank{d.rank}.json", json.dumps(loader_state).encode())
    if d.rank == 0:
        torch.save(model.state_dict(), tmp / "model.pt")
        torch.save(opt.state_dict(), tmp / "optim.pt")
        meta = {"step": step, "world_size": d.world_size, "batch_size": cfg.batch_size, "model": cfg.model}
        atomic_write(tmp / "meta.json", json.dumps(meta).encode())
    barrier(d)
    if d.rank == 0:
        fsync_dir(tmp)
        os.replace(tmp, final)
        atomic_write(root / "LATEST", final.name.encode())
    barrier(d)


def load_checkpoint(cfg: TrainConfig, d: Dist, model: Any, opt: Any, loader: Any) -> int:
    """Restore model, optimizer and loader; return the number of steps already done (0 if none saved)."""
    root = Path(cfg.ckpt_dir)  # type: ignore[arg-type]
    if not (root / "LATEST").exists():
        return 0
    path = root / (root / "LATEST").read_text().strip()
    meta = json.loads((path / "meta.json").read_text())
    if meta["batch_size"] != cfg.batch_size:
        raise SystemExit(
            f"{path}: saved with global --batch-size {meta['batch_size']}, resumed with {cfg.batch_size}"
        )
    model.load_state_dict(torch.load(path / "model.pt", map_location=d.device, weights_only=True))
    opt.load_state_dict(torch.load(path / "optim.pt", map_location=d.device, weights_only=True))
    if loader is not None:
        # Same world size: each rank its own state. Otherwise rank 0's: it records the global position, and the
        # loader re-derives this rank's share of the global order from it.
        rank = d.rank if meta["world_size"] == d.world_size else 0
        loader.load_state_dict(json.loads((path / f"loader_rank{rank}.json").read_text()))
    return int(meta["step"])


def barrier(d: Dist) -> None:
    if d.world_size > 1:
        dist.barrier()


# ---------------------------------------------------------------------------------------------------------------
# Training


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run the loop; return the run summary (throughput, data-wait shares, losses) on every rank."""
    check_options(cfg)  # flag combinations, and --plot (PNG name, matplotlib) before any work
    d = setup_distributed(cfg)
    try:
        return _train(cfg, d)
    finally:
        if d.world_size > 1:
            dist.destroy_process_group()


def _train(cfg: TrainConfig, d: Dist) -> dict[str, Any]:
    torch.manual_seed(cfg.seed)
    cuda = d.device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    loader, heldout, names, seq_len, vocab = open_data(cfg, d)

    mcfg = model_config(cfg.model, data_vocab=vocab, seq_len=seq_len)
    model = GPT(mcfg).to(d.device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.1, fused=cuda)
    batches: Any = None
    if cfg.data is DataMode.GPU_SYNTHETIC:  # the upper bound: batches already on the GPU, replayed
        batches = synthetic_batches(cfg, cfg.batch_size // d.world_size, d.rank, loader, d.device)
        loader = None  # nothing to checkpoint
    start = load_checkpoint(cfg, d, model, opt, loader) if cfg.resume else 0
    if loader is not None:
        batches = iter(loader)  # after load_state_dict: continues where the checkpoint stopped
    use_compile = cfg.compile == "on" or (cfg.compile == "auto" and cuda)
    fwd: Any = torch.compile(model) if use_compile else model
    if d.world_size > 1:
        fwd = torch.nn.parallel.DistributedDataParallel(fwd, device_ids=[d.device.index] if cuda else None)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
    run = {"model": cfg.model, "params": model.num_params(), "vocab": mcfg.vocab_size, "seq_len": seq_len,
           "data": str(cfg.data), "global_batch": cfg.batch_size, "world_size": d.world_size,
           "device": str(d.device), "compile": use_compile, "from_step": start, "to_step": cfg.steps}  # fmt: skip

    with Feeder(batches, cfg, d, names, seq_len, start) as feed:
        feed.emit(run, " ".join(f"{k}={v}" for k, v in run.items()))
        for step in range(start + 1, cfg.steps + 1):
            x, y, source_ids = feed.next_batch(step)
            for g in opt.param_groups:
                g["lr"] = cfg.lr * min(1.0, step / 10)  # short linear warm-up
            with autocast:
                # the model returns the mean loss, and per-source loss sums and counts
                loss, src_sum, src_cnt = fwd(x, y, source_ids, len(names))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)

            ckpt_due = bool(cfg.ckpt_dir and cfg.ckpt_every and step % cfg.ckpt_every == 0)
            # The loader's state right after this step's batch, before the next one is taken.
            loader_state = loader.state_dict() if ckpt_due and loader is not None else None
            feed.step_done(step, loss, src_sum, src_cnt, flush=ckpt_due)  # logs; takes the next batch
            if ckpt_due:
                save_checkpoint(cfg, d, step, model, opt, loader_state)
            if heldout is not None and (step % cfg.eval_every == 0 or step == cfg.steps):
                with feed.paused():  # left out of the throughput and data-wait figures
                    sums, counts = evaluate(model, heldout, len(names), d, autocast)
                feed.heldout_done(step, sums, counts)
            feed.maybe_crash(step)
        summary = feed.summary(model)
        if cfg.plot:
            feed.plot(cfg.plot)
        return summary


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    summary = train(cfg)
    if cfg.summary_json and int(os.environ.get("RANK", "0")) == 0:
        Path(cfg.summary_json).write_text(
            json.dumps({**summary, "config": asdict(cfg)}, indent=1, default=str)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
