"""CPU time per batch of make_dataloader's label formats, against the default, in one process and one run.

    python benchmarks/bench_labels.py MIX.toml [--batch-size 32] [--batches 200]

Formats: next (the default: labels shifted here), hf (labels == input_ids, no source_ids: one more
[B, seq_len] int64 copy), hf_doc_masked (hf + -100 at document starts: also reads the document-start marks and
computes position_ids for the mask). num_workers=0, 4 interleaved rounds, median of process CPU time per batch;
ratio = next / this (1.00 = as fast as the default).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from shardstore.loader.mixture import Mixture
from shardstore.torch import make_dataloader


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mix")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--batches", type=int, default=200)
    args = ap.parse_args()
    mix = Mixture.from_file(args.mix)
    res: dict[str, list[float]] = {}
    for _ in range(4):
        for labels in ("next", "hf", "hf_doc_masked"):
            it = iter(make_dataloader(mix, batch_size=args.batch_size, labels=labels))
            next(it)  # opens the stores
            t = time.process_time()
            for _, _batch in zip(range(args.batches), it, strict=False):
                pass
            res.setdefault(labels, []).append((time.process_time() - t) / args.batches * 1e6)
    base = float(np.median(res["next"]))
    print(f"seq_len {mix.config.seq_len}, batch {args.batch_size}")
    for name, v in res.items():
        print(f"{name:14s} median CPU us/batch {np.median(v):7.0f}   next/this {base / np.median(v):.2f}")


if __name__ == "__main__":
    main()
