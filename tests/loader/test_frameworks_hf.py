"""Issue 18, findings 3 and 4: Hugging Face Trainer / Accelerate on make_dataloader.

- ``labels="hf"``: the loss a GPT-2 computes from ``model(**batch)`` is next-token cross entropy (before, our
  shifted labels were shifted again: token t+2), and nothing but ``input_ids``/``labels`` reaches the model.
- `ShardstoreTrainer` resumes exactly: SIGKILL after step 25, resume from checkpoint-20, clean stop at 30, resume
  to 40, workers 0 and 2, and on 2 gloo ranks under torchrun; per-step ``input_ids`` hashes equal a plain
  uninterrupted iteration (before: a crash in accelerate's SkipBatchSampler, or a restart at batch 1).
- ``accelerator.prepare(loader)`` and ``skip_first_batches(loader, n)`` fail with `LoaderRebuiltError`.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import fw_hf
import pytest
import torch
from gpt_fixtures import make_mix, one_torch_thread, read_jsonl  # noqa: F401 (autouse)

from shardstore.errors import ConfigError, LoaderRebuiltError, StateError
from shardstore.torch import make_dataloader
from shardstore.torch.hf import STATE_FILE

pytestmark = pytest.mark.slow

STEPS = 40


@pytest.fixture(scope="module")
def mix(tmp_path_factory) -> Path:
    return make_mix(tmp_path_factory.mktemp("hf_data"), seq_len=16)


def reference(mix: Path, *, batch_size: int, steps: int, ranks: int = 1) -> dict[tuple[int, int], str]:
    loader = make_dataloader(mix, batch_size=batch_size * ranks, max_steps=steps)
    out = {}
    for step, batch in enumerate(loader, start=1):
        for r in range(ranks):
            out[step, r] = fw_hf.input_hash(batch["input_ids"][r * batch_size : (r + 1) * batch_size])
    return out


def logged(out: Path) -> dict[tuple[int, int], str]:
    return {(r["step"], r["rank"]): r["hash"] for r in read_jsonl(out / "hashes.jsonl")}


def test_hf_labels_give_the_model_a_next_token_target(mix) -> None:
    model = fw_hf.tiny_gpt2()
    old = next(iter(make_dataloader(mix, batch_size=4)))
    batch = next(iter(make_dataloader(mix, batch_size=4, labels="hf")))
    assert set(batch) == {"input_ids", "labels"}  # no source_ids for model(**batch)
    assert torch.equal(batch["input_ids"], old["input_ids"])
    out = model(**batch)
    vocab = out.logits.shape[-1]
    next_token = torch.nn.functional.cross_entropy(
        out.logits[:, :-1].reshape(-1, vocab), batch["input_ids"][:, 1:].reshape(-1)
    )
    torch.testing.assert_close(out.loss, next_token)
    # the old labels, fed to the same model, are the token after the next one
    assert torch.equal(old["labels"][:, 1:-1], batch["input_ids"][:, 2:])
    shifted_twice = model(input_ids=old["input_ids"], labels=old["labels"]).loss
    t_plus_2 = torch.nn.functional.cross_entropy(
        out.logits[:, :-1].reshape(-1, vocab), old["labels"][:, 1:].reshape(-1)
    )
    torch.testing.assert_close(shifted_twice, t_plus_2)


def test_hf_doc_masked_labels_ignore_cross_document_targets(mix) -> None:
    plain = next(iter(make_dataloader(mix, batch_size=8, doc_info="position_ids")))
    masked = next(iter(make_dataloader(mix, batch_size=8, labels="hf_doc_masked")))
    assert set(masked) == {"input_ids", "labels"}  # position_ids were read for the mask only
    starts = plain["position_ids"] == 0
    assert starts[:, 1:].any()  # some window crosses a document boundary
    assert torch.equal(masked["labels"] == -100, starts)
    assert torch.equal(masked["labels"][~starts], plain["input_ids"][~starts])
    model = fw_hf.tiny_gpt2()
    out = model(**masked)
    vocab = out.logits.shape[-1]
    target = masked["input_ids"][:, 1:].masked_fill(starts[:, 1:], -100)
    want = torch.nn.functional.cross_entropy(out.logits[:, :-1].reshape(-1, vocab), target.reshape(-1))
    torch.testing.assert_close(out.loss, want)
    with_pos = next(iter(make_dataloader(mix, batch_size=8, labels="hf_doc_masked", doc_info="position_ids")))
    assert torch.equal(with_pos["position_ids"], plain["position_ids"])


def test_trainer_refuses_next_labels_and_a_bad_labels_option(mix, tmp_path) -> None:
    with pytest.raises(ConfigError, match="labels='hf'"):
        fw_hf.make_trainer(mix, tmp_path, max_steps=1, labels="next")
    with pytest.raises(ConfigError, match="labels='hf_shifted' must be one of"):
        make_dataloader(mix, batch_size=2, labels="hf_shifted")


def killed_run(mix: Path, out: Path, num_workers: int) -> int:
    child = multiprocessing.get_context("fork").Process(
        target=fw_hf.train, args=(mix, out), kwargs=dict(max_steps=STEPS, num_workers=num_workers, kill_at=25)
    )
    child.start()
    child.join(120)
    return child.exitcode if child.exitcode is not None else -1


@pytest.mark.parametrize("num_workers", [0, 2])
def test_trainer_resume_is_exact_after_sigkill_and_clean_stop(mix, tmp_path, num_workers) -> None:
    out = tmp_path / "run"
    assert killed_run(mix, out, num_workers) == -9
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-20"]
    assert (out / "checkpoint-20" / STATE_FILE).is_file()
    fw_hf.train(mix, out, max_steps=30, num_workers=num_workers, resume=True)  # the last one: checkpoint-20
    fw_hf.train(mix, out, max_steps=STEPS, num_workers=num_workers, resume=str(out / "checkpoint-30"))
    rows = read_jsonl(out / "hashes.jsonl")
    assert [r["step"] for r in rows] == list(range(1, 26)) + list(range(21, STEPS + 1))
    assert all(
        r["labels_are_inputs"] and r["keys"] == ["input_ids", "labels", "num_items_in_batch"] for r in rows
    )  # the last: Trainer's
    assert logged(out) == reference(mix, batch_size=4, steps=STEPS)


def test_trainer_refuses_a_checkpoint_without_loader_state(mix, tmp_path) -> None:
    fw_hf.train(mix, tmp_path, max_steps=10)
    (tmp_path / "checkpoint-10" / STATE_FILE).unlink()
    with pytest.raises(StateError, match=f"checkpoint-10/{STATE_FILE} is missing"):
        fw_hf.train(mix, tmp_path, max_steps=20, resume=True)


def test_trainer_torchrun_two_ranks_resume_exactly(mix, tmp_path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += [fw_hf.__file__, str(mix), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = read_jsonl(tmp_path / "hashes.jsonl")
    assert sorted((r["step"], r["rank"]) for r in rows) == [(s, r) for s in range(1, 21) for r in range(2)]
    assert logged(tmp_path) == reference(mix, batch_size=4, steps=20, ranks=2)


def test_accelerate_prepare_and_skip_first_batches_fail_clearly(mix) -> None:
    from accelerate import Accelerator, skip_first_batches

    prepared = Accelerator(cpu=True).prepare(make_dataloader(mix, batch_size=2))
    with pytest.raises(LoaderRebuiltError, match="prepare"):
        next(iter(prepared))
    skipping = skip_first_batches(make_dataloader(mix, batch_size=2), 3)
    with pytest.raises(LoaderRebuiltError, match="skip_first_batches"):
        next(iter(skipping))
