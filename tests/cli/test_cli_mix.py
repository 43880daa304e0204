"""`shardstore mix plan` and `shardstore peek` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from storeutil import counting_store, text_store

from shardstore.cli import main
from shardstore.cli.mix_cmds import parse_count
from shardstore.errors import ConfigError
from shardstore.store.store import Store


@pytest.fixture
def mix_file(tmp_path: Path) -> Path:
    counting_store(tmp_path / "nums", 0, 16 * 10 + 1)
    text_store(tmp_path / "prose", [f"document number {i} says hello" for i in range(40)])
    (tmp_path / "mix.toml").write_text(
        "seq_len = 16\nseed = 5\nglobal_batch_size = 4\n"
        '[[sources]]\nname = "nums"\nstore = "nums"\nweight = 0.5\n'
        '[[sources]]\nname = "prose"\nstore = "prose"\nweight = 0.5\n'
    )
    return tmp_path / "mix.toml"


def _allow_mismatch(mix_file: Path) -> None:
    # the counting store and the text store have different tokenizers: an explicit override for these tests
    mix_file.write_text("allow_tokenizer_mismatch = true\n" + mix_file.read_text())


def test_parse_count() -> None:
    assert parse_count("10B") == 10**10
    assert parse_count("500M") == 500 * 10**6
    assert parse_count("1.5k") == 1500
    assert parse_count("2e9") == 2 * 10**9
    assert parse_count("1_000") == 1000
    for bad in ("", "10X", "-5", "0.5", "B"):
        with pytest.raises(ConfigError):
            parse_count(bad)


def test_mix_plan_table_and_json(mix_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the two stores have different tokenizers: the planner says so with one clear line
    assert main(["mix", "plan", str(mix_file), "--tokens", "1K"]) == 1
    assert "different tokenizers" in capsys.readouterr().err
    _allow_mismatch(mix_file)
    assert main(["mix", "plan", str(mix_file), "--tokens", "6.4K"]) == 0
    out = capsys.readouterr().out
    assert "nums" in out and "prose" in out and "epochs" in out
    assert "warning: source 'nums' is repeated 20.00 times" in out
    assert main(["mix", "plan", str(mix_file), "--tokens", "6400", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["total_samples"] == 400
    assert [s["samples_drawn"] for s in plan["sources"]] == [200, 200]
    assert plan["sources"][0]["tokens_available"] == 160


def test_peek_decodes_what_a_rank_sees(mix_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _allow_mismatch(mix_file)
    assert main(["peek", str(mix_file), "--step", "3", "--rank", "1", "--world-size", "2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["global_sample"] for r in rows] == [14, 15]  # global batch 4, rank 1 of 2: contiguous half
    assert {r["source"] for r in rows} == {"nums", "prose"}
    corpus = "".join(f"document number {i} says hello<|endoftext|>" for i in range(40))
    for r in rows:
        assert r["provenance"] is None  # these stores were not built with provenance
        if r["source"] == "nums":
            assert r["input_ids"] == list(range(r["window"] * 16, r["window"] * 16 + 16))
            assert r["doc"] == r["window"] * 16 // 7  # counting store: 7-token documents
        else:
            assert r["text"] in corpus and len(r["text"]) >= 16
            lo, hi = Store.open(mix_file.parent / "prose").doc_span(r["doc"])
            assert lo <= r["window"] * 16 < hi  # the document holding the window's first token
    assert main(["peek", str(mix_file), "--step", "0"]) == 0
    out = capsys.readouterr().out
    assert out.count("sample ") == 4 and "source=" in out
    assert main(["peek", str(mix_file), "--step", "0", "--rank", "3", "--world-size", "2"]) == 1
    assert "rank" in capsys.readouterr().err


def test_peek_names_the_input_file_and_record_of_a_built_store(tmp_path: Path, capsys) -> None:
    from shardstore.preprocess.pipeline import build
    from tokenizer import Tokenizer

    (tmp_path / "in").mkdir()
    for name in ("a", "b"):
        lines = [json.dumps({"text": f"file {name} record {i} " + "lorem ipsum " * 4}) for i in range(30)]
        (tmp_path / "in" / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    build(
        [str(tmp_path / "in")],
        tokenizer=Tokenizer.from_merges([(b"o", b"r")]),
        out=tmp_path / "store",
        workers=1,
    )
    (tmp_path / "mix.toml").write_text(
        'seq_len = 32\nseed = 1\n[[sources]]\nname = "docs"\nstore = "store"\n'
    )
    assert main(["peek", str(tmp_path / "mix.toml"), "--step", "4", "--batch-size", "3", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3
    for row in rows:
        prov = row["provenance"]
        # the document holding the window's first token names its file and JSON Lines record
        assert prov["file"].endswith(".jsonl") and isinstance(prov["record"], int)
        name = "a" if prov["file"].endswith("a.jsonl") else "b"
        doc = Store.open(tmp_path / "store").doc(row["doc"]).tolist()
        text = Tokenizer.from_merges([(b"o", b"r")]).decode(doc)
        assert text.startswith(f"file {name} record {prov['record']} lorem")
