"""Import a Hugging Face ``tokenizer.json`` byte-level BPE (GPT-2, RoBERTa, Llama-3, Qwen2 style) with its exact ids.

HF's BPE ranks *pairs* by their position in the merge list and merges only listed pairs; with ``ignore_merges`` a
pre-token that is itself in the vocabulary is taken whole first. The native encoder runs exactly that when given
the merge list (`tokenizer.vocab.Ranks.merges`), so the ids are HF's whatever the order of the list, not only
when it happens to agree with the ids.

Accepted: model ``BPE`` without dropout, ``byte_fallback``, subword prefix or word suffix; no normalizer; the
pre-tokenizer ``ByteLevel`` (with its GPT-2 regex, no prefix space) or ``Sequence[Split(Regex, Isolated),
ByteLevel(use_regex=false)]``; decoder ``ByteLevel`` or none; added tokens that are special and strip nothing (ids
above the vocabulary, or its last entries). Anything else is refused with a `ConfigError` naming the construct,
never approximated. The post-processor is ignored: ids are those of ``encode(text, add_special_tokens=False)``
(`Tokenizer.encode` adds no BOS/EOS), and special tokens are recognized as HF does with ``allowed_special="all"``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from shardstore.errors import ConfigError, InputError

from .interop import bytes_to_unicode, portability_problem
from .patterns import PATTERNS
from .vocab import Ranks, check_ranks

__all__ = ["hf_ranks", "parse_hf"]


def hf_ranks(path: str | os.PathLike[str]) -> tuple[Ranks, str]:
    """(ranks, pattern) of a ``tokenizer.json`` file (or a folder holding one)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "tokenizer.json")
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a JSON file ({exc})") from None
    return parse_hf(doc, source=path)


def _type(node: Any) -> str | None:
    return node.get("type") if isinstance(node, dict) else None


def _refuse(source: str, what: str) -> ConfigError:
    return ConfigError(f"{source}: cannot import exactly: {what}")


def _pattern(pre: Any, source: str) -> str:
    kind = _type(pre)
    if kind == "ByteLevel":
        if pre.get("add_prefix_space"):
            raise _refuse(source, "ByteLevel add_prefix_space=true (a space is prepended to the text)")
        if not pre.get("use_regex", True):
            raise _refuse(source, "ByteLevel without its regex and without a Split before it")
        return PATTERNS["gpt2"]
    if kind == "Sequence":
        steps = pre.get("pretokenizers") or []
        if [_type(s) for s in steps] != ["Split", "ByteLevel"]:
            raise _refuse(
                source, f"pre-tokenizer Sequence of {[_type(s) for s in steps]} (want Split, ByteLevel)"
            )
        split, level = steps
        regex = (split.get("pattern") or {}).get("Regex")
        if not isinstance(regex, str) or split.get("behavior") != "Isolated" or split.get("invert"):
            raise _refuse(
                source, f"Split {split.get('pattern')!r} {split.get('behavior')} (want a Regex, Isolated)"
            )
        problem = portability_problem(regex)
        if problem is not None:
            raise _refuse(
                source, f"Split regex has {problem}, which Oniguruma (HF) and `regex` read differently"
            )
        if level.get("use_regex", True) or level.get("add_prefix_space"):
            raise _refuse(
                source, "ByteLevel after Split must have use_regex=false and add_prefix_space=false"
            )
        return regex
    raise _refuse(source, f"unknown pre-tokenizer {kind or pre!r} (want ByteLevel, or Split + ByteLevel)")


def parse_hf(doc: Any, *, source: str) -> tuple[Ranks, str]:
    """Validate a parsed ``tokenizer.json`` and convert it; see the module docstring for what is accepted."""
    if not isinstance(doc, dict) or not isinstance(doc.get("model"), dict):
        raise InputError(f"{source}: not a Hugging Face tokenizer.json (no 'model' object)")
    model = doc["model"]
    if model.get("type", "BPE") != "BPE" or "merges" not in model:
        raise _refuse(source, f"model type {model.get('type')!r}; only byte-level BPE can be imported")
    if doc.get("normalizer") is not None:
        raise _refuse(source, f"normalizer {_type(doc['normalizer'])!r} (it rewrites text before splitting)")
    for key, ok in (("dropout", (None, 0, 0.0)), ("continuing_subword_prefix", (None, "")),
                    ("end_of_word_suffix", (None, "")), ("byte_fallback", (None, False))):  # fmt: skip
        if model.get(key) not in ok:
            raise _refuse(source, f"BPE {key}={model.get(key)!r}")
    if _type(doc.get("decoder")) not in (None, "ByteLevel"):
        raise _refuse(
            source, f"decoder {_type(doc.get('decoder'))!r} (a byte-level vocabulary decodes with ByteLevel)"
        )
    pattern = _pattern(doc.get("pre_tokenizer"), source)
    char_byte = {c: b for b, c in bytes_to_unicode().items()}
    vocab = model.get("vocab")
    if not isinstance(vocab, dict) or not all(type(i) is int and i >= 0 for i in vocab.values()):
        raise InputError(f"{source}: model.vocab must map tokens to non-negative int ids")
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise _refuse(source, "model.vocab ids are not 0..n-1 (HF numbers added tokens from its size)")
    specials: dict[str, int] = {}
    next_id = len(vocab)  # HF gives an added token outside the vocabulary the next id, in file order
    for added in doc.get("added_tokens") or []:
        name, sid = added.get("content"), added.get("id")
        if not added.get("special") or any(added.get(k) for k in ("lstrip", "rstrip", "single_word")):
            raise _refuse(
                source, f"added token {name!r} is not a plain special token (HF splits it out of text)"
            )
        hf_id = vocab.get(name, next_id)
        if hf_id != sid:
            raise _refuse(source, f"added token {name!r} records id {sid} but HF encodes it as {hf_id}")
        next_id += name not in vocab
        specials[name] = sid
    ordinary = {k: v for k, v in vocab.items() if k not in specials}
    size = max(ordinary.values()) + 1
    tokens = [b""] * size
    for text, i in ordinary.items():
        try:
            tokens[i] = bytes(char_byte[c] for c in text)
        except KeyError as exc:
            raise _refuse(
                source, f"vocabulary entry {text!r} is not byte-level ({exc} is no byte's character)"
            ) from None
    merges: list[tuple[int, int, int]] = []
    for k, m in enumerate(model["merges"]):
        parts = m.split(" ") if isinstance(m, str) else m
        if not (isinstance(parts, list) and len(parts) == 2 and all(isinstance(p, str) for p in parts)):
            raise InputError(f"{source}: merge {k} is {m!r}, not 'left right' or [left, right]")
        a, b, r = (ordinary.get(parts[0]), ordinary.get(parts[1]), ordinary.get(parts[0] + parts[1]))
        if a is None or b is None or r is None:
            raise _refuse(source, f"merge {k} {parts!r} refers to a token missing from the vocabulary")
        merges.append((a, b, r))
    ranks = check_ranks(
        tokens, specials, merges=merges, piece_lookup=bool(model.get("ignore_merges", False)), source=source
    )
    return ranks, pattern
