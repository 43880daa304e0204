"""`shardstore build` on the command line: options reach the pipeline, errors are one line + exit 1."""

from __future__ import annotations

import gzip
import json
import os

import pytest
from test_build_support import train_tokenizer

from shardstore.cli import main
from shardstore.store.store import Store


@pytest.fixture(scope="module")
def tok_path(tmp_path_factory):
    return train_tokenizer(tmp_path_factory.mktemp("tok") / "tok.json")


def _run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_build_json_report_info_doc_and_rerun(tmp_path, tok_path, capsys):
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.jsonl").write_text('{"body": "first doc"}\n{"body": "second doc"}\n{"text": "no body"}\n')
    out = tmp_path / "st"
    common = [
        d,
        "--tokenizer",
        tok_path,
        "--out",
        out,
        "--text-field",
        "body",
        "--no-progress",
        "--workers",
        "1",
    ]
    code, stdout, err = _run(capsys, "build", *common, "--json")
    assert code == 0, err
    report = json.loads(stdout)
    assert report["num_docs"] == 2 and report["skipped"] == {"missing_text_field": 1} and report["complete"]
    code, stdout, _ = _run(capsys, "info", out, "--doc", 1)
    assert code == 0 and '"record": 1' in stdout and "a.jsonl" in stdout
    code, stdout, _ = _run(capsys, "build", *common)
    assert code == 0 and "nothing to do" in stdout


def test_split_on_no_eos_and_utf8_skip(tmp_path, tok_path, capsys):
    import tokenizer

    tok = tokenizer.Tokenizer.load(tok_path)
    (tmp_path / "a.txt").write_bytes(b"para one\n\npara \xff two\n\npara three")
    out = tmp_path / "st"
    args = ["build", tmp_path / "a.txt", "--tokenizer", tok_path, "--out", out, "--no-progress"]
    code, stdout, err = _run(capsys, *args, "--split-on", r"\n\n", "--no-eos", "--utf8-errors", "skip")
    assert code == 0, err
    assert "invalid_utf8=1" in stdout
    store = Store.open(out)
    assert [tok.decode(store.doc(i)) for i in range(store.num_docs)] == ["para one", "para three"]


def test_failed_input_exits_1_with_one_line_then_allow_partial(tmp_path, tok_path, capsys):
    d = tmp_path / "in"
    d.mkdir()
    (d / "good.jsonl").write_text('{"text": "fine"}\n')
    blob = gzip.compress(b'{"text": "x y z"}\n' * 20000)
    (d / "bad.jsonl.gz").write_bytes(blob[:200])
    out = tmp_path / "st"
    args = ["build", d, "--tokenizer", tok_path, "--out", out, "--no-progress"]
    code, _, err = _run(capsys, *args)
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("shardstore: error:")]
    assert len(lines) == 1 and "bad.jsonl.gz" in lines[0] and "--allow-partial" in lines[0]
    assert not (out / "manifest.json").exists()
    code, stdout, _ = _run(capsys, *args, "--allow-partial")
    assert code == 0 and "FAILED" in stdout and "partial" in stdout
    assert Store.open(out).num_docs == 1


def test_bad_arguments_are_clear(tmp_path, tok_path, capsys):
    code, _, err = _run(
        capsys, "build", tmp_path / "missing.jsonl", "--tokenizer", tok_path, "--out", tmp_path / "s"
    )
    assert code == 1 and "does not exist" in err
    (tmp_path / "a.txt").write_text("x")
    code, _, err = _run(
        capsys, "build", tmp_path / "a.txt", "--tokenizer", tok_path, "--out", tmp_path / "s",
        "--num-nodes", "2", "--node-rank", "2",
    )  # fmt: skip
    assert code == 1 and "node_rank=2" in err
    code, _, err = _run(
        capsys, "build", tmp_path / "a.txt", "--tokenizer", tok_path, "--out", tmp_path / "s",
        "--storage-options", "[1]",
    )  # fmt: skip
    assert code == 1 and "JSON object" in err


def test_cli_runs_blas_on_one_thread_unless_told(monkeypatch, capsys):
    """numpy's OpenBLAS would start a spinning thread per core in every build process (~0.1 CPU-s each, measured)."""
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    assert main(["--version"]) == 0
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    assert main(["--version"]) == 0
    assert os.environ["OPENBLAS_NUM_THREADS"] == "3"
