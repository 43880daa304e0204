"""Issue 18, findings 1 and 2: exact resume under Lightning with no workaround, one process and DDP.

Lightning checkpoints ``loader.state_dict()`` and restores it itself. Before, an unsized loader made its fetcher
read one batch ahead, so ``step=10.ckpt`` described 11 batches and a resume skipped one; under DDP, Lightning tried
to rebuild the loader around a DistributedSampler and failed. The loader is now sized (2**40 batches by default)
and its sampler is a DistributedSampler, so both work as is.

Every run logs a hash of each step's ``input_ids``; the runs are checked against a plain iteration of the loader.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import fw_lightning
import pytest
from gpt_fixtures import make_mix, one_torch_thread, read_jsonl  # noqa: F401 (autouse)

from shardstore.torch import make_dataloader

pytestmark = pytest.mark.slow

STEPS = 40


@pytest.fixture(scope="module")
def mix(tmp_path_factory) -> Path:
    return make_mix(tmp_path_factory.mktemp("lightning_data"), seq_len=16)


def reference(mix: Path, *, batch_size: int, steps: int, ranks: int = 1) -> dict[tuple[int, int], str]:
    """(step, rank) -> hash, from one uninterrupted plain iteration of ``batch_size * ranks`` per step."""
    loader = make_dataloader(mix, batch_size=batch_size * ranks, max_steps=steps)
    out = {}
    for step, batch in enumerate(loader, start=1):
        for r in range(ranks):
            out[step, r] = fw_lightning.input_hash(batch["input_ids"][r * batch_size : (r + 1) * batch_size])
    return out


def logged(out: Path) -> dict[tuple[int, int], str]:
    """(step, rank) -> hash of the last run that trained that step (a resumed run overwrites the killed one)."""
    return {(r["step"], r["rank"]): r["hash"] for r in read_jsonl(out / "hashes.jsonl")}


def killed_run(mix: Path, out: Path, num_workers: int) -> int:
    """A forked child trains to step 25 and SIGKILLs itself (checkpoints at 10 and 20); its exit code."""
    child = multiprocessing.get_context("fork").Process(
        target=fw_lightning.train,
        args=(mix, out),
        kwargs=dict(max_steps=STEPS, num_workers=num_workers, kill_at=25),
    )
    child.start()
    child.join(120)
    return child.exitcode if child.exitcode is not None else -1


@pytest.mark.parametrize("num_workers", [0, 2])
def test_lightning_resume_is_exact_after_sigkill_and_clean_stop(mix, tmp_path, num_workers) -> None:
    want = reference(mix, batch_size=4, steps=STEPS)
    out = tmp_path / "run"
    assert killed_run(mix, out, num_workers) == -9
    assert sorted(p.name for p in (out / "ckpt").iterdir()) == ["step=10.ckpt", "step=20.ckpt"]
    first = logged(out)
    assert max(s for s, _ in first) == 25
    # resume from the last checkpoint, stop cleanly at 30, resume again to the end
    fw_lightning.train(mix, out, max_steps=30, num_workers=num_workers, resume=out / "ckpt" / "step=20.ckpt")
    fw_lightning.train(
        mix, out, max_steps=STEPS, num_workers=num_workers, resume=out / "ckpt" / "step=30.ckpt"
    )
    steps = [r["step"] for r in read_jsonl(out / "hashes.jsonl")]
    assert steps == list(range(1, 26)) + list(range(21, STEPS + 1))  # nothing skipped, nothing trained twice
    assert logged(out) == want


def test_lightning_uninterrupted_run_is_the_loader_stream(mix, tmp_path) -> None:
    fw_lightning.train(mix, tmp_path, max_steps=STEPS)
    assert logged(tmp_path) == reference(mix, batch_size=4, steps=STEPS)


def test_lightning_ddp_two_ranks_start_and_resume_exactly(mix, tmp_path) -> None:
    """strategy="ddp", devices=2 on CPU/gloo under torchrun, loader built before the process group: each rank gets
    its slice of the global batch, and a fresh Trainer + loader resume step=10.ckpt exactly to step 20."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += [fw_lightning.__file__, str(mix), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = read_jsonl(tmp_path / "hashes.jsonl")
    assert sorted((r["step"], r["rank"]) for r in rows) == [(s, r) for s in range(1, 21) for r in range(2)]
    assert logged(tmp_path) == reference(mix, batch_size=4, steps=20, ranks=2)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_lightning_resume_with_stateful_dataloader_is_exact(mix, tmp_path, num_workers) -> None:
    """torchdata's StatefulDataLoader over our dataset and sampler: sized too, so Lightning's state is exact."""
    kw = dict(num_workers=num_workers, stateful_dataloader=True)
    fw_lightning.train(mix, tmp_path, max_steps=10, **kw)
    fw_lightning.train(mix, tmp_path, max_steps=20, resume=tmp_path / "ckpt" / "step=10.ckpt", **kw)
    assert [r["step"] for r in read_jsonl(tmp_path / "hashes.jsonl")] == list(range(1, 21))
    assert logged(tmp_path) == reference(mix, batch_size=4, steps=20)
