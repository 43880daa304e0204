"""A tokenizer object as a build input: saved into the build's journal, from where the store gets its tokenizer.json.

`shardstore.build(tokenizer=Tokenizer)` and the CLI's ``--tokenizer cl100k_base`` (an imported vocabulary) both
come here; a build then reads a tokenizer file like any other. Split out of `pipeline` (issue 15).
"""

from __future__ import annotations

import os
from typing import Any

from shardstore.errors import ConfigError
from shardstore.preprocess.journal import Journal
from shardstore.util.durable import atomic_write

__all__ = ["save_tokenizer_input"]


def save_tokenizer_input(tok: Any, out: str) -> str:
    """Write a `tokenizer.Tokenizer` into the build's journal (``.build/tokenizer-input.json``, copied into the
    store as tokenizer.json) and return its path: how a build takes an imported or in-memory tokenizer."""
    if not hasattr(tok, "save"):
        raise ConfigError(f"tokenizer must be a path or a tokenizer.Tokenizer, got {type(tok).__name__}")
    journal = Journal(out)
    journal.create()
    path = os.path.join(journal.root, "tokenizer-input.json")
    tmp = f"{path}.new-{os.getpid()}"  # the tokenizer writes its file itself; its bytes are committed below
    try:
        tok.save(tmp)
        with open(tmp, "rb") as f:
            new = f.read()
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    atomic_write(path, new, skip_if_same=True)
    return path
