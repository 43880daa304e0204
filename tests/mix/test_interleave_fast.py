"""The fast interleave (vectorized job times + native EDF merge) and the random-access counts against the
per-sample reference EDF, at small and at huge positions (up to 2**63), under ramps and constant mixtures."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstore.errors import StateError
from shardstore.mix.counts import counts_at
from shardstore.mix.interleave import LIMIT, Interleave, Phase, WeightSchedule, normalize_weights

POOL = [0, 0, 1, 2, 3, 5, 0.1, 0.25, 0.7, 13, 0.333333, 0.666667, 7, 151234567891, 0.000123]


def nw(ws: list) -> tuple[Fraction, ...]:
    return normalize_weights(ws if any(ws) else [*ws[:-1], 1], what="t")


@st.composite
def schedules(draw: st.DrawFn, *, max_sources: int = 7, offset: int = 0) -> WeightSchedule:
    k = draw(st.integers(1, max_sources))
    phases = [Phase(0, nw(draw(st.lists(st.sampled_from(POOL), min_size=k, max_size=k))))]
    position = offset
    for _ in range(draw(st.integers(0, 3))):
        position += draw(st.integers(1, 400))
        ramp = draw(st.sampled_from([0, 0, 1, 7, 45, 1000]))
        ws = draw(st.lists(st.sampled_from([0, 1, 2, 0.5, 9, 0.333333]), min_size=k, max_size=k))
        phases.append(Phase(position, nw(ws), ramp))
        position += ramp
    return WeightSchedule(phases)


@settings(max_examples=120, deadline=None)
@given(schedule=schedules(), data=st.data())
def test_fast_assign_and_random_access_equal_the_reference(
    schedule: WeightSchedule, data: st.DataObject
) -> None:
    il = Interleave(schedule)
    k = schedule.num_sources
    n = data.draw(st.integers(1, 1500))
    ref_src, ref_ord = il.reference_assign(0, [0] * k, n)
    src, ordinal = il.assign(0, [0] * k, n)
    assert src.tolist() == ref_src.tolist()
    assert ordinal.tolist() == ref_ord.tolist()
    for cut in data.draw(st.lists(st.integers(0, n), min_size=1, max_size=6)):
        expected = tuple(np.bincount(ref_src[:cut], minlength=k).tolist())
        assert counts_at(schedule, cut) == expected
        assert il.counts_at(cut) == expected
        tail_src, tail_ord = il.assign(cut, expected, n - cut)
        assert tail_src.tolist() == ref_src[cut:].tolist()
        assert tail_ord.tolist() == ref_ord[cut:].tolist()


FAR_POSITIONS = [1 << 62, (1 << 62) + 12_345, 3 * 10**17, LIMIT - 1 - 5000]


@pytest.mark.parametrize("far", FAR_POSITIONS)
@pytest.mark.parametrize("kind", ["constant", "ramp", "decimals"])
def test_huge_positions_are_exact(far: int, kind: str) -> None:
    if kind == "constant":
        phases = [Phase(0, nw([5, 3, 2]))]
    elif kind == "decimals":
        phases = [Phase(0, nw([0.333333, 0.666667]))]
    else:  # a ramp running through the far position, and one far before it
        phases = [
            Phase(0, nw([5, 3, 2])),
            Phase(1000, nw([1, 1, 8]), 10**6),
            Phase(far - 20_000, nw([1, 7, 2]), 100_000),
        ]
    sched = WeightSchedule(phases)
    il = Interleave(sched)
    counts = il.counts_at(far)
    assert sum(counts) == far
    assert all(abs(c - sched.cumulative(s, far)) < 1 for s, c in enumerate(counts))
    src, ordinal = il.assign(far, counts, 3000)
    ref_src, ref_ord = il.reference_assign(far, counts, 3000)
    assert src.tolist() == ref_src.tolist() and ordinal.tolist() == ref_ord.tolist()
    after = il.advance(far, counts, 3000)
    assert after == il.counts_at(far + 3000)
    # no source is starved or flooded: every prefix of the batch stays within one sample of the weights
    running = np.array(counts, dtype=object)
    for i in range(0, 3000, 97):
        now = running + np.bincount(src[:i], minlength=len(counts)).astype(object)
        assert all(abs(int(now[s]) - sched.cumulative(s, far + i)) < 1 for s in range(len(counts)))


def test_the_last_supported_sample_and_past_it() -> None:
    il = Interleave(WeightSchedule([Phase(0, nw([0.7, 0.3])), Phase(10, nw([0.2, 0.8]), 10**9)]))
    end = LIMIT - 1
    counts = il.counts_at(end)
    src, ordinal = il.assign(end, counts, 1)
    assert int(ordinal[0]) == counts[int(src[0])]  # the ordinal of sample 2**63 - 1 is exact (fits int64)
    assert sum(il.counts_at(LIMIT)) == LIMIT
    with pytest.raises(StateError, match="supported range"):
        il.assign(end, counts, 2)
    with pytest.raises(StateError, match="supported range"):
        il.counts_at(LIMIT + 1)


def test_counts_off_the_trajectory_are_named() -> None:
    il = Interleave(WeightSchedule([Phase(0, nw([0.7, 0.3]))]))
    il.check_counts(20, [14, 6])
    with pytest.raises(StateError, match=r"not what this mixture draws there \(\[14, 6\]\)"):
        il.check_counts(20, [20, 0])


def test_periodic_table_is_bounded_whatever_the_weights() -> None:
    weights = nw([1 + (i * 37) % 100 for i in range(1000)])  # integer weights 1-100 over 1,000 sources
    il = Interleave(WeightSchedule([Phase(0, weights)]))
    counts = il.counts_at(10**12)
    assert sum(counts) == 10**12
    table = il._periodic()
    held = 0 if table is None else sum(a.nbytes for a in table)
    assert held < 2 << 20, held  # main held 385 MiB here


@pytest.mark.parametrize(
    ("begin", "end"),
    [
        ([0.333333, 0.666667], [0.123457, 0.876543]),  # segment scale ~2**80: the 128-bit native path
        ([151234567891, 98765432109], [3141592653, 27182818284]),  # token counts: ~2**110, exact Python path
    ],
)
def test_long_ramps_with_large_scales_equal_the_reference(begin: list, end: list) -> None:
    sched = WeightSchedule([Phase(0, nw(begin)), Phase(10**6, nw(end), 10**12)])
    il = Interleave(sched)
    for position in (10**6 + 5, 7 * 10**11 + 3):
        counts = il.counts_at(position)
        src, ordinal = il.assign(position, counts, 4000)
        ref_src, ref_ord = il.reference_assign(position, counts, 4000)
        assert src.tolist() == ref_src.tolist() and ordinal.tolist() == ref_ord.tolist()
        assert il.counts_at(position + 4000) == il.advance(position, counts, 4000)


def test_native_kernels_refuse_inconsistent_buffers() -> None:
    edf = pytest.importorskip("shardstore._native._edf")
    ints = np.zeros(4, dtype=np.int64)
    out = np.zeros(4, dtype=np.int64)
    with pytest.raises(ValueError, match="sizes do not match"):
        edf.merge_reach(ints, ints, np.array([0, 3], dtype=np.int64), 4, out, out)
    with pytest.raises(ValueError, match="int64"):
        edf.merge_reach(ints.astype(np.int32), ints, np.array([0, 4], dtype=np.int64), 4, out, out)
    with pytest.raises(ValueError, match="outside the output"):
        edf.times(np.array([2, 5] + [0] * 11, dtype=np.int64), out, out.copy())
