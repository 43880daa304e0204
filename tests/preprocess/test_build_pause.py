"""Issue 16.4: a paused writer never destroys a committed store.

Real `shardstore build` subprocesses: build A is paused (SIGSTOP) while writing unit 1. The same command B is then
refused with the lock holder's host and pid. When the lock cannot protect (it was removed, as on a file system
whose locks are per client, or by an operator who took A for dead), B finishes and commits; A, resumed (SIGCONT),
finds unit 1 committed by another writer, discards its own attempt and leaves the store as B committed it. Both
for a single-node build and for the documented `--node-rank` re-run of a node that only looked dead.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from test_build_support import snapshot, text_of, train_tokenizer

import shardstore
from shardstore import Store
from shardstore.preprocess.locks import host_tag
from shardstore.store.verify import verify_store


def _corpus(root):
    rng = random.Random(4)
    root.mkdir()
    for i, docs in enumerate((300, 9000, 300)):  # unit 1 is large: A is caught in the middle of it
        with open(root / f"f{i}.jsonl", "w") as f:
            for _ in range(docs):
                f.write(json.dumps({"text": text_of(rng, rng.randint(20, 120))}) + "\n")


def _cmd(inputs, tok, out, *extra):
    return [
        sys.executable, "-m", "shardstore", "build", str(inputs), "--tokenizer", str(tok), "--out", str(out),
        "--workers", "1", "--max-shard-mb", "1", "--no-progress", *extra,
    ]  # fmt: skip


def _pause_in_unit_1(cmd, out) -> subprocess.Popen:
    """Start a build and SIGSTOP it once unit 1 has finished shards in its attempt folder (mid-unit)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    attempts = out / ".build" / "attempts"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if any(
                n.endswith(".shard") for a in os.listdir(attempts) if a.startswith("u000001-")
                for n in os.listdir(attempts / a)
            ):  # fmt: skip
                break
        except FileNotFoundError:
            pass
        time.sleep(0.002)
    assert proc.poll() is None, "build A finished before it could be paused; make unit 1 larger"
    os.kill(proc.pid, signal.SIGSTOP)
    return proc


@pytest.mark.slow
@pytest.mark.parametrize("nodes", [None, "rank"])
def test_paused_writer_never_destroys_the_committed_store(tmp_path, nodes):
    tok = train_tokenizer(tmp_path / "tok.json")
    inputs = tmp_path / "in"
    _corpus(inputs)
    ref = tmp_path / "ref"
    shardstore.build(
        [str(inputs)], tokenizer=tok, out=ref, workers=1, max_shard_bytes=1 << 20, progress=False
    )
    out = tmp_path / "st"
    extra: tuple[str, ...] = ()
    if nodes:  # unit 1 (the largest) is node 0's; node 1 finished long ago, node 0 "looked dead"
        extra = ("--num-nodes", "2", "--node-rank", "0")
        first = subprocess.run(
            _cmd(inputs, tok, out, "--num-nodes", "2", "--node-rank", "1"), capture_output=True
        )
        assert first.returncode == 0, first.stderr
    a = _pause_in_unit_1(_cmd(inputs, tok, out, *extra), out)
    try:
        b = subprocess.run(_cmd(inputs, tok, out, *extra), capture_output=True, text=True, timeout=120)
        assert b.returncode == 1
        assert f"locked by host {host_tag()} pid {a.pid}" in b.stderr and b.stderr.count("\n") == 1, b.stderr
        assert "Traceback" not in b.stderr

        os.unlink(out / ".build" / "locks" / "node-0.lock")  # the lock no longer protects: commits must
        b = subprocess.run(_cmd(inputs, tok, out, *extra), capture_output=True, text=True, timeout=120)
        assert b.returncode == 0, b.stderr
        assert "build complete" in b.stdout
        assert snapshot(out) == snapshot(ref)
    finally:
        os.kill(a.pid, signal.SIGCONT)
    _stdout, stderr = a.communicate(timeout=120)
    assert a.returncode == 0, stderr
    assert "unit 1 was committed by another writer meanwhile; kept theirs" in stderr
    assert snapshot(out) == snapshot(ref)
    with Store.open(out, verify="full") as store:
        assert verify_store(store).ok
    assert os.listdir(out / ".build" / "attempts") == []  # A discarded its own attempt
    again = subprocess.run(_cmd(inputs, tok, out, *extra), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stderr
