"""benchmarks/train_gpt.py on CPU: a few real steps from make_dataloader, and resume = identical stream and losses."""

from __future__ import annotations

import math

import pytest
from gpt_fixtures import load_train_gpt, make_mix, one_torch_thread, read_jsonl  # noqa: F401 (autouse)


@pytest.fixture(scope="module")
def mix(tmp_path_factory):
    return make_mix(tmp_path_factory.mktemp("gptdata"))


def _cfg(tg, mix, tmp, name, **kw):
    base = dict(
        mix=str(mix),
        model="tiny",
        steps=8,
        batch_size=4,
        num_workers=0,
        device="cpu",
        compile="off",
        hash_log=str(tmp / f"{name}.hashes.jsonl"),
        metrics_log=str(tmp / f"{name}.metrics.jsonl"),
        log_every=3,
        warmup_steps=1,
    )
    base.update(kw)
    return tg.TrainConfig(**base)


def test_resume_continues_the_same_stream_with_the_same_losses(mix, tmp_path):
    tg = load_train_gpt()
    full = tg.train(_cfg(tg, mix, tmp_path, "full"))
    # The same run cut in two: stop after step 5 with a checkpoint there, then resume in a fresh loader whose
    # workers (2 processes) differ from the first half's (none): the stream must not depend on that.
    ckpt = tmp_path / "ckpt"
    tg.train(_cfg(tg, mix, tmp_path, "part", steps=5, ckpt_dir=str(ckpt), ckpt_every=5))
    tg.train(_cfg(tg, mix, tmp_path, "part", steps=8, ckpt_dir=str(ckpt), resume=True, num_workers=2))

    full_h, part_h = read_jsonl(tmp_path / "full.hashes.jsonl"), read_jsonl(tmp_path / "part.hashes.jsonl")
    assert [r["step"] for r in part_h] == list(range(1, 9))
    assert part_h == full_h
    assert len({h for r in full_h for h in r["samples"]}) == 8 * 4  # distinct samples, not one batch repeated

    full_m, part_m = read_jsonl(tmp_path / "full.metrics.jsonl"), read_jsonl(tmp_path / "part.metrics.jsonl")
    assert [r["loss"] for r in part_m] == [
        r["loss"] for r in full_m
    ]  # bitwise: model, optimizer and data restored
    assert full["losses"] == [r["loss"] for r in full_m]
    for r in full_m:
        assert set(r["source_loss"]) == {"code", "text"}
        assert r["data_wait_s"] >= 0 and r["step_s"] >= r["data_wait_s"]
        assert all(v is None or math.isfinite(v) for v in r["source_loss"].values())
    # The tiny model learns something in 8 steps on this repetitive corpus.
    assert full_m[-1]["loss"] < full_m[0]["loss"]


def test_gpu_synthetic_mode_replays_loader_batches_already_on_the_device(mix, tmp_path):
    tg = load_train_gpt()
    summary = tg.train(
        _cfg(tg, mix, tmp_path, "syn", data=tg.DataMode.GPU_SYNTHETIC, steps=4, synthetic_batches=2)
    )
    hashes = [r["samples"] for r in read_jsonl(tmp_path / "syn.hashes.jsonl")]
    assert hashes[0] == hashes[2] and hashes[1] == hashes[3] and hashes[0] != hashes[1]
    assert summary["tokens_per_s"] > 0 and summary["steps"] == 4


def test_checkpoint_with_another_global_batch_is_refused(mix, tmp_path):
    tg = load_train_gpt()
    ckpt = tmp_path / "ckpt"
    tg.train(_cfg(tg, mix, tmp_path, "a", steps=2, ckpt_dir=str(ckpt), ckpt_every=2))
    with pytest.raises(SystemExit, match="batch-size"):
        tg.train(_cfg(tg, mix, tmp_path, "b", steps=4, batch_size=8, ckpt_dir=str(ckpt), resume=True))


def test_loader_alone_benchmark_runs_on_cpu(mix, tmp_path, monkeypatch):
    """benchmarks/bench_loader_cpu.py (issue 8's "loader alone" figures) for a moment, so it cannot rot in CI."""
    import json

    from gpt_fixtures import ROOT

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # its spawned processes import it by name
    import bench_loader_cpu as bench

    out = tmp_path / "loader_cpu.json"
    args = ["--mix", str(mix), "--batch-size", "4", "--procs", "1", "--num-workers", "0", "--seconds", "0.3"]
    assert bench.main([*args, "--work-dir", str(tmp_path), "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["procs"], r["num_workers"]) for r in rows] == [(1, 0)]
    for key in ("shardstore", "memmap_get_batch"):
        assert rows[0][key]["total_tokens_per_s"] >= rows[0][key]["per_process_tokens_per_s"] > 0
