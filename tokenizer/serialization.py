"""The tokenizer file: one JSON document with a format version and a fingerprint of its canonical content.

Layout (format_version 1)::

    {"format": "shardstore.tokenizer", "format_version": 1,
     "fingerprint": "<sha256 hex of the canonical content>",
     "pattern": "<regex string>", "special_tokens": ["<|endoftext|>"],
     "vocab_size": 256 + len(merges) + len(special_tokens),
     "merges": [[left_id, right_id], ...]}

Merges are id pairs: merge ``i`` creates token ``256 + i`` whose bytes are ``bytes(left) + bytes(right)``, so the
file is compact (about 12 bytes per merge) and the vocabulary is derived, never stored twice. The fingerprint is
SHA-256 over ``canonical_json({"pattern", "merges", "special_tokens"})`` (sorted keys, no whitespace, ASCII), so it
identifies what the tokenizer does, not how the file was formatted. Loading recomputes it: a corrupted or
hand-edited file fails with `ChecksumError` instead of silently tokenizing differently. Writes go to a temporary
name, are fsynced and renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any

from shardstore.errors import ChecksumError, ConfigError, FormatError, InputError

from .osutil import atomic_write_bytes
from .patterns import PATTERNS, resolve_pattern

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "compute_fingerprint",
    "read_tokenizer_file",
    "write_tokenizer_file",
]

FORMAT_NAME = "shardstore.tokenizer"
FORMAT_VERSION = 1


def compute_fingerprint(
    pattern: str, merges: Sequence[tuple[int, int]], special_tokens: Sequence[str]
) -> str:
    """SHA-256 hex digest of the canonical content (independent of file formatting)."""
    content = {
        "merges": [[int(a), int(b)] for a, b in merges],
        "pattern": pattern,
        "special_tokens": list(special_tokens),
    }
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


def write_tokenizer_file(
    path: str | os.PathLike[str],
    pattern: str,
    merges: Sequence[tuple[int, int]],
    special_tokens: Sequence[str],
) -> None:
    """Write the tokenizer JSON atomically (temp file in the same folder, fsync, rename, fsync folder)."""
    doc = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "fingerprint": compute_fingerprint(pattern, merges, special_tokens),
        "pattern": pattern,
        "special_tokens": list(special_tokens),
        "vocab_size": 256 + len(merges) + len(special_tokens),
        "merges": [[int(a), int(b)] for a, b in merges],
    }
    text = json.dumps(doc, ensure_ascii=True, separators=(",", ":"))
    # One merge per line keeps the file diffable without making it large.
    text = text.replace("],[", "],\n[")
    atomic_write_text(path, text + "\n", encoding="ascii")


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> None:
    """Write `text` atomically (`tokenizer.osutil.atomic_write_bytes`: temp file, fsync, rename, fsync the folder)."""
    atomic_write_bytes(path, text.encode(encoding))


def parse_tokenizer_json(
    data: bytes | str, *, source: str
) -> tuple[str, list[tuple[int, int]], list[str], str]:
    """Parse and fully validate tokenizer JSON; return (pattern, merges, special_tokens, fingerprint)."""
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
    if version != FORMAT_VERSION:
        raise FormatError(
            f"{source}: unsupported tokenizer format_version {version!r}; this shardstore reads version "
            f"{FORMAT_VERSION} (upgrade shardstore, or re-save the tokenizer)"
        )
    missing = [
        k for k in ("fingerprint", "pattern", "special_tokens", "merges", "vocab_size") if k not in doc
    ]
    if missing:
        raise FormatError(f"{source}: tokenizer file lacks keys {missing}")
    try:
        pattern, merges, specials = validate_content(
            doc["pattern"], doc["merges"], doc["special_tokens"], source=source
        )
    except ConfigError as exc:
        raise FormatError(str(exc)) from None
    if pattern not in PATTERNS.values():
        try:
            resolve_pattern(pattern)
        except ConfigError as exc:
            raise FormatError(f"{source}: {exc}") from None
    expected_size = 256 + len(merges) + len(specials)
    if doc["vocab_size"] != expected_size:
        raise FormatError(
            f"{source}: vocab_size {doc['vocab_size']!r} != 256 + merges + special tokens = {expected_size}"
        )
    fingerprint = compute_fingerprint(pattern, merges, specials)
    if doc["fingerprint"] != fingerprint:
        raise ChecksumError(
            f"{source}: fingerprint mismatch: the file records {doc['fingerprint']!r} but its content hashes to "
            f"{fingerprint!r}; the file was corrupted or edited by hand (re-create it with Tokenizer.save)"
        )
    return pattern, merges, specials, fingerprint


def read_tokenizer_file(path: str | os.PathLike[str]) -> tuple[str, list[tuple[int, int]], list[str], str]:
    """Read and validate a tokenizer file; see `parse_tokenizer_json`."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise InputError(f"{path}: cannot read tokenizer file: {exc.strerror or exc}") from None
    return parse_tokenizer_json(data, source=path)
