"""`decontaminate` killed with SIGKILL (a real subprocess, like `kill -9 PID`) mid-scan, then re-run: the scan units
finished before the kill are reused (the same files, not rescanned) and the outputs are byte-identical to an
uninterrupted run; a work folder of another plan is never reused."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from killutil import kill_when

from shardstore.curate.decontam import DecontamParams, decontaminate
from shardstore.curate.synthetic import make_corpus
from shardstore.store.store import Store
from tests.curate.test_dedup_resume import ROOT, _files


def _hits(work) -> dict[str, int]:
    try:
        return {n: os.stat(work / n).st_ino for n in os.listdir(work) if n.endswith(".hits.npy")}
    except FileNotFoundError:
        return {}


@pytest.fixture
def store_and_evals(make_store, tmp_path):
    c = make_corpus(families=40, copies=2, rates=(0.0, 0.01), unrelated=200, seed=5)
    path = make_store("a", c.texts)
    store = Store.open(path)
    texts = [store.tokenizer.decode(store.doc(d).tolist()) for d in (3, 77, 150)]
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"text": t[:400]}) + "\n" for t in texts))
    return path, items


def test_sigkill_then_resume_reuses_scanned_units_and_writes_identical_outputs(
    store_and_evals, tmp_path
) -> None:
    path, items = store_and_evals
    ref = tmp_path / "ref"
    decontaminate([path], evals=[items], out=ref, workers=1, unit_docs=2)
    out = tmp_path / "out"
    work = out / ".decontaminate-work"
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "shardstore", "decontaminate", path, "--eval", str(items), "--out", str(out),
           "--unit-docs", "2", "--no-progress"]  # fmt: skip
    kills = 0
    kept: dict[str, int] = {}
    for workers, after in [("2", 5), ("1", 40), ("2", 90)]:
        ready = lambda a=after: len(_hits(work)) >= a  # noqa: E731
        kills += kill_when([*cmd, "--workers", workers], ready, env=env)
        now = _hits(work)
        # units finished before an earlier kill survive the later runs untouched (same inode: not rescanned)
        assert {n: now.get(n) for n in kept} == kept
        kept = now
    assert kills >= 2, "decontaminate finished before most kill points; make the corpus larger"
    assert kept, "no scan unit finished before the last kill"
    done = subprocess.run([*cmd, "--workers", "2"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not work.exists()
    assert _files(out) == _files(ref)
    assert json.loads((ref / "decontaminate-report.json").read_text())["evals"][0]["contaminated_items"] == 3


def test_a_work_folder_of_another_plan_is_not_reused(store_and_evals, tmp_path) -> None:
    path, items = store_and_evals
    ref = tmp_path / "ref"
    decontaminate([path], evals=[items], out=ref, workers=1, unit_docs=50)
    out = tmp_path / "out"
    work = out / ".decontaminate-work"
    # an interrupted run with another n leaves its plan and (here: emptied) hits behind
    decontaminate([path], evals=[items], out=out, workers=1, unit_docs=50, params=DecontamParams(ngram=8))
    work.mkdir()
    (work / "plan.json").write_text('{"params": "another run"}')
    empty = tmp_path / "empty.npy"
    np.save(empty, np.empty((0, 2), np.uint64), allow_pickle=False)
    for i in range(10):
        (work / f"s{i:06d}.hits.npy").write_bytes(empty.read_bytes())
    decontaminate([path], evals=[items], out=out, workers=1, unit_docs=50)
    assert _files(out) == _files(ref)
