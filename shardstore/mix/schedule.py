"""Exact weight schedules: per-source weights over global sample positions and their integrals, in integers.

``WeightSchedule`` holds per-source weights as exact fractions over global sample positions: piecewise constant, or
linear ramps between phases. ``W_s(n)`` is the exact integral of source ``s``'s weight over the first ``n`` samples
(weights sum to 1, so ``sum_s W_s(n) = n``). Every ``W_s(n)`` is an integer multiple of ``1 / scale``, so all of it
is integer arithmetic: on segment ``j``, ``W_s(start_j + t) * scale = base + quad * t^2 + lin * t``.

Range. Positions are Python integers and exact at any size; the supported range of a run is ``[0, LIMIT]`` with
``LIMIT = 2**63`` samples (so every ordinal and position fits an int64 array). ``NEVER`` (``2**100``) is far outside
it: it means "this weight integral never reaches that value" and can never be confused with a real position.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from shardstore.errors import ConfigError

__all__ = ["LIMIT", "NEVER", "Phase", "SegmentRow", "WeightSchedule", "normalize_weights"]

LIMIT = 1 << 63  # samples a run may draw: global positions and per-source counts are <= LIMIT
NEVER = 1 << 100  # "never reached": beyond LIMIT by far, so no real position can be mistaken for it


@dataclass(frozen=True, slots=True)
class SegmentRow:
    """One segment of one source in integers: ``W_s(start + t) * scale = base + quad * t^2 + lin * t`` for
    ``0 <= t <= length``."""

    start: int
    length: int
    base: int
    quad: int
    lin: int


@dataclass(frozen=True, slots=True)
class Phase:
    """Weights in effect from global sample ``start``; with ``ramp > 0`` they are reached linearly over ``ramp``
    samples, starting from the weights in effect just before ``start``."""

    start: int
    weights: tuple[Fraction, ...]
    ramp: int = 0


@dataclass(frozen=True, slots=True)
class _Segment:
    start: int
    length: int  # NEVER for the open-ended last segment
    begin: tuple[Fraction, ...]  # per-sample weights at the segment start
    end: tuple[Fraction, ...]  # ... and at its end (== begin when constant)
    base: tuple[Fraction, ...]  # W_s(start)

    def integral(self, s: int, t: int) -> Fraction:
        """W_s(start + t) - W_s(start) for 0 <= t <= length: exact integral of a linear weight."""
        a, b = self.begin[s], self.end[s]
        if a == b:
            return a * t
        return a * t + (b - a) * Fraction(t * t, 2 * self.length)


def normalize_weights(weights: Sequence[Fraction | int | float | str], *, what: str) -> tuple[Fraction, ...]:
    """Exact weights summing to 1. Floats go through their shortest repr, so 0.7 is 7/10 exactly."""
    fracs = []
    for w in weights:
        f = Fraction(repr(w)) if isinstance(w, float) else Fraction(w)
        if f < 0 or not math.isfinite(float(f)):
            raise ConfigError(f"{what}: weights must be finite and >= 0, got {w!r}")
        fracs.append(f)
    total = sum(fracs, Fraction(0))
    if total <= 0:
        raise ConfigError(f"{what}: weights must not all be 0, got {list(weights)!r}")
    return tuple(f / total for f in fracs)


class WeightSchedule:
    """Per-source weights over global sample positions and their exact integrals ``W_s(n)``."""

    __slots__ = ("_ibounds", "_icoef", "_rows", "_scale", "_segments", "_starts", "num_sources")

    def __init__(self, phases: Sequence[Phase]) -> None:
        if not phases or phases[0].start != 0 or phases[0].ramp != 0:
            raise ConfigError("a weight schedule starts with a constant phase at sample 0")
        self.num_sources = len(phases[0].weights)
        segments: list[_Segment] = []
        current = phases[0].weights
        base = tuple(Fraction(0) for _ in current)
        position = 0
        for i, phase in enumerate(phases):
            if len(phase.weights) != self.num_sources or sum(phase.weights) != 1:
                raise ConfigError(f"schedule phase {i}: needs {self.num_sources} weights summing to 1")
            if phase.start < position:
                raise ConfigError(
                    f"schedule phase {i} starts at sample {phase.start}, before the previous phase (and its ramp) "
                    f"ends at sample {position}; order phases by start and leave room for ramps"
                )
            if phase.ramp < 0:
                raise ConfigError(f"schedule phase {i}: ramp must be >= 0, got {phase.ramp}")
            if phase.start > position:  # constant stretch of the previous weights
                seg = _Segment(position, phase.start - position, current, current, base)
                segments.append(seg)
                base = tuple(base[s] + seg.integral(s, seg.length) for s in range(self.num_sources))
            position = phase.start
            if phase.ramp:
                seg = _Segment(position, phase.ramp, current, phase.weights, base)
                segments.append(seg)
                base = tuple(base[s] + seg.integral(s, seg.length) for s in range(self.num_sources))
                position += phase.ramp
            current = phase.weights
        segments.append(_Segment(position, NEVER, current, current, base))
        self._segments = tuple(segments)
        self._starts = tuple(seg.start for seg in segments)
        # Integer form: W_s(start + t) * scale = ibase + quad * t^2 + lin * t on every segment, exactly.
        scale = 1
        for seg in segments:
            for a, b in zip(seg.begin, seg.end, strict=True):
                scale = math.lcm(scale, a.denominator, b.denominator)
                if a != b:
                    scale = math.lcm(scale, 2 * seg.length * math.lcm(a.denominator, b.denominator))
        self._scale = scale
        self._icoef = tuple(
            tuple(
                (int((b - a) * scale / (2 * seg.length)), int(a * scale)) if a != b else (0, int(a * scale))
                for a, b in zip(seg.begin, seg.end, strict=True)
            )
            for seg in segments
        )
        # per source: W_s * scale at every segment start, for bisection (nondecreasing since weights are >= 0)
        self._ibounds = tuple(
            tuple(int(seg.base[s] * scale) for seg in segments) for s in range(self.num_sources)
        )
        self._rows = tuple(
            tuple(
                SegmentRow(seg.start, seg.length, self._ibounds[s][j], *self._icoef[j][s])
                for j, seg in enumerate(segments)
            )
            for s in range(self.num_sources)
        )

    @property
    def scale(self) -> int:
        """Every ``W_s(n)`` is an integer multiple of ``1 / scale``."""
        return self._scale

    def scaled_cumulative(self, s: int, n: int) -> int:
        """``W_s(n) * scale``, exactly, in integers."""
        j = bisect.bisect_right(self._starts, n) - 1
        quad, lin = self._icoef[j][s]
        t = n - self._segments[j].start
        return self._ibounds[s][j] + (quad * t + lin) * t

    def rows(self, s: int) -> tuple[SegmentRow, ...]:
        """Source ``s``'s segments in integers (the vectorized job times of `shardstore.mix.jobs` use them)."""
        return self._rows[s]

    def reach_segment(self, s: int, x: int, *, strict: bool) -> int:
        """Index of the segment in which ``W_s`` first reaches ``x`` (exceeds it when strict), or -1 when it does
        at position 0. Nondecreasing in ``x``."""
        bounds = self._ibounds[s]
        return (bisect.bisect_right if strict else bisect.bisect_left)(bounds, x * self._scale) - 1

    def stretches(self) -> list[tuple[int, int, tuple[Fraction, ...] | None]]:
        """(start, length, weights if constant else None) of every segment; the last has length NEVER."""
        return [
            (seg.start, seg.length, seg.begin if seg.begin == seg.end else None) for seg in self._segments
        ]

    @property
    def constant_weights(self) -> tuple[Fraction, ...] | None:
        """The weights if they never change, else None."""
        return self._segments[0].begin if len(self._segments) == 1 else None

    def weights_at(self, n: int) -> tuple[Fraction, ...]:
        """Weight of each source for sample ``n`` (its integral over ``[n, n + 1)``)."""
        return tuple(self.cumulative(s, n + 1) - self.cumulative(s, n) for s in range(self.num_sources))

    def cumulative(self, s: int, n: int) -> Fraction:
        """``W_s(n)``: the exact integral of source ``s``'s weight over samples ``[0, n)``."""
        seg = self._segments[bisect.bisect_right(self._starts, n) - 1]
        return seg.base[s] + seg.integral(s, n - seg.start)

    def first_reach(self, s: int, x: int, *, strict: bool) -> int:
        """Smallest ``m >= 0`` with ``W_s(m) >= x`` (``> x`` when strict), or ``NEVER``. Integer arithmetic only:
        every ``W_s(n)`` is an integer multiple of ``1 / scale``."""
        target = x * self._scale
        bounds = self._ibounds[s]
        j = (bisect.bisect_right if strict else bisect.bisect_left)(bounds, target)
        if j == 0:
            return 0
        seg = self._segments[j - 1]
        quad, lin = self._icoef[j - 1][s]
        need = target - bounds[j - 1]  # > 0 (>= 0 when strict) still to cover inside this segment
        if quad == 0:
            if lin == 0:
                return NEVER
            t = need // lin + 1 if strict else -(-need // lin)
            return seg.start + t if t < NEVER - seg.start else NEVER
        return seg.start + _solve_ramp(quad, lin, need, seg.length, strict)


def _solve_ramp(quad: int, lin: int, need: int, length: int, strict: bool) -> int:
    """Smallest t in [1, length] with quad t^2 + lin t >= need (> when strict); the left side is nondecreasing
    on [0, length] and reaches need by length. A float root gives the answer or a neighbour, checked exactly
    (a bisection costs ~log2(length) exact evaluations instead of 2-3)."""

    def reached(t: int) -> bool:
        v = (quad * t + lin) * t
        return v > need or (v == need and not strict)

    try:
        guess = (-lin + math.sqrt(max(lin * lin + 4 * quad * need, 0))) / (2 * quad)
        t = min(max(math.ceil(guess), 1), length)
    except (OverflowError, ValueError):
        t = length
    for _ in range(4):
        if reached(t):
            if t == 1 or not reached(t - 1):
                return t
            t -= 1
        else:
            t += 1
    lo, hi = 0, length  # the estimate was far off: bisect
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if reached(mid):
            hi = mid
        else:
            lo = mid
    return hi
