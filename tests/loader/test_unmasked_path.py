"""An unmasked mixture never pays for masks: no exclusions applied, no `KeptStore`, no masked-row planning.

A guard without timing for the loader regression of 2026-12-03 (benchmarks/RESULTS.md, "Loader regression after
the masks merge"): the loader's batches/s must not depend on the masks machinery when no source excludes anything.
The same counters are shown to move on a masked mixture, so the zero of the unmasked one can fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_masks import SEED, SEQ, _mixture, world  # noqa: F401 (world is a fixture used by name)

import shardstore.loader.batches as batches_mod
import shardstore.loader.exclusions as exclusions_mod
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

    monkeypatch.setattr(  # the mixture imports it where it is used, from the module, at call time
        exclusions_mod, "apply_exclusions", wrap("apply_exclusions", exclusions_mod.apply_exclusions)
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


MASK_MODULES = ("shardstore.loader.exclusions", "shardstore.store.mask", "shardstore.store.mask_codec")

_PROBE = """
import json, sys
import shardstore
from shardstore.torch import make_dataloader
it = iter(make_dataloader(shardstore.Mixture.from_file(sys.argv[1]), batch_size=4))
for _ in range(3):
    next(it)
print(json.dumps(sorted(m for m in sys.modules if m.startswith("shardstore."))))
"""


def _imported(mix_path: Path) -> list[str]:
    """The shardstore modules a fresh interpreter holds after `import shardstore` and 3 batches of `mix_path`."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(mix_path)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    return list(json.loads(proc.stdout.splitlines()[-1]))


def test_unmasked_loader_does_not_import_the_masks_modules(world: dict) -> None:  # noqa: F811
    plain = world["dir"] / "plain-import.toml"
    plain.write_text(f'seq_len = {SEQ}\nseed = {SEED}\n\n[[sources]]\nname = "a"\nstore = "a"\nweight = 1\n')
    modules = _imported(plain)
    assert "shardstore.loader.batches" in modules  # the probe did run the loader
    assert not set(MASK_MODULES) & set(modules)
    # the same probe on a masked mixture imports them: the names above are the ones a mask pulls in
    _mixture(world, "masked-import.toml")
    assert set(MASK_MODULES) <= set(_imported(world["dir"] / "masked-import.toml"))
