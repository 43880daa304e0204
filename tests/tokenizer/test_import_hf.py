"""Hugging Face ``tokenizer.json`` import (issue 23): ids equal to HF `tokenizers` itself on the same file, for a
GPT-2 file (ByteLevel pre-tokenizer, ``ignore_merges: false``, merges as strings) and a Llama-3-style cl100k file
(Split regex + ByteLevel, ``ignore_merges: true``, merges as lists); every construct we cannot represent exactly is
refused with one line naming it.
"""

from __future__ import annotations

import copy
import json

import pytest
import tokenizers
from tokenizers import decoders, models, pre_tokenizers
from vocab_fixtures import ADVERSARIAL, GPT2_FILES, PROSE, imported, reference, resource, stdlib_texts

from shardstore.errors import ConfigError, InputError
from tokenizer import Tokenizer
from tokenizer.vocab import Ranks


@pytest.fixture(scope="module")
def gpt2_json(tmp_path_factory):
    """GPT-2 as HF builds it from encoder.json + vocab.bpe."""
    bpe = models.BPE.from_file(str(resource(*GPT2_FILES[:2])), str(resource(GPT2_FILES[0], GPT2_FILES[2])))
    hf = tokenizers.Tokenizer(bpe)
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    hf.add_special_tokens(["<|endoftext|>"])
    path = tmp_path_factory.mktemp("hf") / "tokenizer.json"
    hf.save(str(path))
    return path


@pytest.fixture(scope="module")
def cl100k_json(tmp_path_factory):
    """cl100k in the Llama-3 layout: classic cl100k Split regex, every split of every token as merges, one special
    token right after the vocabulary (HF renumbers gapped added tokens, see test_gapped_added_ids_are_refused)."""
    ranks = imported("cl100k_base")._content.ranks
    assert ranks is not None
    tok = Tokenizer.from_ranks(Ranks(ranks.tokens, (("<|endoftext|>", 100256),)), pattern="cl100k")
    path = tmp_path_factory.mktemp("hf") / "tokenizer.json"
    tok.save_hf(path)
    return path


QWEN2_SPLIT = (  # Qwen2's pre-tokenizer regex: cl100k's with single digits (a custom pattern: the `regex` path)
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


@pytest.fixture(scope="module")
def qwen2_style_json(tmp_path_factory):
    """A Qwen2-style file: its Split regex (not a built-in pattern) over gpt2's ranks, merges as lists."""
    ranks = imported("gpt2")._content.ranks
    assert ranks is not None
    tok = Tokenizer.from_ranks(Ranks(ranks.tokens, (("<|endoftext|>", 50256),)), pattern=QWEN2_SPLIT)
    path = tmp_path_factory.mktemp("hf") / "tokenizer.json"
    tok.save_hf(path)
    return path


def test_qwen2_style_split_regex_equals_hf(qwen2_style_json):
    hf, tok = tokenizers.Tokenizer.from_file(str(qwen2_style_json)), Tokenizer.from_hf(qwen2_style_json)
    assert tok.pattern == QWEN2_SPLIT and tok.regex_version is not None  # runs through the regex package
    texts = {**PROSE, **ADVERSARIAL, "digits": "12345 67 8.9e10 ١٢٣"}
    texts["long_run"] = texts["long_run"][:20_000]
    for key, text in texts.items():
        assert tok.encode(text) == hf.encode(text, add_special_tokens=False).ids, key


def _texts():
    return {**stdlib_texts(), **PROSE, **ADVERSARIAL, "special": "a<|endoftext|>b <|endoftext|>"}


@pytest.mark.parametrize("which", ["gpt2", "cl100k"])
def test_ids_equal_hf_tokenizers(which, gpt2_json, cl100k_json):
    path = gpt2_json if which == "gpt2" else cl100k_json
    hf, tok = tokenizers.Tokenizer.from_file(str(path)), Tokenizer.from_hf(path)
    for key, text in _texts().items():
        want = hf.encode(text, add_special_tokens=False).ids
        assert tok.encode(text, allowed_special="all") == want, f"{which}: {key}"
    assert (
        Tokenizer.open(f"hf:{path}") == tok
        and Tokenizer.open(path) == tok
        and Tokenizer.open(path.parent) == tok
    )


def test_gpt2_from_hf_equals_tiktoken_gpt2(gpt2_json):
    tok, ref = Tokenizer.from_hf(gpt2_json), reference("gpt2")
    assert tok.special_tokens == {"<|endoftext|>": 50256}
    for text in PROSE.values():
        assert tok.encode(text) == ref.encode_ordinary(text)
    assert not tok._content.ranks.piece_lookup  # ignore_merges: false is kept, so ids stay HF's


def test_gpt2_files_equal_tiktoken():
    tok = Tokenizer.from_gpt2_files(resource(*GPT2_FILES[:2]), resource(GPT2_FILES[0], GPT2_FILES[2]))
    assert tok == imported("gpt2")
    assert Tokenizer.open(f"gpt2:{resource(*GPT2_FILES[:2]).parent}") == tok


def test_merges_as_strings_or_lists_give_one_tokenizer(gpt2_json, tmp_path):
    doc = json.loads(gpt2_json.read_text())
    assert isinstance(doc["model"]["merges"][0], list | str)
    as_str = copy.deepcopy(doc)
    as_str["model"]["merges"] = [m if isinstance(m, str) else " ".join(m) for m in doc["model"]["merges"]]
    as_list = copy.deepcopy(doc)
    as_list["model"]["merges"] = [m.split(" ") if isinstance(m, str) else m for m in doc["model"]["merges"]]
    (tmp_path / "s.json").write_text(json.dumps(as_str))
    (tmp_path / "l.json").write_text(json.dumps(as_list))
    assert Tokenizer.from_hf(tmp_path / "s.json") == Tokenizer.from_hf(tmp_path / "l.json")


REFUSALS = [
    ("model.type", "WordPiece", "model type 'WordPiece'"),
    ("model.type", "Unigram", "model type 'Unigram'"),
    ("normalizer", {"type": "NFC"}, "normalizer 'NFC'"),
    ("pre_tokenizer", {"type": "Metaspace", "replacement": "▁"}, "unknown pre-tokenizer 'Metaspace'"),
    ("pre_tokenizer", {"type": "ByteLevel", "add_prefix_space": True}, "add_prefix_space=true"),
    ("model.byte_fallback", True, "byte_fallback=True"),
    ("model.dropout", 0.1, "dropout=0.1"),
    ("model.continuing_subword_prefix", "##", "continuing_subword_prefix"),
    ("decoder", {"type": "Metaspace"}, "decoder 'Metaspace'"),
    (
        "pre_tokenizer",
        {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": r"\p{N}{1,3}+|\s++$|."}, "behavior": "Isolated"},
                {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False},
            ],
        },
        "Oniguruma",
    ),
]


@pytest.mark.parametrize(("key", "value", "message"), REFUSALS, ids=[r[2].split()[0] for r in REFUSALS])
def test_unrepresentable_constructs_are_refused(gpt2_json, tmp_path, key, value, message):
    doc = json.loads(gpt2_json.read_text())
    node, *rest = key.split(".")
    if rest:
        doc[node][rest[0]] = value
    else:
        doc[node] = value
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="cannot import exactly") as err:
        Tokenizer.from_hf(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_non_byte_level_vocab_and_odd_added_tokens_are_refused(gpt2_json, tmp_path):
    doc = json.loads(gpt2_json.read_text())
    bad = copy.deepcopy(doc)
    bad["model"]["vocab"]["▁hello"] = len(bad["model"]["vocab"])
    bad["added_tokens"] = []
    (tmp_path / "a.json").write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="not byte-level"):
        Tokenizer.from_hf(tmp_path / "a.json")
    bad = copy.deepcopy(doc)
    bad["added_tokens"].append({"id": 50257, "content": "<mask>", "special": False})
    (tmp_path / "b.json").write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="not a plain special token"):
        Tokenizer.from_hf(tmp_path / "b.json")
    (tmp_path / "c.json").write_text('{"version": "1.0"}')
    with pytest.raises(InputError, match=r"not a Hugging Face tokenizer\.json"):
        Tokenizer.from_hf(tmp_path / "c.json")


def test_gapped_added_ids_are_refused(tmp_path):
    # HF gives added tokens outside the vocabulary the next ids in file order, whatever their "id" says; cl100k's
    # gapped ids (100257..100260, 100276) therefore do not survive a tokenizer.json. We refuse rather than guess.
    path = tmp_path / "cl.json"
    ranks = imported("cl100k_base")._content.ranks
    assert ranks is not None
    Tokenizer.from_ranks(ranks, pattern="cl100k").save_hf(path)
    hf = tokenizers.Tokenizer.from_file(str(path))
    assert hf.token_to_id("<|endoftext|>") == 100256  # HF's renumbering, the reason for the refusal
    with pytest.raises(ConfigError, match="records id 100257 but HF encodes it as 100256"):
        Tokenizer.from_hf(path)


def test_save_hf_writes_only_patterns_hf_reads_the_same(tmp_path):
    gpt2 = imported("gpt2")  # tiktoken's r50k spelling is written as the classic GPT-2 pattern (same splits)
    gpt2.save_hf(tmp_path / "g.json")
    hf = tokenizers.Tokenizer.from_file(str(tmp_path / "g.json"))
    text = PROSE["german"] + ADVERSARIAL["trailing_ws"]
    assert hf.encode(text, add_special_tokens=False).ids == gpt2.encode(text)
    with pytest.raises(ConfigError, match="Oniguruma"):
        imported("cl100k_base").save_hf(tmp_path / "c.json")  # its {1,3}+ and $ would split differently
