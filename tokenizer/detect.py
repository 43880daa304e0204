"""One entry point for every tokenizer we read: `open_tokenizer(spec)`, used by ``Tokenizer.open`` and the CLI.

`spec` is a path or a name, optionally with a prefix that says which: ``shardstore:PATH`` (our JSON),
``tiktoken:NAME_OR_PATH``, ``hf:PATH`` (``tokenizer.json``, or a folder holding it), ``gpt2:DIR`` (a folder with
``encoder.json`` + ``vocab.bpe``). Without a prefix it is detected: a folder by the files in it, a ``.tiktoken``
(``.gz``) file by its name, a JSON file by its top-level keys, and otherwise a known encoding name
(``cl100k_base``, ``o200k_base``, ``gpt2``, ``r50k_base``) resolved from installed packages, never the network.
A ``.tiktoken`` file named after a known encoding gets that encoding's pattern and special tokens.
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

from shardstore.errors import ConfigError, InputError

from .import_tiktoken import KNOWN

__all__ = ["PREFIXES", "detect_kind", "open_tokenizer"]

PREFIXES = ("shardstore", "tiktoken", "hf", "gpt2")
T = TypeVar("T")


def _json_kind(path: str) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError as exc:
        raise InputError(f"{path}: cannot read tokenizer: {exc.strerror or exc}") from None
    text = head.decode("utf-8", "replace")
    if '"shardstore.tokenizer"' in text:
        return "shardstore"
    if '"model"' in text or '"added_tokens"' in text:
        return "hf"
    raise ConfigError(
        f"{path}: neither a shardstore tokenizer file nor a Hugging Face tokenizer.json; name the format with a "
        f"prefix ({', '.join(p + ':' for p in PREFIXES)})"
    )


def detect_kind(spec: str) -> tuple[str, str]:
    """(kind, path or name) of a tokenizer spec; kind is one of `PREFIXES`."""
    head, sep, rest = spec.partition(":")
    if sep and head in PREFIXES:
        return head, rest
    if os.path.isdir(spec):
        if all(os.path.isfile(os.path.join(spec, f)) for f in ("encoder.json", "vocab.bpe")):
            return "gpt2", spec
        if os.path.isfile(os.path.join(spec, "tokenizer.json")):
            return "hf", spec
        raise ConfigError(f"{spec}: folder holds neither tokenizer.json nor encoder.json + vocab.bpe")
    if os.path.isfile(spec):
        if spec.endswith((".tiktoken", ".tiktoken.gz")):
            return "tiktoken", spec
        return _json_kind(spec), spec
    if spec in KNOWN:
        return "tiktoken", spec
    raise ConfigError(
        f"{spec}: no such tokenizer file or folder, and not a known encoding name ({', '.join(sorted(KNOWN))})"
    )


def open_tokenizer(cls: type[T], spec: str | os.PathLike[str]) -> T:
    """The tokenizer `spec` names (see the module docstring); `cls` is `tokenizer.Tokenizer`."""
    kind, what = detect_kind(os.fspath(spec))
    tok: Any = cls
    if kind == "shardstore":
        return tok.load(what)  # type: ignore[no-any-return]
    if kind == "hf":
        return tok.from_hf(what)  # type: ignore[no-any-return]
    if kind == "gpt2":
        return tok.from_gpt2_files(os.path.join(what, "encoder.json"), os.path.join(what, "vocab.bpe"))  # type: ignore[no-any-return]
    if what in KNOWN:
        return tok.from_tiktoken(what)  # type: ignore[no-any-return]
    stem = os.path.basename(what).removesuffix(".gz").removesuffix(".tiktoken")
    known = KNOWN.get(stem)
    if known is None:
        raise ConfigError(
            f"{what}: a .tiktoken file holds no pattern or special tokens and its name is not a known encoding "
            f"({', '.join(sorted(KNOWN))}); use Tokenizer.from_tiktoken(path, pattern=..., special_tokens=...)"
        )
    return tok.from_tiktoken(what, pattern=known.pattern, special_tokens=known.special_tokens)  # type: ignore[no-any-return]
