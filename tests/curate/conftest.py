"""Fixtures of the curation tests: one small trained tokenizer per session, stores built from texts by `build`."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

import shardstore
from shardstore.curate.synthetic import vocabulary

StoreFactory = Callable[[str, Sequence[str]], str]


@pytest.fixture(scope="session")
def tok_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import tokenizer

    rng = random.Random(5)
    words = vocabulary(3000, seed=1)
    texts = [" ".join(rng.choices(words, k=80)) for _ in range(300)]
    texts += ["0 " * 50, "┌" + "─" * 30 + "┐\n│" + " " * 30 + "│"] * 20  # runs a real tokenizer merges
    tok = tokenizer.train(texts, vocab_size=700, progress=False, min_frequency=2)
    path = tmp_path_factory.mktemp("tok") / "tok.json"
    tok.save(path)
    return path


@pytest.fixture
def make_store(tmp_path: Path, tok_path: Path) -> StoreFactory:
    """``make_store(name, texts)``: a store at tmp_path/name built from one JSON Lines file of `texts`."""

    def make(name: str, texts: Sequence[str], *, files: int = 1) -> str:
        src = tmp_path / f"{name}-input"
        src.mkdir()
        per = -(-len(texts) // files)
        for f in range(files):
            with open(src / f"part-{f}.jsonl", "w") as fh:
                for t in texts[f * per : (f + 1) * per]:
                    fh.write(json.dumps({"text": t}) + "\n")
        out = tmp_path / name
        shardstore.build([str(src)], tokenizer=tok_path, out=out, workers=1, progress=False,
                         max_shard_bytes=64 << 10)  # fmt: skip
        return str(out)

    return make  # type: ignore[return-value]
