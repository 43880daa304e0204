"""Counting without ids (`count_tokens`, `count_tokens_batch`) and the batch paths that convert str to UTF-8 on the
native threads (str_utf8.h): every count equals ``len`` of tiktoken's ids, and every batch result equals one
``encode`` per text, for str of each storage kind (ASCII, Latin-1, UCS-2, UCS-4) and any thread count."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vocab_fixtures import ADVERSARIAL, PROSE, imported, reference, stdlib_texts

from shardstore.errors import InputError
from tokenizer import Tokenizer

NAMES = ["cl100k_base", "o200k_base", "gpt2"]

# One text per PEP 393 storage kind, and the long-piece paths (a 1 MB-class run takes the heap merge).
KINDS = {
    "ascii": "def f(x):\n    return x + 1  # plain ASCII\n",
    "latin1": "Grüße aus Köln, café crème à la française. ¡Olé!",
    "ucs2": "日本語のテキスト、中文文本。한국어 텍스트. Ελληνικά",
    "ucs4": "emoji 👩‍👩‍👧‍👦 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠀀𠀁 mixed with ASCII",
    "long_run": "中" * 5000 + "x" * 3000 + " " * 200,
}


def _docs(n: int = 2000) -> list[str]:
    rng = random.Random(11)
    pool = [*PROSE.values(), *ADVERSARIAL.values(), *KINDS.values()]
    docs = []
    for _ in range(n):
        text = rng.choice(pool)
        a = rng.randrange(len(text))
        docs.append(text[a : a + rng.choice([0, 1, 3, 40, 500])])
    return docs


@pytest.mark.parametrize("name", NAMES)
def test_count_tokens_equals_len_of_tiktokens_ids(name):
    tok, ref = imported(name), reference(name)
    texts = {**stdlib_texts(), **PROSE, **ADVERSARIAL, **KINDS}
    for key, text in texts.items():
        assert tok.count_tokens(text) == len(ref.encode_ordinary(text)), f"{name}: {key}"
    values = list(texts.values())
    assert tok.count_tokens_batch(values, num_threads=2) == [len(ref.encode_ordinary(t)) for t in values]


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=100, deadline=None)
@given(text=st.text(st.characters(exclude_categories=("Cs",)), max_size=80))
def test_fuzz_count_equals_len_encode(name, text):
    tok = imported(name)
    want = len(reference(name).encode_ordinary(text))
    assert tok.count_tokens(text) == want
    assert tok.count_tokens_batch([text, text[::-1]], num_threads=2) == [want, len(tok.encode(text[::-1]))]


@pytest.mark.parametrize("threads", [1, 2, 5])
def test_batches_of_every_str_kind_equal_one_encode_per_text(threads):
    tok = imported("cl100k_base")
    docs = _docs()
    want = reference("cl100k_base").encode_ordinary_batch(docs, num_threads=1)
    assert tok.encode_batch(docs, num_threads=threads) == want
    assert [a.tolist() for a in tok.encode_batch_to_numpy(docs, num_threads=threads)] == want
    assert tok.count_tokens_batch(docs, num_threads=threads) == [len(ids) for ids in want]


def test_uint16_batch_of_a_small_vocabulary():
    tok = Tokenizer.from_merges([(b"a", b"b"), (b"\xe4", b"\xb8"), (b"\xe4\xb8", b"\xad")], special_tokens=())
    docs = ["abab 中中", "x", "", "Grüße"]
    got = tok.encode_batch_to_numpy(docs, num_threads=2)
    assert all(a.dtype.name == "uint16" for a in got)
    assert [a.tolist() for a in got] == [tok.encode(d) for d in docs]


def test_specials_and_custom_patterns_count_like_encode():
    tok = imported("cl100k_base")
    text = "a<|endoftext|>b<|fim_prefix|>"
    assert tok.count_tokens(text) == len(tok.encode(text))
    assert tok.count_tokens(text, allowed_special="all") == len(tok.encode(text, allowed_special="all")) == 4
    assert tok.count_tokens_batch([text], allowed_special="all") == [4]
    custom = Tokenizer.from_merges([(b"a", b"b")], pattern=r"\w+|\s+|[^\w\s]+")
    for t in ["ab ab, abab!", "", "Grüße 中"]:
        assert custom.count_tokens(t) == len(custom.encode(t))
    assert custom.count_tokens_batch(["ab ab", "x"]) == [3, 1]  # "ab", " ", "ab"


def test_lone_surrogates_raise_or_count_as_replacement():
    tok = imported("cl100k_base")
    bad = "ok \ud800 ok"
    with pytest.raises(InputError, match="U\\+D800"):
        tok.count_tokens(bad)
    with pytest.raises(InputError, match="U\\+D800"):
        tok.count_tokens_batch(["fine", bad], num_threads=2)
    replaced = "ok \ufffd ok"
    assert tok.count_tokens(bad, errors="replace") == len(tok.encode(replaced))
    got = tok.count_tokens_batch(["fine", bad], num_threads=2, errors="replace")
    assert got == [len(tok.encode("fine")), len(tok.encode(replaced))]
    assert tok.encode_batch_to_numpy([bad], errors="replace")[0].tolist() == tok.encode(replaced)


def test_numpy_batch_arrays_are_disjoint_views():
    tok = imported("cl100k_base")
    docs = ["first document", "", "second one, 中文", "third"]
    got = tok.encode_batch_to_numpy(docs, num_threads=2)
    want = [tok.encode(d) for d in docs]
    got[0][:] = 0  # writing one document's ids leaves the others as they were
    assert [a.tolist() for a in got[1:]] == want[1:]
    assert got[0].tolist() == [0] * len(want[0])


def test_encode_to_numpy_above_and_below_the_scratch_size():
    tok = imported("cl100k_base")
    small = "Grüße, world! 中文 " * 50
    big = "Hello world, 中文. " * 450_000  # over 8 MiB of UTF-8: the worst-case buffer path
    for text in (small, big, small):
        got = tok.encode_to_numpy(text, dtype="uint32")
        assert got.tolist() == tok.encode(text)
        assert tok.count_tokens(text) == got.size


def test_single_calls_convert_every_storage_kind_exactly_as_utf8_bytes():
    # Single calls convert a non-ASCII str themselves (str_utf8.h's Utf8Arg): ASCII stretches a word at a time,
    # in a reused per-thread buffer, or in a buffer of its own past 8 MiB of UTF-8. Each result equals the same
    # call on the str's UTF-8 bytes, the ids equal tiktoken's, and the piece offsets are byte offsets.
    tok, ref = imported("cl100k_base"), reference("cl100k_base")
    enc = tok._encoder()
    rng = random.Random(5)
    for kind, text in KINDS.items():
        for _ in range(
            20
        ):  # ASCII runs of every length around the 8-byte word next to each kind's characters
            parts = [
                text[: rng.randrange(len(text) + 1)],
                "a" * rng.randrange(0, 20),
                text[rng.randrange(len(text)) :],
            ]
            t = "".join(parts)
            data = t.encode("utf-8")
            assert enc.count(t) == enc.count(data) == len(ref.encode_ordinary(t)), kind
            assert enc.encode(t) == enc.encode(data) == ref.encode_ordinary(t), kind
            assert bytes(enc.encode_to_buffer(t, 4)) == bytes(enc.encode_to_buffer(data, 4)), kind
            assert enc.split(t) == enc.split(data), kind
    big = ("Grüße " * 200 + KINDS["ucs2"] + "\n") * 5000  # > 8 MiB of UTF-8: its own buffer
    assert len(big.encode("utf-8")) > 8 << 20
    assert enc.count(big) == enc.count(big.encode("utf-8"))
    with pytest.raises(InputError, match="U\\+D800"):
        tok.count_tokens(big + "\ud800")


def test_ascii_blocks_convert_exactly_at_every_offset_of_every_storage_kind():
    # The 16-unit SIMD copy of ASCII stretches (str_utf8.h's ascii_blocks) against the str's own UTF-8: one
    # non-ASCII character of each storage kind at every offset of a 50-character ASCII text, and ASCII characters
    # of every value (0x00-0x7F) through the same blocks.
    enc = imported("cl100k_base")._encoder()
    ascii_all = "".join(map(chr, range(128))) * 2
    base = "the cat sat on the mat, print(x) + 42 and so on.."
    for ch in ("\xe9", "\u4e2d", "\U0001f600"):  # latin-1, UCS-2, UCS-4 storage
        for at in range(len(base) + 1):
            t = base[:at] + ch + base[at:]
            data = t.encode("utf-8")
            assert enc.split(t) == enc.split(data), (ch, at)
            assert enc.encode(t) == enc.encode(data), (ch, at)
        t = ch + ascii_all + ch + ascii_all[:37]
        assert enc.encode(t) == enc.encode(t.encode("utf-8")), ch
