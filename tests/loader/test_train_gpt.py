"""benchmarks/train_gpt.py on CPU: a few real steps from make_dataloader, and resume = identical stream and losses;
the console lines (loss per source, data wait) for any --log-every, --json, and --plot."""

from __future__ import annotations

import json
import math
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from gpt_fixtures import (  # noqa: F401 (one_torch_thread: autouse)
    ROOT,
    TRAIN_GPT,
    load_train_gpt,
    make_mix,
    one_torch_thread,
    read_jsonl,
)


@pytest.fixture(scope="module")
def mix(tmp_path_factory):
    return make_mix(tmp_path_factory.mktemp("gptdata"))


@pytest.fixture(scope="module")
def heldout_mix(mix):
    """The same stores with 5% of each source's documents held out (issue 20's split)."""
    path = mix.parent / "heldout.toml"
    text = mix.read_text()
    for w in ("0.7", "0.3"):
        text = text.replace(f"weight = {w}\n", f"weight = {w}\nheldout = 0.05\n")
    path.write_text(text)
    return path


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
        # the wait of a batch is spent before its step (in the previous one, or before step 1): not inside step_s
        assert r["data_wait_s"] >= 0 and r["step_s"] > 0
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


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def _source_ids_per_step(mix: Path, steps: int, batch_size: int) -> list[list[int]]:
    """What the loader hands the loop, read independently of train_gpt: each batch's source ids."""
    from shardstore import Mixture
    from shardstore.torch import make_dataloader

    it = iter(make_dataloader(Mixture.from_file(mix), batch_size=batch_size))
    return [next(it)["source_ids"].tolist() for _ in range(steps)]


def _heldout_counts(mix: Path, batch_size: int) -> dict[str, int]:
    """Label positions of each source in one pass of the eval loader, from its loss_mask (padding excluded)."""
    from shardstore import Mixture
    from shardstore.torch import make_dataloader

    counts = {"code": 0, "text": 0}
    for b in make_dataloader(Mixture.from_file(mix), split="heldout", batch_size=batch_size):
        for sid, n in zip(b["source_ids"].tolist(), b["loss_mask"].sum(1).tolist(), strict=True):
            if sid >= 0:
                counts[["code", "text"][sid]] += n
    return counts


def test_json_lines_average_each_window_for_a_log_every_that_does_not_divide_the_steps(
    heldout_mix, tmp_path, capsys
):
    tg = load_train_gpt()
    png = tmp_path / "loss.png"
    cfg = _cfg(tg, heldout_mix, tmp_path, "win", steps=7, log_every=3, eval_every=3, print_json=True)
    cfg.plot = str(png)
    summary = tg.train(cfg)
    out = _json_lines(capsys.readouterr().out)  # every console line is JSON with --json
    header, *lines, _ = out
    heldout = [ln for ln in lines if "heldout_loss" in ln]
    lines = [ln for ln in lines if "window" in ln]
    assert header["model"] == "tiny" and (header["from_step"], header["to_step"]) == (0, 7)
    assert summary["steps"] == 7 and summary["tokens_per_s"] > 0
    assert [ln["window"] for ln in lines] == [[1, 3], [4, 6], [7, 7]]

    # held-out loss per source every 3 steps and at the end, over every held-out label position once
    assert [h["step"] for h in heldout] == [3, 6, 7] and summary["heldout"] == heldout[-1]
    assert summary["heldout_s"] > 0
    expected_tokens = _heldout_counts(heldout_mix, 4)
    for h in heldout:
        assert h["heldout_tokens"] == expected_tokens
        assert all(math.isfinite(v) for v in h["heldout_source_loss"].values())
        total = sum(h["heldout_source_loss"][n] * expected_tokens[n] for n in expected_tokens)
        assert h["heldout_loss"] == pytest.approx(total / sum(expected_tokens.values()), rel=1e-5)
    assert heldout[0]["heldout_loss"] != heldout[1]["heldout_loss"]  # the model moved in between

    steps = [r for r in read_jsonl(tmp_path / "win.metrics.jsonl") if "window" not in r and "loss" in r]
    assert [r for r in read_jsonl(tmp_path / "win.metrics.jsonl") if "heldout_loss" in r] == heldout
    sids = _source_ids_per_step(heldout_mix, 7, 4)
    names = ["code", "text"]
    for r, ids in zip(
        steps, sids, strict=True
    ):  # tokens grouped by the batch's source ids (all labels valid)
        assert r["source_tokens"] == {n: ids.count(i) * 32 for i, n in enumerate(names)}
    for ln in lines:
        first, last = ln["window"]
        win = steps[first - 1 : last]
        assert ln["step"] == last
        # data wait and step time: the mean over the window's steps, not the last step's
        assert ln["data_wait_ms"] == pytest.approx(sum(r["data_wait_s"] for r in win) / len(win) * 1e3)
        assert ln["step_ms"] == pytest.approx(sum(r["step_s"] for r in win) / len(win) * 1e3)
        assert ln["gpu_data_gap_ms"] is None  # CPU: no CUDA events
        # loss per token of each source over the window: token-weighted, not a mean of step means
        for n in names:
            tokens = sum(r["source_tokens"][n] for r in win)
            assert ln["source_tokens"][n] == tokens
            expected = sum(r["source_loss"][n] * r["source_tokens"][n] for r in win if r["source_tokens"][n])
            assert ln["source_loss"][n] == pytest.approx(expected / tokens, rel=1e-5)
        total = sum(sum(r["source_tokens"].values()) for r in win)
        assert total == len(win) * 4 * 32
        assert ln["loss"] == pytest.approx(
            sum(r["loss"] * sum(r["source_tokens"].values()) for r in win) / total, rel=1e-5
        )
    # --plot: the loss per source over steps, 800 x 450 pixels, not blank
    from shardstore.cli.plots import DPI, FIGSIZE

    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI))
    import matplotlib.image

    assert matplotlib.image.imread(png).std() > 0


LINE = re.compile(
    r"^step (\d+)(?: \((\d+)-(\d+)\))? \| loss \d+\.\d{4} \| code \d+\.\d{4} text \d+\.\d{4} \| "
    r"data wait \d+\.\d\d ms/step \| \d+\.\d ms/step$"
)


def test_text_lines_at_log_every_2_and_after_a_resume(mix, tmp_path, capsys):
    tg = load_train_gpt()
    ckpt = tmp_path / "ckpt"
    tg.train(_cfg(tg, mix, tmp_path, "a", steps=3, log_every=2, ckpt_dir=str(ckpt), ckpt_every=3))
    tg.train(_cfg(tg, mix, tmp_path, "a", steps=6, log_every=2, ckpt_dir=str(ckpt), resume=True))
    lines = [m.groups() for m in map(LINE.match, capsys.readouterr().out.splitlines()) if m]
    # the first run: steps 1-2, then the last step alone; the resumed one starts its window after step 3
    assert lines == [("2", "1", "2"), ("3", None, None), ("4", None, None), ("6", "5", "6")]


def test_bad_log_every_and_plot_name_are_refused_before_training(mix, tmp_path):
    tg = load_train_gpt()
    with pytest.raises(SystemExit, match="--log-every must be >= 1, got 0"):
        tg.train(_cfg(tg, mix, tmp_path, "x", log_every=0))
    with pytest.raises(SystemExit, match="writes a PNG file"):
        tg.train(_cfg(tg, mix, tmp_path, "x", plot=str(tmp_path / "loss.pdf")))
    assert not (tmp_path / "x.metrics.jsonl").exists()


def test_plot_without_matplotlib_says_how_to_install_before_training(mix, tmp_path):
    code = (
        "import runpy, sys\n"
        "sys.modules['matplotlib'] = None  # as if not installed: its import raises ImportError\n"
        f"sys.argv = ['train_gpt.py', '--mix', {str(mix)!r}, '--device', 'cpu', '--plot', 'loss.png']\n"
        f"runpy.run_path({str(TRAIN_GPT)!r}, run_name='__main__')\n"
    )
    env = {"PYTHONPATH": f"{ROOT}:{TRAIN_GPT.parent}", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 1, proc.stderr
    assert "pip install 'shardstore[plot]'" in proc.stderr and "Traceback" not in proc.stderr
    assert "step" not in proc.stdout and not (tmp_path / "loss.png").exists()


def test_source_loss_benchmark_runs_on_cpu(capsys):
    """benchmarks/bench_source_loss.py (the per-source accounting figure in RESULTS.md) for a moment."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_source_loss as bench

    args = ["--batch-size", "2", "--seq-len", "16", "--vocab", "256", "--warmup", "1", "--steps", "1"]
    assert bench.main([*args, "--rounds", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["step"]["mean_ms"] > 0 and out["step"]["per_source_ms"] > 0
    assert [h["sources"] for h in out["host"]] == [2, 8, 32] and all(
        h["us_per_step"] > 0 for h in out["host"]
    )


def test_evaluate_is_the_loss_per_label_of_each_source_over_the_loss_mask(heldout_mix):
    """`evaluate` against a row-by-row reference: padding rows (source -1) and padded positions count nothing."""
    import contextlib

    import torch

    from shardstore import Mixture
    from shardstore.torch import make_dataloader

    tg = load_train_gpt()  # puts benchmarks/ on sys.path for gpt_model
    from gpt_model import GPT, model_config

    torch.manual_seed(0)
    model = GPT(model_config("tiny", data_vocab=512, seq_len=32))
    loader = make_dataloader(Mixture.from_file(heldout_mix), split="heldout", batch_size=4)
    d = tg.Dist(0, 1, torch.device("cpu"))
    sums, counts = tg.evaluate(model, loader, 2, d, contextlib.nullcontext())
    assert model.training  # back in training mode

    ref_sum, ref_cnt = [0.0, 0.0], [0, 0]
    short = 0  # windows with padded positions: each source's last one
    with torch.no_grad():
        for b in loader:
            for i, sid in enumerate(b["source_ids"].tolist()):
                n = int(b["loss_mask"][i].sum())
                if sid < 0:  # a padding row of the last batch
                    assert n == 0
                    continue
                short += n < 32
                x, y = b["input_ids"][i : i + 1], b["labels"][i : i + 1]
                mean = model(x, y, torch.zeros(1, dtype=torch.int64), 1)[0]
                ref_sum[sid] += float(mean) * n
                ref_cnt[sid] += n
    assert short >= 1  # the fixture exercises padding
    assert counts.tolist() == ref_cnt
    assert sums.tolist() == pytest.approx(ref_sum, rel=1e-5)


@pytest.mark.slow
def test_heldout_loss_under_ddp_equals_one_process(heldout_mix, tmp_path):
    """2 gloo ranks split the eval loader without overlap and all-reduce: the same tokens and loss as 1 rank."""
    import os

    tg = load_train_gpt()
    ref = tg.train(_cfg(tg, heldout_mix, tmp_path, "one", steps=2, eval_every=2))["heldout"]
    args = [f"--mix={heldout_mix}", "--steps=2", "--batch-size=4", "--device=cpu", "--compile=off"]
    args += ["--eval-every=2", "--json", f"--metrics-log={tmp_path / 'two.jsonl'}"]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(TRAIN_GPT),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    (two,) = [r for r in read_jsonl(tmp_path / "two.jsonl") if "heldout_loss" in r]
    assert two["heldout_tokens"] == ref["heldout_tokens"] == _heldout_counts(heldout_mix, 4)
    for name, loss in ref["heldout_source_loss"].items():  # DDP's gradient average: equal up to rounding
        assert two["heldout_source_loss"][name] == pytest.approx(loss, rel=1e-4)
    printed = _json_lines(proc.stdout)  # rank 0 alone prints: its lines, JSON with --json
    assert [r["step"] for r in printed if "heldout_loss" in r] == [2]
    assert printed[-1]["world_size"] == 2 and printed[-1]["heldout"] == two
