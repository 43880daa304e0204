r"""Pre-tokenization patterns: the named built-ins and the rule for custom regexes.

A pattern splits text into pieces before BPE; merges never cross a piece boundary. The two built-in patterns have a
hand-written native splitter (``tokenizer/_native/pretok.h``) that is fuzzed to split exactly as the ``regex``
package does on the same pattern string; any other regex string is accepted and runs through the ``regex`` package
(slower, same semantics by definition).

``cl100k_base`` and ``r50k_base`` are tiktoken's own spellings (possessive quantifiers, a ``\s++$`` alternative), as
in ``tiktoken_ext/openai_public.py``, so that an imported tiktoken encoding keeps its pattern string and its exact
splits: ``cl100k_base`` differs from ``cl100k`` on a whitespace run that ends the text with a CR/LF before its last
character; ``r50k_base`` splits as ``gpt2`` everywhere.

``cl100k`` is the GPT-4 pattern in its original, non-possessive spelling (as published with tiktoken <= 0.5 and in
the Hugging Face ``tokenizer.json`` exports of cl100k). Newer tiktoken releases respell it with possessive
quantifiers; we keep the classic spelling because Oniguruma (used by Hugging Face ``tokenizers``) reads ``{1,3}+``
as "one or more groups of 1-3" rather than possessive, which would make ``save_hf`` exports split differently.
"""

from __future__ import annotations

from enum import StrEnum

from shardstore.errors import ConfigError

__all__ = ["PATTERNS", "REGEX_PREFIX", "PatternName", "native_pattern_id", "resolve_pattern", "user_pattern"]

REGEX_PREFIX = "regex:"  # `--pattern regex:abc` forces a pattern that looks like a name to be read as a regex


class PatternName(StrEnum):
    """Names of the built-in patterns (each has a native splitter)."""

    CL100K = "cl100k"
    GPT2 = "gpt2"
    CL100K_BASE = (
        "cl100k_base"  # tiktoken's current spelling (what `tiktoken.get_encoding("cl100k_base")` splits)
    )
    R50K_BASE = "r50k_base"  # tiktoken's spelling of the GPT-2 pattern (gpt2, r50k_base, p50k_base)
    O200K_BASE = (
        "o200k_base"  # tiktoken's o200k (native splitter with the case-aware tables of o200k_tables.h)
    )


PATTERNS: dict[str, str] = {
    PatternName.CL100K.value: (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
        r"|\s*[\r\n]+|\s+(?!\S)|\s+"
    ),
    PatternName.GPT2.value: r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
    PatternName.CL100K_BASE.value: (
        r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]"
        r"|\s+(?!\S)|\s"
    ),
    PatternName.R50K_BASE.value: r"'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s",
    PatternName.O200K_BASE.value: "|".join(
        [
            r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
            r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
            r"\p{N}{1,3}",
            r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
            r"\s*[\r\n]+",
            r"\s+(?!\S)",
            r"\s+",
        ]
    ),
}

# Ids shared with pretok_core.h's `enum PretokPattern`. tiktoken's r50k spelling splits exactly as gpt2 (fuzzed in
# tests/tokenizer/test_pretok.py), so it shares gpt2's splitter.
_NATIVE_IDS: dict[str, int] = {
    PATTERNS["cl100k"]: 0,
    PATTERNS["gpt2"]: 1,
    PATTERNS["cl100k_base"]: 2,
    PATTERNS["r50k_base"]: 1,
    PATTERNS["o200k_base"]: 3,
}


def resolve_pattern(name_or_regex: str) -> str:
    """Return the regex string for a built-in pattern name, or validate and return a custom regex string.

    Raises:
        ConfigError: the string is neither a known name nor a regex the ``regex`` package compiles.
    """
    if not isinstance(name_or_regex, str) or not name_or_regex:
        raise ConfigError(
            f"pattern must be a non-empty str, got {name_or_regex!r}; use one of {sorted(PATTERNS)} or a regex string"
        )
    if name_or_regex in PATTERNS:
        return PATTERNS[name_or_regex]
    import regex

    try:
        regex.compile(name_or_regex)
    except regex.error as exc:
        raise ConfigError(
            f"pattern {name_or_regex!r} is not a known name {sorted(PATTERNS)} and does not compile as a regex: "
            f"{exc}; pass a built-in name or a valid `regex`-package pattern"
        ) from None
    return name_or_regex


def user_pattern(value: str) -> str:
    """The pattern a user asked for when training: a built-in name, ``regex:<pattern>``, or a regex string.

    A misspelled name (``cl100``) used to be taken as a regex that matches only itself, so training made no merges
    and encoding dropped the text. A value made only of letters, digits, ``_``, ``-`` and ``.`` is therefore read as
    a name and must be one; prefix it with ``regex:`` to mean the regex.

    Raises:
        ConfigError: an unknown name (with the closest known one), or a regex that does not compile.
    """
    import difflib
    import re

    if isinstance(value, str) and value.startswith(REGEX_PREFIX):
        pattern = value[len(REGEX_PREFIX) :]
        if pattern in PATTERNS:  # "regex:cl100k" means the literal regex, which is not the built-in
            raise ConfigError(f"pattern {value!r}: write the built-in name {pattern!r} without the prefix")
        return resolve_pattern(pattern)
    if isinstance(value, str) and value not in PATTERNS and re.fullmatch(r"[A-Za-z0-9_.\-]+", value):
        close = difflib.get_close_matches(value, list(PATTERNS), n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"unknown pattern name {value!r}{hint}; the built-in names are {', '.join(sorted(PATTERNS))}. To use "
            f"it as a regex, write {REGEX_PREFIX + value!r}"
        )
    resolve_pattern(value)
    return value


def native_pattern_id(pattern: str) -> int:
    """Native splitter id for a resolved regex string, or -1 when it must run through the ``regex`` package."""
    return _NATIVE_IDS.get(pattern, -1)
