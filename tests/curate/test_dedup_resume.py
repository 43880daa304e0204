"""`dedup` killed with SIGKILL (a real subprocess, like `kill -9 PID`) at several points, then re-run, writes the
same masks and report as an uninterrupted run; `--executor ray` on a local Ray instance writes the same bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from killutil import kill_when

from shardstore.curate.decontam import decontaminate
from shardstore.curate.dedup import dedup
from shardstore.curate.synthetic import make_corpus
from shardstore.store.store import Store

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _files(folder) -> dict[str, bytes]:
    return {n: (folder / n).read_bytes() for n in sorted(os.listdir(folder)) if not n.startswith(".")}


def _done(work, prefix: str) -> int:
    try:
        return sum(1 for n in os.listdir(work) if n.startswith(prefix) and n.endswith(".json"))
    except FileNotFoundError:
        return 0


@pytest.fixture
def corpus_store(make_store):
    c = make_corpus(families=40, copies=2, rates=(0.0, 0.01), unrelated=200, seed=4)
    return make_store("a", c.texts)


def test_sigkill_then_resume_writes_identical_masks(corpus_store, tmp_path) -> None:
    ref = tmp_path / "ref"
    dedup([corpus_store], out=ref, workers=1)
    out = tmp_path / "out"
    work = out / ".dedup-work"
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "shardstore", "dedup", corpus_store, "--out", str(out), "--unit-docs", "3",
           "--partitions", "6", "--no-progress"]  # fmt: skip
    kills = 0
    for workers, prefix, after in [
        ("2", "u", 5),
        ("1", "u", 40),
        ("2", "u", 90),
        ("1", "p0", 2),
        ("2", "q0", 1),
    ]:
        ready = lambda p=prefix, a=after: _done(work, p) >= a  # noqa: E731
        kills += kill_when([*cmd, "--workers", workers], ready, env=env)
    assert kills >= 3, "dedup finished before most kill points; make the corpus larger"
    assert work.exists() and _done(work, "u") > 0
    done = subprocess.run([*cmd, "--workers", "2"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not work.exists()
    got, want = _files(out), _files(ref)
    got.pop("dedup-report.json")
    want.pop("dedup-report.json")
    assert got == want


@pytest.mark.slow
def test_ray_executor_writes_the_same_bytes_as_a_local_run(corpus_store, tmp_path) -> None:
    ray = pytest.importorskip("ray")
    local = tmp_path / "local"
    dedup([corpus_store], out=local, workers=2, unit_docs=50, partitions=3)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": ROOT}})  # fmt: skip
    items = tmp_path / "items.jsonl"
    texts = [
        Store.open(corpus_store).tokenizer.decode(Store.open(corpus_store).doc(d).tolist()) for d in (3, 77)
    ]
    items.write_text("".join(json.dumps({"text": t[:400]}) + "\n" for t in texts))
    decontaminate([corpus_store], evals=[items], out=tmp_path / "dc-local", workers=2, unit_docs=40)
    try:
        dedup([corpus_store], out=tmp_path / "ray", executor="ray", unit_docs=50, partitions=3)
        decontaminate([corpus_store], evals=[items], out=tmp_path / "dc-ray", executor="ray", unit_docs=40)
    finally:
        ray.shutdown()
    assert _files(tmp_path / "ray") == _files(local)
    assert _files(tmp_path / "dc-ray") == _files(tmp_path / "dc-local")
    assert (
        json.loads((tmp_path / "dc-ray" / "decontaminate-report.json").read_text())["evals"][0][
            "contaminated_items"
        ]
        == 2
    )
