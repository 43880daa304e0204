"""CPU time per batch of the loader's read modes against the raw memmap bound, in one process and one run.

Uses the data bench_loader.py caches (run it once first: `python benchmarks/bench_loader.py --only raw,ours`):

    python benchmarks/bench_batch_modes.py [--workdir /tmp/shardstore-bench-loader]

Modes (B=32, seq_len=2048, 70/30 mixture, num_workers=0, 4 interleaved rounds of 400 batches, median of
process CPU time per batch): ours (contiguous input_ids/labels, the default), ours-views (contiguous=False:
overlapping zero-copy views, like the raw bound's), ours-pos (doc_info="position_ids"), raw (bench_loader's bound).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _peers_loader as peers

from shardstore.loader.mixture import Mixture
from shardstore.torch import make_dataloader


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/shardstore-bench-loader"))
    args = ap.parse_args()
    web = next(args.workdir.glob("store-web-*"))
    code = next(args.workdir.glob("store-code-*"))
    flat = next(args.workdir.glob("flat-*.tokens"))
    mix = Mixture.from_dict(
        {
            "seq_len": 2048,
            "seed": 1234,
            "sources": [
                {"name": "web", "store": str(web), "weight": 0.7},
                {"name": "code", "store": str(code), "weight": 0.3},
            ],
        }
    )
    makers = {
        "ours": lambda: make_dataloader(mix, batch_size=32, max_steps=400),
        "ours-views": lambda: make_dataloader(mix, batch_size=32, max_steps=400, contiguous=False),
        "ours-pos": lambda: make_dataloader(mix, batch_size=32, max_steps=400, doc_info="position_ids"),
        "raw": lambda: peers.raw_loader(flat, dtype=np.dtype("<u2"), seq_len=2048, batch_size=32, seed=0),
    }
    res: dict[str, list[float]] = {}
    for _ in range(4):
        for name, make in makers.items():
            it = iter(make())
            next(it)
            t = time.process_time()
            for _, _batch in zip(range(399), it, strict=False):
                pass
            res.setdefault(name, []).append((time.process_time() - t) / 399 * 1e6)
    raw = float(np.median(res["raw"]))
    for name, v in res.items():
        print(f"{name:12s} median CPU us/batch {np.median(v):6.0f}   raw/this {raw / np.median(v):.2f}")


if __name__ == "__main__":
    main()
