"""`shardstore mask write|show`, `verify` of masks, `mix plan --json` counts and `mix check-heldout`, through main."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from storeutil import make_docs, write_store
from test_build_support import train_tokenizer

import shardstore
from shardstore.cli import main
from shardstore.store.mask import mask_file_name, read_mask
from shardstore.store.provenance import read_provenance
from shardstore.store.store import Store


def _out(capsys) -> str:
    return capsys.readouterr().out


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    docs = make_docs(2, 200, min_len=3, max_len=30)
    docs += docs[:20]  # 20 exact copies at the end: held-out content that must not stay in training
    write_store(tmp_path / "st", docs)
    return tmp_path / "st"


def test_mask_write_from_ids_and_show(store_dir: Path, tmp_path: Path, capsys) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("# dups\n3\t dup of 1\n7\n3\n150\tleak of eval E item 2\n")
    out = tmp_path / "m.mask"
    assert (
        main(["mask", "write", str(store_dir), "--ids", str(ids), "--out", str(out), "--reason", "bad"]) == 0
    )
    assert "3 of 220 documents excluded" in _out(capsys)
    m = read_mask(out)
    assert m.excluded_ids().tolist() == [3, 7, 150]
    assert [m.reason(i) for i in (3, 7, 150)] == ["dup of 1", "bad", "leak of eval E item 2"]
    assert main(["mask", "show", str(out), "--json"]) == 0
    shown = json.loads(_out(capsys))
    assert shown["num_excluded"] == 3 and shown["store_fingerprint"] == Store.open(store_dir).fingerprint
    assert shown["reasons"] == {"dup of 1": 1, "bad": 1, "leak of eval E item 2": 1}
    assert shown["first_ids"] == [3, 7, 150] and shown["fingerprint"] == m.fingerprint
    assert main(["mask", "show", str(out)]) == 0
    assert "excluded 3 documents (1.36%)" in _out(capsys)
    maskdir = str(tmp_path / "maskdir") + "/"  # a MASKDIR: written as <store fingerprint>.mask
    assert (
        main(["mask", "write", str(store_dir), "--ids", str(ids), "--out", maskdir, "--reason", "bad"]) == 0
    )
    assert read_mask(Path(maskdir) / mask_file_name(m.store_fingerprint)).fingerprint == m.fingerprint


def test_mask_write_errors_are_one_line(store_dir: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "bad.txt").write_text("12\nabc\n")
    assert main(["mask", "write", str(store_dir), "--ids", str(tmp_path / "bad.txt"), "--out", "x.mask"]) == 1
    assert "bad.txt:2: expected a document id" in capsys.readouterr().err
    (tmp_path / "big.txt").write_text("220\n")
    assert main(["mask", "write", str(store_dir), "--ids", str(tmp_path / "big.txt"), "--out", "x.mask"]) == 1
    assert "outside the store's [0, 220)" in capsys.readouterr().err
    assert main(["mask", "write", str(store_dir), "--out", "x.mask"]) == 1
    assert "exactly one of --ids" in capsys.readouterr().err


def test_mask_write_from_provenance(tmp_path: Path, capsys) -> None:
    tok = train_tokenizer(tmp_path / "tok.json")
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.jsonl").write_text("".join(json.dumps({"text": f"record {i} of a"}) + "\n" for i in range(30)))
    (src / "b.jsonl").write_text("".join(json.dumps({"text": f"record {i} of b"}) + "\n" for i in range(30)))
    shardstore.build([str(src)], tokenizer=tok, out=tmp_path / "st", workers=1, progress=False)
    store = Store.open(tmp_path / "st")
    want = [5, 41]
    records = [read_provenance(store, d) for d in want]
    lines = [
        json.dumps({"file": r["file"], "record": r["record"], "reason": f"takedown {i}"})
        for i, r in enumerate(records)
    ]
    (tmp_path / "recs.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "p.mask"
    assert (
        main(
            [
                "mask",
                "write",
                str(tmp_path / "st"),
                "--provenance",
                str(tmp_path / "recs.jsonl"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    m = read_mask(out)
    assert m.excluded_ids().tolist() == want and m.reason(41) == "takedown 1"
    (tmp_path / "none.jsonl").write_text(json.dumps({"file": records[0]["file"], "record": 999}) + "\n")
    assert (
        main(
            [
                "mask",
                "write",
                str(tmp_path / "st"),
                "--provenance",
                str(tmp_path / "none.jsonl"),
                "--out",
                str(out),
            ]
        )
        == 1
    )
    assert "no document" in capsys.readouterr().err


def test_verify_covers_masks(store_dir: Path, tmp_path: Path, capsys) -> None:
    d = tmp_path / "maskdir"
    d.mkdir()
    fp = Store.open(store_dir).fingerprint
    (tmp_path / "ids.txt").write_text("1\n2\n")
    path = d / mask_file_name(fp)
    assert (
        main(["mask", "write", str(store_dir), "--ids", str(tmp_path / "ids.txt"), "--out", str(path)]) == 0
    )
    capsys.readouterr()
    assert main(["verify", str(path)]) == 0
    assert _out(capsys).startswith(f"OK {path}")
    assert main(["verify", str(store_dir), "--masks", str(d)]) == 0
    assert "mask of 2 documents" in _out(capsys)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    assert main(["verify", str(d)]) == 1
    captured = capsys.readouterr()
    assert (
        "FAILED" in captured.out and "checksum" in captured.out and "1 of 1 mask(s) are bad" in captured.err
    )
    assert main(["verify", str(store_dir), "--masks", str(d)]) == 1


def _mix(tmp_path: Path, store_dir: Path, exclude: str = "") -> Path:
    text = f"""seq_len = 8
seed = 3

[[sources]]
name = "s"
store = "{store_dir}"
weight = 1
heldout = 0.2
{exclude}
"""
    (tmp_path / "mix.toml").write_text(text)
    return tmp_path / "mix.toml"


def test_plan_json_counts_and_check_heldout(store_dir: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "ids.txt").write_text("0\n1\n2\n")
    assert (
        main(
            [
                "mask",
                "write",
                str(store_dir),
                "--ids",
                str(tmp_path / "ids.txt"),
                "--out",
                str(tmp_path / "m.mask"),
            ]
        )
        == 0
    )
    mix = _mix(tmp_path, store_dir, exclude=f'exclude = ["{tmp_path / "m.mask"}"]')
    capsys.readouterr()
    assert main(["mix", "plan", str(mix), "--tokens", "1K", "--json"]) == 0
    row = json.loads(_out(capsys))["sources"][0]
    total = Store.open(store_dir).num_tokens
    assert row["kept_tokens"] + row["excluded_tokens"] + row["heldout_tokens"] == total
    assert row["excluded_tokens"] > 0 and row["heldout_tokens"] > 0
    assert main(["mix", "plan", str(mix), "--tokens", "1K"]) == 0
    assert "held out" in _out(capsys)
    assert main(["mix", "check-heldout", str(mix), "--json"]) == 0
    result = json.loads(_out(capsys))
    assert result["ok"] and result["leaked_docs"] == 0 and result["heldout_docs"] > 0
    assert result["train_tokens"] == row["kept_tokens"]
    assert main(["mix", "check-heldout", str(mix)]) == 0
    assert "OK: the training stream holds no held-out content" in _out(capsys)
    assert main(["stats", str(mix), "--json"]) == 0  # per store of a masked mixture: the stores themselves
    assert json.loads(_out(capsys))["stores"][0]["docs"] == 220


def test_check_heldout_fails_with_the_figure_when_copies_leak(
    store_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    """Break the copy rule on purpose: the scan must catch the exact copies that then reach training."""
    from shardstore.loader import exclusions

    real = exclusions._heldout

    def no_copies(cfg, opened, masked):
        held, copies = real(cfg, opened, masked)
        return held, [[np.zeros(0, dtype=np.int64) for _ in c] for c in copies]

    def no_dup_scores(hashes, seed):  # give the 20 copies other scores than their originals
        from shardstore.mix.keep import heldout_scores

        h = np.asarray(hashes, dtype=np.uint64).copy()
        if h.size == 220:
            h[200:] ^= np.uint64(0x5555)
        return heldout_scores(h, seed)

    monkeypatch.setattr(exclusions, "_heldout", no_copies)
    monkeypatch.setattr(exclusions, "heldout_scores", no_dup_scores)
    mix = _mix(tmp_path, store_dir)
    assert main(["mix", "check-heldout", str(mix)]) == 1
    captured = capsys.readouterr()
    leaked = int(captured.out.split("held-out content in the training stream: ")[1].split()[0])
    assert leaked > 0
    assert (
        f"{leaked} held-out document(s)" in captured.err and "appear in the training stream" in captured.err
    )
