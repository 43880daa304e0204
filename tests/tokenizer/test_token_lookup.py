"""The token table's whole-piece lookup (bpe_encoder.h ``find_hashed``): a piece of 9-16 bytes is matched to a token
by its first 8 bytes (in the slot) and its last 8 (in an array parallel to the slots). Every such token must be
found from its own bytes, and a piece that differs from one in a byte that only the last 8 hold must not be taken
for it; ids are compared with tiktoken's encoding of the same single piece."""

from __future__ import annotations

import random

import pytest
import tiktoken
from vocab_fixtures import imported, reference

from tokenizer import Tokenizer


def _tail_mutants(tokens: list[bytes], ranks: dict[bytes, int], rng: random.Random) -> list[bytes]:
    """Each token with one byte at offset >= 8 (held only by the tail word) changed, where that is not a token."""
    out = []
    for t in tokens:
        k = rng.randrange(8, len(t))
        m = t[:k] + bytes([t[k] ^ (1 << rng.randrange(8))]) + t[k + 1 :]
        if m not in ranks:
            out.append(m)
    return out


def _unreachable_vocab() -> tiktoken.Encoding:
    """Byte tokens plus 3,000 tokens of 9-16 letters with no shorter tokens between: no merge reaches them, so a
    piece gets one of their ids only through the whole-piece lookup."""
    rng = random.Random(9)
    ranks = {bytes([b]): b for b in range(256)}
    while len(ranks) < 256 + 3000:
        t = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(9, 16)))
        ranks.setdefault(t, len(ranks))
    pattern = reference("cl100k_base")._pat_str
    return tiktoken.Encoding(name="unreachable", pat_str=pattern, mergeable_ranks=ranks, special_tokens={})


def test_tokens_of_9_to_16_bytes_reachable_only_by_lookup_are_found_by_their_tails():
    ref = _unreachable_vocab()
    enc = Tokenizer.from_tiktoken(ref)._encoder()
    ranks = ref._mergeable_ranks
    tokens = [t for t in ranks if len(t) >= 9]
    assert enc.encode_pieces(tokens) == [ranks[t] for t in tokens]
    assert [ref._encode_single_piece(t) for t in tokens[:50]] == [[ranks[t]] for t in tokens[:50]]
    mutants = _tail_mutants(tokens, ranks, random.Random(16))
    assert len(mutants) > 2900
    want = [i for m in mutants for i in ref._encode_single_piece(m)]
    assert enc.encode_pieces(mutants) == want
    assert all(len(ref._encode_single_piece(m)) == len(m) for m in mutants[:50])  # bytes: no token matched


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_real_tokens_of_9_to_16_bytes_and_their_tail_mutants_equal_tiktoken(name):
    ref = reference(name)
    enc = imported(name)._encoder()
    ranks = ref._mergeable_ranks
    tokens = sorted(t for t in ranks if 9 <= len(t) <= 16)
    assert len(tokens) > 10_000
    assert enc.encode_pieces(tokens) == [ranks[t] for t in tokens]
    mutants = _tail_mutants(tokens, ranks, random.Random(23))
    want = [i for m in mutants for i in ref._encode_single_piece(m)]
    assert enc.encode_pieces(mutants) == want
