"""Release and deadline times of many interleave jobs at once: exact, vectorized over numpy int64.

The interleave (`shardstore.mix.interleave`) treats the ``x``-th sample of source ``s`` (``x`` counted from 0) as a
unit job released at ``first_reach(s, x, strict=True) - 1`` and due at ``first_reach(s, x + 1) - 1``, where
``first_reach(s, x)`` is the first position ``m`` with ``W_s(m) >= x`` (``> x`` when strict). Computing those one
by one in Python integers costs ~3 us each; a global batch of 40,000 samples needs ~80,000 of them.

Here a request is a run of consecutive targets ``x0, x0 + 1, ...`` of one source. It is cut at segment boundaries;
inside a segment both sides are divided by ``g = gcd(quad, lin, scale)`` (the segment's own scale, whatever the
other sources' denominators), and cut into chunks with ``|Y| < 2**100``. Each chunk is solved relative to its own
origin ``o``, the position just before its first target is reached (one exact Python `first_reach`), so that the
unknowns are small: the first ``u >= 0`` with ``quad * u^2 + lin' * u >= Y`` where ``lin' = 2 quad o + lin`` and
``Y = x * scale - scale * W_s(o)``. Native code (``shardstore._native._edf.times``) takes a float root and corrects
and confirms it exactly in 128-bit integers. Chunks that do not fit (a segment scale near 2**100, as ramps between
token-count weights give) and answers it could not confirm are computed one by one with exact Python integers, so
the result never depends on rounding: it is the exact integer answer, as a time relative to the caller's origin,
saturated at ``+-FAR`` (``NEVER_REL`` when the weight integral never reaches the target).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from shardstore.mix.schedule import NEVER, WeightSchedule

__all__ = ["FAR", "NEVER_REL", "ceil_cumulative", "floor_cumulative", "reach_times"]

FAR = 1 << 62  # a relative time at least this far lies beyond any batch (kept saturated at this value)
NEVER_REL = FAR + 1  # the weight integral never reaches the target
_SAFE = 1 << 100  # bound on the 128-bit parameters of the native exact check


def _wide(v: int) -> tuple[int, int]:
    """A signed integer below 2**126 as (high, low) int64 words of its 128-bit two's complement."""
    low = v & ((1 << 64) - 1)
    return v >> 64, low - (1 << 64) if low >= 1 << 63 else low


def _saturate(v: int) -> int:
    return FAR if v >= FAR else -FAR if v <= -FAR else v


def reach_times(
    sched: WeightSchedule,
    requests: Sequence[tuple[int, int, int, bool]],
    origin: int,
    strict_out: np.ndarray | None = None,
) -> np.ndarray:
    """``first_reach(s, x, strict) - origin`` for every ``(s, x0, count, strict)`` request and ``x`` in
    ``[x0, x0 + count)``, concatenated in request order (int64, saturated at +-FAR, NEVER_REL for never).

    With ``strict_out`` (requests all non-strict), it also receives the strict reach of every target: the same
    time unless ``W_s`` equals the target exactly there, which the native solver reports (one solve per job)."""
    total = sum(max(0, r[2]) for r in requests)
    out = np.empty(total, dtype=np.int64)
    both = strict_out is not None
    if both and any(r[3] for r in requests):
        raise ValueError("strict_out needs non-strict requests")
    # chunk columns: output offset, count, quad, lin', Y0, step, strict, base offset, umax, source, first target,
    # whether g divides Y (else W_s never equals a target of the chunk at an integer position)
    cols: list[list[int]] = [[] for _ in range(12)]
    scale = sched.scale
    at = 0
    for s, x0, count, strict in requests:
        if count <= 0:
            continue
        rows = sched.rows(s)
        x, end = x0, x0 + count
        j = sched.reach_segment(s, x, strict=strict)
        while x < end:
            if j < 0:  # reached at position 0: only x <= 0, non-strict
                out[at] = _saturate(-origin)
                if strict_out is not None:
                    strict_out[at] = _exact(sched, s, x, True, origin)
                at, x, j = at + 1, x + 1, sched.reach_segment(s, x + 1, strict=strict)
                continue
            if j + 1 < len(rows):
                b = rows[j + 1].base
                nxt = -(-b // scale) if strict else b // scale + 1  # first target reached in a later segment
            else:
                nxt = end
            hi = min(max(nxt, x), end)
            row = rows[j]
            # this segment's own scale: both sides of quad u^2 + lin' u >= Y divided by g (Y rounded up)
            g = math.gcd(row.quad, row.lin, scale) or 1
            step = scale // g
            chunk = max(1, _SAFE // 2 // step - 2)
            while x < hi:
                m = min(hi - x, chunk)
                if row.quad == 0 and row.lin == 0:  # a zero weight to the end: never reached
                    out[at : at + m] = NEVER_REL
                    if strict_out is not None:
                        strict_out[at : at + m] = NEVER_REL
                elif m < 4 or chunk < 4:
                    for i in range(m):
                        out[at + i] = _exact(sched, s, x + i, strict, origin)
                        if strict_out is not None:
                            strict_out[at + i] = _exact(sched, s, x + i, True, origin)
                else:
                    first = sched.first_reach(s, x, strict=strict)
                    o = min(max(first - 1 - row.start, 0), row.length)
                    value = row.base + (row.quad * o + row.lin) * o  # W_s(start + o) * scale
                    lin2 = 2 * row.quad * o + row.lin
                    y0 = x * scale - value + (1 if strict else 0)  # f(u) > Y  <=>  f(u) >= Y + 1
                    divisible = y0 % g == 0
                    y0 = -(-y0 // g)  # g f'(u) >= Y  <=>  f'(u) >= ceil(Y / g)
                    for col, v in zip(
                        cols,
                        (
                            at,
                            m,
                            row.quad // g,
                            lin2 // g,
                            y0,
                            step,
                            int(strict),
                            row.start + o - origin,
                            row.length - o,
                            s,
                            x,
                            int(divisible),
                        ),
                        strict=True,
                    ):
                        col.append(v)
                at, x = at + m, x + m
            j += 1
    if cols[0]:
        _solve_chunks(sched, cols, out, origin, strict_out)
    return out


def _exact(sched: WeightSchedule, s: int, x: int, strict: bool, origin: int) -> int:
    r = sched.first_reach(s, x, strict=strict)
    return NEVER_REL if r >= NEVER else _saturate(r - origin)


def _solve_chunks(
    sched: WeightSchedule, cols: list[list[int]], out: np.ndarray, origin: int, strict_out: np.ndarray | None
) -> None:
    """The chunks in native code (a float root, corrected and checked exactly in 128-bit integers); chunks that do
    not fit, and answers it could not confirm, one by one in Python integers."""
    times: Any = None
    try:
        from shardstore._native import _edf

        times = _edf.times
    except ImportError:  # not built: exact Python integers throughout
        times = None
    rows: list[int] = []
    slow: list[tuple[int, int]] = []  # (chunk, local index)
    for c, (at, cnt, q, ln, y, st, _, base, umax, _, _, div) in enumerate(zip(*cols, strict=True)):
        if times is not None and max(abs(q), abs(ln), abs(y) + cnt * st) < _SAFE:
            rows += (
                at,
                cnt,
                *_wide(q),
                *_wide(ln),
                *_wide(y),
                *_wide(st),
                _saturate(base),
                min(umax, FAR),
                div,
            )
        else:
            slow += [(c, i) for i in range(cnt)]
    at, _, _, _, _, _, strict, _, _, src, x0, _ = cols
    unknown = np.iinfo(np.int64).min
    if rows and times is not None:
        strict_reach = strict_out if strict_out is not None else np.empty_like(out)
        times(np.array(rows, dtype=np.int64), out, strict_reach)
        for p in np.flatnonzero(out == unknown).tolist():
            c = bisect.bisect_right(at, p) - 1
            slow.append((c, p - at[c]))
        if strict_out is not None:
            for p in np.flatnonzero(strict_out == unknown).tolist():
                c = bisect.bisect_right(at, p) - 1
                strict_out[p] = _exact(sched, src[c], x0[c] + p - at[c], True, origin)
    for c, i in slow:
        out[at[c] + i] = _exact(sched, src[c], x0[c] + i, bool(strict[c]), origin)
        if strict_out is not None:
            strict_out[at[c] + i] = _exact(sched, src[c], x0[c] + i, True, origin)


def ceil_cumulative(sched: WeightSchedule, s: int, n: int) -> int:
    """``ceil(W_s(n))``: how many samples of source ``s`` are released before position ``n``."""
    return -(-sched.scaled_cumulative(s, n) // sched.scale)


def floor_cumulative(sched: WeightSchedule, s: int, n: int) -> int:
    """``floor(W_s(n))``: how many samples of source ``s`` are due before position ``n``."""
    return sched.scaled_cumulative(s, n) // sched.scale
