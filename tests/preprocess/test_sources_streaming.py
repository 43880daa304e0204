"""Property: a huge plain-text document streamed in pieces encodes to exactly the ids of the whole text.

The cut rule (ASCII letter | space + ASCII letter) is claimed safe for the built-in pre-tokenizer patterns; this
checks it on adversarial mixtures of letters, spaces, newlines, digits, punctuation, contractions and non-ASCII.
"""

from __future__ import annotations

import functools
import os
import tempfile

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstore.preprocess.sources import ReadOptions, SkipCounts, expand_inputs, iter_documents

FRAGMENTS = [
    "a", "b", "Zeta", "word", "x", " ", "  ", "   ", "\n", "\n\n", "\r\n", "\t", " \n ", "1", "42", "12345",
    "'s", "'ll", "'T", "don't", ",", ".", "!?", "...", "--", "(", ")", "é", "ß", "日本", "😀", " é", " 7", "_", "\u00a0",
]  # fmt: skip


@functools.cache
def _tokenizer(pattern: str):  # type: ignore[no-untyped-def]
    import tokenizer

    corpus = ["".join(FRAGMENTS) * 3, "the word was a Zeta, don't 42 times.\n\n日本 é ß"] * 20
    return tokenizer.train(corpus, vocab_size=300, pattern=pattern, progress=False, min_frequency=1)


@settings(max_examples=25, deadline=None)
@given(
    parts=st.lists(st.sampled_from(FRAGMENTS), min_size=1000, max_size=2000),
    pattern=st.sampled_from(["cl100k", "gpt2"]),
)
def test_streamed_pieces_encode_like_the_whole_text(parts, pattern):
    text = "".join(parts)
    tok = _tokenizer(pattern)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "doc.txt")
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        pieces = list(iter_documents(expand_inputs([path])[0], ReadOptions(piece_chars=1024), SkipCounts()))
    assert "".join(p.text for p in pieces) == text
    streamed = np.concatenate([tok.encode_to_numpy(p.text) for p in pieces])
    assert streamed.tolist() == tok.encode(text)
