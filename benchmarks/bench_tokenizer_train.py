"""BPE training benchmark: ours vs rustbpe vs HF `tokenizers`, same corpus, pattern and number of merges.

Corpus: the Python standard library's *.py sources (sysconfig 'stdlib', site-packages excluded; about 32 MB for
CPython 3.11), sorted by path, whole files as documents, capped at --max-mb MB. Every contender learns the same
number of merges (vocab 8192 and 32768 counted as 256 bytes + merges) with the cl100k split pattern, byte-level,
no min_frequency, with the same number of threads (--threads, default all cores; rustbpe and HF via
RAYON_NUM_THREADS). Each run is its own subprocess, so its peak RSS (ru_maxrss) is its own; "base" is the peak RSS
after loading the corpus and importing the contender (a warm-up run on one tiny text), before the timed training;
"train" is the peak minus that. "shared" is the fraction of ours' vocabulary the contender also learned (tie-break
rules differ between implementations, so a few late tokens differ).

    python benchmarks/bench_tokenizer_train.py [--max-mb 64] [--vocab 8192 32768] [--repeat 3] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

CONTENDERS = ("ours", "rustbpe", "hf")


def load_corpus(max_mb: float, root: str | None = None) -> list[str]:
    """Stdlib *.py sources in path order, whole files as documents, capped at max_mb MB of UTF-8."""
    return read_capped(stdlib_paths(root), max_mb)


def stdlib_paths(root: str | None = None) -> list[Path]:
    """The *.py files under `root` (default: this Python's stdlib), sorted, site-packages left out."""
    root_path = Path(root or sysconfig.get_paths()["stdlib"])
    return sorted(p for p in root_path.rglob("*.py") if "site-packages" not in p.relative_to(root_path).parts)


def read_capped(paths: list[Path], max_mb: float) -> list[str]:
    """The UTF-8 texts of `paths` in order (unreadable ones skipped) until max_mb MB are read."""
    texts: list[str] = []
    total = 0
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        texts.append(text)
        total += len(text.encode("utf-8"))
        if total >= max_mb * 1e6:
            break
    return texts


def _train_ours(texts: list[str], vocab: int) -> list[bytes]:
    from tokenizer.train import train

    threads = int(os.environ.get("RAYON_NUM_THREADS", "0")) or None
    tok = train(
        texts, vocab_size=vocab + 1, pattern="cl100k", min_frequency=1, num_threads=threads, progress=False
    )
    _pat, ranks, _ = tok.to_tiktoken()
    return list(ranks)


def _train_rustbpe(texts: list[str], vocab: int) -> list[bytes]:
    import rustbpe

    from tokenizer.patterns import PATTERNS

    tok = rustbpe.Tokenizer()
    tok.train_from_iterator(iter(texts), vocab, pattern=PATTERNS["cl100k"])
    return [bytes(token) for token, _rank in tok.get_mergeable_ranks()]


def _train_hf(texts: list[str], vocab: int) -> list[bytes]:
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

    from tokenizer.patterns import PATTERNS

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PATTERNS["cl100k"]), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        min_frequency=0,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(texts, trainer=trainer)
    # ByteLevel maps every byte to a printable character; invert that map to get raw token bytes.
    unicode_to_byte = _bytelevel_inverse()
    return [bytes(unicode_to_byte[c] for c in token) for token in tok.get_vocab()]


def _bytelevel_inverse() -> dict[str, int]:
    """GPT-2's byte <-> printable-unicode table, inverted (what HF ByteLevel uses)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=True)}


def worker(contender: str, vocab: int, max_mb: float, root: str | None, vocab_out: str) -> None:
    """Runs in a child process: load the corpus, train once, print one JSON line of measurements."""
    texts = load_corpus(max_mb, root)
    fn = {"ours": _train_ours, "rustbpe": _train_rustbpe, "hf": _train_hf}[contender]
    fn(["warm up: import modules, load the native library"], 300)  # imports are not part of the timing
    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    tokens = fn(texts, vocab)
    wall = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    Path(vocab_out).write_text("\n".join(sorted(t.hex() for t in tokens)))
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    print(json.dumps({"wall": wall, "peak_mb": peak_kb / 1024, "base_mb": base_kb / 1024, "corpus_mb": mb}))


def run_one(args: argparse.Namespace, contender: str, vocab: int, vocab_out: str) -> dict[str, float]:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        contender,
        "--vocab",
        str(vocab),
        "--max-mb",
        str(args.max_mb),
    ]
    cmd += ["--vocab-out", vocab_out] + (["--corpus-root", args.corpus_root] if args.corpus_root else [])
    # Every contender gets the same number of threads: ours reads this too, rustbpe and HF use rayon.
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-mb", type=float, default=64.0)
    parser.add_argument("--vocab", type=int, nargs="+", default=[8192, 32768])
    parser.add_argument("--repeat", type=int, default=1, help="runs per contender; the fastest is reported")
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    parser.add_argument("--threads", type=int, default=None, help="threads for every contender [all cores]")
    parser.add_argument("--corpus-root", default=None, help="folder of *.py files [this Python's stdlib]")
    parser.add_argument("--worker", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--vocab-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.vocab[0], args.max_mb, args.corpus_root, args.vocab_out)
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    args.threads = args.threads or cores
    root = args.corpus_root or sysconfig.get_paths()["stdlib"]
    print(
        f"corpus: {root} *.py capped at {args.max_mb} MB; cores: {cores}; threads: {args.threads}; repeat: {args.repeat}"
    )
    header = f"{'vocab':>6} {'contender':<8} {'wall s':>8} {'x ours':>7} {'peak MB':>8} {'base MB':>8} {'train MB':>8} {'shared':>7}"
    texts = load_corpus(args.max_mb, args.corpus_root)
    print(f"corpus: {len(texts)} files, {sum(len(t.encode('utf-8')) for t in texts) / 1e6:.1f} MB")
    del texts
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for vocab in args.vocab:
            results: dict[str, dict[str, float]] = {}
            vocabs: dict[str, set[str]] = {}
            for name in args.contenders:
                out = os.path.join(tmp, f"{name}-{vocab}.txt")
                runs = [run_one(args, name, vocab, out) for _ in range(args.repeat)]
                results[name] = min(runs, key=lambda r: r["wall"])
                vocabs[name] = set(Path(out).read_text().split())
            ours = results.get("ours")
            for name, r in results.items():
                ratio = r["wall"] / ours["wall"] if ours else float("nan")
                shared = (
                    len(vocabs[name] & vocabs["ours"]) / len(vocabs["ours"])
                    if "ours" in vocabs
                    else float("nan")
                )
                print(
                    f"{vocab:>6} {name:<8} {r['wall']:>8.2f} {ratio:>7.2f} {r['peak_mb']:>8.0f} {r['base_mb']:>8.0f} "
                    f"{r['peak_mb'] - r['base_mb']:>8.0f} {shared:>7.3f}"
                )


if __name__ == "__main__":
    main()
