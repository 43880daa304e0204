"""A minimal, real GPT training loop fed by `shardstore.torch.make_dataloader`.

It is the example every user copies (swap your DataLoader for ours) and the harness behind the GPU figures in
benchmarks/RESULTS.md. It reads top to bottom: configuration, data, checkpoint, loop, command line.

- Model: `gpt_model.py` beside this file (nanoGPT-style; presets `124m`, `20m`, `10m`, `tiny`), bf16 autocast and
  `torch.compile` on GPU, fused AdamW.
- Data: `--mix MIX.toml` drives `make_dataloader` (pinned memory on GPU). While step i runs, batch i+1 is taken
  from the loader and copied to the GPU on a side stream (`DeviceFeeder`). `--data gpu-synthetic` feeds batches
  that already live on the GPU (taken from the same loader when `--mix` is given, random tokens otherwise): the
  upper bound the loader is measured against.
- Data wait, two measures per step: the host time spent in `next(loader)` plus issuing the copies (it overlaps GPU
  work when the host runs ahead, so it is an upper bound of the stall), and on GPU the idle time between the end
  of one step and the point where the next step's compute can start, from CUDA events (the real stall).
- DDP under `torchrun` (nccl on GPU, gloo on CPU). `--batch-size` is the *global* batch in samples, split evenly over
  ranks, so a 2-process run and a 1-process run consume the same global batches and a checkpoint of one resumes on
  the other.
- Checkpoint: `model.pt` + `optim.pt` (tensors only, loaded with `weights_only=True`), the loader's JSON state of
  every rank, `meta.json`; written to a temporary folder, renamed, then `LATEST` replaced atomically.
- Determinism checks: `--hash-log FILE` appends one JSON line per step with a 64-bit hash of every sample of the
  global batch (gathered over ranks, in rank order); `--metrics-log FILE` the loss, per-source losses and both data
  waits of every step. `--crash-at-step N` ends the process abruptly
  (`os._exit`) after step N, like a killed job.

Usage:
    python benchmarks/train_gpt.py --mix mix.toml --model tiny --steps 20 --batch-size 8
    torchrun --standalone --nproc_per_node 2 benchmarks/train_gpt.py --mix mix.toml --batch-size 16 ...
    python benchmarks/train_gpt.py --mix mix.toml --model 124m --steps 300 --batch-size 16 --num-workers 4
    python benchmarks/train_gpt.py --data gpu-synthetic --mix mix.toml --model 124m --steps 300 --batch-size 16
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from gpt_model import GPT, PRESETS, model_config  # benchmarks/gpt_model.py, beside this script
from torch import nn

from shardstore.util.durable import atomic_write, fsync_dir

# ----------------------------------------------------------------------------------------------------------------
# Configuration and distributed setup


class DataMode(StrEnum):
    LOADER = "loader"
    GPU_SYNTHETIC = "gpu-synthetic"


@dataclass(slots=True)
class TrainConfig:
    mix: str | None = None
    data: DataMode = DataMode.LOADER
    model: str = "tiny"
    steps: int = 20
    batch_size: int = 8  # global, in samples
    num_workers: int = 0
    lr: float = 6e-4
    seed: int = 1337
    device: str = "auto"
    compile: str = "auto"  # auto|on|off
    ckpt_dir: str | None = None
    ckpt_every: int = 0
    resume: bool = False
    crash_at_step: int = 0
    hash_log: str | None = None
    metrics_log: str | None = None
    log_every: int = 10
    warmup_steps: int = 5  # excluded from throughput
    synthetic_batches: int = 8
    seq_len: int = 256  # used only without --mix
    vocab_size: int = 8192  # used only without --mix
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if self.model not in PRESETS:
            raise SystemExit(f"--model {self.model!r}: expected one of {sorted(PRESETS)}")
        if self.data is DataMode.LOADER and not self.mix:
            raise SystemExit("--data loader needs --mix MIX.toml (or use --data gpu-synthetic)")
        if self.steps < 1 or self.batch_size < 1:
            raise SystemExit(f"--steps {self.steps} and --batch-size {self.batch_size} must be >= 1")
        if self.resume and not self.ckpt_dir:
            raise SystemExit("--resume needs --ckpt-dir")


@dataclass(frozen=True, slots=True)
class DistInfo:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(cfg: TrainConfig) -> DistInfo:
    """Read torchrun's environment; one process per GPU (nccl) or per CPU process (gloo)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    use_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    if use_cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world_size > 1:
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo", device_id=device if use_cuda else None
        )
    if cfg.batch_size % world_size:
        raise SystemExit(
            f"--batch-size {cfg.batch_size} (global) must be divisible by world size {world_size}"
        )
    return DistInfo(rank=rank, world_size=world_size, device=device)


# ----------------------------------------------------------------------------------------------------------------
# Data


@dataclass(slots=True)
class DataSource:
    batches: Any  # an iterator of batch dicts (CPU tensors from the loader, or GPU tensors)
    loader: Any  # the stateful DataLoader, or None in gpu-synthetic mode
    source_names: list[str]
    seq_len: int
    data_vocab: int


def _mixture_facts(mixture: Any) -> tuple[list[str], int, int]:
    """Source names, seq_len and the vocabulary size of the stores behind a mixture."""
    first_store = mixture.open_sources()[0].stores[0]
    return list(mixture.names), int(mixture.config.seq_len), int(first_store.tokenizer.vocab_size)


def open_data(cfg: TrainConfig, d: DistInfo) -> DataSource:
    local_batch = cfg.batch_size // d.world_size
    if cfg.mix is None:  # gpu-synthetic without a store: random tokens
        g = torch.Generator().manual_seed(cfg.seed + d.rank)
        batches = []
        for _ in range(cfg.synthetic_batches):
            ids = torch.randint(0, cfg.vocab_size, (local_batch, cfg.seq_len + 1), generator=g)
            batches.append(
                {
                    "input_ids": ids[:, :-1].contiguous(),
                    "labels": ids[:, 1:].contiguous(),
                    "source_ids": torch.zeros(local_batch, dtype=torch.int64),
                }
            )
        return _on_device_cycle(batches, d, ["synthetic"], cfg.seq_len, cfg.vocab_size)

    from shardstore.loader.mixture import Mixture
    from shardstore.torch import make_dataloader

    mixture = Mixture.from_file(cfg.mix)
    names, seq_len, vocab = _mixture_facts(mixture)
    loader = make_dataloader(
        mixture,
        batch_size=local_batch,
        rank=d.rank,
        world_size=d.world_size,
        num_workers=cfg.num_workers,
        pin_memory=d.device.type == "cuda",
    )
    if cfg.data is DataMode.GPU_SYNTHETIC:  # real batches, copied to the GPU once, then replayed
        it = iter(loader)
        batches = [next(it) for _ in range(cfg.synthetic_batches)]
        return _on_device_cycle(batches, d, names, seq_len, vocab)
    return DataSource(batches=None, loader=loader, source_names=names, seq_len=seq_len, data_vocab=vocab)


def _on_device_cycle(
    batches: list[dict[str, torch.Tensor]], d: DistInfo, names: list[str], seq_len: int, vocab: int
) -> DataSource:
    keys = ("input_ids", "labels", "source_ids")
    on_dev = [{k: b[k].to(d.device) for k in keys} for b in batches]

    def cycle() -> Any:
        i = 0
        while True:
            yield on_dev[i % len(on_dev)]
            i += 1

    return DataSource(batches=cycle(), loader=None, source_names=names, seq_len=seq_len, data_vocab=vocab)


def sample_hashes(input_ids: torch.Tensor) -> list[int]:
    """A signed 64-bit hash of each sample (row), from its int64 token bytes; stable across runs and machines."""
    rows = input_ids.detach().to("cpu", torch.int64).contiguous().numpy()
    return [
        int.from_bytes(hashlib.blake2b(r.tobytes(), digest_size=8).digest(), "little", signed=True)
        for r in rows
    ]


def gather_hashes(local: list[int], d: DistInfo) -> list[int]:
    if d.world_size == 1:
        return local
    t = torch.tensor(local, dtype=torch.int64, device=d.device)
    parts = [torch.empty_like(t) for _ in range(d.world_size)]
    dist.all_gather(parts, t)
    return [int(x) for p in parts for x in p.tolist()]


# ----------------------------------------------------------------------------------------------------------------
# Checkpoint


def save_checkpoint(
    ckpt_dir: Path,
    step: int,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    d: DistInfo,
    cfg: TrainConfig,
    loader_state: dict[str, Any] | None,
) -> None:
    """Every rank writes its loader state, rank 0 the model and optimizer; then one atomic rename commits it.

    `loader_state` is taken right after the step's batch was consumed, before the next one is prefetched."""
    final = ckpt_dir / f"step_{step:08d}"
    tmp = ckpt_dir / f".step_{step:08d}.tmp"
    if d.is_main:
        tmp.mkdir(parents=True, exist_ok=True)
    _barrier(d)
    if loader_state is not None:
        atomic_write(tmp / f"loader_rank{d.rank}.json", json.dumps(loader_state).encode())
    if d.is_main:
        torch.save(model.state_dict(), tmp / "model.pt")
        torch.save(opt.state_dict(), tmp / "optim.pt")
        meta = {"step": step, "world_size": d.world_size, "batch_size": cfg.batch_size, "model": cfg.model}
        atomic_write(tmp / "meta.json", json.dumps(meta).encode())
    _barrier(d)
    if d.is_main:
        fsync_dir(tmp)
        os.replace(tmp, final)
        atomic_write(ckpt_dir / "LATEST", final.name.encode())
    _barrier(d)


def load_checkpoint(
    ckpt_dir: Path,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    data: DataSource,
    d: DistInfo,
    cfg: TrainConfig,
) -> int:
    """Restore model, optimizer and loader; return the number of steps already done (0 if none saved)."""
    latest = ckpt_dir / "LATEST"
    if not latest.exists():
        return 0
    path = ckpt_dir / latest.read_text().strip()
    meta = json.loads((path / "meta.json").read_text())
    if meta["batch_size"] != cfg.batch_size:
        raise SystemExit(
            f"{path}: saved with global --batch-size {meta['batch_size']}, resumed with {cfg.batch_size}"
        )
    model.load_state_dict(torch.load(path / "model.pt", map_location=d.device, weights_only=True))
    opt.load_state_dict(torch.load(path / "optim.pt", map_location=d.device, weights_only=True))
    if data.loader is not None:
        # Same world size: each rank its own state. Otherwise rank 0's state, which records the global position;
        # the loader re-derives each rank's share of the global order from it.
        own = path / f"loader_rank{d.rank}.json"
        src = own if meta["world_size"] == d.world_size else path / "loader_rank0.json"
        data.loader.load_state_dict(json.loads(src.read_text()))
    return int(meta["step"])


def _barrier(d: DistInfo) -> None:
    if d.world_size > 1:
        dist.barrier()


# ----------------------------------------------------------------------------------------------------------------
# Training loop


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run the loop; return a summary (throughput, data-wait share, final loss) on every rank."""
    cfg.validate()
    d = setup_distributed(cfg)
    try:
        return _train(cfg, d)
    finally:
        if d.world_size > 1:
            dist.destroy_process_group()


def _train(cfg: TrainConfig, d: DistInfo) -> dict[str, Any]:
    torch.manual_seed(cfg.seed)
    cuda = d.device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    data = open_data(cfg, d)
    mcfg = model_config(cfg.model, data_vocab=data.data_vocab, seq_len=data.seq_len)
    model = GPT(mcfg).to(d.device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.1, fused=cuda)
    start = load_checkpoint(Path(cfg.ckpt_dir), model, opt, data, d, cfg) if cfg.resume else 0
    use_compile = cfg.compile == "on" or (cfg.compile == "auto" and cuda)
    fwd: nn.Module = torch.compile(model) if use_compile else model
    if d.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        fwd = DDP(fwd, device_ids=[d.device.index] if cuda else None)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
    num_sources = len(data.source_names)
    if d.is_main:
        print(
            f"model {cfg.model}: {model.num_params() / 1e6:.1f}M params, vocab {mcfg.vocab_size}, seq {mcfg.seq_len}; "
            f"data {cfg.data}, global batch {cfg.batch_size}, world {d.world_size}, device {d.device}, "
            f"compile {use_compile}, steps {start}->{cfg.steps}",
            flush=True,
        )

    feeder = DeviceFeeder(data.batches if data.loader is None else iter(data.loader), d, bool(cfg.hash_log))
    hash_f = open(cfg.hash_log, "a") if (cfg.hash_log and d.is_main) else None  # noqa: SIM115
    metrics_f = open(cfg.metrics_log, "a") if (cfg.metrics_log and d.is_main) else None  # noqa: SIM115
    pending: list[StepRecord] = []
    records: list[dict[str, Any]] = []
    t_timed = wall0 = time.perf_counter()
    timed_from = start
    step = start
    prev_end: Any = None
    try:
        nxt = feeder.fetch()
        for step in range(start + 1, cfg.steps + 1):
            if step == start + cfg.warmup_steps + 1:  # throughput excludes compile and warm-up steps
                if cuda:
                    torch.cuda.synchronize()
                t_timed, timed_from = time.perf_counter(), step - 1
            t0 = time.perf_counter()
            cur = nxt
            x, y, s = feeder.ready(cur)
            ev_start = feeder.event()  # the GPU reaches this once the batch is there: the step can begin
            for g in opt.param_groups:
                g["lr"] = cfg.lr * min(1.0, step / 10)  # short linear warm-up
            with autocast:
                loss, src_sum, src_cnt = fwd(x, y, s, num_sources)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            ev_end = feeder.event()
            ckpt_due = bool(cfg.ckpt_dir and cfg.ckpt_every and step % cfg.ckpt_every == 0)
            loader_state = data.loader.state_dict() if ckpt_due and data.loader is not None else None
            # Prefetch the next batch (and start its copy) while the GPU runs this step.
            nxt = feeder.fetch() if step < cfg.steps else None
            pending.append(
                StepRecord(
                    step,
                    loss.detach(),
                    src_sum.detach(),
                    src_cnt.detach(),
                    cur.wait_s,
                    time.perf_counter() - t0,
                    prev_end,
                    ev_start,
                )
            )
            prev_end = ev_end
            if hash_f is not None:
                hash_f.write(json.dumps({"step": step, "samples": cur.hashes}) + "\n")
            if step % cfg.log_every == 0 or step == cfg.steps or step == cfg.crash_at_step or ckpt_due:
                records += _flush(pending, data.source_names, d, metrics_f, hash_f)
            if ckpt_due:
                save_checkpoint(Path(cfg.ckpt_dir), step, model, opt, d, cfg, loader_state)  # type: ignore[arg-type]
            if step == cfg.crash_at_step:
                for f in (hash_f, metrics_f):
                    if f is not None:
                        f.flush()
                        os.fsync(f.fileno())
                os._exit(17)  # abrupt, like a killed job: no cleanup, no final checkpoint
        if cuda:
            torch.cuda.synchronize()
        records += _flush(pending, data.source_names, d, metrics_f, hash_f)
    finally:
        for f in (hash_f, metrics_f):
            if f is not None:
                f.close()
    t_end = time.perf_counter()
    timed_steps = step - timed_from
    if timed_steps <= 0 or timed_from == start:  # too few steps to leave out the warm-up: time everything
        t_timed, timed_steps, timed_from = wall0, step - start, start
    elapsed = t_end - t_timed
    timed = [r for r in records if r["step"] > timed_from]
    tokens = timed_steps * cfg.batch_size * data.seq_len
    gaps = [r["gpu_data_gap_s"] for r in timed if r["gpu_data_gap_s"] is not None]
    summary = {
        "model": cfg.model,
        "params": model.num_params(),
        "data": str(cfg.data),
        "world_size": d.world_size,
        "global_batch": cfg.batch_size,
        "seq_len": data.seq_len,
        "num_workers": cfg.num_workers,
        "steps": step - start,
        "timed_steps": timed_steps,
        "tokens_per_s": tokens / elapsed if elapsed > 0 else 0.0,
        # host time spent obtaining batches (overlaps GPU work: an upper bound of the stall)
        "data_wait_frac": sum(r["data_wait_s"] for r in timed) / elapsed if elapsed > 0 else 0.0,
        # GPU idle between the end of one step and the start of the next (CUDA events): the real stall
        "gpu_data_gap_frac": sum(gaps) / elapsed if gaps and elapsed > 0 else None,
        "final_loss": records[-1]["loss"] if records else None,
        "losses": [r["loss"] for r in records],
    }
    if d.is_main:
        print(json.dumps({k: v for k, v in summary.items() if k != "losses"}), flush=True)
    return summary


@dataclass(slots=True)
class Fetched:
    batch: dict[str, torch.Tensor]  # on the device (copies possibly still in flight on the copy stream)
    hashes: list[int] | None
    wait_s: float  # host time spent getting the batch from the loader and issuing its copies


class DeviceFeeder:
    """Gets batch i+1 from the loader and starts its host-to-device copy on a side stream while step i runs.

    `ready()` makes the compute stream wait for that copy (no host sync). On CPU it is a plain pass-through.
    """

    def __init__(self, batches: Any, d: DistInfo, want_hashes: bool) -> None:
        self.batches, self.d, self.want_hashes = batches, d, want_hashes
        self.cuda = d.device.type == "cuda"
        self.stream = torch.cuda.Stream(d.device) if self.cuda else None

    def fetch(self) -> Fetched:
        t0 = time.perf_counter()
        batch = next(self.batches)
        # a collective under DDP: every rank takes part, in the same order
        hashes = gather_hashes(sample_hashes(batch["input_ids"]), self.d) if self.want_hashes else None
        keys = ("input_ids", "labels", "source_ids")
        if self.stream is not None:
            with torch.cuda.stream(self.stream):
                on_dev = {k: batch[k].to(self.d.device, non_blocking=True) for k in keys}
        else:
            on_dev = {k: batch[k] for k in keys}
        return Fetched(on_dev, hashes, time.perf_counter() - t0)

    def ready(self, f: Fetched) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.stream is not None:
            current = torch.cuda.current_stream(self.d.device)
            current.wait_stream(self.stream)
            for t in f.batch.values():
                t.record_stream(current)  # the caching allocator must not reuse it before compute is done
        return f.batch["input_ids"], f.batch["labels"], f.batch["source_ids"]

    def event(self) -> Any:
        if not self.cuda:
            return None
        ev = torch.cuda.Event(enable_timing=True)
        ev.record()
        return ev


@dataclass(slots=True)
class StepRecord:
    step: int
    loss: torch.Tensor
    src_sum: torch.Tensor
    src_cnt: torch.Tensor
    wait_s: float
    step_s: float
    prev_end: Any  # CUDA event at the end of the previous step (None on CPU / first step)
    start: Any  # CUDA event where this step's compute could begin


def _flush(
    pending: list[StepRecord], names: list[str], d: DistInfo, metrics_f: Any, hash_f: Any
) -> list[dict[str, Any]]:
    """One device sync for all pending steps: losses become floats, events become times, and they are logged."""
    out: list[dict[str, Any]] = []
    if not pending:
        return out
    stacked = torch.stack([torch.cat([p.loss.view(1), p.src_sum, p.src_cnt]) for p in pending]).float().cpu()
    n = len(names)
    for p, row in zip(pending, stacked.tolist(), strict=True):
        src = {names[i]: (row[1 + i] / row[1 + n + i] if row[1 + n + i] else None) for i in range(n)}
        gap = p.prev_end.elapsed_time(p.start) / 1e3 if p.prev_end is not None else None
        rec = {
            "step": p.step,
            "loss": row[0],
            "source_loss": src,
            "data_wait_s": p.wait_s,
            "gpu_data_gap_s": gap,
            "step_s": p.step_s,
        }
        out.append(rec)
        if metrics_f is not None:
            metrics_f.write(json.dumps(rec) + "\n")
        if d.is_main and p.step % 10 == 0:
            gap_txt = f" gpu gap {gap * 1e3:.2f} ms" if gap is not None else ""
            print(
                f"step {p.step}: loss {row[0]:.4f} wait {p.wait_s * 1e3:.2f} ms{gap_txt} step {p.step_s * 1e3:.1f} ms",
                flush=True,
            )
    pending.clear()
    for f in (metrics_f, hash_f):
        if f is not None:
            f.flush()
    return out


# ----------------------------------------------------------------------------------------------------------------
# CLI


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mix", help="mixture TOML (sources, weights, seq_len, seed)")
    p.add_argument("--data", type=DataMode, default=DataMode.LOADER, choices=list(DataMode))
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
    p.add_argument("--crash-at-step", type=int, default=0, help="exit abruptly after this step (tests)")
    p.add_argument("--hash-log", help="append per-step sample hashes of the global batch (JSONL)")
    p.add_argument("--metrics-log", help="append per-step loss, per-source loss, data wait (JSONL)")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--warmup-steps", type=int, default=5)
    p.add_argument("--synthetic-batches", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=256, help="only without --mix")
    p.add_argument("--vocab-size", type=int, default=8192, help="only without --mix")
    p.add_argument("--summary-json", help="write the run summary here (rank 0)")
    a = p.parse_args(argv)
    summary_json = a.__dict__.pop("summary_json")
    cfg = TrainConfig(**{k: v for k, v in vars(a).items()})
    cfg.extra["summary_json"] = summary_json
    return cfg


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    summary = train(cfg)
    out = cfg.extra.get("summary_json")
    if out and int(os.environ.get("RANK", "0")) == 0:
        Path(out).write_text(json.dumps({**summary, "config": asdict(cfg)}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
