"""`peek` and `mix plan` cost independent of the step (issue 19.6, 19.7): inside ramps, with many-decimal weights."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from storeutil import counting_store

from shardstore.cli import main
from shardstore.errors import StateError
from shardstore.loader.mixture import Mixture
from shardstore.loader.peek import peek_rows
from shardstore.torch import MixtureDataset

SEQ = 8
DECIMALS = f"""
seq_len = {SEQ}
seed = 3
global_batch_size = 8

[[sources]]
name = "a"
store = "a"
weight = 0.333333

[[sources]]
name = "b"
store = "b"
weight = 0.666667
"""
RAMP = """
[[schedule]]
start_step = 1000
weights = { a = 0.9, b = 0.1 }
ramp = "linear"
ramp_steps = 1_000_000_000_000
"""


@pytest.fixture(scope="module")
def mixdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("peekmix")
    counting_store(d / "a", 0, 50 * SEQ + 1)
    counting_store(d / "b", 20000, 70 * SEQ + 1)
    (d / "decimals.toml").write_text(DECIMALS)
    (d / "ramp.toml").write_text(DECIMALS + RAMP)
    return d


@pytest.mark.parametrize("step", [0, 2 * 10**6, 10**9, 10**12])
def test_peek_inside_a_ramp_costs_the_same_at_any_step(mixdir: Path, step: int) -> None:
    mix = Mixture.from_file(mixdir / "ramp.toml")
    mix.open_sources()
    t = time.perf_counter()
    rows = peek_rows(mix, step=step, rank=1, world_size=2)
    took = time.perf_counter() - t
    assert took < 0.5, took  # main: 11 s at step 1e5, ~1.4 days at 1e9
    start = step * 8 + 4
    counts = mix.interleave.counts_at(start)
    expected = MixtureDataset(mix)[(start, 4, 8, *counts)]
    assert [r["global_sample"] for r in rows] == list(range(start, start + 4))
    assert np.array_equal(np.array([r["input_ids"] for r in rows]), expected["input_ids"].numpy())


def test_peek_past_the_supported_range_is_one_clear_error(mixdir: Path) -> None:
    with pytest.raises(StateError, match="supported range"):
        peek_rows(Mixture.from_file(mixdir / "ramp.toml"), step=1 << 61)


def test_plan_and_peek_with_many_decimal_weights_are_fast(
    mixdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mix = Mixture.from_file(mixdir / "decimals.toml")
    mix.open_sources()
    t = time.perf_counter()
    plan = mix.plan(100 * 10**9)  # main: 88.7 s
    took = time.perf_counter() - t
    assert took < 1.0, took
    samples = -(-100 * 10**9 // SEQ)
    assert sum(s.samples_drawn for s in plan.sources) == samples
    assert abs(plan.sources[0].samples_drawn - samples * 0.333333) < 1
    t = time.perf_counter()
    assert main(["peek", str(mixdir / "decimals.toml"), "--step", "20000"]) == 0  # main: 29 s
    took = time.perf_counter() - t
    assert took < 1.0, took
    assert "sample 160000 " in capsys.readouterr().out
