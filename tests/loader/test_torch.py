"""The torch loader: global order, exact resume at every step, elasticity, workers, StatefulDataLoader."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from storeutil import counting_store

from shardstore.errors import ConfigError, StateError
from shardstore.loader.mixture import Mixture
from shardstore.mix.interleave import Interleave
from shardstore.mix.sampling import permutation
from shardstore.torch import MixtureDataset, MixtureSampler, make_dataloader

SEQ = 8
BASES = {"a": 0, "b": 40000}
# a: 12 windows, b: 5 windows -> several epochs within a few steps; a ramp then a switch change the weights
MIX = f"""
seq_len = {SEQ}
seed = 11
global_batch_size = 4

[[sources]]
name = "a"
store = "a"
weight = 3

[[sources]]
name = "b"
store = "b"
weight = 1

[[schedule]]
start_step = 3
weights = {{ a = 1, b = 3 }}
ramp = "linear"
ramp_steps = 2

[[schedule]]
start_tokens = {6 * 4 * SEQ}
weights = {{ a = 1, b = 1 }}
"""


@pytest.fixture(scope="module")
def mix_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("mix")
    counting_store(d / "a", BASES["a"], 12 * SEQ + 1)
    counting_store(d / "b", BASES["b"], 5 * SEQ + 1)
    (d / "mix.toml").write_text(MIX)
    (d / "const.toml").write_text(MIX.split("[[schedule]]")[0])
    return d / "mix.toml"


@pytest.fixture(scope="module")
def mix(mix_path: Path) -> Mixture:
    return Mixture.from_file(mix_path)


def reference(mix: Mixture, n: int) -> np.ndarray:
    """Pure model of the global order: interleave -> epoch -> keyed permutation -> counting-store window ids."""
    il = Interleave(mix.interleave.schedule)
    src, ordinal = il.assign(0, [0] * il.num_sources, n)
    out = np.empty((n, SEQ), dtype=np.int64)
    for i, (s, k) in enumerate(zip(src.tolist(), ordinal.tolist(), strict=True)):
        name = mix.config.sources[s].name
        windows = {"a": 12, "b": 5}[name]
        w = int(permutation(11, name, k // windows, windows)(k % windows))
        out[i] = BASES[name] + w * SEQ + np.arange(SEQ)
    return out


def run_ranks(
    mix: Mixture, *, batch_size: int, world_size: int, steps: int, num_workers: int = 0, state=None
):
    """Batches (concatenated over ranks, per step) and the state after every step, from `state` if given."""
    loaders = [
        make_dataloader(
            mix,
            batch_size=batch_size,
            rank=r,
            world_size=world_size,
            num_workers=num_workers,
            max_steps=steps,
        )
        for r in range(world_size)
    ]
    if state is not None:
        for loader in loaders:
            loader.load_state_dict(state)
    batches, states = [], []
    for per_rank in zip(*loaders, strict=True):
        batches.append(torch.cat([b["input_ids"] for b in per_rank]).numpy())
        rank_states = [loader.state_dict() for loader in loaders]
        assert all(s == rank_states[0] for s in rank_states)
        states.append(json.loads(json.dumps(rank_states[0])))  # JSON-safe, and what a checkpoint would hold
    return batches, states


def assert_resume_at_every_step(mix, *, batch_size: int, world_size: int, steps: int, num_workers: int = 0):
    """Save after every step; a fresh loader from that state continues with exactly the same stream."""
    batches, states = run_ranks(
        mix, batch_size=batch_size, world_size=world_size, steps=steps, num_workers=num_workers
    )
    gbs = batch_size * world_size
    assert np.array_equal(np.concatenate(batches), reference(mix, steps * gbs))
    for k, state in enumerate(states[:-1], start=1):
        assert state["position"] == k * gbs
        rest, _ = run_ranks(
            mix,
            batch_size=batch_size,
            world_size=world_size,
            steps=steps - k,
            num_workers=num_workers,
            state=state,
        )
        assert np.array_equal(np.concatenate(rest), np.concatenate(batches[k:])), f"resume after step {k}"


@pytest.mark.parametrize(("batch_size", "world_size"), [(3, 1), (2, 2), (1, 4)])
def test_resume_at_every_step_across_epochs_and_schedule(
    mix: Mixture, batch_size: int, world_size: int
) -> None:
    assert_resume_at_every_step(mix, batch_size=batch_size, world_size=world_size, steps=12)


def test_resume_at_every_step_with_workers(mix: Mixture) -> None:
    # states are taken while 2 workers have batches prefetched: they must count delivered batches only
    assert_resume_at_every_step(mix, batch_size=2, world_size=1, steps=5, num_workers=2)


def test_workers_state_matches_in_process_state(mix: Mixture) -> None:
    w0 = run_ranks(mix, batch_size=2, world_size=2, steps=6)
    w2 = run_ranks(mix, batch_size=2, world_size=2, steps=6, num_workers=2)
    assert w0[1] == w2[1]
    assert all(np.array_equal(a, b) for a, b in zip(w0[0], w2[0], strict=True))


def test_elastic_resume_continues_the_global_sequence(mix: Mixture) -> None:
    first, states = run_ranks(mix, batch_size=2, world_size=2, steps=3)  # 12 samples
    rest, states2 = run_ranks(mix, batch_size=3, world_size=1, steps=4, state=states[-1])  # other micro-batch
    more, _ = run_ranks(mix, batch_size=1, world_size=4, steps=2, state=states2[-1])  # other world size
    got = np.concatenate(first + rest + more)
    assert np.array_equal(got, reference(mix, 32))


def test_batch_layout_and_doc_info(mix: Mixture) -> None:
    loader = make_dataloader(mix, batch_size=3, doc_info="both", max_steps=2)
    assert len(loader) == 2
    assert len(make_dataloader(mix, batch_size=3)) == 2**40  # sized, so trainers do not fetch ahead
    batches = list(loader)
    assert len(batches) == 2
    b = batches[0]
    assert set(b) == {"input_ids", "labels", "source_ids", "position_ids", "cu_seqlens"}
    assert b["input_ids"].dtype == torch.int64 and b["input_ids"].shape == (3, SEQ)
    assert torch.equal(b["labels"][:, :-1], b["input_ids"][:, 1:])
    assert torch.equal(b["labels"][:, -1], b["input_ids"][:, -1] + 1)  # counting store: the next token
    assert [b["source_ids"].tolist() for b in batches] == [[0, 0, 0], [1, 0, 0]]
    assert b["cu_seqlens"].dtype == torch.int32 and b["cu_seqlens"][-1] == 3 * SEQ
    # documents are 7 tokens: position ids restart where a token is a multiple of 7 (and at each row start)
    ids, pos = b["input_ids"].numpy(), b["position_ids"].numpy()
    for row_ids, row_pos in zip(ids, pos, strict=True):
        expect, p = [], 0
        for i, t in enumerate(row_ids.tolist()):
            p = 0 if i == 0 or (t - BASES["a" if t < 40000 else "b"]) % 7 == 0 else p + 1
            expect.append(p)
        assert row_pos.tolist() == expect
    # cu_seqlens cut the flattened batch exactly where position_ids restart
    starts = np.flatnonzero(pos.ravel() == 0)
    assert b["cu_seqlens"].tolist() == [*starts.tolist(), pos.size]


def test_zero_copy_views_carry_the_same_tokens(mix: Mixture) -> None:
    views = list(make_dataloader(mix, batch_size=3, max_steps=2, contiguous=False))
    copies = list(make_dataloader(mix, batch_size=3, max_steps=2))
    for v, c in zip(views, copies, strict=True):
        assert c["input_ids"].is_contiguous() and c["labels"].is_contiguous()
        assert not v["input_ids"].is_contiguous()
        assert v["labels"].data_ptr() == v["input_ids"].data_ptr() + 8  # one buffer, shifted by a token
        assert torch.equal(v["input_ids"], c["input_ids"]) and torch.equal(v["labels"], c["labels"])


def test_state_dict_shape_and_fingerprint_checks(mix: Mixture, mix_path: Path) -> None:
    loader = make_dataloader(mix, batch_size=2, max_steps=3)
    empty = loader.state_dict()
    list(loader)
    state = loader.state_dict()
    assert list(state) == list(empty) == ["format", "position", "counts", "epochs", "fingerprints"]
    assert set(state["fingerprints"]) == {"mixture", "stores", "tokenizer", "seq_len", "seed"}
    assert state["position"] == 6 and sum(state["counts"]) == 6

    other_seed = Mixture.from_dict({**_raw(mix_path), "seed": 12}, base_dir=str(mix_path.parent))
    other = make_dataloader(other_seed, batch_size=2)
    with pytest.raises(StateError, match="seed"):
        other.load_state_dict(state)
    other.load_state_dict(state, strict=False)  # explicit override continues from the counters
    assert other.state_dict()["position"] == 6

    const = make_dataloader(mix_path.parent / "const.toml", batch_size=2)
    with pytest.raises(StateError, match="mixture"):
        const.load_state_dict(state)
    with pytest.raises(StateError, match="not a shardstore loader state"):
        loader.load_state_dict({"position": 3})
    with pytest.raises(StateError, match="do not sum"):
        loader.load_state_dict({**state, "counts": [0, 1]})


def _raw(path: Path) -> dict:
    import tomllib

    return tomllib.loads(path.read_text())


def test_far_position_loads_in_constant_time(mix_path: Path) -> None:
    mix = Mixture.from_file(mix_path.parent / "const.toml")
    loader = make_dataloader(mix, batch_size=4, max_steps=1)
    position = 4 * 10**6  # step 10^6: no replay, the interleave has a closed form and the state its counters
    state = loader.mix_sampler.make_state(position, mix.interleave.counts_at(position))
    loader.load_state_dict(state)
    (batch,) = list(loader)
    expected = MixtureDataset(mix)[(position, 4, 4, *mix.interleave.counts_at(position))]
    assert torch.equal(batch["input_ids"], expected["input_ids"])
    assert loader.state_dict()["counts"] == list(mix.interleave.counts_at(position + 4))


def test_plain_dataloader_with_public_dataset_and_sampler(mix: Mixture) -> None:
    sampler = MixtureSampler(mix, batch_size=2, rank=1, world_size=2, max_steps=4)
    plain = torch.utils.data.DataLoader(MixtureDataset(mix), sampler=sampler, batch_size=None, num_workers=2)
    got = np.concatenate([b["input_ids"].numpy() for b in plain])
    ref = reference(mix, 16).reshape(4, 2, 2, SEQ)[
        :, 1
    ]  # rank 1 takes the second contiguous half of each step
    assert np.array_equal(got, ref.reshape(8, SEQ))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_stateful_dataloader_resume(mix: Mixture, num_workers: int) -> None:
    from torchdata.stateful_dataloader import StatefulDataLoader

    def build() -> StatefulDataLoader:
        sampler = MixtureSampler(mix, batch_size=2, max_steps=7)
        return StatefulDataLoader(
            MixtureDataset(mix), sampler=sampler, batch_size=None, num_workers=num_workers
        )

    loader = build()
    it = iter(loader)
    head = [next(it)["input_ids"] for _ in range(3)]
    state = loader.state_dict()
    tail = [b["input_ids"] for b in it]
    resumed = build()
    resumed.load_state_dict(state)
    again = [b["input_ids"] for b in resumed][: len(tail)]
    assert len(tail) == 4
    assert all(torch.equal(x, y) for x, y in zip(tail, again, strict=True))
    assert np.array_equal(torch.cat(head + tail).numpy(), reference(mix, 14))


def test_ranks_default_to_torch_distributed(mix: Mixture, tmp_path: Path) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
    try:
        loader = make_dataloader(mix, batch_size=2)
        assert (loader.mix_sampler.rank, loader.mix_sampler.world_size) == (0, 1)
    finally:
        dist.destroy_process_group()
    with pytest.raises(ConfigError, match="rank"):
        make_dataloader(mix, batch_size=2, rank=2, world_size=2)
    with pytest.raises(ConfigError, match="batch_size"):
        make_dataloader(mix, batch_size=0)
    with pytest.raises(ConfigError, match="doc_info"):
        make_dataloader(mix, batch_size=1, doc_info="masks")


class _PidProbe(MixtureDataset):
    """Reports which process read a batch and which process opened the stores it read from."""

    def __getitem__(self, key):
        batch = super().__getitem__(key)
        batch["pid"] = torch.tensor(os.getpid())
        batch["opened_pid"] = torch.tensor(self.mixture._opened_pid)
        return batch


@pytest.mark.parametrize("context", ["fork", pytest.param("spawn", marks=pytest.mark.slow)])
def test_workers_open_their_own_stores(mix: Mixture, context: str) -> None:
    mix.open_sources()  # opened (and mapped) in the parent first: workers must not reuse those mappings
    sampler = MixtureSampler(mix, batch_size=2, max_steps=3)
    loader = torch.utils.data.DataLoader(
        _PidProbe(mix), sampler=sampler, batch_size=None, num_workers=1, multiprocessing_context=context
    )
    batches = list(loader)
    for b in batches:
        assert int(b["pid"]) != os.getpid()
        assert int(b["opened_pid"]) == int(b["pid"])
    assert np.array_equal(np.concatenate([b["input_ids"].numpy() for b in batches]), reference(mix, 6))


def test_loader_source_ids_are_exactly_mixed_in_every_prefix(mix: Mixture) -> None:
    loaders = [make_dataloader(mix, batch_size=3, rank=r, world_size=2, max_steps=15) for r in range(2)]
    order = torch.cat([torch.cat([b["source_ids"] for b in step]) for step in zip(*loaders, strict=True)])
    schedule = mix.interleave.schedule
    counts = [0, 0]
    for n, s in enumerate(order.tolist(), start=1):
        counts[s] += 1
        assert all(abs(counts[k] - schedule.cumulative(k, n)) < 1 for k in range(2)), n


@pytest.mark.parametrize("persistent", [False, True])
def test_abandoned_iterator_does_not_skip_prefetched_batches(mix: Mixture, persistent: bool) -> None:
    loader = make_dataloader(mix, batch_size=2, num_workers=2, persistent_workers=persistent, max_steps=3)
    first = []
    for batch in loader:  # workers prefetch ahead; we stop after two batches
        first.append(batch["input_ids"])
        if len(first) == 2:
            break
    again = [
        b["input_ids"] for b in loader
    ]  # continues from what was delivered, not from what was prefetched
    got = torch.cat(first + again).numpy()
    assert np.array_equal(got, reference(mix, 10))
