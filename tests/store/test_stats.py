"""Store statistics pinned on a small golden store: exact nearest-rank percentiles, tokens per file, token stats."""

from __future__ import annotations

import json

import numpy as np
import pytest

import shardstore
from shardstore.store.stats import doc_lengths, length_stats, token_stats, tokens_per_file
from shardstore.store.store import Store

# Byte-level tokenizer with one merge ("he"), EOS appended by the build: a document of n bytes without "he" is n + 1
# tokens. File a: lengths 1..10 bytes of "x"; file b: 30 documents of 40 bytes, one of 200.
A_TEXTS = ["x" * n for n in range(1, 11)]
B_TEXTS = ["y = [1];" * 5] * 30 + ["z" * 200]


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    from tokenizer import Tokenizer

    d = tmp_path_factory.mktemp("golden")
    tok = Tokenizer.from_merges([(b"h", b"e")])
    tok.save(d / "tok.json")
    for name, texts in (("a.jsonl", A_TEXTS), ("b.jsonl", B_TEXTS)):
        (d / name).write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    shardstore.build(
        [str(d / "a.jsonl"), str(d / "b.jsonl")], tokenizer=str(d / "tok.json"), out=str(d / "st")
    )
    return Store.open(str(d / "st"))


def test_doc_lengths_and_percentiles_are_exact(golden):
    lengths = doc_lengths(golden)
    expected = sorted([n + 1 for n in range(1, 11)] + [41] * 30 + [201])
    assert sorted(lengths.tolist()) == expected
    st = length_stats(lengths)
    # nearest rank over 41 documents: p50 -> 21st smallest, p90 -> 37th, p99 -> 41st
    assert (st.count, st.total, st.min, st.max) == (41, sum(expected), 2, 201)
    assert st.percentiles == {50: 41, 90: 41, 99: 201}
    assert st.mean == pytest.approx(sum(expected) / 41)
    assert (st.at_max, st.below_max, st.empty) == (1, 30, 0)
    assert st.truncated_fraction == 0.0  # one long document is not a spike


def test_truncation_spike_is_flagged():
    lengths = np.array([5, 6, 7, 8] * 3 + [2048] * 20)
    st = length_stats(lengths)
    assert st.at_max == 20 and st.truncated_fraction == pytest.approx(20 / 32)
    assert length_stats(np.array([5, 6, 7, 8] * 10 + [2048] * 20)).truncated_fraction == 0.0  # 2x: no spike
    assert length_stats(np.arange(1, 100)).truncated_fraction == 0.0  # smooth tail: no spike
    assert length_stats(np.empty(0, dtype=np.int64)).count == 0
    # a few huge documents take the sort-based path: the same answers
    huge = length_stats(np.array([0, 3, 3, 10**9]))
    assert (huge.percentiles, huge.empty, huge.max, huge.at_max, huge.below_max) == (
        {50: 3, 90: 10**9, 99: 10**9},
        1,
        10**9,
        1,
        2,
    )


def test_tokens_per_file(golden):
    rows = tokens_per_file(golden, doc_lengths(golden))
    assert [(r["file"].rsplit("/", 1)[-1], r["docs"], r["tokens"]) for r in rows] == [
        ("b.jsonl", 31, 30 * 41 + 201),
        ("a.jsonl", 10, sum(n + 1 for n in range(1, 11))),
    ]
    assert tokens_per_file(golden, doc_lengths(golden), top=1)[0]["docs"] == 31


def test_token_stats(golden):
    st = token_stats(golden, sample_tokens=10**6, top=3)
    assert st.sample_docs == 41 and st.sample_tokens == golden.num_tokens
    # 'z' x 200 and 'x' x 55 and the 30 code lines: all tokens are single bytes except EOS
    assert st.byte_token_fraction == pytest.approx((golden.num_tokens - 41) / golden.num_tokens)
    # ties (150 each of 'y', '=', '[', '1', ']', ';') go to the lowest id
    assert [(t["text"], t["count"]) for t in st.top_tokens] == [(" ", 300), ("z", 200), ("1", 150)]
    code_bytes = 30 * 40
    assert st.code_fraction is not None and st.code_fraction > 0
    text_bytes = 55 + code_bytes + 200  # special tokens (EOS) are not text
    assert st.code_fraction == pytest.approx(code_bytes / text_bytes)
    assert st.whitespace_fraction == pytest.approx(30 * 10 / text_bytes)
    assert st.replacement_fraction == 0.0
    half = token_stats(golden, sample_tokens=golden.num_tokens // 2)
    assert half.sample_docs == 21  # every 2nd document
