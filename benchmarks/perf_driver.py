"""One encoder path on one corpus for a fixed time, in a process of its own: the workload under
``benchmarks/device_ab.sh profile`` (perf samples the whole process, so nothing else runs in it).

    python benchmarks/perf_driver.py ours|toktok VOCAB mixed|code|zh count|numpy SECONDS

Prints the calls made and MB/s to stderr. ``toktok`` needs toktok-rs installed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "tokenizer"))


def path_fn(impl: str, vocab: str, path: str) -> Callable[[str], Any]:
    """The timed call of `impl` (ours, toktok) for `path` (count, numpy)."""
    if impl == "ours":
        from ab_native import call

        from tokenizer import Tokenizer

        return call(Tokenizer.from_tiktoken(vocab)._encoder(), path, 0)
    if impl == "toktok":
        import toktok

        tt = toktok._encoding(vocab)
        return (
            (lambda t: toktok.batch_count([t], vocab, threads=1)[0])
            if path == "count"
            else tt.encode_to_numpy
        )
    raise SystemExit(f"unknown implementation {impl!r}: ours or toktok")


def main() -> None:
    if len(sys.argv) != 6:
        raise SystemExit(__doc__)
    from bench_tokenizer_real import _fresh, corpora

    impl, vocab, corpus, path, secs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
    text = corpora(3)[corpus]
    fn = path_fn(impl, vocab, path)
    fn(_fresh(text))
    calls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < secs:
        fn(_fresh(text))
        calls += 1
    dt = max(time.perf_counter() - t0, 1e-9)
    print(
        f"{impl} {vocab} {corpus} {path}: {calls} calls, {len(text.encode()) * calls / dt / 2**20:.1f} MB/s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
