"""Store read speed and open time, against a raw np.memmap of one flat file, in the same run.

1. Random reads of `--window`-token windows (2049 = seq_len + 1) into an int64 buffer, at the same random starts:
   - peer: `out[:] = np.memmap(flat_file)[s : s + window]` (no checksums, one file)
   - stricter peer "ndarray": the same through a plain ndarray view of that memmap (no np.memmap subclass overhead)
   - ours: `Store.read_into(s, out)` with verify="touch" (first-touch xxh3 block verification), across shards;
     verify="off" is shown too. The first pass includes hashing every block it touches; later passes are steady state.
   Prints ours/peer throughput ratios (target >= 0.9).
2. `Store.open` of a store with 10,000 shard files (hard links of small shards, so creating it is cheap); target < 1 s.

    python benchmarks/bench_store.py --tokens 150_000_000 --reads 200_000
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np

from shardstore.store.manifest import Manifest, ShardInfo, write_manifest
from shardstore.store.store import Store
from shardstore.store.writer import ShardWriter


def build(root: str, num_tokens: int, shard_mb: int, seed: int) -> str:
    """A store of random documents in `root/store` plus the same tokens as one flat file; returns the flat path."""
    rng = np.random.default_rng(seed)
    flat_path = os.path.join(root, "flat.u16")
    written = 0
    with (
        open(flat_path, "wb") as flat,
        ShardWriter(
            os.path.join(root, "store"), dtype="uint16", name_prefix="b-", max_shard_bytes=shard_mb << 20
        ) as w,
    ):
        while written < num_tokens:
            chunk = rng.integers(0, 50_000, size=min(1 << 22, num_tokens - written), dtype=np.uint16)
            cuts = np.sort(rng.integers(0, chunk.size, size=chunk.size // 1500))
            for doc in np.split(chunk, cuts):
                w.add_document(doc)
            flat.write(chunk.tobytes())
            written += chunk.size
    write_manifest(os.path.join(root, "store"), Manifest(dtype="uint16", shards=w.close()))
    return flat_path


def bench_reads(store: Store | None, flat: np.ndarray, starts: np.ndarray, window: int) -> float:
    out = np.empty(window, dtype=np.int64)
    t = time.perf_counter()
    if store is None:
        for s in starts.tolist():
            out[:] = flat[s : s + window]
    else:
        read_into = store.read_into
        for s in starts.tolist():
            read_into(s, out)
    return len(starts) * window / (time.perf_counter() - t)


def bench_open(root: str, num_shards: int) -> tuple[float, float]:
    """Seconds to open a store of `num_shards` shard files, and to then read one token from its last shard."""
    src = os.path.join(root, "tiny")
    with ShardWriter(src, dtype="uint16", name_prefix="t-", max_shard_bytes=8192) as w:
        for i in range(16):
            w.add_document(np.arange(i, i + 1000) % 50_000)
    tiny = w.close()
    big = os.path.join(root, "many")
    os.makedirs(big)
    shards = []
    for i in range(num_shards):
        t = tiny[i % len(tiny)]
        name = f"s-{i:06d}.shard"
        os.link(os.path.join(src, t.name), os.path.join(big, name))
        shards.append(
            ShardInfo(
                name=name, num_tokens=t.num_tokens, num_docs=t.num_docs, size=t.size, checksum=t.checksum
            )
        )
    write_manifest(big, Manifest(dtype="uint16", shards=shards, provenance={"bench": "open"}))
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        store = Store.open(big)
        best = min(best, time.perf_counter() - t0)
    t0 = time.perf_counter()
    store.tokens(store.num_tokens - 1, store.num_tokens)
    return best, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=150_000_000)
    ap.add_argument("--shard-mb", type=int, default=32)
    ap.add_argument("--reads", type=int, default=200_000)
    ap.add_argument("--window", type=int, default=2049)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--open-shards", type=int, default=10_000)
    ap.add_argument("--dir", default=None, help="scratch directory (default: a temp dir, removed afterwards)")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="bench_store_", dir=args.dir)
    try:
        t0 = time.perf_counter()
        flat_path = build(root, args.tokens, args.shard_mb, seed=0)
        print(f"built {args.tokens:,} tokens in {time.perf_counter() - t0:.1f}s")
        flat = np.memmap(flat_path, dtype=np.uint16, mode="r")
        touch = Store.open(os.path.join(root, "store"), verify="touch")
        off = Store.open(os.path.join(root, "store"), verify="off")
        print(f"store: {touch.num_shards} shards of <= {args.shard_mb} MiB, {touch.num_tokens:,} tokens")
        starts = np.random.default_rng(1).integers(0, args.tokens - args.window, size=args.reads)
        rows: dict[str, list[float]] = {"memmap": [], "ndarray": [], "touch": [], "off": []}
        for _ in range(args.passes):  # interleaved, so machine noise hits all alike
            rows["memmap"].append(bench_reads(None, flat, starts, args.window))
            rows["ndarray"].append(bench_reads(None, flat.view(np.ndarray), starts, args.window))
            rows["touch"].append(bench_reads(touch, flat, starts, args.window))
            rows["off"].append(bench_reads(off, flat, starts, args.window))
        peer = max(rows["memmap"])
        for name, vals in rows.items():
            print(
                f"{name:>7}: first pass {vals[0] / 1e6:8.1f} Mtok/s, best {max(vals) / 1e6:8.1f} Mtok/s, "
                f"ratio to memmap best {max(vals) / peer:.3f}, first-pass ratio {vals[0] / rows['memmap'][0]:.3f}"
            )
        open_s, first_read_s = bench_open(root, args.open_shards)
        print(
            f"open {args.open_shards:,} shards: {open_s * 1000:.1f} ms (target < 1000 ms); "
            f"first read after open {first_read_s * 1000:.2f} ms"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
