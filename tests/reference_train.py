"""Slow, obviously-correct reference BPE trainer: the oracle the native trainer is tested against.

Rules (the same ones `tokenizer/_native/train_merge.h` implements, written as plainly as possible):
1. Split every text with the `regex` package and the given pattern; count each piece's UTF-8 bytes. Lone surrogates
   (not encodable as UTF-8) are counted as U+FFFD.
2. Start from the 256 single-byte tokens. Repeat: recount every adjacent pair over every word (weighted by the
   word's count); drop pairs whose concatenation is already a token (merging them would give one byte string two
   ids); pick the pair with the highest count, ties broken by the SMALLEST (left bytes, right bytes) tuple; stop if
   none is left or its count is below `min_frequency`; replace its occurrences left to right, non-overlapping.
Nothing here is incremental or clever: every step recounts from scratch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from itertools import pairwise

import regex
from unicode_reference import compile_oracle

_SURROGATES = regex.compile("[\ud800-\udfff]")


def count_pieces(texts: Iterable[str], pattern: str) -> Counter[bytes]:
    """Pre-tokenize every text and count the UTF-8 bytes of each piece."""
    compiled = compile_oracle(pattern)
    counts: Counter[bytes] = Counter()
    for text in texts:
        text = _SURROGATES.sub("\ufffd", text)
        counts.update(piece.encode("utf-8") for piece in compiled.findall(text))
    return counts


def _merge_word(word: tuple[bytes, ...], left: bytes, right: bytes) -> tuple[bytes, ...]:
    out: list[bytes] = []
    i = 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == left and word[i + 1] == right:
            out.append(left + right)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def merges_from_counts(
    counts: dict[bytes, int], *, num_merges: int, min_frequency: int = 1
) -> list[tuple[bytes, bytes]]:
    """Learn up to `num_merges` merges from piece counts, by the rules in the module docstring."""
    words = {tuple(bytes([b]) for b in piece): n for piece, n in counts.items() if n > 0}
    vocab = {bytes([b]) for b in range(256)}
    merges: list[tuple[bytes, bytes]] = []
    while len(merges) < num_merges:
        pairs: Counter[tuple[bytes, bytes]] = Counter()
        for word, n in words.items():
            for pair in pairwise(word):
                pairs[pair] += n
        candidates = [(-n, pair) for pair, n in pairs.items() if pair[0] + pair[1] not in vocab]
        if not candidates:
            break
        neg_count, (left, right) = min(candidates)
        if -neg_count < min_frequency:
            break
        merges.append((left, right))
        vocab.add(left + right)
        merged: Counter[tuple[bytes, ...]] = Counter()
        for word, n in words.items():
            merged[_merge_word(word, left, right)] += n
        words = dict(merged)
    return merges


def reference_merges(
    texts: Iterable[str], *, pattern: str, num_merges: int, min_frequency: int = 1
) -> list[tuple[bytes, bytes]]:
    """Pre-tokenize, count, and learn merges: the whole reference trainer."""
    return merges_from_counts(
        count_pieces(texts, pattern), num_merges=num_merges, min_frequency=min_frequency
    )
