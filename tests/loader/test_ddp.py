"""Issue 9 on CPU: train_gpt.py under torchrun with DDP (gloo, 2 processes) against a 1-process run.

- The samples both ranks consumed at each step, gathered in rank order, are exactly the global batch the
  single-process run consumed at that step (same mixture, seed and global batch size).
- A 2-process run killed abruptly (os._exit) after step 4, with a checkpoint at step 3, resumes from that
  checkpoint on 2 processes and on 1 process: both continue with the uninterrupted run's batches and hashes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from gpt_fixtures import TRAIN_GPT, load_train_gpt, make_mix, one_torch_thread, read_jsonl  # noqa: F401 (autouse)

STEPS, CKPT_AT, CRASH_AT, BATCH = 6, 3, 4, 4

pytestmark = pytest.mark.slow


def _args(mix, hash_log, **kw):
    args = [
        f"--mix={mix}",
        "--model=tiny",
        f"--steps={STEPS}",
        f"--batch-size={BATCH}",
        "--device=cpu",
        "--compile=off",
        "--num-workers=1",
        f"--hash-log={hash_log}",
        "--log-every=2",
        "--warmup-steps=1",
    ]
    return args + [
        f"--{k.replace('_', '-')}={v}" if v is not True else f"--{k.replace('_', '-')}" for k, v in kw.items()
    ]


def _torchrun(args, *, nproc: int, expect_rc: int = 0) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        str(TRAIN_GPT),
        *args,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    if (proc.returncode == 0) != (expect_rc == 0):
        raise AssertionError(
            f"torchrun exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )


def test_ddp_two_ranks_equal_one_rank_and_resume_anywhere(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    mix = make_mix(tmp / "data")
    tg = load_train_gpt()

    # Reference: one process, uninterrupted.
    tg.train(tg.parse_args(_args(mix, tmp / "ref.jsonl")))
    ref = {r["step"]: r["samples"] for r in read_jsonl(tmp / "ref.jsonl")}
    assert sorted(ref) == list(range(1, STEPS + 1))

    # Two processes, killed after step CRASH_AT; last checkpoint at CKPT_AT.
    ckpt2 = tmp / "ckpt2"
    _torchrun(
        _args(mix, tmp / "ddp.jsonl", ckpt_dir=ckpt2, ckpt_every=CKPT_AT, crash_at_step=CRASH_AT),
        nproc=2,
        expect_rc=1,
    )
    crashed = read_jsonl(tmp / "ddp.jsonl")
    assert [r["step"] for r in crashed] == list(range(1, CRASH_AT + 1))
    for r in crashed:  # rank 0's half then rank 1's half == the single process's global batch, in order
        assert r["samples"] == ref[r["step"]], f"step {r['step']}"
    assert (ckpt2 / "LATEST").read_text() == f"step_{CKPT_AT:08d}"
    saved = ckpt2 / f"step_{CKPT_AT:08d}"
    # The loader state is a global position: both ranks saved the same one, after CKPT_AT global batches.
    state0, state1 = (json.loads((saved / f"loader_rank{r}.json").read_text()) for r in (0, 1))
    assert state0 == state1 and state0["position"] == CKPT_AT * BATCH

    # Resume the 2-process checkpoint on 1 process (a copy: the 2-process resume below writes new checkpoints).
    ckpt1 = tmp / "ckpt1"
    shutil.copytree(ckpt2, ckpt1)
    tg.train(tg.parse_args(_args(mix, tmp / "resume1.jsonl", ckpt_dir=ckpt1, resume=True)))

    # Resume on 2 processes.
    _torchrun(_args(mix, tmp / "resume2.jsonl", ckpt_dir=ckpt2, ckpt_every=CKPT_AT, resume=True), nproc=2)

    for name in ("resume1.jsonl", "resume2.jsonl"):
        resumed = read_jsonl(tmp / name)
        assert [r["step"] for r in resumed] == list(range(CKPT_AT + 1, STEPS + 1)), name
        for r in resumed:
            assert r["samples"] == ref[r["step"]], f"{name} step {r['step']}"
