"""Cost of the mixture's pure index math (no files): interleave decisions, shuffle, random access, resume.

    python benchmarks/bench_mixture_index.py

Prints, on this machine, in one run:
- interleave: us per sample decided by the EDF (generic path) for a constant 3-source mix and inside a linear ramp,
  and the closed-form (periodic table) path for a whole global batch of 1024;
- counts_at(position) at sample 10^12 (constant mix): the O(num_sources) random access peek/plan use;
- Feistel permutation: us per index for a call over 16 indices vs over a 4096-index block (what BatchReader caches).
There are no peers for these (a pure-function core); the loader-level comparison is benchmarks/bench_loader.py.
"""

from __future__ import annotations

import time

import numpy as np

from shardstore.mix.interleave import Interleave, Phase, WeightSchedule, normalize_weights
from shardstore.mix.sampling import permutation


def per_call(fn, *, repeat: int) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t) / repeat * 1e6


def main() -> None:
    w = normalize_weights([0.5, 0.3, 0.2], what="bench")
    const = Interleave(WeightSchedule([Phase(0, w)]))
    ramp = Interleave(
        WeightSchedule([Phase(0, w), Phase(1000, normalize_weights([0.1, 0.1, 0.8], what="bench"), 10**7)])
    )
    n = 20000
    print(
        f"EDF decision, constant 3-source mix : {per_call(lambda: const._simulate(0, [0, 0, 0], n), repeat=3) / n:6.2f} us/sample"
    )
    c = ramp.counts_at(5000)
    print(
        f"EDF decision, inside a linear ramp  : {per_call(lambda: ramp._simulate(5000, list(c), n), repeat=3) / n:6.2f} us/sample"
    )
    far = 10**12
    cf = const.counts_at(far)
    print(
        f"closed-form assign, 1024 samples    : {per_call(lambda: const.assign(far, cf, 1024), repeat=200):6.1f} us/batch"
    )
    print(
        f"counts_at(10^12), constant mix      : {per_call(lambda: const.counts_at(far), repeat=2000):6.1f} us"
    )
    perm = permutation(0, "web", 3, 5_000_000)
    small, block = np.arange(100, 116), np.arange(4096, 8192)
    print(
        f"Feistel, 16 indices per call        : {per_call(lambda: perm(small), repeat=300) / 16:6.2f} us/index"
    )
    print(
        f"Feistel, 4096 indices per call      : {per_call(lambda: perm(block), repeat=30) / 4096:6.2f} us/index"
    )


if __name__ == "__main__":
    main()
