"""Encode speed on the real vocabularies (issue 23): shardstore's imported cl100k_base / o200k_base against tiktoken
and the exact peers that install as wheels, same ranks, every result checked equal to tiktoken's before timing.

Corpora (all offline): ``mixed`` = this Python's docs (pydoc topics) + stdlib code + the multilingual prose of
tests/tokenizer/vocab_fixtures.py, ``code`` = stdlib ``*.py``, ``zh`` = the CJK strings of freedesktop's MIME database
(``/usr/share/mime/packages/freedesktop.org.xml``) plus the fixture prose, repeated to size (repeats inflate cache
hits for every contender alike). ``single`` = one call on the whole corpus; ``batch/N`` = the corpus split on blank
lines into documents, one call on N threads.

Like for like, by what a call returns: ``ids`` (a list of ints per text), ``numpy`` (ids in numpy arrays; for a
batch, one array per document: toktok-rs and quicktok-v1 return one flat array + offsets, sliced here into
per-document views, which is what ours returns) and ``count`` (the number of tokens only: toktok-rs's public API,
``batch_count``, and our ``count_tokens``/``count_tokens_batch``). toktok-rs
ids come from its (documented, underscore-named) ``toktok._encoding(name)`` object. Every call gets fresh ``str``
objects (copied outside the timer): CPython caches a str's UTF-8 on the object, so timing the same objects round
after round would skip the UTF-8 conversion a pipeline pays once per document.

Ratio = tiktoken's single-thread ``encode_ordinary`` seconds / contender seconds, per round; the table shows the
median [min-max] over ``--rounds`` interleaved rounds (every contender once per round). Missing peers are listed.

    python benchmarks/bench_tokenizer_real.py [--mb 8] [--rounds 5] [--threads N] [--vocab cl100k_base o200k_base]
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


Fn = Callable[[Any], Any]


def contenders(name: str, threads: list[int]) -> tuple[dict[str, Fn], list[str]]:
    """``{"kind path: label": fn}`` for kind in ids/numpy/count and path single or batch/N, and the skipped peers."""
    from vocab_fixtures import reference

    from tokenizer import Tokenizer

    ref = reference(name)
    ours = Tokenizer.from_tiktoken(name)
    fns: dict[str, Fn] = {
        "ids single: tiktoken": ref.encode_ordinary,
        "ids single: shardstore": ours.encode,
        "numpy single: tiktoken": ref.encode_to_numpy,
        "numpy single: shardstore": ours.encode_to_numpy,
        "count single: shardstore": ours.count_tokens,
    }
    for n in threads:
        fns[f"ids batch/{n}: tiktoken"] = lambda d, n=n: ref.encode_ordinary_batch(d, num_threads=n)
        fns[f"ids batch/{n}: shardstore"] = lambda d, n=n: ours.encode_batch(d, num_threads=n)
        fns[f"numpy batch/{n}: shardstore"] = lambda d, n=n: ours.encode_batch_to_numpy(d, num_threads=n)
        fns[f"count batch/{n}: shardstore"] = lambda d, n=n: ours.count_tokens_batch(d, num_threads=n)
    skipped = []
    try:
        import toktok

        tt = toktok._encoding(name)
        fns["ids single: toktok-rs"] = tt.encode_ordinary
        fns["numpy single: toktok-rs"] = tt.encode_to_numpy
        fns["count single: toktok-rs"] = lambda t: toktok.batch_count([t], name, threads=1)[0]
        for n in threads:
            fns[f"numpy batch/{n}: toktok-rs"] = lambda d, n=n: _split(*tt.encode_batch_to_numpy(d, n, False))
            fns[f"count batch/{n}: toktok-rs"] = lambda d, n=n: toktok.batch_count(d, name, threads=n)
    except ImportError as exc:
        skipped.append(f"toktok-rs ({exc})")
    try:
        import riptoken

        rip = riptoken.Encoding(
            riptoken.CoreBPE(ref._mergeable_ranks, ref._special_tokens, ref._pat_str), ref
        )
        fns["ids single: riptoken"] = rip.encode_ordinary
        fns["ids batch/its threads: riptoken"] = rip.encode_ordinary_batch
    except (ImportError, TypeError, AttributeError) as exc:
        skipped.append(f"riptoken ({type(exc).__name__}: {exc})")
    try:
        import quicktok

        qt = quicktok.get_encoding(name)
        fns["ids single: quicktok-v1"] = qt.encode_ordinary
        fns["numpy batch/its threads: quicktok-v1"] = lambda d: _split(*qt.encode_batch(d))
    except (ImportError, ValueError, KeyError, RuntimeError) as exc:
        skipped.append(f"quicktok-v1 ({type(exc).__name__})")
    return fns, skipped


def _split(ids: Any, offsets: Any) -> list[Any]:
    """A flat (ids, offsets) batch result (toktok-rs, quicktok-v1) as per-document views, as ours returns."""
    return [ids[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]


def _fresh(text: str) -> str:
    return ("." + text)[
        1:
    ]  # a new object with no cached UTF-8 (slicing all of a str returns the same object)


def _same(got: Any, want: list[list[int]], kind: str) -> bool:
    if kind == "count":
        return bool(list(got) == [len(ids) for ids in want])
    return [list(map(int, x)) for x in got] == want


def run(name: str, texts: dict[str, str], rounds: int, threads: list[int]) -> None:
    fns, skipped = contenders(name, threads)
    table: dict[str, dict[str, str]] = {label: {} for label in fns}
    notes = []
    for corpus, text in texts.items():
        docs = [d for d in text.split("\n\n") if d]
        mb = len(text.encode()) / 2**20
        want_single = [fns["ids single: tiktoken"](text)]
        want_docs = fns[f"ids batch/{threads[-1]}: tiktoken"](docs)
        live = {}
        for label, fn in fns.items():
            kind, path = label.split(":")[0].split(" ", 1)
            single = path == "single"
            got = fn(_fresh(text)) if single else fn([_fresh(d) for d in docs])
            if not _same([got] if single else got, want_single if single else want_docs, kind):
                if "shardstore" in label:
                    raise SystemExit(f"{name} {corpus}: {label} differs from tiktoken")
                table[label][corpus] = "differs"
                continue
            live[label] = (fn, single)
        times: dict[str, list[float]] = {k: [] for k in live}
        for _ in range(rounds):
            for label, (fn, single) in live.items():
                arg = _fresh(text) if single else [_fresh(d) for d in docs]
                t0 = time.perf_counter()
                fn(arg)
                times[label].append(time.perf_counter() - t0)
                del arg
        base = times["ids single: tiktoken"]
        notes.append(
            f"{corpus} {mb:.1f} MB / {len(docs)} docs, tiktoken {mb / statistics.median(base):.1f} MB/s"
        )
        for label, ts in times.items():
            r = sorted(b / t for b, t in zip(base, ts, strict=True))
            table[label][corpus] = f"{statistics.median(r):.2f} [{r[0]:.2f}-{r[-1]:.2f}]"
    print(
        f"\n## {name}: ratio to tiktoken single-thread encode_ordinary, median [min-max] of {rounds} rounds"
    )
    print("; ".join(notes))
    if skipped:
        print("skipped peers: " + "; ".join(skipped))
    corpora_names = list(texts)
    print("\n| path | contender | " + " | ".join(corpora_names) + " |")
    print("|---|---|" + "---|" * len(corpora_names))
    for label, cells in table.items():
        path, who = label.split(": ")
        print(f"| {path} | {who} | " + " | ".join(cells.get(c, "-") for c in corpora_names) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--mb", type=float, default=8.0, help="approximate size of the mixed and code corpora"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--threads", type=int, default=len(os.sched_getaffinity(0)), help="batch runs 1, 2 and this"
    )
    parser.add_argument("--vocab", nargs="+", default=["cl100k_base", "o200k_base"])
    args = parser.parse_args()
    texts = corpora(args.mb)
    print(
        f"host: {os.cpu_count()} cores, {len(os.sched_getaffinity(0))} usable; batch threads 1, 2, {args.threads}"
    )
    threads = sorted({1, 2, args.threads})
    for name in args.vocab:
        run(name, texts, args.rounds, threads)


if __name__ == "__main__":
    main()
