"""Scale simulation of the sampler side of a large run (issue 19): cost vs size, old (main) vs new, in one run.

    python benchmarks/bench_scale.py                 # ~2-4 minutes on 2 shared cores
    python benchmarks/bench_scale.py --quick         # smaller sizes, ~1 minute
    python benchmarks/bench_scale.py --old-root /work/main --timeout 20

Every figure is measured in a fresh child interpreter: "new" imports shardstore from this checkout, "old" from
``--old-root`` (main's code, PYTHONPATH), each with a time-out; a time-out prints as ">T s". Figures are medians of
repeats inside the child after one warm-up call, wall clock with the process CPU time beside it (the steadier figure
on a loaded machine). Tables print size -> cost and the growth class fitted over the
sizes (log-log slope: O(1) below 0.2, O(n) near 1).

1. global batch: ``Interleave.assign`` of one global batch vs batch size (1k..40k) and source count (1..1,000),
   under a linear ramp, with token-count-like constant weights, and with token-count weights inside a ramp;
   the same batch at step 1e12 (cost must not depend on the position).
2. random access: ``counts_at`` (what ``peek`` and ``load_state_dict`` need) vs position 1e3..1e12 inside a ramp;
   and ``load_state_dict`` / ``peek`` of a real loader over small synthetic stores at steps 1e3..1e12.
3. the periodic table: integer weights 1-100 over 1,000 sources (main: 385 MiB, 7.8 s), peak RSS and time.
4. plan: ``plan_run`` of 100B tokens at seq_len 2048 with weights 0.333333 / 0.666667 (main: 88.7 s).
5. one node: 8 rank processes x 4 DataLoader workers (fork) reading a 20-source mixture of small synthetic stores
   under ``RLIMIT_NOFILE`` = 256: batches, wall time, and the most fds any rank or worker held.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]


# ---- children: one measurement each, importing whichever shardstore PYTHONPATH names ---------------------------


def _schedule(kind: str, k: int) -> Any:
    from shardstore.mix.interleave import Phase, WeightSchedule, normalize_weights

    def nw(ws: list) -> Any:
        return normalize_weights(ws, what="bench")

    small = [1 + (i * 7) % 20 for i in range(k)]
    other = [1 + (i * 11) % 13 for i in range(k)]
    tokens = [10**11 + i * 123_456_789 for i in range(k)]
    tokens2 = [10**10 + i * 987_654_321 for i in range(k)]
    if kind == "ramp":
        return WeightSchedule([Phase(0, nw(small)), Phase(1000, nw(other), 10**13)])
    if kind == "tokens":
        return WeightSchedule([Phase(0, nw(tokens))])
    if kind == "tokens-ramp":
        return WeightSchedule([Phase(0, nw(tokens)), Phase(1000, nw(tokens2), 10**13)])
    if kind == "decimals":
        return WeightSchedule([Phase(0, nw([0.333333, 0.666667]))])
    if kind == "int100":
        return WeightSchedule([Phase(0, nw([1 + (i * 37) % 100 for i in range(k)]))])
    raise SystemExit(f"unknown schedule kind {kind}")


def _median_ms(fn: Any, repeat: int, clock: Any = time.perf_counter) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = clock()
        fn()
        times.append(clock() - t)
    return statistics.median(times) * 1e3


def _both(fn: Any, repeat: int) -> dict[str, float]:
    """Wall and process-CPU medians: on a loaded shared machine the CPU figure is the steadier one."""
    return {"ms": _median_ms(fn, repeat), "cpu_ms": _median_ms(fn, repeat, time.process_time)}


def child(spec: dict[str, Any]) -> dict[str, Any]:
    from shardstore.mix.interleave import Interleave

    case = spec["case"]
    if case == "batch":
        il = Interleave(_schedule(spec["kind"], spec["k"]))
        pos = spec["position"]
        counts = il.counts_at(pos) if pos else (0,) * spec["k"]
        return _both(lambda: il.assign(pos, counts, spec["length"]), spec["repeat"])
    if case == "counts":
        il = Interleave(_schedule(spec["kind"], spec["k"]))
        return _both(lambda: il.counts_at(spec["position"]), spec["repeat"])
    if case == "table":
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        il = Interleave(_schedule("int100", spec["k"]))
        counts = il.counts_at(10**12)
        il.assign(10**12, counts, 1024)
        took = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"ms": took * 1e3, "rss_mib": (peak - base) / 1024}
    if case == "plan":
        from shardstore.mix.plan import plan_run

        il = Interleave(_schedule("decimals", 2))
        t = time.perf_counter()
        plan = plan_run(il, ["a", "b"], [10**9, 10**9], seq_len=2048, total_tokens=100 * 10**9)
        return {"ms": (time.perf_counter() - t) * 1e3, "drawn": [s.samples_drawn for s in plan.sources]}
    raise SystemExit(f"unknown case {case}")


def run_child(spec: dict[str, Any], root: Path, timeout: float) -> dict[str, Any] | None:
    env = {**os.environ, "PYTHONPATH": str(root)}
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(spec)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- report helpers ----------------------------------------------------------------------------------------------


def fmt(result: dict[str, Any] | None, timeout: float, key: str = "ms") -> str:
    if result is None:
        return f">{timeout:g} s"
    if "error" in result:
        return "error: " + result["error"][:40]
    v = result[key]
    text = f"{v / 1e3:.2f} s" if key == "ms" and v >= 1e4 else f"{v:.2f}"
    if key == "ms" and "cpu_ms" in result:
        text += f" (CPU {result['cpu_ms']:.2f})"
    return text


def growth(sizes: list[float], costs: list[float | None]) -> str:
    pts = [(math.log(s), math.log(c)) for s, c in zip(sizes, costs, strict=True) if c and c > 0]
    if len(pts) < 2:
        return "n/a"
    n = len(pts)
    mx, my = sum(p[0] for p in pts) / n, sum(p[1] for p in pts) / n
    var = sum((p[0] - mx) ** 2 for p in pts)
    slope = sum((p[0] - mx) * (p[1] - my) for p in pts) / var if var else 0.0
    if slope < 0.2:
        return f"O(1) (slope {slope:.2f})"
    if 0.8 <= slope <= 1.2:
        return f"O(n) (slope {slope:.2f})"
    return f"O(n^{slope:.2f})"


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


def ms(result: dict[str, Any] | None) -> float | None:
    return None if result is None or "error" in result else float(result["ms"])


# ---- 1-4: pure sampler figures, old vs new --------------------------------------------------------------------


def sampler_tables(args: argparse.Namespace) -> None:
    new, old, to = HERE, Path(args.old_root), args.timeout
    rep = 3 if args.quick else 5
    lengths = [1000, 4000, 16384, 40000]
    rows, old_costs, new_costs = [], [], []
    for length in lengths:
        spec = {"case": "batch", "kind": "ramp", "k": 20, "position": 0, "length": length, "repeat": rep}
        o = run_child(spec, old, to) if length <= (16384 if args.quick else 40000) else None
        n = run_child(spec, new, to)
        old_costs.append(ms(o))
        new_costs.append(ms(n))
        rows.append([f"{length:,}", fmt(o, to), fmt(n, to), _ratio(o, n)])
    rows.append(["growth", growth(lengths, old_costs), growth(lengths, new_costs), ""])
    table(
        "global batch vs batch size (20 sources, inside a linear ramp), ms",
        ["samples", "old", "new", "old/new"],
        rows,
    )

    rows = []
    for kind in ("ramp", "tokens", "tokens-ramp"):
        for pos in (2000, 10**12):
            spec = {"case": "batch", "kind": kind, "k": 20, "position": pos, "length": 40000, "repeat": rep}
            o = run_child(spec, old, to) if pos == 2000 else None
            n = run_child(spec, new, to)
            rows.append([kind, f"{pos:.0e}", fmt(o, to) if pos == 2000 else "(replay from 0)", fmt(n, to)])
    table(
        "global batch of 40,000 samples, 20 sources, by weights and position, ms",
        ["weights", "position", "old", "new"],
        rows,
    )

    sources = [1, 20, 100] if args.quick else [1, 20, 100, 1000]
    rows, new_costs = [], []
    for k in sources:
        spec = {"case": "batch", "kind": "ramp", "k": k, "position": 0, "length": 16384, "repeat": rep}
        o = run_child(spec, old, to) if k <= 100 else None
        n = run_child(spec, new, to)
        new_costs.append(ms(n))
        rows.append([str(k), fmt(o, to) if k <= 100 else "(not run)", fmt(n, to)])
    rows.append(["growth", "", growth(sources, new_costs)])
    table("global batch of 16,384 vs number of sources (ramp), ms", ["sources", "old", "new"], rows)

    positions = [10**3, 10**5, 10**6, 10**9, 10**12]
    rows, new_costs = [], []
    for p in positions:
        spec = {"case": "counts", "kind": "ramp", "k": 20, "position": p, "repeat": rep}
        o = run_child(spec, old, to) if p <= 10**6 else None
        n = run_child(spec, new, to)
        new_costs.append(ms(n))
        rows.append([f"{p:.0e}", fmt(o, to) if p <= 10**6 else "(not run)", fmt(n, to)])
    rows.append(["growth", "", growth(positions, new_costs)])
    table(
        "counts_at(position) inside a ramp, 20 sources (what peek / load_state_dict need), ms",
        ["position", "old", "new"],
        rows,
    )

    spec = {"case": "table", "k": 1000}
    o, n = run_child(spec, old, max(to, 60)), run_child(spec, new, to)
    table(
        "periodic table: integer weights 1-100 over 1,000 sources (build + counts_at(1e12) + a batch)",
        ["", "old", "new"],
        [
            ["time, ms", fmt(o, max(to, 60)), fmt(n, to)],
            ["peak RSS added, MiB", fmt(o, 60, "rss_mib"), fmt(n, to, "rss_mib")],
        ],
    )

    spec = {"case": "plan"}
    o, n = run_child(spec, old, to), run_child(spec, new, to)
    table(
        "plan of 100B tokens, weights 0.333333 / 0.666667, ms",
        ["", "old", "new"],
        [["plan_run", fmt(o, to), fmt(n, to)]],
    )


def _ratio(o: dict[str, Any] | None, n: dict[str, Any] | None) -> str:
    a, b = ms(o), ms(n)
    return f"{a / b:.0f}x" if a and b else ""


# ---- loader-level figures (new only): load_state_dict / peek vs step; one node of ranks x workers --------------


def _stores(root: Path, k: int, seq: int) -> Path:
    import numpy as np

    from shardstore.store.manifest import Manifest, TokenizerInfo, write_manifest
    from shardstore.store.writer import ShardWriter

    lines = [f"seq_len = {seq}", "seed = 1", "global_batch_size = 64"]
    for i in range(k):
        path = root / f"s{i}"
        writer = ShardWriter(str(path), dtype="uint16", name_prefix="s-", max_shard_bytes=1 << 16)
        toks = (np.arange(i * 1000, i * 1000 + 200 * seq + 1) % 60000).astype(np.uint16)
        for j in range(0, toks.size, 97):
            writer.add_document(toks[j : j + 97])
        tok = TokenizerInfo(
            fingerprint="a" * 64, vocab_size=60000, special_ids={"<|endoftext|>": 1}, eos_id=1
        )
        write_manifest(str(path), Manifest(dtype="uint16", shards=tuple(writer.close()), tokenizer=tok))
        lines += ["[[sources]]", f'name = "s{i}"', f'store = "s{i}"', f"weight = {1 + (i * 7) % 20}"]
    lines += [
        "[[schedule]]",
        "start_step = 10",
        "ramp = 'linear'",
        "ramp_steps = 100_000_000_000_000",
        "weights = { " + ", ".join(f"s{i} = {1 + (i * 11) % 13}" for i in range(k)) + " }",
    ]
    (root / "mix.toml").write_text("\n".join(lines) + "\n")
    return root / "mix.toml"


def loader_tables(args: argparse.Namespace) -> None:
    from shardstore.loader.mixture import Mixture
    from shardstore.loader.peek import peek_rows
    from shardstore.torch import make_dataloader

    with tempfile.TemporaryDirectory() as tmp:
        mix_path = _stores(Path(tmp), 20, 16)
        mix = Mixture.from_file(mix_path)
        loader = make_dataloader(mix, batch_size=8, rank=3, world_size=8)
        steps = [10**3, 10**6, 10**9, 10**12]
        rows, load_costs, peek_costs = [], [], []
        for step in steps:
            position = step * 64
            state = loader.mix_sampler.make_state(position, list(mix.interleave.counts_at(position)))
            load = _median_ms(lambda state=state: loader.load_state_dict(state), 5)
            peek = _median_ms(lambda step=step: peek_rows(mix, step=step, rank=3, world_size=8), 3)
            load_costs.append(load)
            peek_costs.append(peek)
            rows.append([f"{step:.0e}", f"{load:.2f}", f"{peek:.2f}"])
        rows.append(["growth", growth(steps, load_costs), growth(steps, peek_costs)])
        table(
            "load_state_dict (checks counts exactly) and peek of rank 3 of 8, 20 sources inside a ramp, ms "
            "(main: peek 11 s at step 1e5, time-out at 1e6)",
            ["step", "load_state_dict", "peek"],
            rows,
        )
        node(mix_path, args)


def _fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _rank(mix_path: Path, rank: int, ranks: int, workers: int, batches: int, nofile: int, out: Any) -> None:
    import warnings

    warnings.filterwarnings("ignore", message="This DataLoader will create")  # 4 workers on 2 cores: intended
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    from shardstore.torch import make_dataloader

    t = time.perf_counter()
    most = 0
    try:
        loader = make_dataloader(
            mix_path,
            batch_size=8,
            rank=rank,
            world_size=ranks,
            num_workers=workers,
            persistent_workers=True,
            multiprocessing_context="fork",
        )
        done = 0
        for i, _ in enumerate(loader):
            done += 1
            if i % 5 == 0:
                most = max([most, _fds(os.getpid())] + [_fds(c) for c in _children(os.getpid())])
            if done == batches:
                break
        out.put((rank, done, time.perf_counter() - t, most, ""))
    except Exception as exc:  # reported as a figure: this is the benchmark's point
        out.put((rank, 0, time.perf_counter() - t, most, f"{type(exc).__name__}: {exc}"[:80]))


def node(mix_path: Path, args: argparse.Namespace) -> None:
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    out = ctx.Queue()
    ranks, workers = args.ranks, args.workers
    t = time.perf_counter()
    procs = [
        ctx.Process(target=_rank, args=(mix_path, r, ranks, workers, args.batches, args.nofile, out))
        for r in range(ranks)
    ]
    for p in procs:
        p.start()
    results = sorted(out.get(timeout=600) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    wall = time.perf_counter() - t
    ok = sum(1 for r in results if not r[4])
    table(
        f"one node: {ranks} ranks x {workers} workers (fork), 20 sources, RLIMIT_NOFILE={args.nofile}",
        ["", "value"],
        [
            ["ranks that read all batches", f"{ok} / {ranks}"],
            ["batches per rank", str(args.batches)],
            ["wall time, s (all ranks, incl. worker start)", f"{wall:.1f}"],
            ["most fds held by one process (rank or worker)", str(max(r[3] for r in results))],
            ["errors", "; ".join(sorted({r[4] for r in results if r[4]})) or "none"],
        ],
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--old-root", default="/work/main", help="checkout of the code to compare against")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per measurement child")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--ranks", type=int, default=8)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--nofile", type=int, default=256)
    ap.add_argument("--only", choices=["sampler", "loader"], default=None)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    print(f"# bench_scale: new = {HERE}, old = {args.old_root}, load average {os.getloadavg()[0]:.1f}")
    if args.only in (None, "sampler"):
        sampler_tables(args)
    if args.only in (None, "loader"):
        loader_tables(args)


if __name__ == "__main__":
    main()
