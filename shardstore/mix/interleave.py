"""Exact, deterministic interleave of mixture sources over the global sample order: pure index math.

Weights. `shardstore.mix.schedule.WeightSchedule`: exact per-source weights over global sample positions (constant
or linear ramps) and their integrals ``W_s(n)`` (``sum_s W_s(n) = n``).

Interleave. Sample ``n`` of the global order goes to a source chosen by earliest-deadline-first on unit jobs: the
``j``-th sample of ``s`` may sit at position ``n`` only if ``W_s(n + 1) > j - 1`` (release) and ``W_s(n) < j``
(deadline). Among released sources the one with the earliest deadline wins (ties: lower source index). This is the
chairman-assignment problem (Tijdeman 1980): a schedule inside these windows exists and EDF finds it, so for every
source and every prefix ``n`` of the global order, ``|count_s(n) - W_s(n)| < 1`` -- within one sample of the
weight integral, for constant weights and ramps alike (tested with hypothesis). Megatron's greedy "largest deficit"
blend is the baseline; it is not bounded by 1 with many sources.

State. The process is Markov in ``(position, counts)``, and on a run the counts are a function of the position
alone, so resuming needs only those integers (the loader's state dict stores them) and no replay.

Cost (benchmarks/bench_scale.py, 2 cores). A batch of ``L`` samples: the release and deadline of every job that
may land in it are computed at once, exactly, in int64 (`shardstore.mix.jobs`), and merged in time order by the
native EDF heap (``shardstore._native._edf``): O(L log num_sources) plus O(num_sources) Python arithmetic, the same
at any position; ~1-2 ms for 40,000 samples of 20 sources under a ramp (the per-sample Python loop it replaces,
kept as `Interleave.reference_assign`, took ~0.25 s). Random access, ``counts_at(n)``, is closed form
(`shardstore.mix.counts`): O(num_sources) roots plus the jobs inside the longest current window, independent of
``n``. A constant mixture whose weights have a small common denominator ``D <= 2**16`` also keeps one period's
source sequence (O(D) bytes, whatever the number of sources) for its cheapest path.

Range. Positions, counts and ordinals are exact up to ``LIMIT = 2**63`` samples; anything past it is a
`StateError`, never another source.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from shardstore.errors import ConfigError, StateError
from shardstore.mix.counts import counts_at as random_access_counts
from shardstore.mix.jobs import FAR, ceil_cumulative, reach_times
from shardstore.mix.schedule import LIMIT, NEVER, Phase, WeightSchedule, normalize_weights

__all__ = ["LIMIT", "NEVER", "Interleave", "Phase", "WeightSchedule", "check_range", "normalize_weights"]

_MAX_PERIOD = 1 << 16  # the periodic table holds one period: <= 2**16 x 10 bytes, whatever the source count
_ENGINE_CHUNK = 1 << 20  # longest stretch handed to the vectorized engine at once (memory ~ 60 bytes/sample)
# advance() past this many samples uses two random-access counts (~0.2-0.5 ms for 20 sources) instead of merging
# every sample (~50 ns each): a rank of a 10,000-GPU job advances over up to the whole global batch every step
_RANDOM_ACCESS_FROM = 8192


def check_range(position: int, length: int = 0) -> None:
    """`StateError` unless ``[position, position + length)`` lies inside the supported ``[0, 2**63]``."""
    if position < 0 or length < 0 or position + length > LIMIT:
        raise StateError(
            f"global samples [{position}, {position + length}) are outside the supported range [0, 2**63]: "
            "positions, counts and epochs are exact only up to 2**63 samples; this state or step cannot be used"
        )


class Interleave:
    """Which source each global sample comes from, and its ordinal within that source."""

    __slots__ = ("_period", "schedule")

    def __init__(self, schedule: WeightSchedule) -> None:
        self.schedule = schedule
        self._period: tuple[np.ndarray, np.ndarray, np.ndarray] | bool | None = None

    @property
    def num_sources(self) -> int:
        return self.schedule.num_sources

    def _check(self, position: int, counts: Sequence[int], length: int = 0) -> list[int]:
        c = [int(x) for x in counts]
        if len(c) != self.num_sources or min(c, default=0) < 0 or sum(c) != position:
            raise StateError(
                f"per-source counts {c} do not describe global position {position} of {self.num_sources} sources "
                "(need one count >= 0 per source, summing to the position)"
            )
        check_range(position, length)
        return c

    def assign(self, position: int, counts: Sequence[int], length: int) -> tuple[np.ndarray, np.ndarray]:
        """Source ids and per-source ordinals (int64 arrays) of global samples ``[position, position + length)``,
        given the per-source counts drawn before ``position``."""
        c = self._check(position, counts, max(length, 0))
        if length <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        table = self._periodic()
        if table is not None and c == list(self._closed_form(position, table)):
            seq, rank, per_period = table
            period = len(seq)
            n = np.arange(position, position + length, dtype=np.int64)
            phase = n % period
            src = seq[phase].astype(np.int64)
            return src, (n // period) * per_period[src] + rank[phase]
        parts = []
        for at in range(0, length, _ENGINE_CHUNK):
            step = min(_ENGINE_CHUNK, length - at)
            parts.append(self._engine(position + at, c, step))
            add = np.bincount(parts[-1][0], minlength=self.num_sources)
            c = [x + int(a) for x, a in zip(c, add, strict=True)]
        if len(parts) == 1:
            return parts[0]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _engine(self, position: int, c: list[int], length: int) -> tuple[np.ndarray, np.ndarray]:
        """EDF over the jobs that may land in ``[position, position + length)``: vectorized times, native merge."""
        try:
            from shardstore._native._edf import merge_reach
        except ImportError:  # not built: the reference loop gives the same answer, slower
            return self._simulate(position, list(c), length)
        sched, k = self.schedule, self.num_sources
        end = position + length
        jobs = [max(0, ceil_cumulative(sched, s, end) - c[s]) for s in range(k)]
        # one solve per job: target x's non-strict reach is job x-1's deadline + 1, its strict reach job x's
        # release + 1 (they differ only where W_s equals x exactly, which the solver reports)
        requests = [(s, c[s], jobs[s] + 1, False) for s in range(k)]
        total = sum(jobs) + k
        strict = np.empty(total, dtype=np.int64)
        reach = reach_times(sched, requests, position, strict)
        if np.count_nonzero(np.abs(reach) == FAR) > 1:  # deadlines saturated: their order is unknown here
            return self._simulate(position, list(c), length)
        first = np.zeros(k + 1, dtype=np.int64)
        np.cumsum([j + 1 for j in jobs], out=first[1:])
        src = np.empty(length, dtype=np.int64)
        job = np.empty(length, dtype=np.int64)
        if merge_reach(strict, reach, first, length, src, job) != length:
            raise StateError(
                f"per-source counts {c} at global position {position} are not a state this mixture can continue "
                "from (no sample is due or released); resume from a state the loader saved"
            )
        return src, np.array(c, dtype=np.int64)[src] + job

    def reference_assign(
        self, position: int, counts: Sequence[int], length: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """`assign` by the per-sample EDF loop in Python (~5 us per sample): the oracle of the fast paths."""
        return self._simulate(position, self._check(position, counts, max(length, 0)), max(length, 0))

    def _release(self, s: int, count: int) -> int:
        r = self.schedule.first_reach(s, count, strict=True)
        return NEVER if r >= NEVER else r - 1

    def _deadline(self, s: int, count: int) -> int:
        d = self.schedule.first_reach(s, count + 1, strict=False)
        return NEVER if d >= NEVER else d - 1

    def _simulate(self, position: int, c: list[int], length: int) -> tuple[np.ndarray, np.ndarray]:
        k = self.num_sources
        release = [self._release(s, c[s]) for s in range(k)]
        deadline = [self._deadline(s, c[s]) for s in range(k)]
        src = np.empty(length, dtype=np.int64)
        ordinal = np.empty(length, dtype=np.int64)
        for i in range(length):
            n = position + i
            best = -1
            for s in range(k):
                if release[s] <= n and (best < 0 or deadline[s] < deadline[best]):
                    best = s
            if best < 0:
                raise StateError(f"per-source counts at global position {position} cannot be continued")
            src[i] = best
            ordinal[i] = c[best]
            c[best] += 1
            release[best] = self._release(best, c[best])
            deadline[best] = self._deadline(best, c[best])
        return src, ordinal

    def advance(self, position: int, counts: Sequence[int], length: int) -> tuple[int, ...]:
        """Per-source counts after global samples ``[position, position + length)``."""
        c = self._check(position, counts, max(length, 0))
        if length <= 0:
            return tuple(c)
        table = self._periodic()
        if table is not None and c == list(self._closed_form(position, table)):
            return self._closed_form(position + length, table)
        if length > _RANDOM_ACCESS_FROM and tuple(c) == self.counts_at(position):
            return self.counts_at(position + length)  # on the run's trajectory: random access, no replay
        src, _ = self.assign(position, c, length)
        add = np.bincount(src, minlength=self.num_sources)
        return tuple(x + int(a) for x, a in zip(c, add, strict=True))

    def counts_at(self, position: int) -> tuple[int, ...]:
        """Per-source counts drawn in global samples ``[0, position)``: closed form, independent of the position
        (see `shardstore.mix.counts`)."""
        if position < 0:
            raise ConfigError(f"position must be >= 0, got {position=}")
        check_range(position)
        table = self._periodic()
        if table is not None:
            return self._closed_form(position, table)
        return random_access_counts(self.schedule, position)

    def check_counts(self, position: int, counts: Sequence[int]) -> None:
        """`StateError` unless ``counts`` are exactly what this interleave has drawn before ``position``."""
        c = tuple(self._check(position, counts))
        expected = self.counts_at(position)
        if c != expected:
            raise StateError(
                f"per-source counts {list(c)} at global position {position} are not what this mixture draws "
                f"there ({list(expected)}): the state was edited, or saved for other weights or schedule"
            )

    def _replay(self, position: int, counts: tuple[int, ...], end: int) -> tuple[int, ...]:
        """Counts at ``end`` by the reference per-sample loop from ``(position, counts)``: a test oracle."""
        c = list(counts)
        self._simulate(position, c, end - position)  # advances c in place
        return tuple(c)

    def _closed_form(
        self, position: int, table: tuple[np.ndarray, np.ndarray, np.ndarray]
    ) -> tuple[int, ...]:
        seq, _, per_period = table
        full, rest = divmod(position, len(seq))
        head = np.bincount(seq[:rest], minlength=self.num_sources)
        return tuple(full * int(per_period[s]) + int(head[s]) for s in range(self.num_sources))

    def _periodic(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(source of each position of a period, its ordinal within the period, counts per period) or None.

        Constant weights ``p_s / D`` repeat with period ``D`` (at ``n = D`` every count equals ``p_s``: an integer
        within 1 of it). Kept only for ``D <= 2**16``: O(D) memory, built by the fast engine in milliseconds."""
        if self._period is False:
            return None
        if self._period is not None and self._period is not True:
            return self._period
        weights = self.schedule.constant_weights
        period = 1
        for w in weights or ():
            period = math.lcm(period, w.denominator)
            if period > _MAX_PERIOD:
                break
        if weights is None or period > _MAX_PERIOD:
            self._period = False
            return None
        src, ordinal = self._engine(0, [0] * self.num_sources, period)
        per_period = np.array([int(w * period) for w in weights], dtype=np.int64)
        dtype = np.int16 if self.num_sources < 1 << 15 else np.int32
        self._period = (src.astype(dtype), ordinal, per_period)
        return self._period
