"""What checking Parquet strings for UTF-8 would cost, against encoding them (issue 17.10).

Arrow does not check that a Parquet string column is UTF-8, so the build must. Two ways: validate every batch
with Arrow (`Array.validate(full=True)`) before encoding it, or let the encoder's own check (it refuses invalid
UTF-8 with `InvalidUtf8Error` before writing anything) send only the rare bad batch to the per-row policy. This
prints, per 512-row batch of mixed-script text (the build's Parquet batch), the time of the Arrow check and of
`Tokenizer.encode_packed`, so the share the first way would add is measured, not guessed.

    python benchmarks/bench_parquet_utf8.py --mb 8
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import numpy as np
import pyarrow as pa

import tokenizer

WORDS = [
    "héllo",
    "wörld",
    "данные",
    "обучение",
    "数据",
    "分片",
    "shard",
    "token",
    "the",
    "quick",
    "naïve",
    "ε",
]


def batches(mb: float, seed: int) -> list[pa.Array]:
    rng = random.Random(seed)
    out, size = [], 0
    while size < mb * 1e6:
        arr = pa.array([" ".join(rng.choices(WORDS, k=rng.randint(200, 800))) for _ in range(512)])
        out.append(arr)
        size += arr.buffers()[2].size
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=float, default=8.0, help="MB of text in all")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    data = batches(args.mb, 0)
    tok = tokenizer.train(texts=data[0].to_pylist(), vocab_size=320, progress=False)  # WORDS give ~70 merges
    validate, encode = [], []
    for _ in range(args.rounds):
        for arr in data:
            _, offsets, buf = arr.buffers()
            off = np.frombuffer(offsets, dtype=np.int32, count=len(arr) + 1).astype(np.int64)
            t0 = time.perf_counter()
            arr.validate(full=True)
            t1 = time.perf_counter()
            tok.encode_packed(buf, off[:-1], off[1:], append_id=tok.eos_id, dtype=np.uint16)
            t2 = time.perf_counter()
            validate.append(t1 - t0)
            encode.append(t2 - t1)
    mb = statistics.mean(a.buffers()[2].size for a in data) / 1e6
    v, e = statistics.median(validate), statistics.median(encode)
    print(f"batch {mb:.2f} MB of mixed-script text, median of {len(validate)} batches")
    print(f"Arrow validate(full=True): {v * 1e3:.2f} ms ({mb / v / 1e3:.2f} GB/s)")
    print(f"encode_packed:             {e * 1e3:.2f} ms ({mb / e:.0f} MB/s)")
    print(f"validating first would add {100 * v / e:.0f}% to encoding; the encoder's own check adds 0")


if __name__ == "__main__":
    main()
