"""Export to Hugging Face ``tokenizers``: a ``tokenizer.json`` that encodes to the same ids as `Tokenizer`.

Our semantics are tiktoken's: whole-piece lookup first, then merge the adjacent pair whose concatenation has the
lowest rank. HF's BPE instead merges by the rank of a *pair* of tokens. The export bridges the two:
- ``ignore_merges: true`` gives HF the whole-piece lookup;
- the merge list holds, for every token, every split of it into two tokens, ordered by the rank of the token (then
  by the ranks of the parts). The rank of a pair is then the rank of its concatenation, as in tiktoken.
One corner case remains: when two *different* splits of the same token are both adjacent at once (parts
``aa, a, aa`` with token ``aaa`` = ``aa+a`` = ``a+aa``), tiktoken merges the leftmost and HF the split listed first.
Trained vocabularies hit this rarely; tests/test_tokenizer_interop.py measures it on real text (ids identical).

Text goes through a ``Split`` pre-tokenizer with our regex (run by Oniguruma in HF), then ``ByteLevel`` (bytes to the
GPT-2 printable alphabet, no regex of its own). Special tokens are ``added_tokens``; note HF recognizes them in text
unless ``encode_special_tokens`` is set, whereas `Tokenizer.encode` treats them as plain text by default.

Known split difference (all three peers alike): our splits are defined by the ``regex`` package, whose Unicode tables
are newer than those of Oniguruma (HF) and fancy-regex (tiktoken). Code points assigned in recent Unicode versions
(e.g. U+18D8C, Tangut Components Supplement) are letters to ``regex`` and unassigned ("other") to the peers, so text
containing them can split differently. Text within Unicode 14 (Python 3.11's ``unicodedata``) encodes identically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

from shardstore.errors import ConfigError
from tokenizer.serialization import atomic_write_text

__all__ = ["bytes_to_unicode", "hf_merges", "hf_pattern", "portability_problem", "write_hf_tokenizer_json"]


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters (used by HF's ByteLevel)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    out = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in out:
            out[b] = chr(256 + extra)
            extra += 1
    return out


def portability_problem(regex: str) -> str | None:
    """The first construct of `regex` that HF's Oniguruma (Ruby syntax) reads differently from the ``regex``
    package, or None: ``{m,n}+`` (Oniguruma: a repeat of the bounded repeat, not possessive) and the anchors
    ``^ $`` (Oniguruma: start and end of *line*)."""
    i, in_class = 0, False
    while i < len(regex):
        c = regex[i]
        if c == "\\":  # an escape; \p{..} as a whole
            close = regex.find("}", i) if regex[i + 1 : i + 3] in ("p{", "P{") else -1
            i = close + 1 if close > 0 else i + 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            i += 2 if regex[i + 1 : i + 2] == "^" else 1
            continue
        elif c in "^$":
            return f"the anchor {c!r} at {i}"
        elif c == "}" and regex[i + 1 : i + 2] == "+":
            return f"the quantifier '}}+' at {i}"
        i += 1
    return None


def hf_pattern(pattern: str) -> str:
    """The spelling of `pattern` to write for HF: tiktoken's r50k spelling becomes the classic GPT-2 one (they split
    identically, fuzzed in test_pretok.py). Raises `ConfigError` for a pattern Oniguruma would read differently
    (tiktoken's cl100k_base spelling, whose ``{1,3}+`` and ``$`` it misreads): no export beats a wrong one."""
    from .patterns import PATTERNS

    if pattern == PATTERNS["r50k_base"]:
        return PATTERNS["gpt2"]
    problem = portability_problem(pattern)
    if problem is not None:
        raise ConfigError(
            f"cannot write a tokenizer.json that splits as this pattern: it has {problem}, which HF's Oniguruma "
            "reads differently; the classic spelling 'cl100k' is portable (it differs from tiktoken's only on "
            "trailing whitespace at the end of a text)"
        )
    return pattern


def hf_merges(token_bytes: Sequence[bytes]) -> list[tuple[int, int]]:
    """Every split of every merged token into two tokens, ordered by (token rank, left rank, right rank)."""
    ranks = {t: i for i, t in enumerate(token_bytes)}
    out: list[tuple[int, int, int]] = []
    for rank, token in enumerate(token_bytes):
        if rank < 256:
            continue
        for k in range(1, len(token)):
            left, right = ranks.get(token[:k]), ranks.get(token[k:])
            if left is not None and right is not None:
                out.append((rank, left, right))
    out.sort()
    return [(left, right) for _, left, right in out]


def write_hf_tokenizer_json(
    path: str | os.PathLike[str],
    pattern: str,
    token_bytes: Sequence[bytes],
    special_tokens: Mapping[str, int],
) -> None:
    """Write ``tokenizer.json`` atomically (temp file + rename)."""
    byte_map = bytes_to_unicode()
    pattern = hf_pattern(pattern)

    def show(token: bytes) -> str:
        return "".join(byte_map[b] for b in token)

    names = [show(t) for t in token_bytes]
    doc = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": i,
                "content": s,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
            for s, i in special_tokens.items()
        ],
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
            ],
        },
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": True,
            "vocab": {name: i for i, name in enumerate(names)},
            "merges": [[names[a], names[b]] for a, b in hf_merges(token_bytes)],
        },
    }
    atomic_write_text(path, json.dumps(doc, ensure_ascii=False))
