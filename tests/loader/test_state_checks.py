"""Loader states are checked against what the mixture can produce (issue 16.5), in time independent of the position
(issue 19.6), and a many-source reader does not recompute permutation blocks per look-ahead (issue 19.8)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from storeutil import counting_store

from shardstore.errors import StateError
from shardstore.loader.batches import BatchReader
from shardstore.loader.mixture import Mixture
from shardstore.mix.sampling import FeistelPermutation
from shardstore.torch import MixtureDataset, make_dataloader

SEQ = 8
MIX = f"""
seq_len = {SEQ}
seed = 5
global_batch_size = 4

[[sources]]
name = "a"
store = "a"
weight = 0.7

[[sources]]
name = "b"
store = "b"
weight = 0.3
"""
RAMP = """
[[schedule]]
start_step = 10
weights = { a = 0.1, b = 0.9 }
ramp = "linear"
ramp_steps = 1_000_000_000_000
"""


@pytest.fixture(scope="module")
def mixdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("statemix")
    counting_store(d / "a", 0, 40 * SEQ + 1)
    counting_store(d / "b", 30000, 25 * SEQ + 1)
    (d / "const.toml").write_text(MIX)
    (d / "ramp.toml").write_text(MIX + RAMP)
    return d


def test_hand_edited_counts_are_refused(mixdir: Path) -> None:
    loader = make_dataloader(mixdir / "const.toml", batch_size=4)
    state = loader.mix_sampler.make_state(20, [20, 0])  # sums right, but no run draws 20 of 'a' first
    with pytest.raises(StateError, match=r"not what this mixture draws there \(\[14, 6\]\)"):
        loader.load_state_dict(state)
    good = loader.mix_sampler.make_state(20, [14, 6])
    loader.load_state_dict(good)
    good["epochs"] = [5, 0]
    with pytest.raises(StateError, match="epochs"):
        loader.load_state_dict(good)


def test_positions_past_the_supported_range_fail_at_load(mixdir: Path) -> None:
    mix = Mixture.from_file(mixdir / "const.toml")
    loader = make_dataloader(mix, batch_size=16)
    end = (1 << 63) - 8  # main accepted it and failed at the first batch with a numpy error
    state = loader.mix_sampler.make_state(end, list(mix.interleave.counts_at(end)))
    with pytest.raises(StateError, match=r"outside the supported range \[0, 2\*\*63\]"):
        loader.load_state_dict(state)
    last = (1 << 63) - 16  # the last global batch of 16 that fits
    loader.load_state_dict(loader.mix_sampler.make_state(last, list(mix.interleave.counts_at(last))))
    batch = next(iter(loader))
    assert batch["input_ids"].shape == (16, SEQ)
    state["position"] = True
    with pytest.raises(StateError, match="position must be an int"):
        loader.load_state_dict(state)


@pytest.mark.parametrize("step", [10**3, 10**6, 10**9, 10**12])
def test_load_state_inside_a_ramp_is_fast_and_exact(mixdir: Path, step: int) -> None:
    mix = Mixture.from_file(mixdir / "ramp.toml")
    position = step * 4
    counts = mix.interleave.counts_at(position)
    loader = make_dataloader(mix, batch_size=4)
    state = loader.mix_sampler.make_state(position, list(counts))
    t = time.perf_counter()
    loader.load_state_dict(state)
    took = time.perf_counter() - t
    assert took < 0.05, took
    batch = next(iter(loader))
    expected = MixtureDataset(mix)[(position, 4, 4, *counts)]
    assert np.array_equal(batch["input_ids"].numpy(), expected["input_ids"].numpy())
    assert loader.state_dict()["counts"] == list(mix.interleave.counts_at(position + 4))


def test_many_sources_compute_each_permutation_block_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    k = 40
    lines = [f"seq_len = {SEQ}", "seed = 1"]
    for i in range(k):
        counting_store(tmp_path / f"s{i}", 100 * i, 300 * SEQ + 1)
        lines += ["[[sources]]", f'name = "s{i}"', f'store = "s{i}"', f"weight = {1 + i % 3}"]
    (tmp_path / "mix.toml").write_text("\n".join(lines) + "\n")
    mix = Mixture.from_file(tmp_path / "mix.toml")
    calls = []
    original = FeistelPermutation.__call__

    def counting(self: FeistelPermutation, indices: np.ndarray | int) -> np.ndarray:
        calls.append(1)
        return original(self, indices)

    monkeypatch.setattr(FeistelPermutation, "__call__", counting)
    reader = BatchReader(mix)
    position, counts = 0, (0,) * k
    for _ in range(120):  # 3,840 samples: ~96 per source, all inside its first block and epoch
        reader.read(position, counts, 32, stride=32)
        counts = mix.interleave.advance(position, counts, 32)
        position += 32
    assert len(calls) <= k, len(calls)  # main's 32-block LRU recomputed blocks on every look-ahead
