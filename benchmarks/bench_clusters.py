"""Driver union-find memory: `shardstore.curate.clusters.cluster` (numpy) vs the issue-21 dict union-find.

    python benchmarks/bench_clusters.py 1000000 /path/to/old_clusters_dir

E random edges among 2E documents (a giant component: the most propagation rounds); tracemalloc peak (numpy
allocations included). The old implementation is read from `git show 10a4089:shardstore/curate/clusters.py` saved
as old_clusters.py in the given folder (optional).
"""

import sys
import time
import tracemalloc

import numpy as np

from shardstore.curate.clusters import cluster


def main() -> None:
    rng = np.random.default_rng(0)
    e = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    a = rng.integers(0, 2 * e, e)
    b = rng.integers(0, 2 * e, e)
    edges = np.stack([a, b, rng.integers(0, 2, e)], 1).astype(np.uint64)
    contenders = [("numpy", cluster)]
    if len(sys.argv) > 2:
        sys.path.insert(0, sys.argv[2])
        import old_clusters  # type: ignore[import-not-found]

        contenders.append(("dict (issue 21)", old_clusters.cluster))
    for name, f in contenders:
        tracemalloc.start()
        t = time.perf_counter()
        c = f(edges)
        dt = time.perf_counter() - t
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(
            f"{name}: {e} edges, {c.removed.size} removed docs: {dt:.2f}s, peak {peak / 2**20:.0f} MiB "
            f"({peak / e:.0f} B/edge)"
        )


if __name__ == "__main__":
    main()
