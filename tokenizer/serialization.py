"""The tokenizer file: one JSON document with a format version and a fingerprint of its canonical content.

Layout (format_version 2; docs/UNICODE.md says what ``unicode`` and ``regex`` mean)::

    {"format": "shardstore.tokenizer", "format_version": 2,
     "fingerprint": "<sha256 hex of the canonical content>",
     "pattern": "<regex string>", "unicode": "17.0.0", "regex": null | "<regex release, custom patterns only>",
     "special_tokens": ["<|endoftext|>"],
     "vocab_size": 256 + len(merges) + len(special_tokens),
     "merges": [[left_id, right_id], ...]}

Format 1 is the same without ``unicode`` and ``regex``, and its fingerprint hashes only pattern, merges and special
tokens. Every format-1 file was written with the Unicode 17.0.0 tables (and, for custom patterns, a ``regex`` that
the test suite of the time forced to agree with them, 2026.5.9), so it loads as exactly that, with its old
fingerprint, and re-saves byte-identically as format 1; new tokenizers are written as format 2.

Merges are id pairs: merge ``i`` creates token ``256 + i`` whose bytes are ``bytes(left) + bytes(right)``, so the
file is compact (about 12 bytes per merge) and the vocabulary is derived, never stored twice. The fingerprint is
SHA-256 over ``canonical_json({"pattern", "merges", "special_tokens", "unicode"[, "regex"]})`` (sorted keys, no whitespace, ASCII), so it
identifies what the tokenizer does, not how the file was formatted. Loading recomputes it: a corrupted or
hand-edited file fails with `ChecksumError` instead of silently tokenizing differently. Writes go to a temporary
name, are fsynced and renamed into place.

Format 3 holds an imported vocabulary (`tokenizer.vocab.Ranks`: tiktoken, Hugging Face, GPT-2 files) with the
source's ids: ``"tokens"`` lists every ordinary id's bytes in base64 (``""`` for an unassigned id), ``"special_tokens"``
maps names to ids, ``"merges"`` is null (tiktoken semantics) or ``[[left, right, result], ...]`` (an HF merge list,
ranked by position) and ``"piece_lookup"`` says whether a piece that is a token skips merging. Its fingerprint hashes
``canonical_json({"pattern", "tokens", "special_tokens", "merges", "piece_lookup", "unicode"[, "regex"]})``, so the
same vocabulary imported from two packages has one fingerprint. cl100k's file is 1.4 MB.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shardstore.errors import ChecksumError, ConfigError, FormatError, InputError

from .osutil import atomic_write_bytes
from .patterns import PATTERNS, native_pattern_id, resolve_pattern
from .unicode import FORMAT1_UNICODE_VERSION, UnicodeInfo, check_unicode
from .vocab import Ranks, check_ranks

__all__ = [
    "FORMAT1_REGEX_VERSION",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "RANKS_FORMAT_VERSION",
    "TokenizerContent",
    "compute_fingerprint",
    "parse_tokenizer_json",
    "read_tokenizer_file",
    "write_tokenizer_file",
]

FORMAT_NAME = "shardstore.tokenizer"
FORMAT_VERSION = 2
RANKS_FORMAT_VERSION = 3
_READABLE_VERSIONS = (1, 2, 3)
# The regex release format-1 custom patterns were made with: the tests of that time required the installed regex to
# classify every code point as the 17.0.0 tables do, which only regex 2026.5.9 did.
FORMAT1_REGEX_VERSION = "2026.5.9"


@dataclass(frozen=True, slots=True)
class TokenizerContent:
    """What a tokenizer file says: the content the fingerprint covers, and the format it is written in."""

    pattern: str
    merges: tuple[tuple[int, int], ...]
    special_tokens: tuple[str, ...]
    unicode: UnicodeInfo
    format_version: int = FORMAT_VERSION
    ranks: Ranks | None = None  # an imported vocabulary (format 3); merges and special_tokens are then empty

    @property
    def fingerprint(self) -> str:
        if self.ranks is not None:
            return ranks_fingerprint(self.pattern, self.ranks, self.unicode)
        return compute_fingerprint(
            self.pattern, self.merges, self.special_tokens, self.unicode, format_version=self.format_version
        )


def compute_fingerprint(
    pattern: str,
    merges: Sequence[tuple[int, int]],
    special_tokens: Sequence[str],
    unicode: UnicodeInfo,
    *,
    format_version: int = FORMAT_VERSION,
) -> str:
    """SHA-256 hex digest of the canonical content (independent of file formatting).

    Format 1 hashed pattern, merges and special tokens only; its files keep that fingerprint.
    """
    content: dict[str, Any] = {
        "merges": [[int(a), int(b)] for a, b in merges],
        "pattern": pattern,
        "special_tokens": list(special_tokens),
    }
    if format_version >= 2:
        content["unicode"] = unicode.version
        if unicode.regex is not None:
            content["regex"] = unicode.regex
    data = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return hashlib.sha256(data).hexdigest()


def _ranks_doc(ranks: Ranks) -> dict[str, Any]:
    return {
        "tokens": [base64.b64encode(t).decode("ascii") for t in ranks.tokens],
        "special_tokens": dict(ranks.special_tokens),
        "merges": None if ranks.merges is None else [list(m) for m in ranks.merges],
        "piece_lookup": ranks.piece_lookup,
    }


def ranks_fingerprint(pattern: str, ranks: Ranks, unicode: UnicodeInfo) -> str:
    """SHA-256 hex digest of an imported vocabulary's canonical content (format 3)."""
    content: dict[str, Any] = {"pattern": pattern, "unicode": unicode.version, **_ranks_doc(ranks)}
    if unicode.regex is not None:
        content["regex"] = unicode.regex
    data = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return hashlib.sha256(data).hexdigest()


def validate_content(
    pattern: object, merges: object, special_tokens: object, *, source: str
) -> tuple[str, list[tuple[int, int]], list[str]]:
    """Check types and id ranges of the content; return it normalized. Raises `ConfigError` naming `source`."""
    if not isinstance(pattern, str) or not pattern:
        raise ConfigError(f"{source}: 'pattern' must be a non-empty string, got {pattern!r}")
    if not isinstance(merges, list | tuple):
        raise ConfigError(
            f"{source}: 'merges' must be a list of [left_id, right_id] pairs, got {type(merges).__name__}"
        )
    out: list[tuple[int, int]] = []
    for i, pair in enumerate(merges):
        if (
            not isinstance(pair, list | tuple)
            or len(pair) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in pair)
        ):
            raise ConfigError(f"{source}: merge {i} must be a pair of int ids, got {pair!r}")
        left, right = pair
        if not (0 <= left < 256 + i and 0 <= right < 256 + i):
            raise ConfigError(
                f"{source}: merge {i} = {list(pair)} refers to an id outside [0, {256 + i}); a merge may only combine "
                "byte tokens and tokens created by earlier merges"
            )
        out.append((left, right))
    if not isinstance(special_tokens, list | tuple) or not all(
        isinstance(s, str) and s for s in special_tokens
    ):
        raise ConfigError(
            f"{source}: 'special_tokens' must be a list of non-empty strings, got {special_tokens!r}"
        )
    if len(set(special_tokens)) != len(special_tokens):
        raise ConfigError(f"{source}: 'special_tokens' has duplicates: {list(special_tokens)!r}")
    return pattern, out, list(special_tokens)


def write_tokenizer_file(path: str | os.PathLike[str], content: TokenizerContent) -> None:
    """Write the tokenizer JSON atomically (temp file in the same folder, fsync, rename, fsync folder)."""
    atomic_write_text(path, tokenizer_json(content), encoding="ascii")


def tokenizer_json(content: TokenizerContent) -> str:
    """The tokenizer file's text (ASCII JSON, one merge or token per line)."""
    doc: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": content.format_version,
        "fingerprint": content.fingerprint,
        "pattern": content.pattern,
    }
    if content.format_version >= 2:
        doc["unicode"] = content.unicode.version
        doc["regex"] = content.unicode.regex
    if content.ranks is not None:
        doc["vocab_size"] = content.ranks.vocab_size
        doc.update(_ranks_doc(content.ranks))
        text = json.dumps(doc, ensure_ascii=True, separators=(",", ":"))
        return text.replace('","', '",\n"').replace("],[", "],\n[") + "\n"
    doc["special_tokens"] = list(content.special_tokens)
    doc["vocab_size"] = 256 + len(content.merges) + len(content.special_tokens)
    doc["merges"] = [[int(a), int(b)] for a, b in content.merges]
    text = json.dumps(doc, ensure_ascii=True, separators=(",", ":"))
    # One merge per line keeps the file diffable without making it large.
    return text.replace("],[", "],\n[") + "\n"


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> None:
    """Write `text` atomically (`tokenizer.osutil.atomic_write_bytes`: temp file, fsync, rename, fsync the folder)."""
    atomic_write_bytes(path, text.encode(encoding))


def _recorded_unicode(doc: dict[str, Any], version: int, pattern: str, *, source: str) -> UnicodeInfo:
    if version == 1:
        native = native_pattern_id(pattern) >= 0
        return UnicodeInfo(FORMAT1_UNICODE_VERSION, None if native else FORMAT1_REGEX_VERSION)
    uni, rx = doc.get("unicode"), doc.get("regex")
    if not isinstance(uni, str) or not uni:
        raise FormatError(f"{source}: 'unicode' must be a Unicode version string like '17.0.0', got {uni!r}")
    if not (rx is None or (isinstance(rx, str) and rx)):
        raise FormatError(f"{source}: 'regex' must be null or a regex release string, got {rx!r}")
    return UnicodeInfo(uni, rx)


def parse_tokenizer_json(
    data: bytes | str, *, source: str, allow_unicode_mismatch: bool = False
) -> tuple[TokenizerContent, str]:
    """Parse and fully validate tokenizer JSON; return (content, fingerprint).

    Raises:
        FormatError: not a tokenizer file, or malformed; `UnicodeMismatchError` (a FormatError) when it was made with
            another Unicode version than this machine splits with and `allow_unicode_mismatch` is False.
        ChecksumError: the content does not hash to the recorded fingerprint.
    """
    try:
        doc: Any = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{source}: not a valid tokenizer JSON file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise FormatError(
            f"{source}: not a shardstore tokenizer file (format={got!r}, expected {FORMAT_NAME!r})"
        )
    version = doc.get("format_version")
    if version not in _READABLE_VERSIONS or isinstance(version, bool):
        raise FormatError(
            f"{source}: unsupported tokenizer format_version {version!r}; this shardstore reads versions "
            f"{list(_READABLE_VERSIONS)} (upgrade shardstore, or re-save the tokenizer)"
        )
    keys = ["fingerprint", "pattern", "special_tokens", "merges", "vocab_size"]
    keys += ["unicode", "regex"] if version >= 2 else []
    keys += ["tokens", "piece_lookup"] if version >= RANKS_FORMAT_VERSION else []
    missing = [k for k in keys if k not in doc]
    if missing:
        raise FormatError(f"{source}: tokenizer file lacks keys {missing}")
    pattern = doc["pattern"]
    try:
        if version >= RANKS_FORMAT_VERSION:
            ranks = _parse_ranks(doc, source=source)
            merges: list[tuple[int, int]] = []
            specials: list[str] = []
            expected_size = ranks.vocab_size
        else:
            ranks = None
            pattern, merges, specials = validate_content(
                pattern, doc["merges"], doc["special_tokens"], source=source
            )
            expected_size = 256 + len(merges) + len(specials)
        if not isinstance(pattern, str) or not pattern:
            raise ConfigError(f"{source}: 'pattern' must be a non-empty string, got {pattern!r}")
        if pattern not in PATTERNS.values():
            resolve_pattern(pattern)
    except ConfigError as exc:
        raise FormatError(str(exc) if str(exc).startswith(source) else f"{source}: {exc}") from None
    if doc["vocab_size"] != expected_size:
        raise FormatError(
            f"{source}: vocab_size {doc['vocab_size']!r} != the {expected_size} ids of its tokens, merges and "
            "special tokens"
        )
    unicode = _recorded_unicode(doc, version, pattern, source=source)
    content = TokenizerContent(pattern, tuple(merges), tuple(specials), unicode, version, ranks)
    fingerprint = content.fingerprint
    if doc["fingerprint"] != fingerprint:
        raise ChecksumError(
            f"{source}: fingerprint mismatch: the file records {doc['fingerprint']!r} but its content hashes to "
            f"{fingerprint!r}; the file was corrupted or edited by hand (re-create it with Tokenizer.save)"
        )
    native = native_pattern_id(pattern) >= 0
    if native != (unicode.regex is None):
        want = "null (built-in patterns split with the native tables)" if native else "the regex release"
        raise FormatError(f"{source}: 'regex' must be {want}, got {unicode.regex!r}")
    check_unicode(unicode, native=native, allow_mismatch=allow_unicode_mismatch, source=source)
    return content, fingerprint


def _parse_ranks(doc: dict[str, Any], *, source: str) -> Ranks:
    tokens, specials, merges = doc["tokens"], doc["special_tokens"], doc["merges"]
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise ConfigError(f"{source}: 'tokens' must be a list of base64 strings")
    try:
        raw = [base64.b64decode(t, validate=True) for t in tokens]
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{source}: 'tokens' holds invalid base64 ({exc})") from None
    if not isinstance(specials, dict):
        raise ConfigError(f"{source}: 'special_tokens' must map names to ids, got {type(specials).__name__}")
    if merges is not None and not (
        isinstance(merges, list)
        and all(isinstance(m, list) and len(m) == 3 and all(type(x) is int for x in m) for m in merges)
    ):
        raise ConfigError(f"{source}: 'merges' must be null or a list of [left, right, result] ids")
    lookup = doc["piece_lookup"]
    if not isinstance(lookup, bool):
        raise ConfigError(f"{source}: 'piece_lookup' must be true or false, got {lookup!r}")
    return check_ranks(raw, specials, merges=merges, piece_lookup=lookup, source=source)


def read_tokenizer_file(
    path: str | os.PathLike[str], *, allow_unicode_mismatch: bool = False
) -> tuple[TokenizerContent, str]:
    """Read and validate a tokenizer file; see `parse_tokenizer_json`."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise InputError(f"{path}: cannot read tokenizer file: {exc.strerror or exc}") from None
    return parse_tokenizer_json(data, source=path, allow_unicode_mismatch=allow_unicode_mismatch)
