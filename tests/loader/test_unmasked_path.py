"""An unmasked mixture never pays for masks: no exclusions applied, no `KeptStore`, no masked-row planning.

A guard without timing for the loader regression of 2026-12-03 (benchmarks/RESULTS.md, "Loader regression after
the masks merge"): the loader's batches/s must not depend on the masks machinery when no source excludes anything.
The same counters are shown to move on a masked mixture, so the zero of the unmasked one can fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_masks import SEED, SEQ, _mixture, world  # noqa: F401 (world is a fixture used by name)

import shardstore.loader.batches as batches_mod
import shardstore.loader.mixture as mixture_mod
from shardstore.loader.kept import KeptStore
from shardstore.loader.mixture import Mixture
from shardstore.store.pieces import PiecePlan
from shardstore.torch import make_dataloader


def _counting(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count applied exclusions, KeptStores built, look-ahead plans and plan reads while a loader runs."""
    calls = {"apply_exclusions": 0, "KeptStore": 0, "plan_batches": 0, "PiecePlan.read": 0}

    def wrap(name, fn):
        def counted(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)

        return counted

    monkeypatch.setattr(
        mixture_mod, "apply_exclusions", wrap("apply_exclusions", mixture_mod.apply_exclusions)
    )
    monkeypatch.setattr(batches_mod, "plan_batches", wrap("plan_batches", batches_mod.plan_batches))
    monkeypatch.setattr(KeptStore, "__init__", wrap("KeptStore", KeptStore.__init__))
    monkeypatch.setattr(PiecePlan, "read", wrap("PiecePlan.read", PiecePlan.read))
    return calls


def _run(mix: Mixture, batches: int = 40) -> None:
    it = iter(make_dataloader(mix, batch_size=4))
    for _ in range(batches):
        next(it)


def _plain(world: dict, name: str) -> Mixture:  # noqa: F811 (world is the fixture)
    path: Path = world["dir"] / name
    path.write_text(
        f'seq_len = {SEQ}\nseed = {SEED}\n\n[[sources]]\nname = "a"\nstore = "a"\nweight = 2\n\n'
        '[[sources]]\nname = "b"\nstore = ["b", "c"]\nweight = 1\n'
    )
    return Mixture.from_file(path)


def test_unmasked_mixture_builds_no_masks_machinery(world: dict, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    calls = _counting(monkeypatch)
    mix = _plain(world, "plain.toml")
    _run(mix)
    assert calls == {"apply_exclusions": 0, "KeptStore": 0, "plan_batches": 0, "PiecePlan.read": 0}
    for src in mix.open_sources():
        assert src.counts is None
        assert not any(isinstance(s, KeptStore) for s in src.stores)
    assert "masks" not in mix.fingerprints()


def test_masked_mixture_goes_through_the_counted_path(world: dict, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    calls = _counting(monkeypatch)
    _run(_mixture(world, "masked.toml"))
    assert calls["apply_exclusions"] == 1
    assert calls["KeptStore"] >= 3  # one per store: a, b, c
    assert calls["plan_batches"] >= 1  # source "a" is one kept store: planned in the look-ahead
    assert calls["PiecePlan.read"] >= 1
