"""The standard ``.tiktoken`` ranks file: one ``base64(token bytes) rank`` line per ordinary token, in rank order.

This is the file ``tiktoken.load.load_tiktoken_bpe`` reads. It holds neither the split pattern nor the special
tokens (the format has no place for them); `tiktoken_metadata` returns both, so a caller can build
``tiktoken.Encoding(name, pat_str=..., mergeable_ranks=load_tiktoken_bpe(path), special_tokens=...)``.
Written atomically: temp file in the same folder, fsync, rename.
"""

from __future__ import annotations

import base64
import os
from typing import TYPE_CHECKING, Any

from tokenizer.serialization import atomic_write_text

if TYPE_CHECKING:
    from .core import Tokenizer

__all__ = ["tiktoken_metadata", "write_tiktoken_bpe"]


def write_tiktoken_bpe(tokenizer: Tokenizer, path: str | os.PathLike[str]) -> None:
    """Write the tokenizer's mergeable ranks (ids 0..n-1 without special tokens) as a ``.tiktoken`` file."""
    _, ranks, _ = tokenizer.to_tiktoken()
    lines = [
        f"{base64.b64encode(token).decode('ascii')} {rank}\n"
        for token, rank in sorted(ranks.items(), key=_rank)
    ]
    atomic_write_text(path, "".join(lines), encoding="ascii")


def tiktoken_metadata(tokenizer: Tokenizer) -> dict[str, Any]:
    """What the ``.tiktoken`` file cannot hold: ``pat_str``, ``special_tokens`` (name -> id) and, when the ids have
    no gaps, ``explicit_n_vocab``."""
    pat_str, ranks, specials = tokenizer.to_tiktoken()
    meta: dict[str, Any] = {"pat_str": pat_str, "special_tokens": dict(specials)}
    if (
        len(ranks) + len(specials) == tokenizer.vocab_size
    ):  # tiktoken checks it holds; an imported gap breaks it
        meta["explicit_n_vocab"] = tokenizer.vocab_size
    return meta


def _rank(item: tuple[bytes, int]) -> int:
    return item[1]
