"""The yield check (issue 17.1): which shares of skipped records fail an input, and what the message says."""

from __future__ import annotations

import json

import pytest

from shardstore.errors import ConfigError, InputError
from shardstore.preprocess.inputs import Compression, InputFile, InputFormat, ReadOptions
from shardstore.preprocess.sources import iter_texts, walk_inputs
from shardstore.preprocess.yieldcheck import below_yield, check_fraction, check_yield, skipped_records


@pytest.mark.parametrize(
    ("docs", "counts", "fraction", "fails"),
    [
        (0, {"missing_text_field": 5}, 0.9, True),
        (0, {"missing_text_field": 5}, 1.0, False),  # 1 turns the check off
        (1, {"malformed_json": 9}, 0.9, False),  # exactly 90% skipped: not more than the share
        (1, {"malformed_json": 10}, 0.9, True),
        (0, {"empty_document": 3}, 0.0, False),  # empty documents alone never fail
        (0, {"blank_line": 50, "invalid_utf8_replaced": 2}, 0.0, False),  # not records that were lost
        (5, {"binary_content": 1}, 0.1, True),
        (0, {}, 0.0, False),
    ],
)
def test_below_yield(docs, counts, fraction, fails):
    assert below_yield(docs, skipped_records(counts), fraction) is fails


@pytest.mark.parametrize("bad", [-0.1, 1.5, "0.5", True, None])
def test_fraction_must_be_a_number_from_0_to_1(bad):
    with pytest.raises(ConfigError, match="must be a number from 0 to 1"):
        check_fraction(bad)


def test_message_lists_the_first_records_fields(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text("not json\n" + json.dumps({"body": "x", "id": 1}) + "\n")
    (file,) = walk_inputs([str(path)]).files
    with pytest.raises(InputError) as info:
        check_yield(file, 0, {"missing_text_field": 1, "malformed_json": 1}, ReadOptions(), 0.9)
    text = str(info.value)
    assert "only 0 of 2 records became documents (malformed_json=1, missing_text_field=1)" in text
    assert "the first record has the fields ['body', 'id']" in text  # the first JSON object, past a bad line


def test_whole_file_txt_units_are_left_to_the_build_level_check(tmp_path):
    file = InputFile(
        url=str(tmp_path / "a.txt"), size=1, format=InputFormat.TXT, compression=Compression.NONE
    )
    check_yield(file, 0, {"binary_content": 1}, ReadOptions(), 0.9)  # no error: one record per file


def test_iter_texts_applies_the_check_per_file_and_over_all(tmp_path):
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"text": f"t{i}"}) + "\n" for i in range(3)))
    (tmp_path / "b.jsonl").write_text("".join(json.dumps({"body": f"t{i}"}) + "\n" for i in range(3)))
    with pytest.raises(InputError, match=r"b\.jsonl: only 0 of 3 records"):
        list(iter_texts([str(tmp_path)]))
    assert list(iter_texts([str(tmp_path)], max_skipped_fraction=1.0)) == ["t0", "t1", "t2"]
    (tmp_path / "b.jsonl").unlink()
    for i in range(3):
        (tmp_path / f"{i}.txt").write_bytes(b"\x00binary")
    with pytest.raises(InputError, match=r"the inputs: only 3 of 6 records"):
        list(iter_texts([str(tmp_path)], max_skipped_fraction=0.4))
    ignored = []
    assert len(list(iter_texts([str(tmp_path)], on_ignored=ignored.append))) == 3
    assert ignored == []
