"""Long pieces (issue 23 follow-up): a CJK run is one ``\\p{L}+`` piece, often 23-96 bytes, longer than the 22-byte
key of the first piece cache. Such pieces go through a second per-thread cache (full key compared); these tests
encode each one twice (the first time a miss that fills the cache, then a hit) and compare with tiktoken's ids, also
after the slots were overwritten by other pieces, and for pieces too long or with too many tokens to be cached."""

from __future__ import annotations

import random

import pytest
from vocab_fixtures import imported, reference

NAMES = ["cl100k_base", "o200k_base"]

# Common Han characters (3 bytes each in UTF-8) and CJK Extension B (4 bytes, rare: several tokens each).
HAN = [chr(c) for c in range(0x4E00, 0x4E00 + 2000)]
EXT_B = [chr(c) for c in range(0x20000, 0x20000 + 500)]


def _runs(rng: random.Random, alphabet: list[str], lengths: range, count: int) -> list[str]:
    return ["".join(rng.choice(alphabet) for _ in range(rng.choice(lengths))) for _ in range(count)]


@pytest.mark.parametrize("name", NAMES)
def test_long_cjk_pieces_miss_then_hit_equal_tiktoken(name):
    tok, ref = imported(name), reference(name)
    rng = random.Random(23)
    # 8-32 Han characters = 24-96 bytes: every length the long cache takes; 33-40 = beyond it (never cached).
    runs = _runs(rng, HAN, range(8, 41), 300)
    for run in runs:
        want = ref.encode_ordinary(run)
        assert tok.encode(run) == want, "miss"
        assert tok.encode(run) == want, "hit"
    # Pieces separated by punctuation, each run repeated within one call: misses and hits in one text.
    text = "，".join(runs + runs[::-1])
    assert tok.encode(text) == ref.encode_ordinary(text)
    assert tok.encode_batch([text, text], num_threads=2) == [ref.encode_ordinary(text)] * 2


@pytest.mark.parametrize("name", NAMES)
def test_long_pieces_after_eviction_and_too_many_tokens(name):
    tok, ref = imported(name), reference(name)
    rng = random.Random(5)
    first = _runs(rng, HAN, range(8, 33), 50)
    text = "。".join(first)
    want = ref.encode_ordinary(text)
    assert tok.encode(text) == want
    # 20,000 distinct long pieces overwrite most of the cache's 4,096 slots; the first ones must re-merge exactly.
    flood = "、".join(_runs(rng, HAN, range(8, 33), 20000))
    assert tok.encode(flood) == ref.encode_ordinary(flood)
    assert tok.encode(text) == want
    # Rare 4-byte letters: 24 of them (96 bytes) encode to more tokens than a cache entry holds; one letter less
    # or more, same rule. Each twice.
    for n in (6, 12, 23, 24, 25):
        run = "".join(rng.choice(EXT_B) for _ in range(n))
        assert len(ref.encode_ordinary(run)) > 0
        assert tok.encode(run) == ref.encode_ordinary(run)
        assert tok.encode(run) == ref.encode_ordinary(run)
    # Pieces sharing the first 22 bytes (the first cache's key length) but not the rest.
    stem = "".join(rng.choice(HAN) for _ in range(8))
    for tail in ("的", "是", "我们", "中国人", "的" * 20):
        run = stem + tail
        assert tok.encode(run) == ref.encode_ordinary(run)
        assert tok.encode(run) == ref.encode_ordinary(run)
