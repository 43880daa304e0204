"""Cost of train_gpt.py's per-source loss accounting per step, against the plain mean loss of nanoGPT.

Two training steps (forward, backward, fused AdamW on GPU) of the same `gpt_model.GPT` on the same random batch:

- ``mean``: ``F.cross_entropy(logits, labels)``, the one number nanoGPT computes;
- ``per_source``: `GPT.forward`, which reduces the token losses per sample and then per source with two
  ``scatter_add`` (the per-source sums and token counts `train_gpt.py` prints), compiled with the rest on GPU.

Rounds alternate the two variants; the figures are the median step time of each, their ratio, and the median and
range of the per-round ratios. The host side of the
accounting (`train_log.LogWindow.add` per step, `take` per console line) is timed separately, for a few
numbers of sources.

    python benchmarks/bench_source_loss.py --device cpu --model tiny --batch-size 8 --seq-len 256
    python benchmarks/bench_source_loss.py --device cuda --model 124m --batch-size 32 --seq-len 1024 --compile
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import torch
import torch.nn.functional as F
from gpt_model import GPT, PRESETS, model_config  # beside this file, like train_gpt.py's
from train_log import LogWindow


def mean_loss(model: GPT, idx: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """GPT.forward up to the logits, then nanoGPT's single mean cross-entropy."""
    b, t = idx.shape
    x = model.wte(idx) + model.wpe(torch.arange(t, device=idx.device))
    for block in model.blocks:
        x = block(x)
    logits = F.linear(model.ln_f(x), model.wte.weight)
    return F.cross_entropy(logits.float().view(b * t, -1), labels.view(b * t), ignore_index=-100)


def step_times(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    torch.manual_seed(0)
    model = GPT(model_config(args.model, data_vocab=args.vocab, seq_len=args.seq_len)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=cuda)
    vocab = model.cfg.vocab_size
    ids = torch.randint(0, vocab, (args.batch_size, args.seq_len + 1), device=device)
    x, y = ids[:, :-1].contiguous(), ids[:, 1:].contiguous()
    sources = torch.randint(0, args.sources, (args.batch_size,), device=device)
    fwd_ps: Any = torch.compile(model) if args.compile else model
    fwd_mean: Any = torch.compile(mean_loss) if args.compile else mean_loss
    variants = {
        "mean": lambda: fwd_mean(model, x, y),
        "per_source": lambda: fwd_ps(x, y, sources, args.sources)[0],
    }
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False)

    def run(name: str, steps: int) -> float:
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            with autocast:
                loss = variants[name]()
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) / steps

    for name in variants:  # compile and warm up both
        run(name, args.warmup)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(args.rounds):
        for name in variants if r % 2 == 0 else reversed(list(variants)):
            times[name].append(run(name, args.steps))
    med = {name: statistics.median(t) for name, t in times.items()}
    ratios = [a / b - 1 for a, b in zip(times["per_source"], times["mean"], strict=True)]
    return {
        "device": torch.cuda.get_device_name(device) if cuda else "cpu",
        "model": args.model,
        "params": model.num_params(),
        "batch": [args.batch_size, args.seq_len],
        "sources": args.sources,
        "compile": args.compile,
        "mean_ms": med["mean"] * 1e3,
        "per_source_ms": med["per_source"] * 1e3,
        "overhead": med["per_source"] / med["mean"] - 1,
        # each round's ratio (the two variants measured back to back), median and spread: drift in a shared
        # machine's speed cancels within a round
        "round_overhead": statistics.median(ratios),
        "round_overhead_range": [min(ratios), max(ratios)],
    }


def host_times(sources: int, steps: int = 20_000) -> dict[str, float]:
    """Microseconds per step of the console-line accounting (floats already on the host)."""
    w = LogWindow()
    names = [f"s{i}" for i in range(sources)]
    sums, counts = [1.5] * sources, [256.0] * sources
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        w.add(step, sums, counts, 1e-4, None, 1e-2)
        if step % 10 == 0:
            w.take(names)
    return {"sources": sources, "us_per_step": (time.perf_counter() - t0) / steps * 1e6}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--model", default="tiny", choices=sorted(PRESETS))
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--vocab", type=int, default=8192)
    p.add_argument("--sources", type=int, default=4)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10, help="steps per round")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    out = {"step": step_times(args), "host": [host_times(s) for s in (2, 8, 32)]}
    if args.json:
        print(json.dumps(out))
        return 0
    s = out["step"]
    print(
        f"{s['device']} {s['model']} ({s['params'] / 1e6:.1f}M) batch {s['batch'][0]}x{s['batch'][1]}, "
        f"{s['sources']} sources, compile {s['compile']}: mean loss {s['mean_ms']:.2f} ms/step, "
        f"per-source {s['per_source_ms']:.2f} ms/step ({s['overhead']:+.1%}; per round median "
        f"{s['round_overhead']:+.1%}, range {s['round_overhead_range'][0]:+.1%} to {s['round_overhead_range'][1]:+.1%})"
    )
    for h in out["host"]:
        print(f"host accounting, {h['sources']} sources: {h['us_per_step']:.2f} us/step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
