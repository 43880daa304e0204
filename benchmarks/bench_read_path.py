"""CPU time per batch of the in-process loader hot path, per batch mode, against the raw memmap bound; optionally
against another checkout of shardstore (before/after a change) in the same run.

Uses the data benchmarks/bench_loader.py caches (run `python benchmarks/bench_loader.py --only raw,ours` once):

    python benchmarks/bench_read_path.py [--workdir /tmp/shardstore-bench-loader] [--rounds 7] [--batches 600]
        [--baseline /path/to/other/checkout]   # e.g. `git archive <rev> shardstore | tar -x -C DIR`

Every (round, contender) runs in a fresh child process (like bench_loader.py): store open, first-touch block
verification and the permutation blocks are paid again each time, as in a real job; the clock is the process CPU
time over `--batches` batches after 20 warm-up batches (steadier than wall time on a shared machine). B=32,
seq_len=2048, the 70/30 two-source mixture, num_workers=0, torch intra-op threads 1. Contenders: raw (np.memmap +
plain DataLoader, whole batch per __getitems__: the issue-5 bound), ours (make_dataloader defaults: contiguous
int64), ours-views (contiguous=False), ours-pos (doc_info="position_ids"), ours-cu (doc_info="cu_seqlens"); with
--baseline, the same ours-* modes again from that checkout, suffixed "@base".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

MODES = {"ours": {}, "ours-views": {"contiguous": False}, "ours-pos": {"doc_info": "position_ids"}}
MODES["ours-cu"] = {"doc_info": "cu_seqlens"}

_CHILD = r"""
import json, sys, time
import numpy as np, torch
torch.set_num_threads(1)
spec = json.loads(sys.argv[1])
if spec["name"] == "raw":
    sys.path.insert(0, spec["bench_dir"])
    import _peers_loader as peers
    loader = peers.raw_loader(spec["flat"], dtype=np.dtype("<u2"), seq_len=2048, batch_size=32, seed=1234)
else:
    from shardstore.loader.mixture import Mixture
    from shardstore.torch import make_dataloader
    mix = Mixture.from_dict({"seq_len": 2048, "seed": 1234, "sources": [
        {"name": "web", "store": spec["web"], "weight": 0.7}, {"name": "code", "store": spec["code"], "weight": 0.3}]})
    loader = make_dataloader(mix, batch_size=32, **spec["options"])
it = iter(loader)
for _ in range(20):
    next(it)
t = time.process_time()
for _ in range(spec["batches"]):
    batch = next(it)
print(json.dumps({"us": (time.process_time() - t) / spec["batches"] * 1e6}))
"""


def run(spec: dict, code_root: str, cwd: Path) -> float:
    """One contender in a fresh interpreter whose `shardstore` comes from `code_root` (run from a neutral cwd, so
    the current directory's package cannot shadow it)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = code_root + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(spec)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(res.stdout.strip().splitlines()[-1])["us"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/shardstore-bench-loader"))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--batches", type=int, default=600)
    ap.add_argument("--baseline", type=Path, help="a checkout whose shardstore/ is compared (suffix @base)")
    ap.add_argument("--only", default="", help="comma-separated subset of contender names")
    args = ap.parse_args()
    base = {
        "web": str(next(args.workdir.glob("store-web-*"))),
        "code": str(next(args.workdir.glob("store-code-*"))),
        "flat": str(next(args.workdir.glob("flat-*.tokens"))),
        "bench_dir": str(Path(__file__).resolve().parent),
        "batches": args.batches,
    }
    here = str(Path(__file__).resolve().parent.parent)
    contenders: dict[str, tuple[dict, str]] = {"raw": ({"name": "raw"}, here)}
    for name, options in MODES.items():
        contenders[name] = ({"name": name, "options": options}, here)
        if args.baseline:
            contenders[f"{name}@base"] = ({"name": name, "options": options}, str(args.baseline))
    if args.only:
        keep = set(args.only.split(","))
        contenders = {k: v for k, v in contenders.items() if k in keep or k == "raw"}
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for r in range(args.rounds):
        for name, (spec, path) in contenders.items():
            times[name].append(run({**base, **spec}, path, args.workdir))
        print(
            f"round {r + 1}/{args.rounds}: " + "  ".join(f"{k} {v[-1]:.0f}" for k, v in times.items()),
            flush=True,
        )
    raw = statistics.median(times["raw"])
    print(f"\n{'contender':>16} {'CPU us/batch':>13} {'min':>6} {'max':>6} {'raw/this':>9}")
    for name, v in times.items():
        med = statistics.median(v)
        print(f"{name:>16} {med:13.0f} {min(v):6.0f} {max(v):6.0f} {raw / med:8.2f}x")


if __name__ == "__main__":
    main()
