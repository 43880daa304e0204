"""BPE training: native trainer == pure-Python reference, golden merges, determinism, prefix property, errors."""

from __future__ import annotations

import json
import random
import sys
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_train import count_pieces as reference_count_pieces
from reference_train import merges_from_counts, reference_merges

import tokenizer
from shardstore.errors import ConfigError
from tokenizer._native import _trainer
from tokenizer.patterns import PATTERNS
from tokenizer.train import count_pieces, learn_merges

# Characters that exercise every branch of the built-in patterns: letters (ASCII, Latin-1, CJK, combining marks),
# digits, apostrophes, punctuation, and whitespace of every kind.
ALPHABET = "aabbcdeeSTé中ü\u0301 1234567890'''sStTdDmMlLvVrReE.,!?-_()\n\n\r\t  \u00a0\u2009\u3000"
CUSTOM_PATTERN = r"\w+|[^\w\s]+|\s+"


def merge_bytes(tok: tokenizer.Tokenizer) -> list[tuple[bytes, bytes]]:
    """The tokenizer's merges as (left bytes, right bytes), through public API only."""
    _, ranks, _ = tok.to_tiktoken()
    by_id = {i: t for t, i in ranks.items()}
    return [(by_id[a], by_id[b]) for a, b in tok.merges]


def quiet_train(inputs, **kwargs) -> tokenizer.Tokenizer:
    kwargs.setdefault("progress", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # early stop on tiny corpora is expected here
        return tokenizer.train(inputs, **kwargs)


def synthetic_corpus(seed: int, docs: int) -> list[str]:
    """Documents of pseudo-words built from syllables: enough distinct pairs for a few hundred merges."""
    rng = random.Random(seed)
    syllable_text = (
        "th e ca t sa on ma da ta to ken ü ber na ï ve 日 本 x1 20 24 's qu ick br ow n fo x ju mp s ov er la"
    )
    syllables = syllable_text.split()
    seps = ["", "", ",", ".", "!\n", "  ", "\t"]
    out = []
    for _ in range(docs):
        words = [
            "".join(rng.choice(syllables) for _ in range(rng.randint(1, 3)))
            for _ in range(rng.randint(1, 40))
        ]
        out.append(" ".join(w + rng.choice(seps) for w in words))
    return out


texts_strategy = st.lists(st.text(alphabet=ALPHABET, max_size=40), max_size=8)


# ------------------------------------------------------------------------------------------------ oracle tests
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=texts_strategy,
    pattern=st.sampled_from(["cl100k", "gpt2", CUSTOM_PATTERN]),
    num_merges=st.integers(0, 25),
    min_frequency=st.integers(1, 3),
)
def test_train_matches_reference(texts: list[str], pattern: str, num_merges: int, min_frequency: int) -> None:
    tok = quiet_train(texts, vocab_size=257 + num_merges, pattern=pattern, min_frequency=min_frequency)
    expected = reference_merges(
        texts, pattern=PATTERNS.get(pattern, pattern), num_merges=num_merges, min_frequency=min_frequency
    )
    assert merge_bytes(tok) == expected
    assert tok.vocab_size == 257 + len(expected)


@settings(max_examples=80, deadline=None)
@given(
    texts=st.lists(
        st.text(alphabet=st.characters(codec=None, categories=None, exclude_categories=()), max_size=30),
        max_size=5,
    ),
    pattern=st.sampled_from(["cl100k", "gpt2"]),
)
def test_native_counts_match_reference_on_any_unicode(texts: list[str], pattern: str) -> None:
    # Any code point, lone surrogates included (counted as U+FFFD by both).
    counter = count_pieces(texts, pattern=pattern, num_threads=2)
    assert counter.to_dict() == dict(reference_count_pieces(texts, PATTERNS[pattern]))


@settings(max_examples=60, deadline=None)
@given(
    counts=st.dictionaries(
        st.binary(min_size=1, max_size=10).map(lambda b: bytes(x % 4 + 97 for x in b)),
        st.integers(1, 2**62 // 64),
        max_size=12,
    ),
    min_frequency=st.sampled_from([1, 2, 2**40]),
)
def test_merge_learning_matches_reference_with_u64_counts(
    counts: dict[bytes, int], min_frequency: int
) -> None:
    counter = _trainer.PieceCounter()
    counter.add(counts)
    got = learn_merges(counter, num_merges=40, min_frequency=min_frequency)
    assert got == merges_from_counts(counts, num_merges=40, min_frequency=min_frequency)


@pytest.mark.parametrize("pattern", ["cl100k", "gpt2"])
def test_many_merges_match_reference(pattern: str) -> None:
    corpus = synthetic_corpus(2024, 150)
    tok = quiet_train(corpus, vocab_size=257 + 200, pattern=pattern, min_frequency=2, num_threads=2)
    expected = reference_merges(corpus, pattern=PATTERNS[pattern], num_merges=200, min_frequency=2)
    assert len(expected) > 150
    assert merge_bytes(tok) == expected


# ------------------------------------------------------------------------------------------------ golden
GOLDEN_CORPUS = ["the cat sat on the mat", "the dog sat on the log", "it's the cat's hat", "the the the"]


def test_golden_merges_and_ids() -> None:
    tok = quiet_train(GOLDEN_CORPUS, vocab_size=256 + 12 + 1, min_frequency=1)
    # Ties are broken by the smaller (left bytes, right bytes): (h, e) and (t, h) both occur 8 times; (h, e) wins.
    assert merge_bytes(tok) == [
        (b"h", b"e"),
        (b"t", b"he"),
        (b"a", b"t"),
        (b" ", b"the"),
        (b" ", b"c"),
        (b" ", b"o"),
        (b" ", b"s"),
        (b" c", b"at"),
        (b" o", b"n"),
        (b" s", b"at"),
        (b"'", b"s"),
        (b"o", b"g"),
    ]
    assert tok.encode("the cat sat on the log") == [257, 263, 265, 264, 259, 32, 108, 267]
    assert tok.special_tokens == {"<|endoftext|>": 268}
    assert tok.eos_id == 268


# ------------------------------------------------------------------------------------------------ determinism
@pytest.mark.parametrize("pattern", ["cl100k", CUSTOM_PATTERN])
def test_result_independent_of_thread_count_and_batching(
    pattern: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = synthetic_corpus(7, 400)
    base = quiet_train(corpus, vocab_size=600, num_threads=1, pattern=pattern)
    # Many small batches, cut at different places for each thread count.
    monkeypatch.setattr(sys.modules["tokenizer.train"], "_BATCH_CHARS_PER_THREAD", 3_000)
    for threads in (1, 2, 4):
        tok = quiet_train(corpus, vocab_size=600, num_threads=threads, pattern=pattern)
        assert tok.fingerprint == base.fingerprint, threads
    shuffled = corpus[:]
    random.Random(1).shuffle(shuffled)
    assert (
        quiet_train(shuffled, vocab_size=600, num_threads=2, pattern=pattern).fingerprint == base.fingerprint
    )


def test_counts_from_separate_processes_combine_to_the_same_merges() -> None:
    # Counts are plain sums: shards counted anywhere (other processes, other machines) and added together give
    # exactly the merges of counting everything at once.
    corpus = synthetic_corpus(13, 300)
    whole = count_pieces(corpus, pattern="cl100k", num_threads=2)
    combined = _trainer.PieceCounter()
    for part in (corpus[:100], corpus[100:250], corpus[250:]):
        combined.add(count_pieces(part, pattern="cl100k", num_threads=1).to_dict())
    assert combined.to_dict() == whole.to_dict()
    assert learn_merges(combined, num_merges=150) == learn_merges(whole, num_merges=150, consume=True)
    assert len(whole) == 0 and whole.to_dict() == {}  # consumed: the pieces now live only in the merger


def test_smaller_vocabulary_is_a_prefix_of_larger() -> None:
    corpus = synthetic_corpus(3, 300)
    small = quiet_train(corpus, vocab_size=300)
    large = quiet_train(corpus, vocab_size=420)
    assert len(small.merges) == 300 - 257 and len(large.merges) == 420 - 257
    assert large.merges[: len(small.merges)] == small.merges
    assert merge_bytes(large)[: len(small.merges)] == merge_bytes(small)


def test_min_frequency_stops_training_with_a_warning() -> None:
    corpus = ["aaab"] * 3 + ["xy"] * 2 + ["qz"]
    with pytest.warns(UserWarning, match=r"stopped after 4 of 20 merges.*min_frequency=2"):
        tok = tokenizer.train(corpus, vocab_size=257 + 20, min_frequency=2, progress=False)
    # (a, a) occurs 6 times; then (a, b) and (aa, a) tie at 3 and b"a" < b"aa"; (x, y) occurs 2 times, (q, z) once.
    assert merge_bytes(tok) == [(b"a", b"a"), (b"a", b"b"), (b"aa", b"ab"), (b"x", b"y")]
    assert tok.vocab_size == 257 + 4


@pytest.mark.parametrize("pattern", ["cl100k", CUSTOM_PATTERN])
def test_lone_surrogates_count_as_replacement_character(pattern: str) -> None:
    a = quiet_train(["ab\ud800cd ab\udfffcd"] * 3, vocab_size=270, min_frequency=1, pattern=pattern)
    b = quiet_train(["ab\ufffdcd ab\ufffdcd"] * 3, vocab_size=270, min_frequency=1, pattern=pattern)
    assert a.fingerprint == b.fingerprint
    assert len(a.merges) > 0


def test_empty_input_gives_bytes_and_specials_only() -> None:
    with pytest.warns(UserWarning, match="stopped after 0 of 43 merges"):
        tok = tokenizer.train([], vocab_size=300, progress=False)
    assert tok.vocab_size == 257 and tok.eos_id == 256


# ------------------------------------------------------------------------------------------------ inputs
def test_file_inputs_train_like_the_same_texts(tmp_path: Path) -> None:
    corpus = synthetic_corpus(11, 40)
    txt_dir = tmp_path / "txt"
    txt_dir.mkdir()
    for i, text in enumerate(corpus[:20]):
        (txt_dir / f"doc{i:03d}.txt").write_text(text, encoding="utf-8")
    jsonl = tmp_path / "rest.jsonl"
    jsonl.write_text("".join(json.dumps({"body": t}) + "\n" for t in corpus[20:]), encoding="utf-8")

    from_texts = quiet_train(corpus, vocab_size=400, text_field="body")
    from_paths = quiet_train([txt_dir, jsonl], vocab_size=400, text_field="body")
    assert from_paths.fingerprint == from_texts.fingerprint
    from_one_path = quiet_train(str(txt_dir), vocab_size=400)
    assert from_one_path.fingerprint == quiet_train(corpus[:20], vocab_size=400).fingerprint


def test_iterator_input_is_streamed_once() -> None:
    corpus = synthetic_corpus(5, 50)
    assert (
        quiet_train(iter(corpus), vocab_size=350).fingerprint
        == quiet_train(corpus, vocab_size=350).fingerprint
    )


# ------------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"vocab_size": 256}, r"vocab_size=256 is too small.*>= 257"),
        ({"vocab_size": 258, "special_tokens": ("<a>", "<b>", "<c>")}, r"vocab_size=258 .*>= 259"),
        ({"vocab_size": True}, r"vocab_size=True"),
        ({"vocab_size": 2**40}, r"vocab_size=1099511627776 is larger than the supported maximum"),
        ({"vocab_size": 300, "min_frequency": 0}, r"min_frequency=0"),
        ({"vocab_size": 300, "num_threads": 0}, r"num_threads=0"),
        ({"vocab_size": 300, "pattern": "(unclosed"}, r"does not compile"),
        ({"vocab_size": 300, "special_tokens": "<|eot|>"}, r"got the str '<\|eot\|>'; pass \('<\|eot\|>',\)"),
    ],
)
def test_bad_options_raise_config_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        tokenizer.train(["some text"], progress=False, **kwargs)


def test_bad_inputs_raise_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"text #1 is a bytes, expected str"):
        tokenizer.train(["ok", b"bytes"], vocab_size=300, progress=False)
    with pytest.raises(ConfigError, match=r"text #0 is a NoneType"):
        tokenizer.train([None, "text"], vocab_size=300, progress=False)
    with pytest.raises(ConfigError, match="mixes paths"):
        tokenizer.train([tmp_path, "text"], vocab_size=300, progress=False)
    with pytest.raises(ConfigError, match="inputs must be"):
        tokenizer.train(42, vocab_size=300, progress=False)  # type: ignore[arg-type]


def test_progress_bars_for_counting_and_merging(capsys: pytest.CaptureFixture[str]) -> None:
    corpus = synthetic_corpus(1, 20)
    quiet_train(corpus, vocab_size=300, progress=True)
    err = capsys.readouterr().err
    assert "count" in err and "merge" in err
    quiet_train(corpus, vocab_size=300, progress=False)
    assert capsys.readouterr().err == ""


def test_counting_streams_in_bounded_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Texts are pulled at most about two batches ahead of what the native counter has finished with."""
    batch_chars = 1_000
    monkeypatch.setattr(sys.modules["tokenizer.train"], "_BATCH_CHARS_PER_THREAD", batch_chars)
    finished = 0
    real_type = _trainer.PieceCounter

    class RecordingCounter:
        def __init__(self) -> None:
            self.real = real_type()

        def count_texts(self, batch: list[str], pattern: int, num_threads: int) -> int:
            nonlocal finished
            done = self.real.count_texts(batch, pattern, num_threads)
            finished += sum(len(t) for t in batch)
            return done

    monkeypatch.setattr(_trainer, "PieceCounter", RecordingCounter)
    corpus = synthetic_corpus(9, 500)
    longest = max(len(t) for t in corpus)
    pulled = 0

    def texts():
        nonlocal pulled
        for text in corpus:
            assert pulled - finished <= 2 * (batch_chars + longest)
            pulled += len(text)
            yield text

    counter = count_pieces(texts(), pattern="cl100k", num_threads=1).real
    assert finished == pulled == sum(len(t) for t in corpus)
    stats = counter.stats()
    assert stats["bytes"] == sum(len(t.encode("utf-8")) for t in corpus)
    assert stats["unique_pieces"] == len(counter) < stats["pieces"]


def test_native_objects_reject_misuse_without_crashing() -> None:
    blank = _trainer.PieceCounter.__new__(
        _trainer.PieceCounter
    )  # __init__ skipped: still a valid, empty counter
    assert len(blank) == 0 and blank.to_dict() == {}
    merger = _trainer.BpeMerger.__new__(_trainer.BpeMerger)
    with pytest.raises(RuntimeError, match="not initialized"):
        merger.step(3)
    with pytest.raises(TypeError):
        _trainer.BpeMerger(42)
    with pytest.raises(OverflowError):
        blank.add({b"ab": -1})
    with pytest.raises(TypeError, match="keys must be bytes or str"):
        blank.add({1: 2})
    with pytest.raises(ValueError, match="pattern=99"):  # 4 patterns x 2 table versions: ids 0..7 are valid
        blank.count_texts(["x"], 99, 1)
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        blank.count_texts(["x", 1], 0, 1)
    blank.add({b"ab": 3})
    merger.__init__(blank)  # re-initializing starts over
    assert merger.step(5) == [(b"a", b"b")] and merger.exhausted
