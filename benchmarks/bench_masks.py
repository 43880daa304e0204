"""Masks and held-out splits (issue 20, "Speed and memory"): loader batches/s with and without them, in one run,
and the memory of a mask and of the loader's kept-token index at 10**8 documents.

Run (from the repository root; ~2 minutes on 2 shared cores; stores cached under --workdir):

    PYTHONPATH=. python benchmarks/bench_masks.py

Speed. Two sources (70/30) of synthetic documents (log-normal lengths, median ~400 tokens, mean ~650: web-like),
B=32, seq_len=2048, `make_dataloader` defaults, num_workers=0, page cache warm. ``plain`` is the mixture as is;
``masked`` is the same mixture with a mask excluding 10% of each store's documents at random and ``heldout =
0.001`` on each source. Rounds alternate the two (a fresh loader each, warm-up batches untimed), --seconds each;
the figure is the median over rounds of batches per wall second and per CPU second, and their ratio
masked / plain (target >= 0.9).

Memory. A `Mask` excluding 10% of 10**8 documents at random (bitmap: 1 bit per document) and one excluding 10**5
of them (sorted ids: 4 bytes per excluded document): bytes, and bytes per document. Then the loader's
`KeptIndex` for the 10% mask over 10**8 synthetic document lengths (12 bytes per gap).

Open (``--open-rounds``, default 5). The masked mixture's open time (`Mixture.from_file` + `open_sources`) on a
first open, with no document-hash index (`shardstore.store.hash_index`: every token is hashed, then the index is
written), and on a second open (the index is read). Medians over rounds, page cache warm. Only this part:
``--open-only``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shardstore.loader.mixture import Mixture  # noqa: E402
from shardstore.mix.keep import KeptIndex  # noqa: E402
from shardstore.store.manifest import Manifest, TokenizerInfo, write_manifest  # noqa: E402
from shardstore.store.mask import Mask, write_mask  # noqa: E402
from shardstore.store.store import Store  # noqa: E402
from shardstore.store.writer import ShardWriter  # noqa: E402

B, SEQ = 32, 2048


def _lengths(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.clip(rng.lognormal(mean=6.0, sigma=1.0, size=n), 8, 60_000).astype(np.int64)


def _make_store(path: Path, seed: int, docs: int) -> None:
    if (path / "manifest.json").exists():
        return
    rng = np.random.default_rng(seed)
    writer = ShardWriter(path, dtype="uint16", name_prefix="s-", max_shard_bytes=64 << 20)
    for n in _lengths(rng, docs).tolist():
        writer.add_document(rng.integers(0, 50_000, size=n, dtype=np.uint16))
    shards = writer.close()
    tok = TokenizerInfo(
        fingerprint="b" * 64, vocab_size=50_001, special_ids={"<|endoftext|>": 50_000}, eos_id=50_000
    )
    write_manifest(path, Manifest(dtype="uint16", shards=tuple(shards), tokenizer=tok))


def _setup(work: Path, docs: int) -> tuple[Path, Path]:
    for name, seed in (("web", 1), ("code", 2)):
        _make_store(work / name, seed, docs)
        store = Store.open(work / name)
        rng = np.random.default_rng(seed + 10)
        ids = rng.choice(store.num_docs, size=store.num_docs // 10, replace=False)
        write_mask(
            work / f"{name}.mask",
            Mask.build(
                store_fingerprint=store.fingerprint, num_docs=store.num_docs, ids=ids, reasons="bench"
            ),
        )
    base = f"seq_len = {SEQ}\nseed = 7\n"
    plain = base + '[[sources]]\nname = "web"\nstore = "web"\nweight = 0.7\n\n'
    plain += '[[sources]]\nname = "code"\nstore = "code"\nweight = 0.3\n'
    masked = base + '[[sources]]\nname = "web"\nstore = "web"\nweight = 0.7\nexclude = ["web.mask"]\n'
    masked += 'heldout = 0.001\n\n[[sources]]\nname = "code"\nstore = "code"\nweight = 0.3\n'
    masked += 'exclude = ["code.mask"]\nheldout = 0.001\n'
    (work / "plain.toml").write_text(plain)
    (work / "masked.toml").write_text(masked)
    return work / "plain.toml", work / "masked.toml"


def _rate(mix_path: Path, seconds: float, start_step: int, doc_info: str) -> tuple[float, float, float]:
    """(batches per wall second, per CPU second, seconds to open the mixture) of a fresh loader."""
    import torch

    from shardstore.torch import make_dataloader

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    mix = Mixture.from_file(mix_path)
    mix.open_sources()
    opened = time.perf_counter() - t0
    loader = make_dataloader(mix, batch_size=B, doc_info=doc_info)
    position = start_step * B  # somewhere inside the run, so every round reads other windows
    counts = list(mix.interleave.counts_at(position))
    state = loader.state_dict()
    state.update(position=position, counts=counts)
    state["epochs"] = [c // s.num_windows for c, s in zip(counts, mix.open_sources(), strict=True)]
    loader.load_state_dict(state)
    it = iter(loader)
    for _ in range(20):  # warm-up: first-touch verification of the blocks, caches
        next(it)
    n = 0
    w0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - w0 < seconds:
        for _ in range(10):
            next(it)
        n += 10
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return n / wall, n / cpu, opened


def _open_once(mix_path: Path) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    Mixture.from_file(mix_path).open_sources()
    return time.perf_counter() - w0, time.process_time() - c0


def _open_times(work: Path, mix_path: Path, rounds: int) -> None:
    """First open (no hash index: hashes every token, writes it) vs second open (reads it)."""
    import shutil

    from shardstore.store.hash_index import INDEX_DIR

    first, second = [], []
    for _ in range(rounds):
        for name in ("web", "code"):
            shutil.rmtree(work / name / INDEX_DIR, ignore_errors=True)
        first.append(_open_once(mix_path))
        second.append(_open_once(mix_path))
    f_w, f_c = (statistics.median(x[i] for x in first) for i in (0, 1))
    s_w, s_c = (statistics.median(x[i] for x in second) for i in (0, 1))
    tokens = sum(Store.open(work / n).num_tokens for n in ("web", "code"))
    docs = sum(Store.open(work / n).num_docs for n in ("web", "code"))
    print(
        f"open with heldout, first (hash every token, write index): {f_w:.3f} s wall {f_c:.3f} s CPU; "
        f"second (read index): {s_w:.4f} s wall {s_c:.4f} s CPU; first/second {f_w / s_w:.1f}x wall "
        f"[{tokens / 1e6:.1f}M tokens, {docs} docs, index {8 * docs / 1e6:.2f} MB, median of {rounds}]"
    )


def _memory() -> None:
    n = 10**8
    rng = np.random.default_rng(0)
    ids = rng.choice(n, size=n // 10, replace=False)
    big = Mask.build(store_fingerprint="c" * 64, num_docs=n, ids=ids, reasons="bench")
    small = Mask.build(store_fingerprint="c" * 64, num_docs=n, ids=ids[: 10**5], reasons="bench")
    print(
        f"mask 10% of 1e8 docs: encoding={big.encoding} {big.nbytes / 1e6:.1f} MB = "
        f"{big.nbytes / n:.3f} bytes/doc (as ids it would be {ids.size * 4 / 1e6:.1f} MB = {ids.size * 4 / n:.2f} "
        f"bytes/doc); file {len(big.to_bytes()) / 1e6:.1f} MB"
    )
    print(
        f"mask 1e5 of 1e8 docs: encoding={small.encoding} {small.nbytes / 1e6:.2f} MB = "
        f"{small.nbytes / n:.4f} bytes/doc (as a bitmap it would be {n / 8 / 1e6:.1f} MB)"
    )
    lengths = _lengths(rng, n)
    offs = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offs[1:])
    ex = np.sort(ids)
    index = KeptIndex.from_excluded_spans(int(offs[-1]), offs[ex], offs[ex + 1])
    print(
        f"loader kept index, 10% of 1e8 docs: {index.num_gaps} gaps, {index.nbytes / 1e6:.1f} MB = "
        f"{index.nbytes / n:.2f} bytes/doc (offsets stored as {index.gap_delta.dtype} / {index.skip_delta.dtype})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", default="/tmp/bench_masks")
    ap.add_argument("--docs", type=int, default=60_000, help="documents per store")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--doc-info", default="none", help="none (default) or position_ids / cu_seqlens / both")
    ap.add_argument("--open-rounds", type=int, default=5, help="rounds of first vs second open (0: skip)")
    ap.add_argument("--open-only", action="store_true", help="only the first vs second open figure")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    plain, masked = _setup(work, args.docs)
    if args.open_rounds:
        _open_times(work, masked, args.open_rounds)
    if args.open_only:
        return
    rates: dict[str, list[tuple[float, float, float]]] = {"plain": [], "masked": []}
    for r in range(args.rounds):
        order = [("plain", plain), ("masked", masked)]
        if r % 2:
            order.reverse()
        for name, path in order:
            rates[name].append(_rate(path, args.seconds, start_step=1000 + 997 * r, doc_info=args.doc_info))
    med = {
        k: (
            statistics.median(x[0] for x in v),
            statistics.median(x[1] for x in v),
            statistics.median(x[2] for x in v),
        )
        for k, v in rates.items()
    }
    for k, (w, c, o) in med.items():
        print(f"{k:7s} {w:8.1f} batches/s wall  {c:8.1f} batches/CPU-s   open {o:.2f} s")
    print(
        f"masked / plain: {med['masked'][0] / med['plain'][0]:.3f}x wall, {med['masked'][1] / med['plain'][1]:.3f}x "
        f"CPU (target >= 0.9)   [B={B}, seq_len={SEQ}, {args.docs} docs per store, {args.rounds} rounds "
        f"x {args.seconds:g} s, doc_info={args.doc_info}]"
    )
    if not args.skip_memory:
        _memory()


if __name__ == "__main__":
    main()
