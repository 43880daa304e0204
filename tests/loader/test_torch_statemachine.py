"""Hypothesis state machine: next / save / load / change world size, against the pure global-order model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from storeutil import counting_store
from test_torch import MIX, SEQ, reference

from shardstore.loader.mixture import Mixture
from shardstore.torch import make_dataloader

MAX_SAMPLES = 30 * 4 * 4


@pytest.fixture(scope="module")
def mixture(tmp_path_factory: pytest.TempPathFactory) -> Mixture:
    d = tmp_path_factory.mktemp("sm")
    counting_store(d / "a", 0, 12 * SEQ + 1)
    counting_store(d / "b", 40000, 5 * SEQ + 1)
    (d / "mix.toml").write_text(MIX)
    return Mixture.from_file(d / "mix.toml")


def test_loader_state_machine(mixture: Mixture) -> None:
    expected = reference(mixture, MAX_SAMPLES)

    class LoaderMachine(RuleBasedStateMachine):
        @initialize(world=st.sampled_from([1, 2, 4]), batch=st.integers(1, 3))
        def start(self, world: int, batch: int) -> None:
            self.position = 0  # the model: just the global sample position
            self.saved: list[tuple[int, dict]] = []
            self._build(world, batch, None)

        def _build(self, world: int, batch: int, state: dict | None) -> None:
            self.world, self.batch = world, batch
            self.loaders = [
                make_dataloader(mixture, batch_size=batch, rank=r, world_size=world) for r in range(world)
            ]
            if state is not None:
                for loader in self.loaders:
                    loader.load_state_dict(state)
            self.iters = [iter(loader) for loader in self.loaders]

        @precondition(lambda self: self.position + 16 <= MAX_SAMPLES)
        @rule()
        def next_step(self) -> None:
            got = torch.cat([next(it)["input_ids"] for it in self.iters]).numpy()
            n = self.world * self.batch
            assert np.array_equal(got, expected[self.position : self.position + n])
            self.position += n

        @rule()
        def save(self) -> None:
            states = [loader.state_dict() for loader in self.loaders]
            assert all(s == states[0] for s in states)
            self.saved.append((self.position, json.loads(json.dumps(states[0]))))

        @precondition(lambda self: self.saved)
        @rule(data=st.data())
        def load(self, data: st.DataObject) -> None:
            position, state = data.draw(st.sampled_from(self.saved))
            self._build(self.world, self.batch, state)
            self.position = position

        @rule(world=st.sampled_from([1, 2, 4]), batch=st.integers(1, 3))
        def change_world_size(self, world: int, batch: int) -> None:
            self._build(world, batch, self.loaders[0].state_dict())

        @invariant()
        def state_tracks_model(self) -> None:
            state = self.loaders[0].state_dict()
            assert state["position"] == self.position
            assert tuple(state["counts"]) == mixture.interleave.counts_at(self.position)

    LoaderMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=25, deadline=None)
    LoaderMachine.TestCase().runTest()
