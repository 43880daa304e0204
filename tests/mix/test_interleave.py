"""Exact mixing: EDF interleave over constant weights and schedules (pure index math, hypothesis)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstore.errors import ConfigError, StateError
from shardstore.mix.interleave import Interleave, Phase, WeightSchedule, normalize_weights

weights_st = st.lists(st.sampled_from([0, 0, 1, 2, 3, 5, 0.1, 0.25, 0.7, 13]), min_size=1, max_size=6)


def _norm(ws: list) -> tuple[Fraction, ...]:
    if not any(ws):
        ws = [*ws[:-1], 1]
    return normalize_weights(ws, what="test")


@st.composite
def schedules(draw: st.DrawFn) -> WeightSchedule:
    base = draw(weights_st)
    k = len(base)
    phases = [Phase(0, _norm(base))]
    position = 0
    for _ in range(draw(st.integers(0, 3))):
        position += draw(st.integers(1, 60))
        ramp = draw(st.sampled_from([0, 0, 1, 7, 45]))
        ws = draw(st.lists(st.sampled_from([0, 1, 2, 0.5, 9]), min_size=k, max_size=k))
        phases.append(Phase(position, _norm(ws), ramp))
        position += ramp
    return WeightSchedule(phases)


def _run(schedule: WeightSchedule, n: int) -> tuple[np.ndarray, np.ndarray]:
    return Interleave(schedule).assign(0, [0] * schedule.num_sources, n)


@settings(max_examples=80, deadline=None)
@given(schedule=schedules(), n=st.integers(1, 250))
def test_every_prefix_is_within_one_sample_of_the_weight_integral(schedule: WeightSchedule, n: int) -> None:
    src, ordinal = _run(schedule, n)
    counts = [0] * schedule.num_sources
    for i in range(n + 1):
        for s in range(schedule.num_sources):
            assert abs(counts[s] - schedule.cumulative(s, i)) < 1, (i, s, counts)
        if i < n:
            # per-source cursors: ordinals are 0, 1, 2, ... for each source (nothing skipped or repeated)
            assert ordinal[i] == counts[src[i]]
            counts[src[i]] += 1


@settings(max_examples=60, deadline=None)
@given(schedule=schedules(), data=st.data())
def test_resume_from_position_and_counts_continues_identically(
    schedule: WeightSchedule, data: st.DataObject
) -> None:
    il = Interleave(schedule)
    full_src, full_ord = _run(schedule, 200)
    cut = data.draw(st.integers(0, 199))
    counts = il.counts_at(cut)
    assert counts == tuple(np.bincount(full_src[:cut], minlength=schedule.num_sources).tolist())
    src, ordinal = il.assign(cut, counts, 200 - cut)
    assert src.tolist() == full_src[cut:].tolist()
    assert ordinal.tolist() == full_ord[cut:].tolist()
    assert il.advance(cut, counts, 200 - cut) == il.counts_at(200)


def test_constant_mixture_is_periodic_and_closed_form() -> None:
    il = Interleave(WeightSchedule([Phase(0, normalize_weights([0.5, 0.3, 0.2], what="t"))]))
    # golden: the first 20 sources of a 50/30/20 mix
    assert il.assign(0, [0, 0, 0], 20)[0].tolist() == [
        0,
        1,
        0,
        2,
        0,
        1,
        0,
        1,
        0,
        2,
        0,
        1,
        0,
        2,
        0,
        1,
        0,
        1,
        0,
        2,
    ]
    assert il.counts_at(10**15) == (5 * 10**14, 3 * 10**14, 2 * 10**14)
    far = 10**12 + 7
    src, ordinal = il.assign(far, il.counts_at(far), 30)
    simulated = il._simulate(far, list(il.counts_at(far)), 30)  # generic path agrees with the table
    assert src.tolist() == simulated[0].tolist() and ordinal.tolist() == simulated[1].tolist()


def test_weights_are_exact_fractions_of_their_decimal_text() -> None:
    assert normalize_weights([0.7, 0.3], what="t") == (Fraction(7, 10), Fraction(3, 10))
    assert normalize_weights([1, 2], what="t") == (Fraction(1, 3), Fraction(2, 3))
    with pytest.raises(ConfigError):
        normalize_weights([0, 0], what="t")
    with pytest.raises(ConfigError):
        normalize_weights([-1, 2], what="t")


def test_linear_ramp_integral_is_exact() -> None:
    half = (Fraction(1, 2), Fraction(1, 2))
    sched = WeightSchedule([Phase(0, (Fraction(1), Fraction(0))), Phase(10, (Fraction(0), Fraction(1)), 20)])
    assert sched.cumulative(0, 10) == 10
    assert sched.cumulative(0, 30) == 10 + 10  # triangle of area 20 * 1 / 2
    assert sched.cumulative(1, 20) == Fraction(10 * 10, 2 * 20)
    assert sched.weights_at(19) == (Fraction(21, 40), Fraction(19, 40))
    assert sched.weights_at(100) == (0, 1)
    assert WeightSchedule([Phase(0, half)]).constant_weights == half


def test_schedule_rejects_overlapping_phases() -> None:
    w = (Fraction(1, 2), Fraction(1, 2))
    with pytest.raises(ConfigError, match="before the previous phase"):
        WeightSchedule([Phase(0, w), Phase(10, w, ramp=20), Phase(20, w)])
    with pytest.raises(ConfigError):
        WeightSchedule([Phase(5, w)])


def test_inconsistent_counts_are_refused() -> None:
    il = Interleave(WeightSchedule([Phase(0, (Fraction(1, 2), Fraction(1, 2)))]))
    with pytest.raises(StateError, match="summing to the position"):
        il.assign(10, [3, 3], 4)
    with pytest.raises(StateError):
        il.assign(2, [1, 1, 0], 4)


@settings(max_examples=30, deadline=None)
@given(schedule=schedules(), data=st.data())
def test_counts_at_jumps_equal_a_full_replay(schedule: WeightSchedule, data: st.DataObject) -> None:
    # stretch the schedule so constant phases span many periods and the cycle jump engages
    phases = [Phase(0, schedule.weights_at(0))]
    for start, length, weights in schedule.stretches()[1:]:
        if weights is None:
            end_weights = schedule.weights_at(start + length)
            phases.append(Phase(start * 40, tuple(end_weights), length * 40))
    il = Interleave(WeightSchedule(phases) if len(phases) > 1 else schedule)
    position = data.draw(st.integers(0, 4000))
    replayed = il._replay(0, (0,) * il.num_sources, position)
    assert il.counts_at(position) == replayed


def test_counts_at_far_into_a_schedule_is_exact() -> None:
    w = normalize_weights
    sched = WeightSchedule(
        [
            Phase(0, w([5, 3, 2], what="t")),
            Phase(10**5, w([1, 1, 8], what="t"), 5000),
            Phase(2 * 10**5, w([1, 1, 1], what="t")),
        ]
    )
    il = Interleave(sched)
    far = 10**12 + 3
    counts = il.counts_at(far)  # cycle jumps: well under a second
    assert sum(counts) == far
    assert all(abs(c - sched.cumulative(s, far)) < 1 for s, c in enumerate(counts))
    src, _ = il.assign(far, counts, 50)  # and the process continues from there
    assert il.advance(far, counts, 50) == tuple(c + int((src == s).sum()) for s, c in enumerate(counts))
