"""The measuring and testing parts of benchmarks/train_gpt.py, kept out of the example.

`train_gpt.py` is the loop a user copies; everything here exists for the figures in benchmarks/RESULTS.md and for
the tests (tests/loader/test_train_gpt.py, tests/loader/test_ddp.py):

- `Feeder`: takes batch i+1 from the loader and starts its host-to-device copy on a side stream while step i runs
  (on CPU a pass-through), and measures the data wait two ways per step: the host time spent in ``next(loader)``
  plus issuing the copies (it overlaps GPU work when the host runs ahead, so an upper bound of the stall), and on
  GPU the idle time between the end of one step and the point where the next step's compute can start, from CUDA
  events (the real stall).
- Console lines (`train_log.py`): the steps since the previous line summed, printed as means (per-token loss
  overall and per source, data wait, step time); ``--json`` prints them as JSON objects.
  ``--plot``: `Feeder.plot` draws every step's per-source loss with `shardstore.cli.plots.plot_loss`, and the
  held-out passes (`Feeder.heldout_done`; `Feeder.paused` leaves their time out of the throughput) at their steps.
- Logs: ``--metrics-log`` appends the loss, per-source losses and both data waits of every step (JSONL);
  ``--hash-log`` a 64-bit hash of every sample of the global batch (gathered over ranks, in rank order).
- ``--crash-at-step N`` ends the process abruptly (``os._exit``) after step N, like a killed job.
- The run summary (tokens/s after ``--warmup-steps``, data-wait shares, losses) that `train()` returns.
- ``--data gpu-synthetic``: batches that already live on the GPU (taken from the same loader when there is a
  mixture, random tokens otherwise), replayed: the upper bound the loader is measured against.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import torch
import torch.distributed as dist
from train_log import LogWindow, format_heldout_line, format_log_line  # beside this file

__all__ = ["DataMode", "Feeder", "add_harness_args", "check_options", "synthetic_batches"]

KEYS = ("input_ids", "labels", "source_ids")


class DataMode(StrEnum):
    LOADER = "loader"
    GPU_SYNTHETIC = "gpu-synthetic"


def add_harness_args(p: argparse.ArgumentParser) -> None:
    """The benchmark and test options of train_gpt.py (fields of its `TrainConfig` of the same names)."""
    g = p.add_argument_group("benchmark and test hooks (train_harness.py)")
    g.add_argument("--data", type=DataMode, default=DataMode.LOADER, choices=list(DataMode))
    g.add_argument(
        "--synthetic-batches", type=int, default=8, help="batches replayed by --data gpu-synthetic"
    )
    g.add_argument("--seq-len", type=int, default=256, help="gpu-synthetic without --mix")
    g.add_argument("--vocab-size", type=int, default=8192, help="gpu-synthetic without --mix")
    g.add_argument("--warmup-steps", type=int, default=5, help="steps left out of the throughput")
    g.add_argument("--crash-at-step", type=int, default=0, help="exit abruptly after this step (tests)")
    g.add_argument("--hash-log", help="append per-step sample hashes of the global batch (JSONL)")
    g.add_argument("--metrics-log", help="append per-step loss, per-source loss, data wait (JSONL)")
    g.add_argument("--summary-json", help="write the run summary here (rank 0)")


def check_options(cfg: Any) -> None:
    """Refuse flag combinations that cannot run, before any work (SystemExit with one line)."""
    if cfg.data is DataMode.LOADER and not cfg.mix:
        raise SystemExit("--mix MIX.toml is needed (or --data gpu-synthetic)")
    if cfg.resume and not cfg.ckpt_dir:
        raise SystemExit("--resume needs --ckpt-dir")
    if cfg.log_every < 1:
        raise SystemExit(f"--log-every must be >= 1, got {cfg.log_every}")
    if cfg.eval_every < 0:
        raise SystemExit(f"--eval-every must be >= 0 (0: no held-out loss), got {cfg.eval_every}")
    if cfg.eval_every and cfg.data is not DataMode.LOADER:
        raise SystemExit("--eval-every needs --data loader (the held-out split of --mix)")
    if cfg.plot:  # now, not after the run: a PNG name, and matplotlib installed
        from shardstore.cli.plots import check_plot_target
        from shardstore.errors import ShardStoreError

        try:
            check_plot_target(cfg.plot)
        except ShardStoreError as exc:
            raise SystemExit(f"train_gpt.py: {exc}") from None


# ----------------------------------------------------------------------------------------------------------------
# gpu-synthetic data


def synthetic_batches(
    cfg: Any, local_batch: int, rank: int, loader: Any, device: torch.device
) -> Iterator[Any]:
    """`cfg.synthetic_batches` batches on `device`, cycled: the loader's first ones, or random tokens without one."""
    if loader is None:
        g = torch.Generator().manual_seed(cfg.seed + rank)
        batches = []
        for _ in range(cfg.synthetic_batches):
            ids = torch.randint(0, cfg.vocab_size, (local_batch, cfg.seq_len + 1), generator=g)
            source_ids = torch.zeros(local_batch, dtype=torch.int64)
            batches.append({"input_ids": ids[:, :-1], "labels": ids[:, 1:], "source_ids": source_ids})
    else:
        it = iter(loader)
        batches = [next(it) for _ in range(cfg.synthetic_batches)]
    on_dev = [{k: b[k].contiguous().to(device) for k in KEYS} for b in batches]
    i = 0
    while True:
        yield on_dev[i % len(on_dev)]
        i += 1


# ----------------------------------------------------------------------------------------------------------------
# sample hashes


def sample_hashes(input_ids: torch.Tensor) -> list[int]:
    """A signed 64-bit hash of each sample (row), from its int64 token bytes; stable across runs and machines."""
    rows = input_ids.detach().to("cpu", torch.int64).contiguous().numpy()
    return [
        int.from_bytes(hashlib.blake2b(r.tobytes(), digest_size=8).digest(), "little", signed=True)
        for r in rows
    ]


def gather_hashes(local: list[int], world_size: int, device: torch.device) -> list[int]:
    if world_size == 1:
        return local
    t = torch.tensor(local, dtype=torch.int64, device=device)
    parts = [torch.empty_like(t) for _ in range(world_size)]
    dist.all_gather(parts, t)
    return [int(x) for p in parts for x in p.tolist()]


# ----------------------------------------------------------------------------------------------------------------
# the feeder: prefetch, copies, timing, logs, crash hook, summary


@dataclass(slots=True)
class _Fetched:
    batch: dict[str, torch.Tensor]  # on the device (copies possibly still in flight on the copy stream)
    hashes: list[int] | None
    wait_s: float  # host time spent getting the batch from the loader and issuing its copies


@dataclass(slots=True)
class _Step:
    step: int
    loss: torch.Tensor
    src_sum: torch.Tensor
    src_cnt: torch.Tensor
    wait_s: float
    step_s: float
    prev_end: Any  # CUDA event at the end of the previous step (None on CPU / first step)
    start: Any  # CUDA event where this step's compute could begin


class Feeder:
    """Batches for the loop, one step ahead, plus every measurement and log of train_gpt.py.

    The loop calls `next_batch(step)` at the start of a step and `step_done(...)` after the optimizer step (that is
    where the next batch is taken from the loader, after any ``loader.state_dict()`` of the step).
    """

    def __init__(
        self, batches: Iterator[Any], cfg: Any, d: Any, source_names: list[str], seq_len: int, start_step: int
    ) -> None:
        """`cfg` is train_gpt's `TrainConfig`, `d` its `Dist` (rank, world_size, device)."""
        self.batches, self.cfg = batches, cfg
        self.rank, self.world_size, self.device = d.rank, d.world_size, d.device
        self.names, self.seq_len, self.start = source_names, seq_len, start_step
        self.cuda = self.device.type == "cuda"
        self.stream = torch.cuda.Stream(self.device) if self.cuda else None
        main = self.rank == 0
        self.hash_f = open(cfg.hash_log, "a") if (cfg.hash_log and main) else None  # noqa: SIM115
        self.metrics_f = open(cfg.metrics_log, "a") if (cfg.metrics_log and main) else None  # noqa: SIM115
        self.pending: list[_Step] = []
        self.records: list[dict[str, Any]] = []
        self.window = LogWindow()
        self.heldout: list[dict[str, Any]] = []  # one record per held-out pass
        self.pauses: list[tuple[float, float]] = []  # (start, seconds) of held-out passes between steps
        self.t_timed = self.wall0 = time.perf_counter()
        self.timed_from = self.step = start_step
        self.prev_end: Any = None
        self.nxt: _Fetched | None = self._fetch()

    # -- the two calls of the loop ---------------------------------------------------------------------------------

    def next_batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(input_ids, labels, source_ids) of `step`, on the device; the compute stream waits for their copy."""
        if step == self.start + self.cfg.warmup_steps + 1:  # throughput excludes compile and warm-up steps
            if self.cuda:
                torch.cuda.synchronize()
            self.t_timed, self.timed_from = time.perf_counter(), step - 1
        self.t0 = time.perf_counter()
        if self.nxt is None:
            raise RuntimeError(f"next_batch({step}) after the last step ({self.cfg.steps})")
        self.cur, self.nxt = self.nxt, None
        if self.stream is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_stream(self.stream)
            for t in self.cur.batch.values():
                t.record_stream(current)  # the caching allocator must not reuse it before compute is done
        self.ev_start = self._event()  # the GPU reaches this once the batch is there: the step can begin
        b = self.cur.batch
        return b["input_ids"], b["labels"], b["source_ids"]

    def step_done(
        self,
        step: int,
        loss: torch.Tensor,
        src_sum: torch.Tensor,
        src_cnt: torch.Tensor,
        *,
        flush: bool = False,
    ) -> None:
        """Record the step (no device sync), then take the next batch and start its copy while the GPU runs."""
        ev_end = self._event()
        if step < self.cfg.steps:
            self.nxt = self._fetch()
        cur = self.cur
        self.pending.append(
            _Step(
                step,
                loss.detach(),
                src_sum.detach(),
                src_cnt.detach(),
                cur.wait_s,
                time.perf_counter() - self.t0,
                self.prev_end,
                self.ev_start,
            )
        )
        self.prev_end, self.step = ev_end, step
        if self.hash_f is not None:
            self.hash_f.write(json.dumps({"step": step, "samples": cur.hashes}) + "\n")
        cfg = self.cfg
        if flush or step % cfg.log_every == 0 or step == cfg.steps or step == cfg.crash_at_step:
            self._flush()

    def maybe_crash(self, step: int) -> None:
        """``--crash-at-step``: logs made durable, then an abrupt exit, like a killed job (no final checkpoint)."""
        if step != self.cfg.crash_at_step:
            return
        for f in (self.hash_f, self.metrics_f):
            if f is not None:
                f.flush()
                os.fsync(f.fileno())
        os._exit(17)

    def summary(self, model: Any) -> dict[str, Any]:
        """Flush, close the logs and return the run summary (printed on rank 0)."""
        try:
            if self.cuda:
                torch.cuda.synchronize()
            self._flush()
        finally:
            self.close()
        cfg, step, start = self.cfg, self.step, self.start
        t_timed, timed_from = self.t_timed, self.timed_from
        timed_steps = step - timed_from
        if timed_steps <= 0 or timed_from == start:  # too few steps to leave out the warm-up: time everything
            t_timed, timed_steps, timed_from = self.wall0, step - start, start
        elapsed = time.perf_counter() - t_timed - sum(dt for t0, dt in self.pauses if t0 >= t_timed)
        timed = [r for r in self.records if r["step"] > timed_from]
        tokens = timed_steps * cfg.batch_size * self.seq_len
        gaps = [r["gpu_data_gap_s"] for r in timed if r["gpu_data_gap_s"] is not None]
        out = {
            "model": cfg.model,
            "params": model.num_params(),
            "data": str(cfg.data),
            "world_size": self.world_size,
            "global_batch": cfg.batch_size,
            "seq_len": self.seq_len,
            "num_workers": cfg.num_workers,
            "steps": step - start,
            "timed_steps": timed_steps,
            "tokens_per_s": tokens / elapsed if elapsed > 0 else 0.0,
            # host time spent obtaining batches (overlaps GPU work: an upper bound of the stall)
            "data_wait_frac": sum(r["data_wait_s"] for r in timed) / elapsed if elapsed > 0 else 0.0,
            # GPU idle between the end of one step and the start of the next (CUDA events): the real stall
            "gpu_data_gap_frac": sum(gaps) / elapsed if gaps and elapsed > 0 else None,
            "final_loss": self.records[-1]["loss"] if self.records else None,
            "heldout": self.heldout[-1] if self.heldout else None,
            "heldout_s": sum(dt for _, dt in self.pauses),  # held-out passes, left out of tokens_per_s
            "losses": [r["loss"] for r in self.records],
        }
        if self.rank == 0:
            print(json.dumps({k: v for k, v in out.items() if k != "losses"}), flush=True)
        return out

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Work between two steps (a held-out pass): its time is left out of the throughput, and the GPU gap of
        the next step is measured from its end."""
        if self.cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if self.cuda:
                torch.cuda.synchronize()
            self.pauses.append((t0, time.perf_counter() - t0))
            self.prev_end = self._event()

    def heldout_done(self, step: int, sums: torch.Tensor, counts: torch.Tensor) -> None:
        """Log and print one held-out pass: loss per token of each source, and overall."""
        s, c = sums.float().cpu().tolist(), counts.float().cpu().tolist()
        rec = {
            "step": step,
            "heldout_loss": sum(s) / sum(c) if sum(c) else None,
            "heldout_source_loss": {
                n: (a / b if b else None) for n, a, b in zip(self.names, s, c, strict=True)
            },
            "heldout_tokens": {n: int(b) for n, b in zip(self.names, c, strict=True)},
        }
        self.heldout.append(rec)
        if self.metrics_f is not None:
            self.metrics_f.write(json.dumps(rec) + "\n")
        self.emit(rec, format_heldout_line(rec))

    def plot(self, path: str) -> None:
        """``--plot``: each source's training loss per step, on rank 0."""
        if self.rank != 0:
            return
        from shardstore.cli.plots import plot_loss

        steps = [r["step"] for r in self.records]
        nan = float("nan")
        series = {
            f"train/{name}": [
                nan if r["source_loss"][name] is None else r["source_loss"][name] for r in self.records
            ]
            for name in self.names
        }
        at = {r["step"]: r["heldout_source_loss"] for r in self.heldout}
        for name in self.names if at else ():
            series[f"heldout/{name}"] = [
                nan if (v := at.get(r["step"], {}).get(name)) is None else v for r in self.records
            ]
        title = f"{self.cfg.model}: loss per source, steps {self.start + 1}-{self.step}"
        plot_loss(steps, series, path, title=title)

    def __enter__(self) -> Feeder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for f in (self.hash_f, self.metrics_f):
            if f is not None:
                f.close()
        self.hash_f = self.metrics_f = None

    # -- internals -------------------------------------------------------------------------------------------------

    def _fetch(self) -> _Fetched:
        t0 = time.perf_counter()
        batch = next(self.batches)
        hashes = None
        if self.cfg.hash_log:  # a collective under DDP: every rank takes part, in the same order
            hashes = gather_hashes(sample_hashes(batch["input_ids"]), self.world_size, self.device)
        if self.stream is not None:
            with torch.cuda.stream(self.stream):
                on_dev = {k: batch[k].to(self.device, non_blocking=True) for k in KEYS}
        else:
            on_dev = {k: batch[k] for k in KEYS}
        return _Fetched(on_dev, hashes, time.perf_counter() - t0)

    def _event(self) -> Any:
        if not self.cuda:
            return None
        ev = torch.cuda.Event(enable_timing=True)
        ev.record()
        return ev

    def _flush(self) -> None:
        """One device sync for all pending steps: losses become floats, events become times, and they are logged."""
        pending = self.pending
        if not pending:
            return
        stacked = (
            torch.stack([torch.cat([p.loss.view(1), p.src_sum, p.src_cnt]) for p in pending]).float().cpu()
        )
        names, n = self.names, len(self.names)
        for p, row in zip(pending, stacked.tolist(), strict=True):
            sums, counts = row[1 : 1 + n], row[1 + n :]
            src = {names[i]: (sums[i] / counts[i] if counts[i] else None) for i in range(n)}
            gap = p.prev_end.elapsed_time(p.start) / 1e3 if p.prev_end is not None else None
            rec = {
                "step": p.step,
                "loss": row[0],
                "source_loss": src,
                "source_tokens": dict(zip(names, (int(c) for c in counts), strict=True)),
                "data_wait_s": p.wait_s,
                "gpu_data_gap_s": gap,
                "step_s": p.step_s,
            }
            self.records.append(rec)
            if self.metrics_f is not None:
                self.metrics_f.write(json.dumps(rec) + "\n")
            self.window.add(p.step, sums, counts, p.wait_s, gap, p.step_s)
            if p.step % self.cfg.log_every == 0 or p.step == self.cfg.steps:
                line = self.window.take(names)
                self.emit(line, format_log_line(line))
        pending.clear()
        for f in (self.metrics_f, self.hash_f):
            if f is not None:
                f.flush()

    def emit(self, record: dict[str, Any], text: str) -> None:
        """One console line on rank 0: `text`, or `record` as JSON with ``--json``."""
        if self.rank == 0:
            print(json.dumps(record) if self.cfg.print_json else text, flush=True)
