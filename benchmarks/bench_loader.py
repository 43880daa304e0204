"""Loader benchmark (issue 5, "Speed"): ours vs a raw memmap bound, LitData and MosaicML Streaming, in one run.

Setup (once). LitData and MosaicML Streaming import torchvision, which needs torch 2.14.1; installing them beside the
project's torch 2.13 would replace it, so every contender runs from one separate venv:

    python3.11 -m venv /work/venv-streaming
    /work/venv-streaming/bin/pip install torch==2.14.1 torchvision==0.29.1 mosaicml-streaming
    /work/venv-streaming/bin/pip install litdata xxhash zstandard click tqdm regex pyarrow psutil
    # shardstore itself, from the working tree, without building the tokenizer's native extension:
    echo "$PWD" > /work/venv-streaming/lib/python3.11/site-packages/shardstore_dev.pth

Run (from the repository root; ~10 minutes on 2 shared cores; data cached under --workdir between runs):

    /work/venv-streaming/bin/python benchmarks/bench_loader.py
    python3.11 benchmarks/bench_loader.py --only raw,raw-ndarray,store-read,ours,ours-views   # main env, no peers

What it measures (B=32, seq_len=2048, a 2-source 70/30 mixture of synthetic documents, page cache warm):
- batches/s of every contender in process (num_workers=0, torch intra-op threads 1), in interleaved rounds of
  --seconds each; every (round, contender) runs in a fresh child of this interpreter so no peer's leftovers
  (threads, shared memory, heap) land on the next one's clock. Median over rounds, by wall clock and per CPU-second
  of the process (all its threads): on a shared, loaded machine the CPU figure is the steadier one. Epoch restarts
  of finite peers are taken off both clocks (generous to them). Every contender yields the same batch: int64
  input_ids/labels [32, 2048] cut from windows of 2049 tokens (see _peers_loader.py for each peer's setup).
- contenders: raw (np.memmap slices + plain DataLoader, whole batch per __getitems__: the issue's bound),
  raw-ndarray (same through a plain ndarray view of the mapping: stricter), raw-per-sample (nanoGPT style),
  store-read (our Store.read_into under a plain DataLoader: ours minus mixture and sampler), ours
  (make_dataloader defaults: contiguous int64 tensors), ours-views (contiguous=False: views, like raw's output),
  litdata (CombinedStreamingDataset of the two sources), litdata-1src (one StreamingDataset), mosaic (two Streams).
- ours with first-touch verification on (Store default verify="touch"), paid again in every round's fresh process;
  the first pass of a fresh loader (store open + verification included) is printed separately.
- `load_state_dict` of the loader's own state at step 10**6 (median of --state-repeats, each on a fresh loader),
  and the memory of ours' worker processes (num_workers=2) over a store and over a 4x larger one after the same
  number of batches (the two probes are in _loader_probes.py).
Targets (issue 5): ours >= 0.9x raw, >= 2x LitData, >= 20x MosaicML Streaming; load_state_dict < 50 ms; worker RSS
independent of dataset size. Figures go to benchmarks/RESULTS.md, "## Loader".
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("LITDATA_DISABLE_VERSION_CHECK", "1")  # no PyPI request from inside a timed process

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _peers_loader as peers
from _loader_probes import time_load_state_dict, worker_rss

B, SEQ_LEN = 32, 2048
VOCAB, EOS = 50257, 50256
WEIGHTS = {"web": 0.7, "code": 0.3}
CONTENDERS = (
    "raw",
    "raw-ndarray",
    "raw-per-sample",
    "store-read",
    "ours",
    "ours-views",
    "litdata",
    "litdata-1src",
    "mosaic",
)
Batch = dict[str, torch.Tensor]
_LANE_TAG = "LANE-RESULT "
_READ_PATH = (
    "loader/batches",
    "store/format",
    "mix/interleave",
    "store/manifest",
    "loader/mixture",
    "mix/sampling",
    "store/store",
    "loader/torch",
)


# ---------------------------------------------------------------------------------------------------------- data


def synth_source(root: Path, name: str, num_tokens: int, *, seed: int) -> peers.SourceTokens:
    return peers.synth_source(root, name, num_tokens, weight=WEIGHTS[name], seed=seed, eos=EOS)


def write_store(src: peers.SourceTokens, directory: Path, *, max_shard_bytes: int) -> Path:
    """Our store of the same documents (shards of `max_shard_bytes`, so windows cross shard boundaries)."""
    from shardstore.errors import ShardStoreError
    from shardstore.store.manifest import Manifest, TokenizerInfo, write_manifest
    from shardstore.store.store import Store
    from shardstore.store.writer import ShardWriter

    if (directory / "manifest.json").exists():
        try:
            Store.open(directory, verify="off").close()
            return directory
        except ShardStoreError as exc:  # written by an older format version: write it again
            print(f"rewriting {directory}: {exc}", flush=True)
        shutil.rmtree(directory)
    tokens, offsets = src.tokens(), src.doc_offsets
    with ShardWriter(
        directory, dtype=np.uint16, name_prefix=f"{src.name}-", max_shard_bytes=max_shard_bytes
    ) as w:
        for a, b in itertools.pairwise(offsets):
            w.add_document(tokens[a:b])
    tok = TokenizerInfo(
        fingerprint="bench-synthetic-50257", vocab_size=VOCAB, special_ids={"<|endoftext|>": EOS}, eos_id=EOS
    )
    write_manifest(directory, Manifest(dtype="uint16", shards=tuple(w.shards), tokenizer=tok))
    return directory


def mixture_config(stores: dict[str, Path], *, seed: int) -> dict:
    return {
        "seq_len": SEQ_LEN,
        "seed": seed,
        "sources": [{"name": n, "store": str(p), "weight": WEIGHTS[n]} for n, p in stores.items()],
    }


def ours_loader(
    stores: dict[str, Path], *, seed: int, num_workers: int = 0, contiguous: bool = True
) -> torch.utils.data.DataLoader:
    """`make_dataloader` over the 2-source mixture; contiguous=False: input_ids/labels are views, like raw's."""
    from shardstore.loader.mixture import Mixture
    from shardstore.torch import make_dataloader

    mixture = Mixture.from_dict(mixture_config(stores, seed=seed))
    if contiguous:  # the default; passed only when asked so this runs against loaders without the option
        return make_dataloader(mixture, batch_size=B, num_workers=num_workers)
    return make_dataloader(mixture, batch_size=B, num_workers=num_workers, contiguous=False)


class StoreWindows(torch.utils.data.Dataset):
    """Diagnostic: our Store's `read_into` under a plain DataLoader, same windows as raw (no mixture, no sampler)."""

    def __init__(self, store_dir: Path) -> None:
        from shardstore.store.store import Store

        self.store = Store.open(store_dir)
        self.num_windows = (self.store.num_tokens - 1) // SEQ_LEN

    def __len__(self) -> int:
        return self.num_windows

    def __getitems__(self, indices: list[int]) -> torch.Tensor:
        out = np.empty((len(indices), SEQ_LEN + 1), dtype=np.int64)
        for row, i in enumerate(indices):
            self.store.read_into(i * SEQ_LEN, out[row])
        return torch.from_numpy(out)


# -------------------------------------------------------------------------------------------------------- racing


@dataclass(frozen=True, slots=True)
class Data:
    sources: list[peers.SourceTokens]
    stores: dict[str, Path]
    flat: Path
    litdata: dict[str, Path]
    mosaic: dict[str, Path]


def prepare(args: argparse.Namespace, names: list[str]) -> Data:
    """Every contender's copy of the same tokens under --workdir; each step is skipped when already complete."""
    root, total = args.workdir, int(args.tokens)
    root.mkdir(parents=True, exist_ok=True)
    sources = [synth_source(root, n, round(total * w), seed=args.seed) for n, w in WEIGHTS.items()]
    stores = {
        s.name: write_store(
            s, root / f"store-{s.name}-{s.num_tokens}", max_shard_bytes=args.max_shard_mb << 20
        )
        for s in sources
    }
    flat = peers.write_flat(sources, root / f"flat-{total}.tokens")
    lit = peers.prepare_litdata(sources, root) if {"litdata", "litdata-1src"} & set(names) else {}
    mds = peers.prepare_mosaic(sources, root, seq_len=SEQ_LEN) if "mosaic" in names else {}
    return Data(sources, stores, flat, lit, mds)


def makers(data: Data, *, seed: int) -> dict[str, Callable[[], Iterable[Batch]]]:
    u2 = np.dtype("<u2")
    return {
        "raw": lambda: peers.raw_loader(data.flat, dtype=u2, seq_len=SEQ_LEN, batch_size=B, seed=seed),
        "raw-ndarray": lambda: peers.raw_loader(
            data.flat, dtype=u2, seq_len=SEQ_LEN, batch_size=B, seed=seed, plain_view=True
        ),
        "raw-per-sample": lambda: peers.raw_loader(
            data.flat, dtype=u2, seq_len=SEQ_LEN, batch_size=B, seed=seed, batched=False
        ),
        "store-read": lambda: torch.utils.data.DataLoader(
            StoreWindows(data.stores["web"]),
            batch_size=B,
            shuffle=True,
            drop_last=True,
            generator=torch.Generator().manual_seed(seed),
            collate_fn=peers.windows_to_batch,
        ),
        "ours": lambda: ours_loader(data.stores, seed=seed),
        "ours-views": lambda: ours_loader(data.stores, seed=seed, contiguous=False),
        "litdata": lambda: peers.litdata_loader(
            data.litdata, WEIGHTS, seq_len=SEQ_LEN, batch_size=B, seed=seed
        ),
        "litdata-1src": lambda: peers.litdata_loader(
            {"web": data.litdata["web"]}, WEIGHTS, seq_len=SEQ_LEN, batch_size=B, seed=seed
        ),
        "mosaic": lambda: peers.mosaic_loader(data.mosaic, WEIGHTS, batch_size=B, seed=seed),
    }


class Lane:
    """One contender's loader, re-iterated when a finite peer runs out of epoch."""

    def __init__(self, name: str, make: Callable[[], Iterable[Batch]]) -> None:
        self.name = name
        self.loader = make()
        self.it: Iterator[Batch] = iter(self.loader)
        self.restarts = 0

    def next_batch(self) -> tuple[Batch, float]:
        """The next batch, and the seconds spent restarting an exhausted epoch (to take off the clock)."""
        try:
            return next(self.it), 0.0
        except StopIteration:
            self.restarts += 1
        t = time.perf_counter()
        self.it = iter(self.loader)
        return next(self.it), time.perf_counter() - t


def check_batch(name: str, batch: Batch) -> None:
    for key in ("input_ids", "labels"):
        t = batch[key]
        if t.dtype != torch.int64 or tuple(t.shape) != (B, SEQ_LEN):
            raise SystemExit(
                f"{name}: batch[{key!r}] is {t.dtype} {tuple(t.shape)}, want int64 {(B, SEQ_LEN)}"
            )
    if not torch.equal(batch["input_ids"][:, 1:], batch["labels"][:, :-1]):
        raise SystemExit(f"{name}: labels are not input_ids shifted by one")
    if int(batch["input_ids"].max()) > EOS:
        raise SystemExit(f"{name}: token id above the vocabulary")


def run_lane(args: argparse.Namespace) -> dict:
    """Child process: build one contender, check and warm it, then count batches for --seconds."""
    torch.set_num_threads(1)
    data = prepare(args, [args.lane])
    t = time.perf_counter()
    lane = Lane(args.lane, makers(data, seed=args.seed)[args.lane])
    for i in range(args.warmup):
        batch, _ = lane.next_batch()
        if i == 0:
            check_batch(lane.name, batch)
    setup = time.perf_counter() - t
    gc.collect()
    n, off = 0, 0.0
    t0, c0 = time.perf_counter(), time.process_time()
    while True:
        _, restart = lane.next_batch()
        off += restart
        n += 1
        if time.perf_counter() - t0 - off >= args.seconds:
            break
    wall = time.perf_counter() - t0 - off
    cpu = time.process_time() - c0 - off  # restarts are mostly CPU; take them off both clocks
    return {
        "lane": lane.name,
        "batches": n,
        "wall_s": wall,
        "cpu_s": cpu,
        "restarts": lane.restarts,
        "setup_and_warmup_s": setup,
    }


def race(args: argparse.Namespace, names: list[str]) -> dict[str, list[dict]]:
    """Interleaved rounds; every (round, contender) in a fresh child of this interpreter.

    A fresh process per measurement keeps one peer's leftovers (polling threads, shared memory, heap state) off the
    next one's clock, and means ours pays its first-touch verification again in every round.
    """
    common = [
        f"--{k.replace('_', '-')}={v}"
        for k, v in vars(args).items()
        if k in ("workdir", "tokens", "seconds", "warmup", "seed", "max_shard_mb")
    ]
    out: dict[str, list[dict]] = {n: [] for n in names}
    for r in range(args.rounds):
        for name in names:
            proc = subprocess.run(
                [sys.executable, __file__, "--lane", name, *common], capture_output=True, text=True
            )
            line = next((x for x in proc.stdout.splitlines() if x.startswith(_LANE_TAG)), None)
            if proc.returncode != 0 or line is None:
                raise SystemExit(f"{name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
            res = json.loads(line[len(_LANE_TAG) :])
            out[name].append(res)
            print(
                f"  round {r + 1}/{args.rounds} {name:>15}: {res['batches'] / res['wall_s']:9.1f} batches/s "
                f"({res['batches'] / res['cpu_s']:9.1f} per CPU-s)",
                flush=True,
            )
    return out


def first_pass(make: Callable[[], Iterable[Batch]], batches: int) -> float:
    """Batches/s of a fresh loader over its first `batches`: construction, store open, first-touch verification."""
    t = time.perf_counter()
    it = iter(make())
    for _ in range(batches):
        next(it)
    return batches / (time.perf_counter() - t)


# ---------------------------------------------------------------------------------------------------------- main


def _revision() -> str:
    """The commit the benchmarked code is at, `+dirty` when a module of the read path has uncommitted edits."""
    import shardstore

    stamp = Path(shardstore.__file__).resolve().parent.parent / "REVISION"
    if stamp.is_file():  # a frozen copy (`git archive`) put first on PYTHONPATH, stamped with its commit
        return stamp.read_text().strip() + " (snapshot)"
    repo = Path(__file__).resolve().parent.parent
    git = ["git", "-C", str(repo)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", *(f"shardstore/{m}.py" for m in _READ_PATH)],
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=Path("/tmp/shardstore-bench-loader"))
    p.add_argument("--tokens", type=float, default=48e6, help="total tokens of the mixture's two sources")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=2.0, help="clock time per contender per round")
    p.add_argument("--warmup", type=int, default=20, help="batches per contender before any round")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--only", default=",".join(CONTENDERS), help=f"subset of {','.join(CONTENDERS)}")
    p.add_argument("--max-shard-mb", type=int, default=16)
    p.add_argument("--state-step", type=int, default=10**6)
    p.add_argument("--state-repeats", type=int, default=20)
    p.add_argument("--rss-batches", type=int, default=200)
    p.add_argument("--skip-state", action="store_true")
    p.add_argument("--skip-rss", action="store_true")
    p.add_argument("--json", type=Path, help="also write every figure here")
    p.add_argument(
        "--lane", help=argparse.SUPPRESS
    )  # internal: measure one contender in this (child) process
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.lane:
        print(_LANE_TAG + json.dumps(run_lane(args)), flush=True)
        return
    only = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = sorted(set(only) - set(CONTENDERS))
    if unknown:
        raise SystemExit(f"--only: unknown contender(s) {unknown}; choose from {','.join(CONTENDERS)}")
    names = [c for c in CONTENDERS if c in only]
    torch.set_num_threads(1)  # every contender single-threaded in-process; 2 shared cores
    total = int(args.tokens)
    t = time.perf_counter()
    try:
        data = prepare(args, names)
    except ImportError as exc:
        raise SystemExit(
            f"{exc}: LitData and MosaicML Streaming live in their own venv (torch 2.14.1 + torchvision); build it as"
            " this script's docstring says, or race without them: --only raw,raw-ndarray,store-read,ours,ours-views"
        ) from None
    print(
        f"data ready in {time.perf_counter() - t:.1f}s under {args.workdir}: {total / 1e6:.1f}M tokens, "
        f"mix {WEIGHTS}, B={B} seq_len={SEQ_LEN}",
        flush=True,
    )
    versions = {"torch": torch.__version__, "numpy": np.__version__, "python": sys.version.split()[0]}
    for mod in ("litdata", "streaming"):
        with contextlib.suppress(ImportError):
            versions[mod] = __import__(mod).__version__
    versions["shardstore"] = _revision()
    print("versions:", versions, flush=True)
    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "versions": versions}

    runs = race(args, names)
    results["runs"] = runs
    wall = {n: [r["batches"] / r["wall_s"] for r in rs] for n, rs in runs.items()}
    cpu = {n: [r["batches"] / r["cpu_s"] for r in rs] for n, rs in runs.items()}
    med = {n: statistics.median(v) for n, v in wall.items()}
    med_cpu = {n: statistics.median(v) for n, v in cpu.items()}
    print(f"\n{'contender':>15} {'median b/s':>11} {'min':>9} {'max':>9} {'b/CPU-s':>9} {'Mtok/s':>8}")
    for n in names:
        print(
            f"{n:>15} {med[n]:11.1f} {min(wall[n]):9.1f} {max(wall[n]):9.1f} {med_cpu[n]:9.1f} "
            f"{med[n] * B * SEQ_LEN / 1e6:8.1f}"
        )
    if "ours" in med:
        targets = {"raw": 0.9, "raw-ndarray": 0.9, "litdata": 2.0, "litdata-1src": 2.0, "mosaic": 20.0}
        ratios = {
            n: {"wall": med["ours"] / med[n], "cpu": med_cpu["ours"] / med_cpu[n]} for n in med if n != "ours"
        }
        print(f"\n{'ratio':>24} {'wall':>7} {'CPU':>7}  target")
        for n, r in ratios.items():
            goal = ""
            if n in targets:
                goal = f">= {targets[n]}x: {'met' if min(r.values()) >= targets[n] else 'NOT met'}"
            print(f"{'ours / ' + n:>24} {r['wall']:6.2f}x {r['cpu']:6.2f}x  {goal}")
        results["ratios"] = ratios
        results["ours_first_pass_batches_per_s"] = first_pass(makers(data, seed=args.seed)["ours"], 100)
        print(
            f"ours, fresh loader in this process, first 100 batches (store open + first-touch verification "
            f"included): {results['ours_first_pass_batches_per_s']:.1f} batches/s",
            flush=True,
        )

    if "ours" in only and not args.skip_state:
        st = time_load_state_dict(
            lambda: ours_loader(data.stores, seed=args.seed),
            check_batch,
            step=args.state_step,
            repeats=args.state_repeats,
        )
        results["load_state_dict"] = st
        print(
            f"\nload_state_dict at step {st['step']}: median {st['load_ms_median']:.2f} ms, "
            f"max {st['load_ms_max']:.2f} ms (target < 50 ms); first batch after it {st['first_batch_ms']:.1f} ms; "
            f"state JSON {st['state_json_bytes']} bytes"
        )
    if "ours" in only and not args.skip_rss:
        small = [
            synth_source(args.workdir, n, round(total * w / 4), seed=args.seed) for n, w in WEIGHTS.items()
        ]
        small_stores = {
            s.name: write_store(
                s, args.workdir / f"store-{s.name}-{s.num_tokens}", max_shard_bytes=args.max_shard_mb << 20
            )
            for s in small
        }
        rss_small = worker_rss(
            lambda **kw: ours_loader(small_stores, seed=args.seed, **kw), batches=args.rss_batches
        )
        rss_large = worker_rss(
            lambda **kw: ours_loader(data.stores, seed=args.seed, **kw), batches=args.rss_batches
        )
        results["worker_rss_kib"] = {"small": rss_small, "large_4x": rss_large}
        print(
            f"\nworker memory (KiB, mean per worker, num_workers=2, after {args.rss_batches} batches each):"
        )
        for key in rss_small:
            print(
                f"  {key:>8}: store of {total / 4e6:.0f}M tokens {rss_small[key]:>9}   "
                f"4x store ({total / 1e6:.0f}M tokens) {rss_large[key]:>9}"
            )
    if _revision() != versions["shardstore"]:
        print(
            f"WARNING: the read path changed during the run ({versions['shardstore']} -> {_revision()}): rerun"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
