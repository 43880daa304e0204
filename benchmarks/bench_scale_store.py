"""Store scale figures, old tree vs new tree in one run: fds, open time and USS, batches/s vs shard count, verify.

    python benchmarks/bench_scale_store.py --old DIR [--workdir /tmp/shardstore-bench-scale] [--quick]

DIR is another checkout of the package (e.g. `git archive <rev> shardstore tokenizer | tar -x -C DIR`, with the
built extensions copied in). Every figure is measured in a fresh child process per tree (PYTHONPATH=tree), on
synthetic stores written here directly (one real shard from ShardWriter, copied under many names; the old tree
reads a v1 manifest over hard links of the same files, the new tree the v2 manifest and its manifest.idx):

- fds: 20 stores x 1,000 shards, 4,000 random rows round-robin; open fds after (the old tree runs with
  RLIMIT_NOFILE 8192 so it can finish; the new one under `ulimit -n 256`).
- open: `Store.open` of a 100,000-shard store: wall time and USS growth (psutil), median of 3 children.
Rates are per CPU second of the child (process_time: steadier than wall time on a shared machine).

- remote: `Store.open` of a 100,000-shard store through an fsspec URL (`local://`, so the object store is not
  what is measured) and the node-local cache: the first process of a node, then later ones (other ranks).
- rows/s: batches of 64 random 128-token rows (`read_rows`, verify="touch") per second at equal tokens
  (2e7) from 10 to 100,000 shards per store; steady state: one read from every shard, 30 warm-up batches, then
  200 timed batches (medians of --row-rounds interleaved children). Also the first touch: CPU per shard of that
  one read from every shard (mapping, or loading and verifying the in-memory runs of a tiny-shard store).
- loader: make_dataloader batches/s, 2 sources x 100 shards, B=32, seq_len 2048, after 20 warm-up batches and a
  gc.collect() (a full collection of the startup objects otherwise lands inside or outside the window by chance);
  loader-shards: one source of 10 vs 100,000 shards at equal tokens, with document boundaries (doc_info=both).
- verify-raw: `verify` MB/s of the 100,000 tiny shards and of 4 x 32 MiB shards beside `cat` of the same files
  (wall, page cache) and a Python open+read of each file (the floor of a Python reader).
- verify-tiny: `verify` of the 100,000 tiny shards, old and new tree, beside `cat` of the same files in the same
  rounds (page cache warm): MB/s wall and per CPU-s (cat's CPU from the children's rusage), and the USS the Store
  keeps after verify (its verification state). touch-state: USS after one read from each of those shards with the
  in-memory runs disabled (every shard mapped once; 16,384 mappings live at most), then after `close()` (what is
  left is verification state), then a second pass (remaps); touch-trace adds the bytes still allocated after
  close by tracemalloc (a separate, slower child). pieces-tiny: the masked-row path (PiecePlan plan + read + mark)
  over the 100,000 tiny shards, batches/s per CPU-s.
- verify: `Store.verify()` of 10,000 tiny shards (us per shard) and of 4 shards of 32 MiB (MB/s), CPU time, files
  in page cache (the disk is not what is measured: the CPU cost per byte and per file is).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
NEW = HERE.parent

_CHILD = r"""
import json, os, random, resource, sys, time
spec = json.loads(sys.argv[1])
if spec.get("nofile"):
    resource.setrlimit(resource.RLIMIT_NOFILE, (spec["nofile"], spec["nofile"]))
import numpy as np
from shardstore.store.store import Store
import shardstore
assert shardstore.__file__.startswith(spec["tree"]), shardstore.__file__
kind = spec["kind"]
out = {}
if kind == "open":
    import psutil
    proc = psutil.Process()
    u0 = proc.memory_full_info().uss
    t = time.perf_counter()
    s = Store.open(spec["path"])
    out["open_s"] = time.perf_counter() - t
    out["uss_mb"] = (proc.memory_full_info().uss - u0) / 2**20
    out["shards"] = s.num_shards
elif kind == "ropen":  # a remote (fsspec) store through the node-local cache
    import psutil
    proc = psutil.Process()
    u0 = proc.memory_full_info().uss
    t = time.process_time()
    s = Store.open(spec["url"], cache_dir=spec["cache"])
    out["open_s"] = time.process_time() - t
    out["uss_mb"] = (proc.memory_full_info().uss - u0) / 2**20
elif kind == "rows":
    s = Store.open(spec["path"])
    rng = np.random.default_rng(0)
    width, b = 128, 64
    buf = np.empty((b, width), dtype=np.int64)
    def batch():
        s.read_rows(rng.integers(0, s.num_tokens - width, b), buf)
    one = np.empty(width, dtype=np.int64)
    t = time.process_time()
    for start in s.shard_token_offsets[:-1].tolist():  # steady state: every shard seen once
        s.read_into(min(int(start), s.num_tokens - width), one)
    out["first_touch_us"] = (time.process_time() - t) / s.num_shards * 1e6
    for _ in range(spec["warm"]):
        batch()
    t = time.process_time()
    for _ in range(spec["batches"]):
        batch()
    out["batches_s"] = spec["batches"] / (time.process_time() - t)
elif kind == "fds":
    stores = [Store.open(p) for p in spec["paths"]]
    rng = np.random.default_rng(1)
    buf = np.empty(128, dtype=np.int64)
    err = None
    try:
        for i in range(spec["rows"]):
            st = stores[i % len(stores)]
            st.read_into(int(rng.integers(0, st.num_tokens - 128)), buf)
    except Exception as exc:  # the old tree runs out of descriptors: report, do not hide
        err = f"{type(exc).__name__}: {exc}"[:120]
    out["fds"] = len(os.listdir("/proc/self/fd"))
    out["error"] = err
elif kind == "verify":
    import gc, psutil
    proc = psutil.Process()
    s = Store.open(spec["path"], verify="off")
    gc.collect()
    u0 = proc.memory_full_info().uss
    w, t = time.perf_counter(), time.process_time()
    r = s.verify()
    dt, dw = time.process_time() - t, time.perf_counter() - w
    gc.collect()
    out["state_mb"] = (proc.memory_full_info().uss - u0) / 2**20  # what the Store keeps after verify
    out["us_per_shard"] = dt / s.num_shards * 1e6
    out["mb_s"] = r.bytes_checked / dt / 1e6
    out["wall_mb_s"] = r.bytes_checked / dw / 1e6
elif kind == "pieces":  # the masked-row path: 32 rows x 2048 of 3 random pieces each, plan + read + mark
    from shardstore.store.pieces import PiecePlan
    s = Store.open(spec["path"])
    rng = np.random.default_rng(0)
    width, rows = 2049, 32
    buf = np.empty((rows, width), dtype=np.int64)
    marks = np.zeros((rows, width - 1), dtype=bool)
    dst = np.array([r * width + c for r in range(rows) for c in (0, 683, 1366)])
    def batch():
        lo = rng.integers(0, s.num_tokens - 700, dst.size)
        plan = PiecePlan.make(s, lo, np.full(dst.size, 683), dst)
        plan.read(s, buf)
        plan.mark(s, marks, width)
    for _ in range(spec["warm"]):
        batch()
    t = time.process_time()
    for _ in range(spec["batches"]):
        batch()
    out["batches_s"] = spec["batches"] / (time.process_time() - t)
elif kind == "touchtrace":  # the same first pass and close under tracemalloc: bytes still allocated, exactly
    import gc, tracemalloc
    import shardstore.store.store as store_mod
    store_mod.plan_runs = lambda *a, **k: None
    s = Store.open(spec["path"])
    one = np.empty(16, dtype=np.int64)
    tracemalloc.start()
    gc.collect()
    t0 = tracemalloc.get_traced_memory()[0]
    for start in s.shard_token_offsets[:-1].tolist():
        s.read_into(int(start), one)
    s.close()
    gc.collect()
    out["traced_mb"] = (tracemalloc.get_traced_memory()[0] - t0) / 2**20
elif kind == "touchmem":  # verification state after one read from every shard, mapping forced (no runs)
    import gc, psutil
    import shardstore.store.store as store_mod
    store_mod.plan_runs = lambda *a, **k: None
    proc = psutil.Process()
    s = Store.open(spec["path"])
    one = np.empty(16, dtype=np.int64)
    gc.collect()
    u0 = proc.memory_full_info().uss
    t = time.process_time()
    for start in s.shard_token_offsets[:-1].tolist():
        s.read_into(int(start), one)
    out["touch_us"] = (time.process_time() - t) / s.num_shards * 1e6
    gc.collect()
    out["live_mb"] = (proc.memory_full_info().uss - u0) / 2**20  # 16,384 live mappings and the state
    s.close()  # unmap everything: what remains is the verification state the store keeps per file identity
    gc.collect()
    import ctypes
    ctypes.CDLL(None).malloc_trim(0)  # hand freed heap pages back, so USS counts what is still allocated
    out["state_mb"] = (proc.memory_full_info().uss - u0) / 2**20
    t = time.process_time()
    for start in s.shard_token_offsets[:-1].tolist():  # second pass: remaps (256 mappings per store)
        s.read_into(int(start), one)
    out["retouch_us"] = (time.process_time() - t) / s.num_shards * 1e6
elif kind == "rawread":  # the floor of any Python reader: open, read, close every file
    t = time.process_time()
    n = 0
    for p in sorted(os.listdir(spec["dir"])):
        if not p.endswith(".shard"):
            continue
        with open(os.path.join(spec["dir"], p), "rb", buffering=0) as f:
            n += len(f.read())
    out["mb_s"] = n / (time.process_time() - t) / 1e6
elif kind == "loader":
    import torch
    torch.set_num_threads(1)
    from shardstore.loader.mixture import Mixture
    from shardstore.torch import make_dataloader
    mix = Mixture.from_dict({"seq_len": 2048, "seed": 7, "sources": [
        {"name": f"s{i}", "store": p, "weight": 1.0} for i, p in enumerate(spec["paths"])]})
    it = iter(make_dataloader(mix, batch_size=32, doc_info=spec.get("doc_info")))
    t = time.process_time()
    for _ in range(spec.get("warm", 20)):
        next(it)
    out["warm_s"] = time.process_time() - t
    import gc
    # Steady state: collect the objects of startup now. Otherwise the first full collection of them (~50-80 ms
    # here, ~170k objects, torch's included) falls at a batch that depends on how many objects the imports made:
    # about batch 300 after today's masks modules, past it before, which read as 2,500 vs 5,200 batches/s.
    gc.collect()
    full = []
    gc.callbacks.append(lambda phase, info: full.append(1) if phase == "stop" and info["generation"] == 2 else None)
    t = time.process_time()
    for _ in range(spec["batches"]):
        next(it)
    out["batches_s"] = spec["batches"] / (time.process_time() - t)
    out["full_gcs"] = len(full)
print(json.dumps(out))
"""


def run(tree: Path, spec: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    spec = {**spec, "tree": str(tree)}
    p = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(spec)], env=env, capture_output=True, text=True, cwd="/"
    )
    if p.returncode != 0:
        return {
            "error": p.stderr.strip().splitlines()[-1][:160] if p.stderr.strip() else f"rc={p.returncode}"
        }
    return json.loads(p.stdout)


def make_store(root: Path, n: int, tokens_per_shard: int, *, seed: int = 0) -> tuple[Path, Path]:
    """(new_dir, old_dir): n copies of one real shard; v2 manifest + index in new_dir, v1 manifest in old_dir."""
    sys.path.insert(0, str(NEW))
    from shardstore.store.manifest import Manifest, ShardInfo, TokenizerInfo, write_manifest
    from shardstore.store.writer import ShardWriter

    new, old = root / f"new-{n}", root / f"old-{n}"
    if (new / "manifest.json").exists() and (old / "manifest.json").exists():
        return new, old
    shutil.rmtree(root / "proto", ignore_errors=True)
    rng = np.random.default_rng(seed)
    with ShardWriter(root / "proto", dtype="uint16", name_prefix="p-", max_shard_bytes=1 << 40) as w:
        left = tokens_per_shard
        while left > 0:
            k = min(left, int(rng.integers(50, 500)))
            w.add_document(rng.integers(0, 50000, k, dtype=np.uint16))
            left -= k
    (proto,) = w.close()
    blob = (root / "proto" / proto.name).read_bytes()
    for d in (new, old):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    names = [f"s{i:06d}.shard" for i in range(n)]
    for name in names:
        (new / name).write_bytes(blob)
        os.link(new / name, old / name)
    tok = TokenizerInfo(fingerprint="f" * 64, vocab_size=50000, special_ids={}, eos_id=None)
    v2 = [
        ShardInfo(nm, proto.num_tokens, proto.num_docs, proto.size, proto.checksum, proto.header_checksum)
        for nm in names
    ]
    write_manifest(new, Manifest(dtype="uint16", shards=v2, tokenizer=tok))
    v1 = Manifest(dtype="uint16", shards=[ShardInfo(*astuple_v1(s)) for s in v2], tokenizer=tok)
    (old / "manifest.json").write_bytes(v1.to_json_bytes())
    return new, old


def astuple_v1(s) -> tuple:
    return (s.name, s.num_tokens, s.num_docs, s.size, s.checksum)


def ordered(trees: dict[str, Path], i: int) -> list[tuple[str, Path]]:
    items = list(trees.items())
    return items if i % 2 == 0 else items[::-1]


def med(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", type=Path, required=True)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/shardstore-bench-scale"))
    ap.add_argument("--quick", action="store_true", help="smaller sweep (up to 10,000 shards)")
    ap.add_argument(
        "--only",
        default="fds,open,remote,rows,loader,loader-shards,verify,verify-raw,verify-tiny,touch-state,touch-trace,pieces-tiny",
    )
    ap.add_argument("--rounds", type=int, default=5, help="interleaved old/new rounds (loader, verify)")
    ap.add_argument(
        "--row-rounds", type=int, default=3, help="interleaved old/new rounds per shard count (rows)"
    )
    a = ap.parse_args()
    a.workdir.mkdir(parents=True, exist_ok=True)
    only = set(a.only.split(","))
    trees = {"old": a.old.resolve(), "new": NEW}
    top = 10_000 if a.quick else 100_000

    if "fds" in only:
        paths = {t: [] for t in trees}
        for k in range(20):
            new, old = make_store(a.workdir / f"fd{k}", 1000, 300, seed=k)
            paths["new"].append(str(new)), paths["old"].append(str(old))
        for t, tree in trees.items():
            r = run(
                tree, {"kind": "fds", "paths": paths[t], "rows": 4000, "nofile": 256 if t == "new" else 8192}
            )
            print(
                f"fds      20 stores x 1000 shards, 4000 random rows  {t}: {r.get('fds')} fds"
                f"{' (ulimit -n 256)' if t == 'new' else ''}  error={r.get('error')}"
            )

    if "open" in only:
        new, old = make_store(a.workdir / "open", top, 200)
        for t, tree in trees.items():
            rs = [run(tree, {"kind": "open", "path": str(new if t == "new" else old)}) for _ in range(3)]
            print(
                f"open     {top} shards  {t}: {med([r['open_s'] for r in rs]) * 1e3:.1f} ms, "
                f"USS +{med([r['uss_mb'] for r in rs]):.1f} MB"
            )

    if "remote" in only:
        new, _ = make_store(a.workdir / f"rows{top}", top, 20_000_000 // top)
        for t, tree in trees.items():
            cache = a.workdir / f"rcache-{t}"
            shutil.rmtree(cache, ignore_errors=True)
            spec = {"kind": "ropen", "url": f"local://{new}", "cache": str(cache)}
            first = run(tree, spec)
            later = [run(tree, spec) for _ in range(3)]
            print(
                f"remote   open {top} shards via local:// + cache  {t}: first process {first['open_s'] * 1e3:.0f} ms "
                f"CPU (USS +{first['uss_mb']:.1f} MB), later processes {med([r['open_s'] for r in later]) * 1e3:.0f} ms "
                f"(USS +{med([r['uss_mb'] for r in later]):.1f} MB)"
            )

    if "rows" in only:
        total = 20_000_000
        counts = [10, 100, 1000, 10_000] + ([100_000] if top >= 100_000 else [])
        res: dict[str, list[float]] = {t: [] for t in trees}
        for n in counts:
            new, old = make_store(a.workdir / f"rows{n}", n, total // n)
            got: dict[str, list[dict]] = {t: [] for t in trees}
            for i in range(a.row_rounds):  # interleaved rounds, order alternating
                for t, tree in ordered(trees, i):
                    spec = {
                        "kind": "rows",
                        "path": str(new if t == "new" else old),
                        "warm": 30,
                        "batches": 200,
                    }
                    got[t].append(run(tree, spec))
            first: dict[str, float] = {}
            for t in trees:
                res[t].append(med([r.get("batches_s", float("nan")) for r in got[t]]))
                first[t] = med([r.get("first_touch_us", float("nan")) for r in got[t]])
            print(
                f"rows/s   {n:>6} shards x {total // n} tokens: old {res['old'][-1]:8.0f}  new {res['new'][-1]:8.0f} "
                f"batches/s (64 rows x 128); first touch old {first['old']:.1f}  new {first['new']:.1f} us/shard "
                f"(medians of {a.row_rounds})"
            )
        for t in trees:
            print(
                f"rows/s   {t}: slowest/fastest over 10..{counts[-1]} shards = {min(res[t]) / max(res[t]):.2f}"
            )

    if "loader" in only:
        stores = [make_store(a.workdir / f"ld{k}", 100, 200_000, seed=10 + k) for k in range(2)]
        got: dict[str, list[float]] = {t: [] for t in trees}
        gcs: dict[str, list[int]] = {t: [] for t in trees}
        for i in range(a.rounds):  # interleaved rounds, order alternating: both trees see the same load
            for t, tree in ordered(trees, i):
                ps = [str(s[0] if t == "new" else s[1]) for s in stores]
                r = run(tree, {"kind": "loader", "paths": ps, "batches": 300})
                got[t].append(r["batches_s"])
                gcs[t].append(r["full_gcs"])
        for t in trees:
            print(
                f"loader   2 sources x 100 shards, B=32 x 2048  {t}: {med(got[t]):.0f} batches/s per CPU-s "
                f"(median of {a.rounds}: {[round(x) for x in got[t]]}; full collections while timed: {gcs[t]})"
            )
        print(f"loader   new/old = {med(got['new']) / med(got['old']):.3f}")

    if "loader-shards" in only:  # the loader over one store of 10 vs 100,000 shards at equal tokens
        got2: dict[tuple[str, int], list[float]] = {}
        warm2: dict[tuple[str, int], list[float]] = {}
        for i in range(a.rounds):
            for n in (10, top):
                pair = make_store(a.workdir / f"rows{n}", n, 20_000_000 // n)
                for t, tree in ordered(trees, i):
                    spec = {
                        "kind": "loader",
                        "paths": [str(pair[0] if t == "new" else pair[1])],
                        "batches": 100,
                    }
                    spec.update(
                        doc_info="both", warm=300
                    )  # 9,600 rows: every run (or shard) seen, steady state
                    r = run(tree, spec)
                    got2.setdefault((t, n), []).append(r.get("batches_s", float("nan")))
                    warm2.setdefault((t, n), []).append(r.get("warm_s", float("nan")))
        for t in trees:
            lo, hi = med(got2[(t, top)]), med(got2[(t, 10)])
            print(
                f"loader   1 source, B=32 x 2048, doc_info=both  {t}: 10 shards {hi:.0f}, {top} shards {lo:.0f} "
                f"batches/s per CPU-s: {lo / hi:.2f}x (medians of {a.rounds}); first 300 batches (first touch "
                f"included) {med(warm2[(t, 10)]):.2f} s vs {med(warm2[(t, top)]):.2f} s CPU"
            )

    if "verify-raw" in only:
        tiny_new, tiny_old = make_store(a.workdir / f"rows{top}", top, 20_000_000 // top)
        big = make_store(a.workdir / "vbig", 4, 16 << 20)
        for label, d in ((f"{top} tiny shards", tiny_new), ("4 x 32 MiB shards", big[0])):
            shards = sorted(str(p) for p in Path(d).glob("*.shard"))
            nbytes = sum(os.path.getsize(p) for p in shards)
            for _ in range(2):  # the second pass is what is kept: files in page cache for all three readers
                t = time.perf_counter()
                subprocess.run(
                    ["xargs", "-0", "cat"], input="\0".join(shards).encode(), stdout=subprocess.DEVNULL
                )
                cat_s = time.perf_counter() - t
            raw = run(NEW, {"kind": "rawread", "dir": str(d)})
            ver = {
                t: run(
                    tree,
                    {
                        "kind": "verify",
                        "path": str(d if t == "new" else tiny_old if d == tiny_new else big[1]),
                    },
                )
                for t, tree in trees.items()
            }
            print(
                f"verify   {label} ({nbytes / 1e6:.0f} MB): cat {nbytes / cat_s / 1e6:.0f} MB/s (wall), Python open+read "
                f"{raw['mb_s']:.0f} MB/s (CPU), verify old {ver['old'].get('mb_s', float('nan')):.0f}  "
                f"new {ver['new'].get('mb_s', float('nan')):.0f} MB/s (CPU); new = {ver['new']['mb_s'] / (nbytes / cat_s / 1e6):.2f}x cat"
            )

    if (
        "verify-tiny" in only
    ):  # issue 19 goal: verify of 100k tiny shards at >= 0.9x cat, same files, same run
        tiny_new, tiny_old = make_store(a.workdir / f"rows{top}", top, 20_000_000 // top)
        shards = sorted(str(p) for p in tiny_new.glob("*.shard"))
        nbytes = sum(os.path.getsize(p) for p in shards)
        cat_w: list[float] = []
        cat_c: list[float] = []
        res: dict[str, list[dict]] = {t: [] for t in trees}
        for i in range(a.rounds + 1):  # round 0 warms the page cache for every reader, and is dropped
            c0, t = os.times(), time.perf_counter()
            subprocess.run(
                ["xargs", "-0", "cat"], input="\0".join(shards).encode(), stdout=subprocess.DEVNULL
            )
            w, c1 = time.perf_counter() - t, os.times()
            cpu = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
            got = {
                t: run(tree, {"kind": "verify", "path": str(tiny_new if t == "new" else tiny_old)})
                for t, tree in ordered(trees, i)
            }
            if i:
                cat_w.append(nbytes / w / 1e6), cat_c.append(nbytes / cpu / 1e6)
                for t in trees:
                    res[t].append(got[t])
        cw, cc = med(cat_w), med(cat_c)
        for t in trees:
            vw, vc = med([r["wall_mb_s"] for r in res[t]]), med([r["mb_s"] for r in res[t]])
            print(
                f"verify-tiny {top} shards ({nbytes / 1e6:.0f} MB) {t}: {vw:.0f} MB/s wall = {vw / cw:.2f}x cat "
                f"({cw:.0f}), {vc:.0f} MB/s CPU = {vc / cc:.2f}x cat ({cc:.0f}); "
                f"{med([r['us_per_shard'] for r in res[t]]):.1f} us/shard CPU; state kept "
                f"{med([r['state_mb'] for r in res[t]]):.1f} MB (medians of {a.rounds})"
            )

    if (
        "pieces-tiny" in only
    ):  # masked rows (pieces) from a 100k tiny-shard store: runs (new) vs mappings (old)
        tiny_new, tiny_old = make_store(a.workdir / f"rows{top}", top, 20_000_000 // top)
        got: dict[str, list[float]] = {t: [] for t in trees}
        for i in range(a.rounds):
            for t, tree in ordered(trees, i):
                spec = {
                    "kind": "pieces",
                    "path": str(tiny_new if t == "new" else tiny_old),
                    "warm": 30,
                    "batches": 300,
                }
                got[t].append(run(tree, spec).get("batches_s", float("nan")))
        print(
            f"pieces   {top} tiny shards, 32 rows x 2048 of 3 pieces, plan+read+mark: old {med(got['old']):.0f}  "
            f"new {med(got['new']):.0f} batches/s per CPU-s (medians of {a.rounds})"
        )

    if "touch-state" in only:  # verification state per process after touching every shard of a mapped store
        tiny_new, tiny_old = make_store(a.workdir / f"rows{top}", top, 20_000_000 // top)
        for t, tree in trees.items():
            r = run(tree, {"kind": "touchmem", "path": str(tiny_new if t == "new" else tiny_old)})
            print(
                f"touch-state {top} shards mapped one by one {t}: USS with the live mappings "
                f"{r.get('live_mb', float('nan')):.1f} MB, after close (verification state) "
                f"{r.get('state_mb', float('nan')):.1f} MB, "
                f"first touch {r.get('touch_us', float('nan')):.0f} us/shard, re-touch after eviction "
                f"{r.get('retouch_us', float('nan')):.0f} us/shard  {r.get('error') or ''}"
            )
            if "touch-trace" in only:
                r = run(tree, {"kind": "touchtrace", "path": str(tiny_new if t == "new" else tiny_old)})
                print(
                    f"touch-state {t}: still allocated after close (tracemalloc) {r.get('traced_mb', float('nan')):.1f} MB"
                )

    if "verify" in only:
        tiny = make_store(a.workdir / "vtiny", 10_000, 300)
        big = make_store(a.workdir / "vbig", 4, 16 << 20)
        vt: dict[str, list[float]] = {t: [] for t in trees}
        vb: dict[str, list[float]] = {t: [] for t in trees}
        for i in range(a.rounds):  # interleaved and alternating, like the loader rounds
            for t, tree in ordered(trees, i):
                k = 0 if t == "new" else 1
                vt[t].append(
                    run(tree, {"kind": "verify", "path": str(tiny[k])}).get("us_per_shard", float("nan"))
                )
                vb[t].append(run(tree, {"kind": "verify", "path": str(big[k])}).get("mb_s", float("nan")))
        for t in trees:
            print(
                f"verify   {t}: 10000 tiny shards {med(vt[t]):.0f} us/shard ({min(vt[t]):.0f}-{max(vt[t]):.0f}); "
                f"4 x 32 MiB {med(vb[t]):.0f} MB/s ({min(vb[t]):.0f}-{max(vb[t]):.0f}) per CPU-s, medians of {a.rounds}"
            )
        print(
            f"verify   new/old speed: tiny {med(vt['old']) / med(vt['new']):.2f}x, big {med(vb['new']) / med(vb['old']):.2f}x"
        )


if __name__ == "__main__":
    main()
