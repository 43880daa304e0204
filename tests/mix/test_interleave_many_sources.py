"""The native EDF merge scans sources in four lanes (edf.cc): orders with many sources, equal deadlines (ties go
to the lower source) and sources that run out must equal the per-sample reference exactly."""

from __future__ import annotations

import pytest

from shardstore.mix.interleave import Interleave, Phase, WeightSchedule, normalize_weights


@pytest.mark.parametrize("k", [5, 8, 9, 20, 33, 64, 65])
def test_many_sources_with_ties_and_ramps_equal_the_reference(k: int) -> None:
    equal = normalize_weights([1] * k, what="t")  # every deadline ties: the lowest source must win each
    mixed = normalize_weights([1 + (i * 7) % 5 for i in range(k)], what="t")
    sched = WeightSchedule([Phase(0, equal), Phase(700, mixed, 900), Phase(2500, equal)])
    il = Interleave(sched)
    n = 4000
    ref_src, ref_ord = il.reference_assign(0, [0] * k, n)
    src, ordinal = il.assign(0, [0] * k, n)
    assert src.tolist() == ref_src.tolist() and ordinal.tolist() == ref_ord.tolist()
    cut = 1234
    counts = il.counts_at(cut)
    tail, tail_ord = il.assign(cut, counts, n - cut)
    assert tail.tolist() == ref_src[cut:].tolist() and tail_ord.tolist() == ref_ord[cut:].tolist()


def test_sources_with_zero_weight_never_appear_among_many() -> None:
    k = 21
    ws = normalize_weights([0 if i % 3 == 0 else i for i in range(k)], what="t")
    il = Interleave(WeightSchedule([Phase(0, ws)]))
    src, _ = il.assign(0, [0] * k, 5000)
    ref, _ = il.reference_assign(0, [0] * k, 5000)
    assert src.tolist() == ref.tolist()
    assert not set(src.tolist()) & set(range(0, k, 3))
