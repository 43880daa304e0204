"""`shardstore tokenizer train|export|encode` through `shardstore.cli.main`, plus one real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import tokenizer
from shardstore.cli import main

CORPUS = [
    "The quick brown fox jumps over the lazy dog. It's 2024!\n",
    "def tokenize(text):\n    return [ord(c) for c in text]  # bytes\n",
    "Über naïve café — 日本語のテキスト, ünïcödé; tabs\tand  spaces\n\n",
    "the the the quick quick fox fox fox 12345 67890\n",
] * 5
SAMPLE = "The naïve fox's café: 123456 tokens!\n\tdef f(x):  return x  # 日本語 <|endoftext|>"


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    d = tmp_path / "corpus"
    d.mkdir()
    for i, text in enumerate(CORPUS):
        (d / f"{i:02d}.txt").write_text(text, encoding="utf-8")
    return d


@pytest.fixture
def tok_path(tmp_path: Path, corpus_dir: Path) -> Path:
    out = tmp_path / "tok.json"
    assert (
        main(
            ["tokenizer", "train", str(corpus_dir), "--vocab-size", "320", "--out", str(out), "--no-progress"]
        )
        == 0
    )
    return out


def test_train_writes_the_same_tokenizer_as_the_library(tok_path: Path) -> None:
    tok = tokenizer.Tokenizer.load(tok_path)
    expected = tokenizer.train(CORPUS, vocab_size=320, progress=False)
    assert tok.fingerprint == expected.fingerprint


def test_train_options_reach_the_trainer(
    tmp_path: Path, corpus_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text("".join(json.dumps({"body": t}) + "\n" for t in CORPUS), encoding="utf-8")
    out = tmp_path / "gpt2.json"
    args = ["tokenizer", "train", str(jsonl), "--vocab-size", "300", "--out", str(out), "--pattern", "gpt2"]
    args += ["--workers", "2", "--text-field", "body", "--min-frequency", "3", "--special-token", "<|a|>"]
    args += ["--special-token", "<|b|>", "--no-progress"]
    assert main(args) == 0
    tok = tokenizer.Tokenizer.load(out)
    expected = tokenizer.train(
        CORPUS,
        vocab_size=300,
        pattern="gpt2",
        min_frequency=3,
        special_tokens=("<|a|>", "<|b|>"),
        progress=False,
    )
    assert tok.fingerprint == expected.fingerprint
    assert tok.special_tokens == {"<|a|>": 298, "<|b|>": 299}
    assert capsys.readouterr().out.strip() == (
        f"wrote {out}: vocab_size=300 merges={len(tok.merges)} eos_id=298 fingerprint={tok.fingerprint}"
    )


def test_train_split_on_makes_documents_of_one_txt_file(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("\n\n".join(CORPUS), encoding="utf-8")
    out = tmp_path / "split.json"
    args = ["tokenizer", "train", str(big), "--vocab-size", "320", "--out", str(out), "--split-on", "\\n\\n"]
    assert main([*args, "--no-progress"]) == 0
    docs = "\n\n".join(CORPUS).split("\n\n")
    expected = tokenizer.train(docs, vocab_size=320, progress=False)
    assert tokenizer.Tokenizer.load(out).fingerprint == expected.fingerprint
    whole = tokenizer.train(["\n\n".join(CORPUS)], vocab_size=320, progress=False)
    assert whole.fingerprint != expected.fingerprint  # the separator really split the file


def test_train_from_s3_urls(s3_server, corpus_dir: Path, tmp_path: Path) -> None:
    import s3fs

    bucket = s3_server.new_bucket()
    fs = s3fs.S3FileSystem(**s3_server.storage_options)
    fs.put(str(corpus_dir) + "/", f"{bucket}/corpus/", recursive=True)
    out = tmp_path / "s3.json"
    args = ["tokenizer", "train", f"s3://{bucket}/corpus/", "--vocab-size", "320", "--out", str(out)]
    args += ["--storage-options", json.dumps(s3_server.storage_options), "--no-progress"]
    assert main(args) == 0
    expected = tokenizer.train(CORPUS, vocab_size=320, progress=False)
    assert tokenizer.Tokenizer.load(out).fingerprint == expected.fingerprint


def test_export_tiktoken_encodes_identically(tok_path: Path, tmp_path: Path, capsys) -> None:
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    out = tmp_path / "tok.tiktoken"
    capsys.readouterr()
    assert main(["tokenizer", "export", str(tok_path), "--format", "tiktoken", "--out", str(out)]) == 0
    meta = json.loads(capsys.readouterr().out)
    ranks = load_tiktoken_bpe(str(out))
    enc = tiktoken.Encoding(
        "shardstore-test",
        pat_str=meta["pat_str"],
        mergeable_ranks=ranks,
        special_tokens=meta["special_tokens"],
    )
    tok = tokenizer.Tokenizer.load(tok_path)
    assert len(ranks) == tok.vocab_size - 1
    for text in [SAMPLE, *CORPUS[:4]]:
        assert enc.encode_ordinary(text) == tok.encode(text)
    assert enc.encode("<|endoftext|>", allowed_special="all") == [tok.eos_id]


def test_export_hf_encodes_identically(tok_path: Path, tmp_path: Path) -> None:
    from tokenizers import Tokenizer as HFTokenizer

    out = tmp_path / "tokenizer.json"
    assert main(["tokenizer", "export", str(tok_path), "--format", "hf", "--out", str(out)]) == 0
    hf = HFTokenizer.from_file(str(out))
    tok = tokenizer.Tokenizer.load(tok_path)
    for text in [SAMPLE.replace("<|endoftext|>", ""), *CORPUS[:4]]:
        assert hf.encode(text).ids == tok.encode(text)


def test_encode_prints_ids(tok_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tok = tokenizer.Tokenizer.load(tok_path)
    capsys.readouterr()
    assert main(["tokenizer", "encode", str(tok_path), SAMPLE]) == 0
    assert capsys.readouterr().out.split() == [str(i) for i in tok.encode(SAMPLE)]
    assert main(["tokenizer", "encode", str(tok_path), "--allow-special", "<|endoftext|>"]) == 0
    assert capsys.readouterr().out.split() == [str(tok.eos_id)]


def test_encode_stdin_in_a_real_process(tok_path: Path) -> None:
    cmd = [sys.executable, "-m", "shardstore", "tokenizer", "encode", str(tok_path), "-"]
    done = subprocess.run(cmd, input=SAMPLE.encode("utf-8"), capture_output=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    tok = tokenizer.Tokenizer.load(tok_path)
    assert done.stdout.decode().split() == [str(i) for i in tok.encode(SAMPLE)]

    bad = subprocess.run(cmd, input=b"ok \xff\xfe", capture_output=True, check=False, timeout=120)
    assert bad.returncode == 1
    assert bad.stderr.decode().strip().splitlines() == [
        "shardstore: error: stdin is not valid UTF-8: invalid start byte at byte offset 3; pass UTF-8 text"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["train", "{corpus}", "--vocab-size", "100", "--out", "{tmp}/t.json"],
            "vocab_size=100 is too small",
        ),
        (["train", "{tmp}/missing.txt", "--vocab-size", "300", "--out", "{tmp}/t.json"], "missing.txt"),
        (
            ["train", "{corpus}", "--vocab-size", "300", "--out", "{tmp}/t.json", "--pattern", "(x"],
            "does not compile",
        ),
        (
            ["train", "{corpus}", "--vocab-size", "300", "--out", "{tmp}/t.json", "--workers", "0"],
            "num_threads=0",
        ),
        (
            ["train", "{corpus}", "--vocab-size", "300", "--out", "{tmp}/t.json", "--storage-options", "[1]"],
            "JSON",
        ),
        (["encode", "{tmp}/nope.json", "x"], "nope.json"),
        (["export", "{tmp}/nope.json", "--format", "hf", "--out", "{tmp}/x"], "nope.json"),
    ],
)
def test_errors_exit_nonzero_with_one_line(
    args: list[str], message: str, corpus_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["tokenizer", *(a.format(corpus=corpus_dir, tmp=tmp_path) for a in args), "--no-progress"]
    if args[0] != "train":
        argv.remove("--no-progress")
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("shardstore: error: ") and message in err[0]


@pytest.mark.parametrize("command", [[], ["train"], ["export"], ["encode"]])
def test_help_everywhere(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tokenizer", *command, "--help"]) == 0
    assert "Usage:" in capsys.readouterr().out
