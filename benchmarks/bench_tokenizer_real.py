"""Encode speed on the real vocabularies (issue 23): shardstore's imported cl100k_base / o200k_base against tiktoken
and the exact peers that install as wheels, same ranks, ids (or counts) checked equal to tiktoken's.

Corpora (all offline): ``mixed`` = this Python's docs (pydoc topics) + stdlib code + the multilingual prose of
tests/tokenizer/vocab_fixtures.py, ``code`` = stdlib ``*.py``, ``zh`` = the CJK strings of freedesktop's MIME database
(``/usr/share/mime/packages/freedesktop.org.xml``) plus the fixture prose, repeated to size (repeats inflate cache
hits for every contender alike). Paths: ``single`` = one ``encode`` call on the whole corpus; ``batch/N`` = the
corpus split on blank lines into documents, encoded by ``encode_batch`` on N threads.

Peers: tiktoken (the baseline: single-thread ``encode_ordinary``), riptoken (``CoreBPE`` from the same ranks),
quicktok-v1 and toktok-rs (their bundled files, which are the same ranks; toktok-rs 0.3 only *counts* tokens, so its
check is the counts). A peer that is not installed is skipped and listed. Ratio = tiktoken single-call seconds /
contender seconds, median and range over ``--rounds`` interleaved rounds.

    pip install toktok-rs quicktok-v1 riptoken   # into the venv if `pip install --dry-run` changes nothing
    python benchmarks/bench_tokenizer_real.py [--mb 8] [--rounds 5] [--vocab cl100k_base o200k_base]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "tokenizer"))


def corpora(mb: float) -> dict[str, str]:
    from vocab_fixtures import PROSE, stdlib_texts

    std = Path(sysconfig.get_paths()["stdlib"])
    code_parts, size = [], 0
    for p in sorted(std.glob("*.py")) + sorted(std.glob("*/*.py")):
        try:
            t = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        code_parts.append(t)
        size += len(t.encode())
        if size > mb * 2**20:
            break
    code = "\n\n".join(code_parts)
    prose = "\n\n".join(PROSE.values())
    mixed = "\n\n".join([stdlib_texts()["docs"], code[: len(code) // 2], prose * 50])
    xml = Path("/usr/share/mime/packages/freedesktop.org.xml")
    cjk = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
    zh_lines = (
        [ln.strip() for ln in xml.read_text(encoding="utf-8").splitlines() if cjk.search(ln)]
        if xml.exists()
        else []
    )
    zh_lines = [re.sub(r"<[^>]+>", "", ln) for ln in zh_lines]
    zh_base = "\n\n".join(zh_lines) + "\n\n" + PROSE["chinese"] * 20 + PROSE["japanese"] * 20
    out = {"mixed": mixed, "code": code, "zh": zh_base}
    return {
        k: (v * (1 + int(mb * 2**20 // max(1, len(v.encode())))))[
            : int(mb * 2**20 // 3 if k == "zh" else len(v))
        ]
        for k, v in out.items()
    }


def contenders(
    name: str, threads: int
) -> tuple[dict[str, Callable[[str], Any]], dict[str, Callable[[list[str]], Any]], list[str]]:
    """(single-call encoders, batch encoders by label, skipped peers); each returns ids (or counts)."""
    from vocab_fixtures import reference

    from tokenizer import Tokenizer

    ref = reference(name)
    ours = Tokenizer.from_tiktoken(name)
    single: dict[str, Callable[[str], Any]] = {"tiktoken": ref.encode_ordinary, "shardstore": ours.encode}
    batch: dict[str, Callable[[list[str]], Any]] = {}
    skipped = []
    for n in sorted({1, 2, threads}):
        batch[f"tiktoken batch/{n}"] = lambda docs, n=n: ref.encode_ordinary_batch(docs, num_threads=n)
        batch[f"shardstore batch/{n}"] = lambda docs, n=n: ours.encode_batch(docs, num_threads=n)
    try:
        import riptoken

        core = riptoken.CoreBPE(ref._mergeable_ranks, ref._special_tokens, ref._pat_str)
        rip = riptoken.Encoding(core, ref)
        single["riptoken"] = rip.encode_ordinary
        batch["riptoken batch (its threads)"] = rip.encode_ordinary_batch
    except (ImportError, TypeError, AttributeError) as exc:
        skipped.append(f"riptoken ({type(exc).__name__}: {exc})")
    try:
        import quicktok

        qt = quicktok.get_encoding(name)
        single["quicktok-v1"] = qt.encode_ordinary
        batch["quicktok-v1 batch (its threads)"] = qt.encode_batch
    except (ImportError, ValueError, KeyError, RuntimeError) as exc:
        skipped.append(f"quicktok-v1 ({type(exc).__name__})")
    try:
        import toktok

        single["toktok-rs (count)"] = lambda text: toktok.batch_count([text], name, threads=1)[0]
        for n in sorted({1, 2, threads}):
            batch[f"toktok-rs count/{n}"] = lambda docs, n=n: toktok.batch_count(docs, name, threads=n)
    except ImportError as exc:
        skipped.append(f"toktok-rs ({exc})")
    return single, batch, skipped


def _same(got: Any, want_ids: Any, batch: bool) -> bool:
    if isinstance(got, int):
        ok = got == len(want_ids)
    elif batch and got and isinstance(got[0], int):
        ok = list(got) == [len(ids) for ids in want_ids]  # counts
    else:
        ok = [list(map(int, x)) for x in got] == want_ids if batch else list(map(int, got)) == want_ids
    return bool(ok)


def run(name: str, texts: dict[str, str], rounds: int, threads: int) -> None:
    single, batch, skipped = contenders(name, threads)
    print(
        f"\n## {name}: ratio to tiktoken single-thread encode_ordinary, median [min-max] of {rounds} rounds"
    )
    if skipped:
        print("skipped peers: " + "; ".join(skipped))
    for corpus, text in texts.items():
        docs = [d for d in text.split("\n\n") if d]
        mb = len(text.encode()) / 2**20
        want = single["tiktoken"](text)
        want_docs = batch[f"tiktoken batch/{threads}"](docs)
        wrong = [k for k, f in single.items() if not _same(f(text), want, batch=False)]
        wrong += [k for k, fb in batch.items() if not _same(fb(docs), want_docs, batch=True)]
        if "shardstore" in wrong or any(k.startswith("shardstore") for k in wrong):
            raise SystemExit(f"{corpus}: shardstore's ids differ from tiktoken's")
        single = {k: f for k, f in single.items() if k not in wrong}
        batch = {k: fb for k, fb in batch.items() if k not in wrong}
        times: dict[str, list[float]] = {k: [] for k in [*single, *batch]}
        for _ in range(rounds):  # interleaved: every contender once per round
            for label, fn in single.items():
                t0 = time.perf_counter()
                fn(text)
                times[label].append(time.perf_counter() - t0)
            for label, fnb in batch.items():
                t0 = time.perf_counter()
                fnb(docs)
                times[label].append(time.perf_counter() - t0)
        base = statistics.median(times["tiktoken"])
        print(f"\n{corpus}: {mb:.1f} MB, {len(docs)} documents; tiktoken {mb / base:.1f} MB/s")
        if wrong:
            print(f"  not reported, ids differ from tiktoken's: {', '.join(wrong)}")
        for label, ts in times.items():
            ratios = sorted(b / t for b, t in zip(times["tiktoken"], ts, strict=True))
            print(
                f"  {label:26s} {mb / statistics.median(ts):7.1f} MB/s  {statistics.median(ratios):5.2f}x "
                f"[{ratios[0]:.2f}-{ratios[-1]:.2f}]"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--mb", type=float, default=8.0, help="approximate size of the mixed and code corpora"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--vocab", nargs="+", default=["cl100k_base", "o200k_base"])
    args = parser.parse_args()
    texts = corpora(args.mb)
    print(f"host: {os.cpu_count()} cores, {args.threads} usable")
    for name in args.vocab:
        run(name, texts, args.rounds, args.threads)


if __name__ == "__main__":
    main()
