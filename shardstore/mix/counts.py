"""Random access into the EDF interleave: per-source counts at any position, without replaying a single sample.

Which samples the interleave has placed before position ``n`` is a set of unit jobs (see `shardstore.mix.interleave`):
job ``x`` of source ``s`` is released at ``r = first_reach(s, x, strict) - 1`` and due at
``d = first_reach(s, x + 1) - 1``. Two facts give that set in closed form.

* Bounds. Every job due before ``n`` is placed (``floor(W_s(n))`` of source ``s``), every job released at or after
  ``n`` is not, so ``count_s(n)`` is ``floor(W_s(n))`` or, when ``W_s(n)`` is fractional, one more: the
  "straddling" job ``floor(W_s(n))`` of a source may already be placed. Exactly
  ``e(n) = n - sum_s floor(W_s(n))`` of them are.
* Which ones. For unit jobs with release times, the set EDF has processed by time ``n`` is the greedy basis of the
  scheduling matroid (sets of jobs that fit in slots ``[0, n)`` after their releases) under the order (deadline,
  source): take the straddling jobs by earliest deadline, ties to the lower source, and keep each one unless the
  set stops fitting. A set fits iff, for every ``t < n``, at most ``n - t`` of its jobs are released at ``t`` or
  later (Hall's condition on intervals). The left side changes only at release times, and for ``t`` at or before
  the earliest straddling release the condition holds with room to spare (the slack there is at least ``e(n)``), so
  only the releases inside the last window need checking: the straddling ones and those of the forced jobs
  released after the earliest of them.

Cost: ``O(num_sources)`` exact root computations plus the forced jobs inside the longest straddling window, about
``1 / (smallest current weight)`` samples, computed vectorized (`shardstore.mix.jobs`). Independent of ``n``:
~0.1-1 ms at any position up to ``2**63`` for 20 sources with weights above 1e-3 (benchmarks/bench_scale.py). The
result is checked against the per-sample EDF by hypothesis tests and pinned golden orders (tests/mix/).
"""

from __future__ import annotations

import numpy as np

from shardstore.errors import StateError
from shardstore.mix.jobs import ceil_cumulative, reach_times
from shardstore.mix.schedule import WeightSchedule

__all__ = ["counts_at"]


def counts_at(sched: WeightSchedule, n: int) -> tuple[int, ...]:
    """Per-source counts drawn by the EDF interleave in global samples ``[0, n)`` (``n >= 0``, exact)."""
    scale = sched.scale
    counts: list[int] = []
    straddling: list[tuple[int, int, int]] = []  # (deadline, source, release) of each fractional source's job
    for s in range(sched.num_sources):
        value = sched.scaled_cumulative(s, n)
        due = value // scale
        counts.append(due)
        if value % scale:
            deadline = sched.first_reach(s, due + 1, strict=False) - 1
            release = sched.first_reach(s, due, strict=True) - 1
            straddling.append((deadline, s, release))
    extra = n - sum(counts)
    if extra == len(straddling):
        for _, s, _ in straddling:
            counts[s] += 1
        return tuple(counts)
    if extra == 0:
        return tuple(counts)
    straddling.sort()
    earliest = min(r for _, _, r in straddling)
    # releases (relative to n) of the forced jobs released after the earliest straddling release
    requests = []
    for s in range(sched.num_sources):
        first = ceil_cumulative(sched, s, earliest + 1)
        if counts[s] > first:
            requests.append((s, first, counts[s] - first, True))
    forced = np.sort(reach_times(sched, requests, n) - 1)
    cand = np.array([r - n for _, _, r in straddling], dtype=np.int64)
    points = np.unique(np.concatenate([forced, cand]))
    points = points[points > earliest - n]
    # room at each check point t: (n - t) slots minus the forced jobs released at t or later
    room = -points - (forced.size - np.searchsorted(forced, points, side="left"))
    taken = np.zeros(points.size, dtype=np.int64)
    chosen = 0
    for _, s, release in straddling:
        if chosen == extra:
            break
        upto = int(np.searchsorted(points, release - n, side="right"))
        if upto == 0 or int((room[:upto] - taken[:upto]).min()) >= 1:
            taken[:upto] += 1
            counts[s] += 1
            chosen += 1
    if chosen != extra:  # cannot happen for a valid schedule; never return counts that are not exact
        raise StateError(
            f"internal error: random-access counts at position {n} found {chosen} of {extra} jobs"
        )
    return tuple(counts)
