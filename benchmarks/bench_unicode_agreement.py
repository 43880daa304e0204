"""Split agreement of the built-in patterns with tiktoken and HF ``tokenizers``, over every code point.

For each built-in pattern, three engines split the same strings:

- ours: the native splitter, with each compiled Unicode table (tokenizer/_native/unicode_<version>.txt): 16.0.0,
  the default for new tokenizers, and 17.0.0, the tables of format-1 files;
- tiktoken: ``tiktoken.Encoding`` with our pattern string (Rust ``fancy-regex`` with its own Unicode tables), as a
  user would run ``Tokenizer.to_tiktoken()``. tiktoken does not expose its pieces, so each chunk of test strings gets
  a synthetic vocabulary: the 256 bytes plus every code-point-aligned substring of every test string. tiktoken looks
  a whole piece up before running BPE, so every piece becomes exactly one token and the token count is the piece
  count;
- HF: the pre-tokenizer of our exported ``tokenizer.json`` (``Split(Regex, isolated)`` + ``ByteLevel``, run by
  Oniguruma) with a one-entry ``WordLevel`` model, so each piece is one token (``encode_batch`` in Rust).

Strings: every code point alone (1,112,064: all of U+0000..U+10FFFF but the 2,048 surrogates, which no engine can
take as UTF-8), and every code point next to a representative of each class, both orders: ``a`` (letter), ``1``
(number), `` `` (space), ``\\n`` (newline, which cl100k treats apart) and ``!`` (other), 10 pairs per code point. A
pair agrees when both engines cut it into the same pieces (one piece or two; pieces tile the string, checked), a
code point agrees when its single string and all its 10 pairs agree.

Run: ``python benchmarks/bench_unicode_agreement.py [--stride N] [--list]`` (``--stride 1`` is the full measurement,
about a minute per pattern and engine on one core; ``--list`` prints every differing code point with its class in
each table).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Sequence

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tokenizer import Tokenizer
from tokenizer.patterns import PATTERNS

REPS = ("a", "1", " ", "\n", "!")
CHUNK = 100_000
CLASS = {0: "other", 1: "letter", 2: "number", 3: "space"}

Splitter = Callable[
    [Sequence[str]], list[int]
]  # strings -> number of pieces per string (-1: pieces do not tile)


def code_points(stride: int) -> list[int]:
    return [c for c in range(0, 0x110000, stride) if not 0xD800 <= c < 0xE000]


def native_splitter(name: str, version: str) -> Splitter:
    from tokenizer._native._encoder import Encoder
    from tokenizer.unicode import native_split_id

    enc = Encoder([bytes([b]) for b in range(256)], 256, native_split_id(PATTERNS[name], version))

    def run(strings: Sequence[str]) -> list[int]:
        out = []
        for s in strings:
            ends = enc.split(s)
            out.append(len(ends) if ends and ends[-1] == len(s.encode()) else -1)
        return out

    return run


def tiktoken_splitter(name: str) -> Splitter:
    import tiktoken

    pattern = PATTERNS[name]

    def run(strings: Sequence[str]) -> list[int]:
        ranks: dict[bytes, int] = {bytes([b]): b for b in range(256)}
        for s in strings:
            for i in range(len(s)):
                for j in range(i + 1, len(s) + 1):
                    ranks.setdefault(s[i:j].encode(), len(ranks))
        enc = tiktoken.Encoding(
            f"agreement-{name}", pat_str=pattern, mergeable_ranks=ranks, special_tokens={}
        )
        lengths = {r: len(b) for b, r in ranks.items()}
        out = []
        for s in (
            strings
        ):  # (encode_ordinary_batch's thread pool costs 20x more than the encoding on tiny strings)
            ids = enc.encode_ordinary(s)
            out.append(len(ids) if sum(lengths[t] for t in ids) == len(s.encode()) else -1)
        return out

    return run


def hf_splitter(name: str) -> Splitter:
    from tokenizers import Tokenizer as HFTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "tokenizer.json")
        Tokenizer.from_merges([], pattern=name).save_hf(path)
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    doc["model"] = {"type": "WordLevel", "vocab": {"[UNK]": 0}, "unk_token": "[UNK]"}
    doc["decoder"] = doc["post_processor"] = None
    doc["added_tokens"] = []
    hf = HFTokenizer.from_str(json.dumps(doc))

    def run(strings: Sequence[str]) -> list[int]:
        out = []
        for s, e in zip(strings, hf.encode_batch(list(strings), add_special_tokens=False), strict=True):
            covered = sum(b - a for a, b in e.offsets)
            out.append(len(e.ids) if covered == len(s) else -1)
        return out

    return run


def strings_for(cps: Sequence[int]) -> list[str]:
    """Per code point: the single string, then (c + r, r + c) for each representative r."""
    out = []
    for c in cps:
        ch = chr(c)
        out.append(ch)
        for r in REPS:
            out += [ch + r, r + ch]
    return out


def measure(split: Splitter, cps: Sequence[int]) -> list[tuple[int, ...]]:
    """Per code point: the piece counts of its 11 strings."""
    per = 1 + 2 * len(REPS)
    result: list[tuple[int, ...]] = []
    for start in range(0, len(cps), CHUNK):
        counts = split(strings_for(cps[start : start + CHUNK]))
        result += [tuple(counts[i : i + per]) for i in range(0, len(counts), per)]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stride", type=int, default=1, help="measure every Nth code point (1 = all)")
    parser.add_argument("--list", action="store_true", help="print every differing code point")
    parser.add_argument("--patterns", default="cl100k,gpt2")
    args = parser.parse_args()
    import tiktoken
    import tokenizers

    from tokenizer.unicode import NATIVE_UNICODE_VERSIONS

    cps = code_points(args.stride)
    print(
        f"code points: {len(cps):,} (stride {args.stride}; surrogates excluded), {len(REPS) * 2} pairs each; "
        f"ours: Unicode {', '.join(NATIVE_UNICODE_VERSIONS)} tables; tiktoken {tiktoken.__version__}; "
        f"tokenizers {tokenizers.__version__}; Python unicodedata {unicodedata.unidata_version}"
    )
    for name in args.patterns.split(","):
        peers = {}
        for engine, make in (("tiktoken", tiktoken_splitter), ("hf", hf_splitter)):
            t0 = time.perf_counter()
            peers[engine] = (measure(make(name), cps), time.perf_counter() - t0)
        for version in NATIVE_UNICODE_VERSIONS:
            t0 = time.perf_counter()
            ours = measure(native_splitter(name, version), cps)
            t_ours = time.perf_counter() - t0
            for engine, (theirs, elapsed) in peers.items():
                compare(name, version, engine, cps, ours, theirs, elapsed, t_ours, args.list)


def compare(
    name: str,
    version: str,
    engine: str,
    cps: Sequence[int],
    ours: Sequence[tuple[int, ...]],
    theirs: Sequence[tuple[int, ...]],
    elapsed: float,
    t_ours: float,
    full_list: bool,
) -> None:
    singles = sum(a[0] == b[0] for a, b in zip(ours, theirs, strict=True))
    pairs = sum(x == y for a, b in zip(ours, theirs, strict=True) for x, y in zip(a[1:], b[1:], strict=True))
    full = [c for c, a, b in zip(cps, ours, theirs, strict=True) if a != b]
    n_pairs = len(cps) * 2 * len(REPS)
    print(
        f"{name:7s} ours@{version} vs {engine:8s} singles {singles:,}/{len(cps):,} agree; pairs {pairs:,}/{n_pairs:,} agree; "
        f"code points agreeing on all 11 strings {len(cps) - len(full):,}/{len(cps):,} "
        f"({100 * (len(cps) - len(full)) / len(cps):.4f}%); {elapsed:.1f}s (ours {t_ours:.1f}s)"
    )
    summarize(full, name, version, engine, full_list)


def summarize(diff: Sequence[int], name: str, version: str, engine: str, full_list: bool) -> None:
    """Group differing code points by our class and Python's general category; list them with --list."""
    from tokenizer._native import _encoder

    groups: collections.Counter[tuple[str, str]] = collections.Counter()
    table = _encoder.UNICODE_VERSIONS.index(version)
    for c in diff:
        groups[(CLASS[_encoder.char_class(c, table)], unicodedata.category(chr(c)))] += 1
    if groups:
        top = ", ".join(f"ours={k[0]}/py-{k[1]}: {v}" for k, v in groups.most_common(8))
        print(f"        differing by (our class / Python {unicodedata.unidata_version} category): {top}")
    if full_list:
        for c in diff:
            print(f"        {name} {version} {engine} U+{c:04X} ours={CLASS[_encoder.char_class(c, table)]}")


if __name__ == "__main__":
    main()
