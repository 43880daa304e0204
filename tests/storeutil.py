"""Tiny real stores for the mixture/torch tests: ShardWriter + write_manifest straight from numpy arrays."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shardstore.store.manifest import Manifest, TokenizerInfo, write_manifest
from shardstore.store.writer import ShardWriter

TOKENIZER_FP = "a" * 64


def make_docs(
    seed: int, n: int, *, min_len: int = 1, max_len: int = 40, vocab: int = 1000
) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, vocab, size=int(rng.integers(min_len, max_len + 1)), dtype=np.uint16)
        for _ in range(n)
    ]


def write_store(
    path: str | os.PathLike[str],
    docs: Sequence[np.ndarray],
    *,
    tokenizer_fp: str = TOKENIZER_FP,
    max_shard_bytes: int = 4096 + 1024,
    dtype: str = "uint16",
) -> str:
    """A store of `docs` at `path` (several small shards), bound to a fake tokenizer fingerprint."""
    path = os.fspath(path)
    writer = ShardWriter(path, dtype=dtype, name_prefix="s-", max_shard_bytes=max_shard_bytes)
    for d in docs:
        writer.add_document(np.asarray(d))
    shards = writer.close()
    tok = TokenizerInfo(
        fingerprint=tokenizer_fp, vocab_size=1000, special_ids={"<|endoftext|>": 999}, eos_id=999
    )
    write_manifest(path, Manifest(dtype=dtype, shards=tuple(shards), tokenizer=tok))
    return path


def text_store(path: str | os.PathLike[str], texts: Sequence[str]) -> str:
    """A store of `texts` encoded by a tiny byte-level tokenizer (EOS after each), with its tokenizer.json."""
    from shardstore.store.manifest import file_info
    from tokenizer import Tokenizer

    path = os.fspath(path)
    tok = Tokenizer.from_merges([(b"h", b"e")])
    writer = ShardWriter(path, dtype="uint16", name_prefix="t-")
    for text in texts:
        writer.add_document(np.array([*tok.encode(text), tok.eos_id], dtype=np.uint16))
    shards = writer.close()
    tok.save(os.path.join(path, "tokenizer.json"))
    files = (file_info(os.path.join(path, "tokenizer.json")),)
    write_manifest(
        path,
        Manifest(
            dtype="uint16", shards=tuple(shards), files=files, tokenizer=TokenizerInfo.from_tokenizer(tok)
        ),
    )
    return path


def counting_store(path: str | os.PathLike[str], start: int, num_tokens: int, doc_len: int = 7) -> str:
    """A store whose tokens are start, start+1, ... (mod 60000): every window's origin is readable from its ids."""
    toks = (np.arange(start, start + num_tokens) % 60000).astype(np.uint16)
    docs = [toks[i : i + doc_len] for i in range(0, num_tokens, doc_len)]
    return write_store(path, docs)


def write_mix(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
