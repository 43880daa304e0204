"""Interop: tiktoken (via to_tiktoken) and HF tokenizers (via save_hf) encode a varied corpus to our exact ids.

Corpus: a deterministic sample of the Python standard library sources, plus seeded Unicode-heavy text (all scripts,
numbers, marks, whitespace kinds, apostrophes, emoji). Generated code points are limited to those assigned in the
Unicode version of Python's ``unicodedata`` (14.0): the ``regex`` package, which defines our splits, knows newer
Unicode versions than tiktoken's and Oniguruma's tables (e.g. U+18D8C is a letter to ``regex`` but unassigned to
them), and on such characters all three peers disagree with ``regex`` identically. See tokenizer/interop.py.
"""

from __future__ import annotations

import pathlib
import random
import sysconfig
import unicodedata

import pytest
import tiktoken
import tokenizers
from test_pretok import CHUNKS, INTERESTING

import tokenizer
from tokenizer import Tokenizer


def stdlib_sample(step: int, max_bytes: int) -> list[str]:
    root = pathlib.Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts)[::step]
    out, total = [], 0
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        out.append(text)
        total += len(text)
        if total > max_bytes:
            break
    return out


def unicode_texts(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    pool = INTERESTING + CHUNKS + [" ", " ", "e", "the", " and", "\n", "\r\n", "  "]

    def assigned(s: str) -> bool:
        return all(not 0xD800 <= ord(c) < 0xE000 and unicodedata.category(c) != "Cn" for c in s)

    texts = []
    for _ in range(count):
        parts: list[str] = []
        while len(parts) < 200:
            c = chr(rng.randrange(0x20, 0x30000)) if rng.random() < 0.3 else rng.choice(pool)
            if assigned(c):
                parts.append(c)
        texts.append("".join(parts))
    return texts


@pytest.fixture(scope="module", params=["cl100k", "gpt2"])
def trained(request) -> tuple[Tokenizer, list[str]]:
    code = stdlib_sample(7, 1_500_000)
    uni = unicode_texts(1, 300)
    tok = tokenizer.train(code[::2] + uni[::2], vocab_size=3000, pattern=request.param, progress=False)
    return tok, code[1::2] + uni[1::2] + ["<|endoftext|> is plain text here"]


def test_tiktoken_encodes_identically(trained):
    tok, corpus = trained
    pat_str, ranks, specials = tok.to_tiktoken()
    enc = tiktoken.Encoding(
        name="shardstore-test", pat_str=pat_str, mergeable_ranks=ranks, special_tokens=specials
    )
    assert enc.n_vocab == tok.vocab_size
    for text in corpus:
        ids = tok.encode(text)
        assert enc.encode_ordinary(text) == ids
        assert enc.decode_bytes(ids) == tok.decode_bytes(ids)
    text = "a<|endoftext|>b"
    assert enc.encode(text, allowed_special="all") == tok.encode(text, allowed_special="all")


def test_hf_tokenizer_json_encodes_identically(trained, tmp_path):
    tok, corpus = trained
    path = tmp_path / "tokenizer.json"
    tok.save_hf(path)
    hf = tokenizers.Tokenizer.from_file(str(path))
    assert hf.get_vocab_size() == tok.vocab_size
    text = "a<|endoftext|>b"
    assert hf.encode(text, add_special_tokens=False).ids == tok.encode(text, allowed_special="all")
    hf.encode_special_tokens = True  # HF's switch for our default: special-token strings are plain text
    batch = hf.encode_batch(corpus, add_special_tokens=False)
    for text, enc in zip(corpus, batch, strict=True):
        ids = tok.encode(text)
        assert enc.ids == ids
        assert hf.decode(ids, skip_special_tokens=False) == tok.decode(ids)
