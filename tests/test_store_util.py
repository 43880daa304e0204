"""Helpers shared by the store-area tests (no tests here): build small real stores on disk."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shardstore.store.manifest import Manifest, TokenizerInfo, file_info, write_manifest
from shardstore.store.writer import ShardWriter


def random_docs(seed: int, n: int, *, max_len: int = 3000, vocab: int = 50_000) -> list[np.ndarray]:
    """`n` documents of random ids (some empty), deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    dtype = np.uint16 if vocab <= 1 << 16 else np.uint32
    return [
        rng.integers(0, vocab, size=int(rng.integers(0, max_len)), dtype=np.int64).astype(dtype)
        for _ in range(n)
    ]


def write_store(
    root: str | os.PathLike[str],
    docs: Sequence[np.ndarray],
    *,
    dtype: str = "uint16",
    max_shard_bytes: int = 256 << 10,
    block_size: int = 4096,
    name_prefix: str = "shard-",
    tokenizer: TokenizerInfo | None = None,
    aux_files: dict[str, bytes] | None = None,
    provenance: dict | None = None,
) -> Manifest:
    """Write `docs` as a committed store in `root` and return its manifest."""
    root = Path(root)
    with ShardWriter(
        root, dtype=dtype, name_prefix=name_prefix, max_shard_bytes=max_shard_bytes, block_size=block_size
    ) as w:
        for d in docs:
            w.add_document(d)
    files = []
    for name, data in sorted((aux_files or {}).items()):
        (root / name).write_bytes(data)
        files.append(file_info(root / name))
    manifest = Manifest(
        dtype=dtype,
        shards=w.close(),
        files=files,
        tokenizer=tokenizer,
        provenance=provenance or {"builder": "tests"},
    )
    write_manifest(root, manifest)
    return manifest
