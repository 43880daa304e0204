"""The loader alone, on the CPUs: tokens/s one process can deliver, and with N processes at once (one per GPU).

Each process is one "rank" of a world of N, iterating `make_dataloader(mixture, batch_size=B, rank=r,
world_size=N, num_workers=W)` for a fixed time and counting the tokens of the batches it receives (input_ids
only; labels are the same window shifted). No model, no GPU: this is the ceiling the loader puts on training.

The peer in the same run is nanoGPT's `get_batch`: random windows from one flat `np.memmap` of the same tokens,
stacked with `torch.stack` (no mixture, no shuffle bijection, no verification, no resume): the cheapest loader a
training script commonly has. Ratios are printed against it.

Usage:
    python benchmarks/bench_loader_cpu.py --mix mix.toml --batch-size 32 --procs 1 8 --num-workers 0 1 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import sys
import time
from pathlib import Path
from typing import Any


def _loader_proc(
    mix: str, batch_size: int, rank: int, world: int, workers: int, seconds: float, q: Any
) -> None:
    import torch  # import cost stays out of the timed region

    from shardstore.loader.mixture import Mixture
    from shardstore.torch import make_dataloader

    torch.set_num_threads(1)
    loader = make_dataloader(
        Mixture.from_file(mix), batch_size=batch_size, rank=rank, world_size=world, num_workers=workers
    )
    it = iter(loader)
    next(it)  # worker start-up is not throughput
    tokens, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        batch = next(it)
        tokens += batch["input_ids"].numel()
    del it, loader  # shut the workers down before reporting, not at interpreter exit
    q.put((rank, tokens, elapsed))


def _memmap_proc(
    path: str, dtype: str, batch_size: int, seq_len: int, rank: int, seconds: float, q: Any
) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    data = np.memmap(path, dtype=dtype, mode="r")
    rng = np.random.default_rng(rank)
    tokens, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        ix = rng.integers(0, len(data) - seq_len - 1, size=batch_size)
        x = torch.stack([torch.from_numpy(data[i : i + seq_len].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(data[i + 1 : i + 1 + seq_len].astype(np.int64)) for i in ix])
        tokens += x.numel() if y.shape == x.shape else 0  # y is built as a real loader must
    q.put((rank, tokens, elapsed))


def _run(target: Any, args_of_rank: Any, procs: int) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    ps = [ctx.Process(target=target, args=(*args_of_rank(r), q)) for r in range(procs)]
    for p in ps:
        p.start()
    results = []
    while len(results) < procs:  # a process that dies before reporting must not leave us waiting forever
        try:
            results.append(q.get(timeout=1.0))
        except queue.Empty:
            dead = [p.exitcode for p in ps if p.exitcode not in (None, 0)]
            if dead:
                for p in ps:
                    p.terminate()
                raise SystemExit(f"a benchmark process exited with code {dead[0]} before reporting") from None
    for p in ps:
        p.join()
        if p.exitcode:
            raise SystemExit(f"a benchmark process exited with code {p.exitcode}")
    per = [tok / el for _, tok, el in results]
    return {"procs": procs, "per_process_tokens_per_s": min(per), "total_tokens_per_s": sum(per)}


def _flat_tokens(mix: str, out: Path) -> tuple[str, str, int]:
    """Write the first source's tokens to one flat file for the memmap peer; return (path, dtype, seq_len)."""
    from shardstore.loader.mixture import Mixture

    mixture = Mixture.from_file(mix)
    store = mixture.open_sources()[0].stores[0]
    n = min(store.num_tokens, 200_000_000)
    path = out / f"flat_{store.fingerprint[:16]}.bin"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for a in range(0, n, 1 << 24):
                f.write(store.tokens(a, min(n, a + (1 << 24))).tobytes())
        os.replace(tmp, path)
    return str(path), str(store.dtype), int(mixture.config.seq_len)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mix", required=True)
    p.add_argument("--batch-size", type=int, default=16, help="per process")
    p.add_argument("--procs", type=int, nargs="+", default=[1, 8])
    p.add_argument(
        "--num-workers", type=int, nargs="+", default=[0, 2], help="DataLoader workers per process"
    )
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--work-dir", default="bench-data")
    p.add_argument("--json", help="write the results here")
    a = p.parse_args(argv)
    work = Path(a.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    flat, dtype, seq_len = _flat_tokens(a.mix, work)
    rows = []
    for n in a.procs:
        peer = _run(_memmap_proc, lambda r: (flat, dtype, a.batch_size, seq_len, r, a.seconds), n)
        for w in a.num_workers:
            ours = _run(_loader_proc, lambda r, n=n, w=w: (a.mix, a.batch_size, r, n, w, a.seconds), n)
            rows.append({"procs": n, "num_workers": w, "shardstore": ours, "memmap_get_batch": peer})
            print(
                f"{n} proc(s) x {w} workers: shardstore {ours['per_process_tokens_per_s'] / 1e6:.2f} M tok/s "
                f"per process ({ours['total_tokens_per_s'] / 1e6:.2f} M total); memmap get_batch "
                f"{peer['per_process_tokens_per_s'] / 1e6:.2f} M per process; ratio "
                f"{ours['total_tokens_per_s'] / peer['total_tokens_per_s']:.2f}x",
                flush=True,
            )
    if a.json:
        Path(a.json).write_text(
            json.dumps({"cpus": os.cpu_count(), "seq_len": seq_len, "rows": rows}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
