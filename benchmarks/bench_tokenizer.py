"""Encode throughput: shardstore's tokenizer vs tiktoken vs HF tokenizers, on the same pattern and the same ranks.

Corpus: this Python's standard library sources (``*.py`` under sysconfig's 'stdlib' path; the Python documentation
sources are used too when a ``--docs-root`` of ``*.rst``/``*.txt`` files is given). Files are split alternately into
a training half and an evaluation half. A cl100k-pattern vocabulary is trained on the training half by our trainer
(``tokenizer.train``; ``rustbpe`` if ours is unavailable); the same ranks go to tiktoken via ``to_tiktoken()`` and to
HF via ``save_hf()``, so all three do the same work. Every contender's ids are checked against ours.

Reported: single-thread MB/s (UTF-8 bytes in) per contender, best of ``--repeat`` wall-clock runs, with ratios to
tiktoken measured in the same run; then batch encoding with 1, 2, ... threads (ours: ``encode_batch_to_numpy``;
tiktoken: ``encode_ordinary_batch``). ``--part train`` runs benchmarks/bench_tokenizer_train.py instead (its own
arguments follow; with ``--part all`` put them after ``--``). ``--part real`` runs benchmarks/bench_tokenizer_real.py
(the real cl100k/o200k vocabularies against tiktoken, riptoken, quicktok-v1 and toktok-rs; its arguments follow).

    python benchmarks/bench_tokenizer.py [--part encode|train|all] [--max-mb 16] [--vocab 32768] [--repeat 3]
    python benchmarks/bench_tokenizer.py --part train --max-mb 8 --vocab 8192
    python benchmarks/bench_tokenizer.py --part real --mb 4 --rounds 5
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pathlib
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent


def load_corpus(max_mb: float, docs_root: str | None) -> list[str]:
    """Stdlib sources (and docs), in sorted path order, up to max_mb of UTF-8."""
    train = _train_module()
    paths = train.stdlib_paths()
    if docs_root:
        paths += sorted(p for p in pathlib.Path(docs_root).rglob("*") if p.suffix in (".rst", ".txt"))
    return train.read_capped(paths, max_mb)


def train_vocab(texts: list[str], vocab: int):
    """Our trainer on the cl100k pattern; rustbpe as a fallback (its ranks converted to merges)."""
    from tokenizer import Tokenizer

    try:
        import tokenizer

        return tokenizer.train(texts, vocab_size=vocab, pattern="cl100k", progress=False), "shardstore"
    except ImportError:
        import rustbpe

        from tokenizer.patterns import PATTERNS

        rb = rustbpe.Tokenizer()
        rb.train_from_iterator(iter(texts), vocab - 1, pattern=PATTERNS["cl100k"])
        ranks = dict(rb.get_mergeable_ranks())
        return Tokenizer.from_merges(_merges_from_ranks(ranks)), "rustbpe"


def _merges_from_ranks(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    """Recover (left, right) for each token: BPE of its bytes with only lower ranks leaves exactly two parts."""
    merges = []
    for token, _rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) == 1:
            continue
        parts = [bytes([b]) for b in token]
        while len(parts) > 2:
            best = min((ranks.get(parts[i] + parts[i + 1], 1 << 60), i) for i in range(len(parts) - 1))
            i = best[1]
            parts[i : i + 2] = [parts[i] + parts[i + 1]]
        merges.append((parts[0], parts[1]))
    return merges


def best_time(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bench_encode(args: argparse.Namespace) -> None:
    import tiktoken
    import tokenizers

    texts = load_corpus(args.max_mb, args.docs_root)
    train, evaluate = texts[0::2], texts[1::2]
    mb = sum(len(t.encode("utf-8")) for t in evaluate) / 1e6
    start = time.perf_counter()
    tok, trainer = train_vocab(train, args.vocab)
    print(
        f"corpus: {len(texts)} files; train half {sum(map(len, train)) / 1e6:.1f} MB, eval half {mb:.1f} MB"
    )
    print(
        f"vocab: {tok.vocab_size} ids, cl100k pattern, trained by {trainer} in {time.perf_counter() - start:.1f}s"
    )

    pat_str, ranks, specials = tok.to_tiktoken()
    tt = tiktoken.Encoding(name="bench", pat_str=pat_str, mergeable_ranks=ranks, special_tokens=specials)
    with tempfile.TemporaryDirectory() as tmp:
        tok.save_hf(os.path.join(tmp, "tokenizer.json"))
        hf = tokenizers.Tokenizer.from_file(os.path.join(tmp, "tokenizer.json"))
    hf.encode_special_tokens = True

    ours = [tok.encode(t) for t in evaluate]
    mismatch_tt = sum(tt.encode_ordinary(t) != ids for t, ids in zip(evaluate, ours, strict=True))
    mismatch_hf = sum(
        hf.encode(t, add_special_tokens=False).ids != ids for t, ids in zip(evaluate, ours, strict=True)
    )
    ntok = sum(map(len, ours))
    print(
        f"ids identical: tiktoken {len(evaluate) - mismatch_tt}/{len(evaluate)} docs, "
        f"HF {len(evaluate) - mismatch_hf}/{len(evaluate)} docs; {ntok} tokens ({mb * 1e6 / ntok:.2f} bytes/token)"
    )

    single: dict[str, Callable[[], object]] = {
        "shardstore encode (list)": lambda: [tok.encode(t) for t in evaluate],
        "shardstore encode_to_numpy": lambda: [tok.encode_to_numpy(t) for t in evaluate],
        "tiktoken encode_ordinary": lambda: [tt.encode_ordinary(t) for t in evaluate],
        "HF tokenizers encode": lambda: [hf.encode(t, add_special_tokens=False).ids for t in evaluate],
    }
    print(f"\n## single thread, best of {args.repeat} (wall clock)")
    speeds = {name: mb / best_time(fn, args.repeat) for name, fn in single.items()}
    base = speeds["tiktoken encode_ordinary"]
    for name, speed in speeds.items():
        print(f"{name:30s} {speed:8.1f} MB/s   {speed / base:5.2f}x tiktoken")

    print(f"\n## batch, threads (cores here: {os.cpu_count()})")
    base1 = None
    for threads in args.threads:
        ours_t = mb / best_time(lambda: tok.encode_batch_to_numpy(evaluate, num_threads=threads), args.repeat)  # noqa: B023
        tt_t = mb / best_time(lambda: tt.encode_ordinary_batch(evaluate, num_threads=threads), args.repeat)  # noqa: B023
        base1 = base1 or ours_t
        print(
            f"threads={threads:2d}  shardstore {ours_t:8.1f} MB/s (x{ours_t / base1:4.2f} vs 1 thread)   "
            f"tiktoken {tt_t:8.1f} MB/s   ratio {ours_t / tt_t:5.2f}x"
        )


def _train_module() -> Any:
    """benchmarks/bench_tokenizer_train.py as a module (its corpus loader and its `main`)."""
    path = HERE / "bench_tokenizer_train.py"
    if not path.exists():
        raise SystemExit(f"{path} does not exist (training benchmark not available)")
    spec = importlib.util.spec_from_file_location("bench_tokenizer_train", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bench_train(argv: Sequence[str]) -> None:
    _train_module().main(list(argv))


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Arguments after "--" go to the training benchmark; with --part train and no "--", all but --part do.
    if argv[:2] == ["--part", "real"]:
        sys.argv = [str(HERE / "bench_tokenizer_real.py"), *argv[2:]]
        spec = importlib.util.spec_from_file_location("bench_tokenizer_real", sys.argv[0])
        real = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(real)
        real.main()
        return
    own, train_args = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, None)
    )
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=["encode", "train", "all"], default="encode")
    parser.add_argument("--max-mb", type=float, default=16.0, help="corpus size (train + eval halves)")
    parser.add_argument("--vocab", type=int, default=32768)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--docs-root", default=None, help="folder of Python docs sources (*.rst, *.txt) to add"
    )
    if train_args is None and "--part" in own and own[own.index("--part") + 1 :][:1] == ["train"]:
        i = own.index("--part")
        train_args, own = own[:i] + own[i + 2 :], own[i : i + 2]
    args = parser.parse_args(own)
    if args.part in ("encode", "all"):
        bench_encode(args)
    if args.part in ("train", "all"):
        bench_train(train_args or [])


if __name__ == "__main__":
    main()
