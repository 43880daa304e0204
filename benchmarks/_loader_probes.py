"""The resume and memory probes of benchmarks/bench_loader.py: `load_state_dict` at a far step, and the memory of
the loader's worker processes. `make_loader(**overrides)` builds the loader under test (our `make_dataloader`)."""

from __future__ import annotations

import gc
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

__all__ = ["time_load_state_dict", "worker_rss"]


def time_load_state_dict(
    make_loader: Callable[..., Any], check_batch: Callable[[str, Any], None], *, step: int, repeats: int
) -> dict:
    """Median ms of `load_state_dict` of the state at global step `step`, each time on a freshly built loader.

    The state is the loader's own: `MixtureSampler.make_state` at position ``step * global batch`` with the
    per-source counts the interleave gives there (`counts_at`, closed form for constant weights). It goes through
    JSON as a checkpoint would. Then the resumed loader must deliver a checked batch, and its own `state_dict()`
    must have advanced by exactly one step from the loaded one.
    """
    loader = make_loader()
    sampler = loader.mix_sampler
    position = step * sampler.global_batch_size
    t = time.perf_counter()
    counts = loader.dataset.mixture.interleave.counts_at(position)
    counts_ms = (time.perf_counter() - t) * 1000
    encoded = json.dumps(sampler.make_state(position, counts))
    times = []
    for _ in range(repeats):
        fresh = make_loader()
        state = json.loads(encoded)
        t = time.perf_counter()
        fresh.load_state_dict(state)
        times.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    batch = next(iter(fresh))
    first_ms = (time.perf_counter() - t) * 1000
    check_batch(f"ours resumed at step {step}", batch)
    after = fresh.state_dict()
    if after["position"] != position + sampler.global_batch_size:
        raise SystemExit(
            f"resumed loader is at position {after['position']}, want {position + sampler.global_batch_size}"
        )
    return {
        "step": step,
        "load_ms_median": statistics.median(times),
        "load_ms_max": max(times),
        "counts_at_ms": counts_ms,
        "first_batch_ms": first_ms,
        "state_json_bytes": len(encoded),
        "epochs_at_step": after["epochs"],
    }


def _proc_memory(pid: int) -> dict[str, int]:
    """Memory of a process in KiB: /proc status (VmRSS, RssAnon, RssFile, VmHWM) and smaps_rollup (Pss, Private).

    RssAnon of a forked worker includes the parent's heap pages it shares copy-on-write; `Private` (clean + dirty
    pages only this process maps) is what the worker itself costs. RssFile is page cache mapped from the shards:
    shared, reclaimable, and bounded by how many distinct windows were read.
    """
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = int(value.split()[0])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Pss", "Private_Clean", "Private_Dirty"):
                out[key] = int(value.split()[0])
    out["Private"] = out.pop("Private_Clean") + out.pop("Private_Dirty")
    return out


def worker_rss(make_loader: Callable[..., Any], *, batches: int, num_workers: int = 2) -> dict:
    """RSS of our loader's worker processes after `batches` batches (summed over workers, KiB)."""
    import psutil

    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    loader = make_loader(num_workers=num_workers)
    it = iter(loader)
    for _ in range(batches):
        next(it)
    workers = [p.pid for p in me.children(recursive=True) if p.pid not in before]
    if len(workers) != num_workers:
        raise SystemExit(f"expected {num_workers} worker processes, found {workers}")
    per = [_proc_memory(pid) for pid in workers]
    del it, loader
    gc.collect()
    return {key: sum(p[key] for p in per) // len(per) for key in per[0]}
