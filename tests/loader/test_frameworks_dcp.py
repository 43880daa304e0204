"""Issue 18, finding 5: torchtitan-style DCP checkpoints of the loader move between world sizes, both ways.

`LoaderState` keeps the (global) loader state under one key. A 1-process run saves after 3 steps; 2 gloo ranks
under torchrun load it, read 3 steps, save; 1 process loads that and reads 3 more. Every step's hash equals the
uninterrupted 1-process stream (rank r's batch is slice r of the global batch). Also: make_dataloader resumes
across a change of num_workers, which torchdata's StatefulDataLoader cannot (docs/guide.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import fw_dcp
import pytest
import torch
import torch.distributed.checkpoint as dcp
from gpt_fixtures import make_mix, one_torch_thread  # noqa: F401 (autouse)

from shardstore.errors import StateError
from shardstore.torch import LoaderState, make_dataloader

pytestmark = pytest.mark.slow

B = fw_dcp.GLOBAL_BATCH


@pytest.fixture(scope="module")
def mix(tmp_path_factory) -> Path:
    return make_mix(tmp_path_factory.mktemp("dcp_data"), seq_len=16)


def steps(loader, n: int) -> list[torch.Tensor]:
    it = iter(loader)
    return [next(it)["input_ids"] for _ in range(n)]


def test_dcp_checkpoint_moves_from_1_to_2_ranks_and_back(mix, tmp_path) -> None:
    want = steps(make_dataloader(mix, batch_size=B), 9)
    loader = make_dataloader(mix, batch_size=B)
    assert [torch.equal(a, b) for a, b in zip(steps(loader, 3), want, strict=False)] == [True] * 3
    dcp.save({"dataloader": LoaderState(loader)}, checkpoint_id=str(tmp_path / "w1"))

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        fw_dcp.__file__,
    ]
    cmd += [str(mix), str(tmp_path / "w1"), str(tmp_path / "w2"), str(tmp_path / "log")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    for r in range(2):
        got = json.loads((tmp_path / f"log.rank{r}").read_text())
        half = B // 2
        assert got == [fw_dcp.input_hash(w[r * half : (r + 1) * half]) for w in want[3:6]]

    back = make_dataloader(mix, batch_size=B)
    dcp.load({"dataloader": LoaderState(back)}, checkpoint_id=str(tmp_path / "w2"))
    assert all(torch.equal(a, b) for a, b in zip(steps(back, 3), want[6:9], strict=True))


def test_loader_state_refuses_an_entry_it_did_not_write(mix) -> None:
    with pytest.raises(StateError, match="not saved by shardstore"):
        LoaderState(make_dataloader(mix, batch_size=2)).load_state_dict({"dp_rank_0": b"..."})


@pytest.mark.parametrize(("before", "after"), [(0, 2), (2, 0), (1, 2)])
def test_make_dataloader_resumes_across_a_num_workers_change(mix, before, after) -> None:
    want = steps(make_dataloader(mix, batch_size=4), 7)
    first = make_dataloader(mix, batch_size=4, num_workers=before)
    assert all(torch.equal(a, b) for a, b in zip(steps(first, 4), want, strict=False))
    state = json.loads(json.dumps(first.state_dict()))
    second = make_dataloader(mix, batch_size=4, num_workers=after)
    second.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(steps(second, 3), want[4:], strict=True))
