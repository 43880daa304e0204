"""Shared by test_train_gpt.py and test_ddp.py: a real two-store mixture, and benchmarks/train_gpt.py as a module.

The corpus is generated from a fixed seed (no network, no stdlib dependency): "code"-like and "prose"-like
documents of varied length, a 512-token tokenizer trained on them, two stores built with `shardstore.build`, and a
70/30 mixture with seq_len 32.
"""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
TRAIN_GPT = ROOT / "benchmarks" / "train_gpt.py"


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Autouse where imported. A tiny model gains nothing from intra-op threads (the torchrun processes run with
    OMP_NUM_THREADS=1), and on a busy CI machine their spin-waits cost ~10x."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


_WORDS = [
    "data",
    "loader",
    "shard",
    "token",
    "store",
    "mixture",
    "weight",
    "epoch",
    "sample",
    "window",
    "batch",
    "model",
    "train",
    "resume",
    "state",
    "seed",
    "order",
    "global",
    "rank",
    "world",
    "checksum",
    "manifest",
    "verify",
    "prose",
    "code",
    "python",
    "function",
    "class",
    "return",
    "value",
]


def _docs(kind: str, n: int, rng: random.Random) -> list[str]:
    out = []
    for i in range(n):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(5, 120))]
        if kind == "code":
            body = "\n".join(
                f"    {a} = {b}({c}, {i})" for a, b, c in zip(words, words[1:], words[2:], strict=False)
            )
            out.append(f"def f_{i}():\n{body}\n    return {words[0]}\n")
        else:
            out.append(" ".join(words).capitalize() + ".")
    return out


def make_mix(root: Path, *, seq_len: int = 32) -> Path:
    """Build the corpus, tokenizer, two stores and mix.toml under `root`; return the mix.toml path."""
    from shardstore import build
    from tokenizer import train

    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1234)
    paths = {}
    for kind in ("code", "text"):
        paths[kind] = root / f"{kind}.jsonl"
        paths[kind].write_text("".join(json.dumps({"text": t}) + "\n" for t in _docs(kind, 300, rng)))
    tok = train([paths["code"], paths["text"]], vocab_size=512, progress=False)
    tok.save(root / "tok.json")
    for kind in ("code", "text"):
        build([str(paths[kind])], tokenizer=str(root / "tok.json"), out=str(root / kind), workers=1)
    mix = root / "mix.toml"
    mix.write_text(
        f"seq_len = {seq_len}\nseed = 7\n\n"
        '[[sources]]\nname = "code"\nstore = "code"\nweight = 0.7\n\n'
        '[[sources]]\nname = "text"\nstore = "text"\nweight = 0.3\n'
    )
    return mix


def load_train_gpt() -> ModuleType:
    """benchmarks/train_gpt.py imported as a module (benchmarks/ is not a package)."""
    if "train_gpt" in sys.modules:
        return sys.modules["train_gpt"]
    if str(TRAIN_GPT.parent) not in sys.path:  # its model lives beside it, as gpt_model.py
        sys.path.insert(0, str(TRAIN_GPT.parent))
    spec = importlib.util.spec_from_file_location("train_gpt", TRAIN_GPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_gpt"] = module
    spec.loader.exec_module(module)
    return module


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
