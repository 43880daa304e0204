"""Crash safety: a real `shardstore build` subprocess killed with SIGKILL at several points, then re-run, must end
byte-identical to an uninterrupted build; a re-run of the finished build writes nothing."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest
from killutil import kill_when
from test_build_support import all_files, snapshot, text_of, train_tokenizer

import shardstore


def _corpus(root, n_files=16, docs=1200):
    rng = random.Random(11)
    root.mkdir()
    for i in range(n_files):
        with open(root / f"f{i:02d}.jsonl", "w") as f:
            for _ in range(docs):
                f.write(json.dumps({"text": text_of(rng, rng.randint(20, 120))}) + "\n")


def _cmd(inputs, tok, out, workers):
    return [
        sys.executable, "-m", "shardstore", "build", str(inputs), "--tokenizer", str(tok), "--out", str(out),
        "--workers", str(workers), "--max-shard-mb", "1", "--no-progress",
    ]  # fmt: skip


def _journaled(out) -> int:
    try:
        return sum(1 for n in os.listdir(out / ".build" / "units") if n.endswith(".json"))
    except FileNotFoundError:
        return 0


def _run_and_kill(cmd, out, *, after_units: int, extra_delay: float) -> bool:
    """SIGKILL the build's main process once `after_units` units are journaled (+ a delay); its pool workers must
    die with it. Returns False if the build finished before the kill point."""
    return kill_when(cmd, lambda: _journaled(out) >= after_units, extra_delay=extra_delay)


@pytest.mark.slow
def test_sigkill_at_several_points_then_resume_is_byte_identical(tmp_path):
    tok = train_tokenizer(tmp_path / "tok.json")
    inputs = tmp_path / "in"
    _corpus(inputs)
    reference = tmp_path / "ref"
    shardstore.build(
        [str(inputs)], tokenizer=tok, out=reference, workers=1, max_shard_bytes=1 << 20, progress=False
    )

    out = tmp_path / "st"
    kills = 0
    # Kill points: during start-up, right after a unit commit, mid-unit (delays), late in the build; the worker
    # count changes between attempts (it is not an output option), so both inline and pool runs get killed.
    for workers, after_units, delay in [
        (2, 0, 0.3),
        (2, 3, 0.0),
        (1, 6, 0.013),
        (2, 10, 0.031),
        (1, 14, 0.002),
    ]:
        kills += _run_and_kill(
            _cmd(inputs, tok, out, workers), out, after_units=after_units, extra_delay=delay
        )
    cmd = _cmd(inputs, tok, out, 2)
    assert kills >= 4, "the build finished before most kill points; make the corpus larger"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "build complete" in done.stdout
    assert snapshot(out) == snapshot(reference)

    before = all_files(out)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert all_files(out) == before
