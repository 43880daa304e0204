"""How many CPU cores this process may use: its affinity mask where the OS has one (containers, Slurm, taskset),
else the machine's count. The default for every worker and thread count in shardstore."""

from __future__ import annotations

import os

__all__ = ["usable_cores"]


def usable_cores() -> int:
    """Cores this process may run on (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows: no affinity API
        return max(1, os.cpu_count() or 1)
