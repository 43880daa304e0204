r"""The native pre-tokenizer (pretok*.h) splits exactly as ``regex.findall`` on the same pattern, read with the pinned
Unicode tables.

The oracle is ``regex.findall(golden_pattern(PATTERN), text)``: the pattern with ``\p{L}``, ``\p{N}``, ``\s`` and the
``(?i)`` letters spelled out from the golden file (unicode_reference.py), so the test means the same with any
installed ``regex``. Checked with the case-folding letters in every contraction position, a hypothesis property test
on short random texts biased to the characters where the patterns branch, and a large seeded random text per
pattern. The per-code-point check of the tables is in test_unicode_tables.py.
"""

from __future__ import annotations

import functools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from unicode_reference import compile_oracle, golden

from tokenizer._native import _encoder
from tokenizer._native import gen_unicode_tables as gen
from tokenizer.patterns import PATTERNS
from tokenizer.unicode import DEFAULT_NATIVE_UNICODE_VERSION, NATIVE_UNICODE_VERSIONS, native_split_id

# Characters where the patterns branch: apostrophes and contraction letters (with case-folding oddities like
# U+017F LONG S and U+212A KELVIN SIGN), every kind of whitespace, CR/LF, letters of several scripts, numbers of
# several kinds (Nd, Nl, No), combining marks (which are neither letters nor numbers), CJK, emoji and ZWJ sequences.
INTERESTING = list(
    "'’`sStTmMdDrReEvVlLxX\u017f\u212a\u0130\u0131ß"
    " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u180e\u2000\u2005\u200a\u200b\u2028\u2029\u202f\u205f\u3000\ufeff"
    "aZéÆџΩא\u0628\u0915\u093f\u0903日本語中文한국"
    "09٣۵߁०²³¼Ⅻⅻ①０"
    "\u0301\u0308\u20dd\u0489\u0903\u093f\u1ab0"
    "ǅǈǋᾈῼΣσςÀàĲĳʰˆªº\u02b0\u3005\u4e00ㇰ/"
    '!?.,;:-_"#()[]{}<>@$%^&*+=/\\|~'
    "😀👍🏽\u200d👨\u200d👩\U0001f1fa\U0001f1f8\U00010400\U0001d400\U0001d7ce\U000e0001"
)
CHUNKS = [
    "'s",
    "'S",
    "'ſ",
    "'re",
    "'RE",
    "'Ve",
    "'ll",
    "'lL",
    "'d",
    "'m",
    "'t",
    " 's",
    "\r\n",
    "\n\n",
    "  \n",
    " \u3000\n",
]

text_strategy = st.lists(
    st.one_of(
        st.sampled_from(INTERESTING),
        st.sampled_from(CHUNKS),
        st.characters(exclude_categories=("Cs",)),
        st.text(alphabet=" \t\n", min_size=1, max_size=4),
    ),
    max_size=40,
).map("".join)


@functools.cache
def _native(pattern_name: str, version: str) -> _encoder.Encoder:
    split_id = native_split_id(PATTERNS[pattern_name], version)
    return _encoder.Encoder([bytes([b]) for b in range(256)], 256, split_id)


def native_split(pattern_name: str, text: str, version: str = DEFAULT_NATIVE_UNICODE_VERSION) -> list[str]:
    enc = _native(pattern_name, version)
    data = text.encode("utf-8")
    pieces, start = [], 0
    for end in enc.split(text):
        pieces.append(data[start:end].decode("utf-8"))
        start = end
    return pieces


def reference_split(name: str, text: str, version: str = DEFAULT_NATIVE_UNICODE_VERSION) -> list[str]:
    return compile_oracle(PATTERNS[name], version).findall(text)


@pytest.mark.parametrize("version", NATIVE_UNICODE_VERSIONS)
def test_case_insensitive_contractions_match_regex_package(version):
    # Every character that regex's (?i) equates with a contraction letter, in every contraction position.
    folds = golden(version).folds
    variants = {letter: [letter, letter.upper(), *map(chr, folds[letter])] for letter in gen.FOLD_LETTERS}
    texts = []
    for a in "stmd":
        texts += [f"x'{c}y" for c in variants[a]]
    for a, b in ("re", "ve", "ll"):
        texts += [f"'{c}{d} '{c}" for c in variants[a] for d in variants[b]]
    text = " ".join(texts) + " 'ſt 'K"
    for name in ("cl100k", "gpt2", "cl100k_base", "r50k_base", "o200k_base"):
        assert native_split(name, text, version) == reference_split(name, text, version)


@pytest.mark.parametrize("version", NATIVE_UNICODE_VERSIONS)
@pytest.mark.parametrize("name", ["cl100k", "gpt2", "cl100k_base", "r50k_base", "o200k_base"])
@settings(max_examples=400, deadline=None)
@given(text=text_strategy)
def test_split_equals_regex_findall(name, version, text):
    assert native_split(name, text, version) == reference_split(name, text, version)


# Long runs of one character (the 16-byte SSE2 scans of ASCII letter and space runs in pretok_simd.h), ending at every
# offset from the end of the text and from a 16-byte block, next to CR/LF, other whitespace and non-ASCII letters.
run_strategy = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from(
                [
                    "a",
                    "Z",
                    "q",
                    " ",
                    "\t",
                    "\n",
                    "\r\n",
                    "é",
                    "\u3000",
                    "日",
                    "1",
                    "-",
                    "()",
                    "#",
                    "\x00",
                    "\x1c",
                    "\x7f",
                    "`{@",
                ]
            ),
            st.integers(1, 40),
        ).map(lambda t: t[0] * t[1]),
        st.sampled_from(INTERESTING),
        st.sampled_from(CHUNKS),
    ),
    max_size=12,
).map("".join)


@pytest.mark.parametrize("name", ["cl100k", "gpt2", "cl100k_base", "r50k_base", "o200k_base"])
@settings(max_examples=300, deadline=None)
@given(text=run_strategy)
def test_split_of_long_runs_equals_regex_findall(name, text):
    assert native_split(name, text) == reference_split(name, text)


@pytest.mark.parametrize("name", ["cl100k", "gpt2", "cl100k_base", "r50k_base", "o200k_base"])
def test_split_of_runs_at_every_length_equals_regex(name):
    texts = []
    for k in range(0, 50):
        texts += [
            "x" + "a" * k,
            "a" * k + "é",
            " " * k,
            " " * k + "x",
            "\n" + " " * k + "def",
            " " * k + "\n" + " " * k,
            " " * k + "\r\n\t" + " " * k + "y",
            "Ab" * k + "'s " + "q" * k + "1" * k,
            "(" * k + "):" + "=" * k + " " + "-" * k + "\n" + "}" * k + "é",
            "".join(chr(c) for c in range(0x21, 0x7F)) * (k // 10 + 1) + "\x00\x1b\x1c\x7f" * k,
        ]
    for text in texts:
        assert native_split(name, text) == reference_split(name, text), repr(text)


@pytest.mark.parametrize("version", NATIVE_UNICODE_VERSIONS)
def test_o200k_ascii_words_next_to_every_kind_of_character(version):
    # o200k decides a word of ASCII letters from its bytes alone unless a non-ASCII character is next to it or to
    # its prefix: every prefix kind x word shape (case runs, SSE2 block lengths) x what follows.
    prefixes = ["", " ", "\t", "'", "-", "\x1c", "\n", "\r", "1", "é", "\u0301", "\u3000", "日"]
    words = ["a", "A", "Ab", "AB", "aB", "ABc", "DON", "a" * 16, "A" * 17, "Ab" * 9, "q" * 15 + "R"]
    follows = [
        "",
        " ",
        "1",
        ".",
        "'",
        "'s",
        "'S",
        "'ll",
        "'LL",
        "'ſ",
        "é",
        "É",
        "\u0301",
        "ǅ",
        "ʰ",
        "日",
        "\u3000",
    ]
    texts = [p + w + f for p in prefixes for w in words for f in follows]
    for text in [*texts, " ".join(texts), "".join(texts)]:
        assert native_split("o200k_base", text, version) == reference_split("o200k_base", text, version), (
            repr(text)
        )


@pytest.mark.parametrize("version", NATIVE_UNICODE_VERSIONS)
@pytest.mark.parametrize("name", ["cl100k", "gpt2", "cl100k_base", "r50k_base", "o200k_base"])
def test_split_equals_regex_on_large_random_text(name, version):
    rng = random.Random(20261128)
    alphabet = INTERESTING + CHUNKS + [" "] * 20 + ["e"] * 20 + ["\n"] * 5
    parts = [rng.choice(alphabet) for _ in range(150_000)]
    parts += [chr(rng.randrange(0x20, 0x30000)) for _ in range(20_000)]
    # Code points a later Unicode version assigned, where the table versions differ.
    parts += [chr(c) for c in range(0x323B0, 0x323B0 + 3000, 7)] + [
        chr(c) for c in (0x88F, 0xC5C, 0x16FF2, 0x1CCF0)
    ]
    rng.shuffle(parts)
    text = "".join(p for p in parts if not 0xD800 <= ord(p[0]) < 0xE000)
    assert native_split(name, text, version) == reference_split(name, text, version)


@pytest.mark.parametrize("name", ["cl100k", "gpt2", "cl100k_base", "r50k_base", "o200k_base"])
def test_split_tiles_edge_cases(name):
    for text in [
        "",
        " ",
        "\n",
        "  ",
        " \n ",
        "a",
        "'",
        "''s",
        "1234567",
        " \u3000",
        "\r\r\n\n\r",
        "x  ",
        "x \ty",
    ]:
        assert native_split(name, text) == reference_split(name, text), repr(text)
