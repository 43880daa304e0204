"""Tokenizer API: construction rules, save/load and its corruption checks, special tokens, Unicode policies, numpy,
batches and threads."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstore.errors import ChecksumError, ConfigError, FormatError, InputError
from tokenizer import Tokenizer

MERGES = [(b"a", b"b"), (b"ab", b"c"), (b" ", b"t"), (b"h", b"e"), (b" t", b"he"), (b"<", b"|")]
EOT = "<|endoftext|>"


@pytest.fixture
def tok() -> Tokenizer:
    return Tokenizer.from_merges(MERGES, special_tokens=(EOT, "<|pad|>"))


def test_id_layout(tok):
    assert tok.vocab_size == 256 + len(MERGES) + 2
    assert tok.special_tokens == {EOT: 262, "<|pad|>": 263}
    assert tok.eos_id == 262
    assert tok.merges[1] == (256, 99)
    assert tok.decode_bytes([257, 260, 262]) == b"abc the" + EOT.encode()
    assert tok.numpy_dtype == np.uint16
    assert Tokenizer.from_merges([], special_tokens=("<s>",)).eos_id == 256
    assert Tokenizer.from_merges([], special_tokens=()).eos_id is None


@pytest.mark.parametrize(
    ("merges", "message"),
    [
        ([(b"ab", b"c")], "is not a token yet"),
        ([(b"a", b"b"), (b"a", b"b")], "already token 256"),
        ([(b"a", b"bc", b"d")], "pair of bytes"),
        ([("a", "b")], "pair of bytes"),
    ],
)
def test_from_merges_rejects_invalid_merges(merges, message):
    with pytest.raises(ConfigError, match=message):
        Tokenizer.from_merges(merges)


def test_from_merges_rejects_bad_pattern_and_specials():
    with pytest.raises(ConfigError, match="does not compile"):
        Tokenizer.from_merges([], pattern="(unclosed")
    with pytest.raises(ConfigError, match="duplicates"):
        Tokenizer.from_merges([], special_tokens=("<a>", "<a>"))
    with pytest.raises(ConfigError, match="non-empty strings"):
        Tokenizer.from_merges([], special_tokens=("",))


def test_save_load_roundtrip(tok, tmp_path):
    path = tmp_path / "tok.json"
    tok.save(path)
    loaded = Tokenizer.load(path)
    assert loaded == tok and loaded.fingerprint == tok.fingerprint
    assert loaded.merges == tok.merges and loaded.special_tokens == tok.special_tokens
    text = "abc the <|endoftext|> x"
    assert loaded.encode(text) == tok.encode(text)
    assert Tokenizer.from_json_bytes(path.read_bytes()) == tok
    assert [p.name for p in tmp_path.iterdir()] == ["tok.json"]  # no temp file left behind
    # The fingerprint is of the content, not of the formatting.
    doc = json.loads(path.read_text())
    (tmp_path / "pretty.json").write_text(json.dumps(doc, indent=2))
    assert Tokenizer.load(tmp_path / "pretty.json").fingerprint == tok.fingerprint


def test_fingerprint_depends_on_all_content():
    base = Tokenizer.from_merges(MERGES)
    assert Tokenizer.from_merges(MERGES[:-1]).fingerprint != base.fingerprint
    assert Tokenizer.from_merges(MERGES, pattern="gpt2").fingerprint != base.fingerprint
    assert Tokenizer.from_merges(MERGES, special_tokens=("<|x|>",)).fingerprint != base.fingerprint
    assert len(base.fingerprint) == 64 and int(base.fingerprint, 16) >= 0


def _edit(path, fn):
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    ("edit", "error", "message"),
    [
        (lambda d: d["merges"].__setitem__(0, [97, 99]), ChecksumError, "fingerprint mismatch"),
        (lambda d: d["special_tokens"].append("<|x|>"), FormatError, "vocab_size"),
        (lambda d: d.__setitem__("pattern", "gpt2"), ChecksumError, "edited by hand"),
        (lambda d: d["merges"].__setitem__(2, [97, 400]), FormatError, "outside"),
        (lambda d: d["merges"].__setitem__(2, [97, "b"]), FormatError, "pair of int ids"),
        (
            lambda d: d.__setitem__("format_version", 99),
            FormatError,
            "unsupported tokenizer format_version 99",
        ),
        (lambda d: d.__setitem__("format", "hf"), FormatError, "not a shardstore tokenizer"),
        (lambda d: d.pop("fingerprint"), FormatError, "lacks keys"),
        (lambda d: d.__setitem__("pattern", "(unclosed"), FormatError, "does not compile"),
    ],
)
def test_load_rejects_corrupted_or_edited_files(tok, tmp_path, edit, error, message):
    path = tmp_path / "tok.json"
    tok.save(path)
    _edit(path, edit)
    with pytest.raises(error, match=message) as info:
        Tokenizer.load(path)
    assert str(path) in str(info.value)


def test_load_rejects_truncated_and_missing_files(tok, tmp_path):
    path = tmp_path / "tok.json"
    tok.save(path)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(FormatError, match="not a valid tokenizer JSON"):
        Tokenizer.load(path)
    with pytest.raises(InputError, match="cannot read"):
        Tokenizer.load(tmp_path / "missing.json")


def test_special_tokens_are_plain_text_by_default(tok):
    text = f"ab{EOT}ab<|pad|>"
    plain = tok.encode(text)
    assert 262 not in plain and 263 not in plain
    assert tok.decode(plain) == text
    assert tok.encode(text, allowed_special="all") == [256, 262, 256, 263]
    assert tok.encode(text, allowed_special={EOT}) == [256, 262, 256, *tok.encode("<|pad|>")]
    assert tok.encode_to_numpy(text, allowed_special="all").tolist() == [256, 262, 256, 263]
    assert tok.encode_batch([text], allowed_special="all") == [[256, 262, 256, 263]]
    # Pieces never span a recognized special token: " the" after it is split as if the text started there.
    assert tok.encode(f"{EOT} the", allowed_special="all") == [262, 260]
    with pytest.raises(ConfigError, match="unknown special tokens"):
        tok.encode(text, allowed_special={"<|nope|>"})


def test_lone_surrogate_policy(tok):
    text = "ab\ud800c the"
    with pytest.raises(InputError, match=r"lone surrogate U\+D800 at index 2"):
        tok.encode(text)
    with pytest.raises(InputError, match="index 2"):
        tok.encode_to_numpy(text)
    with pytest.raises(InputError, match="index 2"):
        tok.encode_batch(["fine", text])
    with pytest.raises(InputError, match="index 15"):
        tok.encode(f"{EOT}ab\udfffc", allowed_special="all")
    replaced = tok.encode(text, errors="replace")
    assert tok.decode(replaced) == "ab\ufffdc the"
    assert tok.encode_batch(["x", text], errors="replace") == [tok.encode("x"), replaced]
    assert tok.encode_to_numpy(text, errors="replace").tolist() == replaced
    with pytest.raises(ConfigError, match="errors must be one of"):
        tok.encode("x", errors="ignore")


def test_decode_policies(tok):
    ids = tok.encode("é") + tok.encode("€")[:2]  # a cut in the middle of a character
    assert tok.decode_bytes(ids) == "é".encode() + "€".encode()[:2]
    assert tok.decode(ids) == "é\ufffd"
    with pytest.raises(InputError, match="invalid UTF-8 at byte 2"):
        tok.decode(ids, errors="strict")
    for bad in ([tok.vocab_size], [-1], [2**70], [1.5]):
        with pytest.raises(ConfigError, match="cannot decode"):
            tok.decode(bad)
    assert tok.decode(np.array([256, 99], dtype=np.int64)) == "abc"
    assert tok.decode([]) == ""


def test_encode_to_numpy_dtypes(tok):
    text = "abc the " * 100
    ids = tok.encode(text)
    arr = tok.encode_to_numpy(text)
    assert arr.dtype == np.uint16 and arr.tolist() == ids and arr.flags.writeable
    assert tok.encode_to_numpy(text, dtype=np.uint32).dtype == np.uint32
    with pytest.raises(ConfigError, match="cannot hold ids"):
        tok.encode_to_numpy(text, dtype=np.int8)
    assert tok.encode_to_numpy("").tolist() == []
    big = Tokenizer.from_merges(_many_merges(70_000))
    assert big.numpy_dtype == np.uint32
    with pytest.raises(ConfigError, match="use uint32"):
        big.encode_to_numpy("x", dtype=np.uint16)


def _many_merges(count: int) -> list[tuple[bytes, bytes]]:
    # Two-byte tokens over all byte pairs, then three-byte ones: enough to pass 65536 ids.
    merges = [(bytes([a]), bytes([b])) for a in range(256) for b in range(256)]
    merges += [(bytes([a, b]), bytes([c])) for a in range(256) for b in range(256) for c in range(2)]
    return merges[:count]


def test_encode_batch_matches_single_and_threads(tok):
    texts = [f"abc {i} the thing\n" * (i % 7) for i in range(200)] + ["", "é" * 1000]
    expected = [tok.encode(t) for t in texts]
    for threads in (1, 2, 4):
        assert tok.encode_batch(texts, num_threads=threads) == expected
        arrays = tok.encode_batch_to_numpy(texts, num_threads=threads)
        assert [a.tolist() for a in arrays] == expected
    assert tok.encode_batch([]) == []
    with pytest.raises(ConfigError, match="num_threads"):
        tok.encode_batch(texts, num_threads=0)
    with pytest.raises(ConfigError, match="must be str"):
        tok.encode_batch([b"bytes"])


def test_pickle_carries_content_not_native_state(tok):
    tok.encode("warm up the native encoder")
    clone = pickle.loads(pickle.dumps(tok))
    assert clone == tok and clone.encode("abc the") == tok.encode("abc the")


def test_custom_pattern_uses_regex_package():
    tok = Tokenizer.from_merges([(b"a", b"b"), (b"ab", b" ")], pattern=r"\w+\s?|\W")
    assert tok.pattern == r"\w+\s?|\W"
    assert tok.encode("ab ab!") == [257, 256, 33]
    assert tok.encode_batch(["ab ab!"]) == [[257, 256, 33]]
    assert tok.encode_to_numpy("ab ab!").tolist() == [257, 256, 33]


def test_package_train_stays_the_function_after_submodule_import():
    import importlib
    import sys

    import tokenizer as package

    importlib.import_module("tokenizer.train")  # binds the submodule on the package...
    assert (
        callable(package.train) and package.train.__module__ == "tokenizer.train"
    )  # ...but the name stays the function
    assert sys.modules["tokenizer.train"].train is package.train


def _pack(texts: list[str]) -> tuple[bytes, np.ndarray, np.ndarray]:
    raw = [t.encode("utf-8") for t in texts]
    ends = np.cumsum([len(r) for r in raw], dtype=np.int64)
    return b"".join(raw), ends - np.array([len(r) for r in raw], dtype=np.int64), ends


@settings(max_examples=80, deadline=None)
@given(texts=st.lists(st.text(st.characters(codec="utf-8"), max_size=60), max_size=12), append=st.booleans())
def test_encode_packed_equals_per_text_encode(texts, append):
    tok = Tokenizer.from_merges(MERGES, special_tokens=(EOT, "<|pad|>"))
    data, starts, ends = _pack(texts)
    eos = tok.special_tokens[EOT] if append else None
    for dtype in (np.uint16, np.uint32):
        ids, counts = tok.encode_packed(bytearray(data), starts, ends, append_id=eos, dtype=dtype)
        expected = [tok.encode(t) + ([eos] if append else []) for t in texts]
        assert ids.dtype == dtype and counts.dtype == np.int64
        assert counts.tolist() == [len(e) for e in expected]
        assert ids.tolist() == [i for e in expected for i in e]


def test_encode_packed_small_and_large_calls_agree(tok):
    """Calls whose worst-case output fits the per-thread scratch (<= 32 MiB) and larger ones that allocate it share
    no state: a large call between two small ones, and small calls after it, give the per-text results."""
    small = ["the abc é", "", "abc the"] * 50
    large = ["the abc é é " * 800_000]  # 11.2 MB: a worst case of 22.4 MB as uint16, 44.8 MB as uint32
    data, starts, ends = _pack(small)
    big, big_starts, big_ends = _pack(large)
    expected_small = [i for t in small for i in [*tok.encode(t), 0]]
    for dtype in (np.uint16, np.uint32):
        assert tok.encode_packed(data, starts, ends, append_id=0, dtype=dtype)[0].tolist() == expected_small
        ids, counts = tok.encode_packed(big, big_starts, big_ends, append_id=0, dtype=dtype)
        assert ids.tolist() == [*tok.encode(large[0]), 0] and counts.tolist() == [ids.size]
        first, _ = tok.encode_packed(data, starts, ends, append_id=0, dtype=dtype)
        again, _ = tok.encode_packed(data, starts, ends, append_id=0, dtype=dtype)
        assert first.tolist() == again.tolist() == expected_small
        first[:] = 1  # results are independent arrays, not views of the scratch
        assert again.tolist() == expected_small


def test_encode_packed_spans_may_skip_overlap_and_reorder(tok):
    data = "the abc é <|endoftext|>".encode()
    starts, ends = np.array([4, 0, 0, 9]), np.array([7, 3, 7, 9])
    ids, counts = tok.encode_packed(data, starts, ends)
    parts = [data[a:b].decode() for a, b in zip(starts, ends, strict=True)]
    assert ids.tolist() == [i for p in parts for i in tok.encode(p)]  # special-token text stays plain text
    assert counts.tolist() == [len(tok.encode(p)) for p in parts]


def test_encode_packed_errors_name_the_text(tok):
    with pytest.raises(InputError, match=r"text 1 is not valid UTF-8 at byte 2"):
        tok.encode_packed(b"okab\xffc", [0, 2], [2, 6])
    with pytest.raises(InputError, match="UTF-8"):
        tok.encode_packed("\ud800".encode("utf-8", "surrogatepass"), [0], [3])  # encoded surrogate
    with pytest.raises(ConfigError, match="outside the 3-byte buffer"):
        tok.encode_packed(b"abc", [0], [4])
    with pytest.raises(ConfigError, match="outside the 3-byte buffer"):
        tok.encode_packed(b"abc", [2], [1])
    with pytest.raises(ConfigError, match="one length"):
        tok.encode_packed(b"abc", [0, 1], [1])
    with pytest.raises(ConfigError, match="append_id"):
        tok.encode_packed(b"abc", [0], [3], append_id=tok.vocab_size)
    ids, counts = tok.encode_packed(b"", [], [])
    assert ids.size == 0 and counts.size == 0


def test_encode_packed_custom_pattern_matches_encode():
    tok = Tokenizer.from_merges([(b"a", b"b"), (b"ab", b" ")], pattern=r"\w+\s?|\W")
    data, starts, ends = _pack(["ab ab!", "", "b a"])
    ids, counts = tok.encode_packed(data, starts, ends, append_id=0)
    assert ids.tolist() == [257, 256, 33, 0, 0, 98, 32, 97, 0]
    assert counts.tolist() == [4, 1, 4]
    with pytest.raises(ConfigError, match="outside the 3-byte buffer"):
        tok.encode_packed(b"abc", [1], [4])
    with pytest.raises(InputError, match="text 0 is not valid UTF-8 at byte 1"):
        tok.encode_packed(b"a\xff", [0], [2])
