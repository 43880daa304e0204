"""Native encoding == the pure-Python reference (tests/reference_bpe.py), round trips, golden ids, no quadratic path."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_bpe import build_ranks, encode
from reference_train import reference_merges

from tokenizer import Tokenizer
from tokenizer.patterns import PATTERNS

# Texts over a small alphabet so that random merges actually apply; long runs exercise the heap merge (> 64 bytes).
ALPHABET = "ab c\n'é1"
texts = st.one_of(
    st.text(alphabet=ALPHABET, max_size=80),
    st.text(alphabet="ab", min_size=60, max_size=400),
    st.lists(st.sampled_from(["ab", "ba", "a", "é", " ", "aab", "\n\n", "11"]), max_size=120).map("".join),
)


@st.composite
def merge_tables(draw) -> list[tuple[bytes, bytes]]:
    """Random merges over the bytes of ALPHABET (each merge combines existing tokens into a new one)."""
    tokens = sorted({bytes([b]) for b in ALPHABET.encode()})
    merges: list[tuple[bytes, bytes]] = []
    seen = {bytes([b]) for b in range(256)}
    for _ in range(draw(st.integers(0, 40))):
        left = draw(st.sampled_from(tokens))
        right = draw(st.sampled_from(tokens))
        if left + right in seen:
            continue
        seen.add(left + right)
        merges.append((left, right))
        tokens.append(left + right)
    return merges


@pytest.mark.parametrize("pattern", ["cl100k", "gpt2", r"\S+|\s+"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(merges=merge_tables(), text=texts)
def test_native_encode_equals_reference(pattern, merges, text):
    tok = Tokenizer.from_merges(merges, pattern=pattern)
    expected = encode(text, tok.pattern, build_ranks(merges))
    assert tok.encode(text) == expected
    assert tok.encode_to_numpy(text).tolist() == expected
    assert tok.decode(expected) == text


@settings(max_examples=200, deadline=None)
@given(text=st.text(st.characters(exclude_categories=("Cs",)), max_size=200))
def test_roundtrip_any_unicode(small_tokenizer, text):
    ids = small_tokenizer.encode(text)
    assert small_tokenizer.decode(ids) == text
    assert small_tokenizer.decode_bytes(ids) == text.encode("utf-8")


@pytest.fixture(scope="module")
def small_tokenizer() -> Tokenizer:
    corpus = [
        "the quick brown fox jumps over the lazy dog. The dog's bark; the fox's den.\n",
        "def encode(self, text):\n    return [t for t in text]\n\n",
        "Zürich, Genève, 東京 and Москва: 12345 km.\n",
    ] * 3
    return Tokenizer.from_merges(reference_merges(corpus, pattern=PATTERNS["cl100k"], num_merges=120))


def test_trained_tokenizer_matches_reference_on_its_corpus(small_tokenizer):
    text = "The fox's den: def encode(self, text) -> 12345 km in Zürich.\n\n  the lazy dog\n"
    ranks = {small_tokenizer.decode_bytes([i]): i for i in range(small_tokenizer.num_ordinary_tokens)}
    assert small_tokenizer.encode(text) == encode(text, small_tokenizer.pattern, ranks)


# A fixed tiny tokenizer: any change to the encoding semantics, the pattern, the id layout or the file format shows
# up here as a diff.
GOLDEN_MERGES = [
    (b"t", b"h"), (b"th", b"e"), (b" ", b"th"), (b" th", b"e"), (b"e", b"r"), (b"i", b"n"),
    (b" ", b"a"), (b"o", b"n"), (b"in", b"g"), (b"'", b"s"), (b"a", b"a"), (b"aa", b"aa"),
    (b"\n", b"\n"), (b" ", b" "), (b"1", b"2"), (b"\xc3", b"\xa9"),
]  # fmt: skip
GOLDEN_TEXT = "The other thing's here: aaaaaaa  theater\n\n\n123 café 'S"
# Checked by hand: "The" has no merge for "T"; " other" -> " ", "o", "the", "r" ("th" (256) before "the" (257));
# " aaaaaaa" -> " a", "aaaa", "aa" (leftmost first); "\n\n\n" is one cl100k piece -> "\n\n", "\n".
GOLDEN_IDS = [84, 104, 101, 32, 111, 257, 114, 258, 264, 265, 32, 104, 260, 101, 58, 262, 267, 266, 32, 259, 97, 116,
              260, 268, 10, 270, 51, 32, 99, 97, 102, 271, 32, 39, 83]  # fmt: skip
# Format 2 (Unicode 16.0.0 in the fingerprint); the format-1 fingerprints live on in test_unicode_versions.py.
GOLDEN_FINGERPRINT = {
    "cl100k": "01c694aa4e7db8da198c2a49c69706eef729167a0c2dd19c56b53239d1a8f8e9",
    "gpt2": "e575f1c5d1312ca108df8eb4dab1a30a58d73880f59e8ba99c937e4f50455683",
}


@pytest.mark.parametrize("pattern", ["cl100k", "gpt2"])
def test_golden_ids(pattern):
    tok = Tokenizer.from_merges(GOLDEN_MERGES, pattern=pattern)
    ids = tok.encode(GOLDEN_TEXT)
    assert ids == encode(GOLDEN_TEXT, tok.pattern, build_ranks(GOLDEN_MERGES))
    assert ids == GOLDEN_IDS
    assert tok.fingerprint == GOLDEN_FINGERPRINT[pattern]
    assert tok.vocab_size == 256 + len(GOLDEN_MERGES) + 1
    assert tok.eos_id == 272


@pytest.mark.parametrize(
    "text",
    [
        "a" * 1_000_000,  # one letter piece of 1 MB: heap merge
        "ab" * 500_000,
        "x" + "." * 999_999,  # one punctuation piece
        " " * 1_000_000,  # whitespace run
        "\n \t" * 333_333,
    ],
    ids=["letter-run", "ab-run", "punct-run", "spaces", "mixed-ws"],
)
def test_long_pieces_are_not_quadratic(text):
    merges = [
        (b"a", b"a"),
        (b"aa", b"aa"),
        (b"a", b"b"),
        (b"ab", b"ab"),
        (b".", b"."),
        (b" ", b" "),
        (b"..", b".."),
    ]
    tok = Tokenizer.from_merges(merges)
    start = time.perf_counter()
    ids = tok.encode_to_numpy(text)
    elapsed = time.perf_counter() - start
    assert tok.decode_bytes(ids) == text.encode()
    # Generous bound (shared 2-core CI box): a quadratic path on 1 MB takes minutes, the heap merge well under 1 s.
    assert elapsed < 20, f"{elapsed:.1f}s for a 1 MB piece"
    short = text[:500]
    assert tok.encode(short) == encode(short, tok.pattern, build_ranks(merges))


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300))
def test_native_encoder_is_lossless_on_arbitrary_bytes(small_tokenizer, data):
    # The public API takes str, so the native splitter only ever sees valid UTF-8; still, any bytes (invalid
    # sequences, truncated characters, encoded surrogates, bytes >= 0xF8) must neither crash nor lose data.
    enc = small_tokenizer._encoder()
    ids = enc.encode(data)
    assert small_tokenizer.decode_bytes(ids) == data
    ends = enc.split(data)
    assert ends == sorted(set(ends)) and (ends[-1] if ends else 0) == len(data)
