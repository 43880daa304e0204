"""`shardstore info` and `shardstore verify` on real stores, through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from test_store_util import random_docs, write_store

from shardstore.cli import main
from shardstore.store import format as fmt
from shardstore.store.manifest import TokenizerInfo

TEXTS = ["hello world", "", "the quick brown fox", "héllo, wörld!"]


@pytest.fixture
def tok_store(tmp_path):
    from tokenizer import Tokenizer

    tok = Tokenizer.from_merges([(b"h", b"e"), (b"l", b"l"), (b"he", b"ll")])
    tok.save(tmp_path / "tok.json")
    docs = [np.asarray(tok.encode(t), dtype=np.uint16) for t in TEXTS]
    write_store(
        tmp_path / "s",
        docs,
        tokenizer=TokenizerInfo.from_tokenizer(tok),
        aux_files={"tokenizer.json": (tmp_path / "tok.json").read_bytes()},
    )
    return tmp_path / "s", tok


def test_info_json(tok_store, capsys):
    root, tok = tok_store
    assert main(["info", str(root), "--json", "--doc", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["num_docs"] == 4 and out["num_shards"] == 1 and out["dtype"] == "uint16"
    assert out["num_tokens"] == sum(len(tok.encode(t)) for t in TEXTS)
    assert out["tokenizer_fingerprint"] == tok.fingerprint and out["eos_id"] == tok.eos_id
    assert len(out["fingerprint"]) == 64
    assert out["doc"]["text"] == TEXTS[3] and out["doc"]["num_tokens"] == len(tok.encode(TEXTS[3]))


def test_info_text(tok_store, capsys):
    root, _ = tok_store
    assert main(["info", str(root), "--doc", "2"]) == 0
    out = capsys.readouterr().out
    assert "num_docs: 4" in out and "doc 2:" in out and TEXTS[2] in out and "tokenizer.json" in out


def test_info_errors(tmp_path, capsys):
    assert main(["info", str(tmp_path)]) == 1
    assert "no manifest" in capsys.readouterr().err
    write_store(tmp_path / "s", random_docs(1, 3))
    assert main(["info", str(tmp_path / "s"), "--doc", "3"]) == 2
    assert "document 3 is outside 0..2" in capsys.readouterr().err


def test_verify_ok_and_corrupt(tmp_path):
    manifest = write_store(tmp_path, random_docs(2, 40), max_shard_bytes=32 << 10)
    cmd = [sys.executable, "-m", "shardstore", "verify", str(tmp_path)]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and ok.stdout.startswith("OK") and manifest.fingerprint in ok.stdout
    info = manifest.shards[1]
    with open(tmp_path / info.name, "r+b") as f:
        f.seek(fmt.HEADER_SIZE + 4096 * 2 + 5)
        f.write(b"\xee")
    with open(tmp_path / manifest.shards[2].name, "r+b") as f:
        f.truncate(5000)
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    lines = bad.stdout.splitlines()
    assert any(info.name in ln and "block 2, byte offset 12288" in ln for ln in lines), lines
    assert any(manifest.shards[2].name in ln and "truncated" in ln for ln in lines), lines
    (tmp_path / "manifest.json").write_bytes(
        (tmp_path / "manifest.json").read_bytes().replace(b'"uint16"', b'"uint32"')
    )
    broken = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert broken.returncode == 1 and "manifest.json" in broken.stdout


def test_verify_reports_manifest_flips_and_missing_files(tmp_path, capsys):
    write_store(tmp_path, random_docs(3, 10), aux_files={"notes.txt": b"hi"})
    original = (tmp_path / "manifest.json").read_bytes()
    rng = np.random.default_rng(0)
    for bit in rng.integers(0, len(original) * 8, size=40).tolist():
        flipped = bytearray(original)
        flipped[bit // 8] ^= 1 << (bit % 8)
        (tmp_path / "manifest.json").write_bytes(bytes(flipped))
        assert main(["verify", str(tmp_path)]) == 1, bit
        assert "FAILED" in capsys.readouterr().out
    (tmp_path / "manifest.json").write_bytes(original)
    assert main(["verify", str(tmp_path)]) == 0
    capsys.readouterr()
    (tmp_path / "notes.txt").unlink()
    assert main(["verify", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FAILED notes.txt" in out
