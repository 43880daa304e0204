"""Shared helpers of the build tests (no tests here): a small trained tokenizer, corpora, store snapshots."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "data",
    "store",
    "shard",
    "token",
    "build",
    "resume",
    "crash",
    "safe",
    "bytes",
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "theta",
    "lambda",
    "2026",
    "1234",
    "!",
    ",",
    ".",
    "?",
    "don't",
    "it's",
    "we'll",
]


def text_of(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def train_tokenizer(path: Path, *, vocab_size: int = 320) -> Path:
    """A small byte-level BPE tokenizer trained on the test vocabulary (deterministic)."""
    import tokenizer

    rng = random.Random(1234)
    texts = [text_of(rng, 60) for _ in range(200)]
    tok = tokenizer.train(texts, vocab_size=vocab_size, progress=False, min_frequency=2)
    tok.save(path)
    return path


def write_corpus(root: Path, *, n_files: int = 8, docs_per_file: int = 20, seed: int = 0) -> list[str]:
    """Files of every format with deterministic content; returns the texts in build order (sorted names)."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    kinds = ["jsonl", "jsonl.gz", "jsonl.zst", "parquet", "txt"]
    texts_by_name: dict[str, list[str]] = {}
    for i in range(n_files):
        kind = kinds[i % len(kinds)]
        name = f"part-{i:03d}.{kind}"
        texts = [text_of(rng, rng.randint(5, 120)) for _ in range(docs_per_file if kind != "txt" else 1)]
        texts_by_name[name] = texts
        rows = b"".join(json.dumps({"text": t, "id": k}).encode() + b"\n" for k, t in enumerate(texts))
        path = root / name
        if kind == "jsonl":
            path.write_bytes(rows)
        elif kind == "jsonl.gz":
            path.write_bytes(gzip.compress(rows, mtime=0))
        elif kind == "jsonl.zst":
            path.write_bytes(zstandard.ZstdCompressor().compress(rows))
        elif kind == "parquet":
            pq.write_table(pa.table({"text": texts}), path)
        else:
            path.write_text(texts[0])
    return [t for name in sorted(texts_by_name) for t in texts_by_name[name]]


def snapshot(out: Path) -> dict[str, str]:
    """sha256 of the manifest and of every file it lists (the store, as a reader sees it)."""
    manifest = json.loads((out / "manifest.json").read_bytes())
    names = (
        ["manifest.json"] + [s["name"] for s in manifest["shards"]] + [f["name"] for f in manifest["files"]]
    )
    return {n: hashlib.sha256((out / n).read_bytes()).hexdigest() for n in names}


def all_files(out: Path) -> dict[str, tuple[int, int]]:
    """(mtime_ns, inode) of every file under `out`: to prove a re-run wrote nothing."""
    result = {}
    for root, _dirs, names in os.walk(out):
        for name in names:
            st = os.stat(os.path.join(root, name))
            result[os.path.relpath(os.path.join(root, name), out)] = (st.st_mtime_ns, st.st_ino)
    return result
