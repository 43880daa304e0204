"""Cost of `shardstore info`'s document statistics on a 10^7-document store, against scanning the token payload.

`info` computes lengths, nearest-rank percentiles and per-file tokens from the shards' document indexes only
(8 bytes per document). The peer in the same run is the cheapest way to get the same lengths from the tokens
themselves: one vectorized pass over every token looking for EOS (`np.flatnonzero(tokens == eos)`), which is what a
store without a document index forces. Both run on warm page cache; ratios, not absolute times, are the figure.

    python benchmarks/bench_stats.py --docs 10_000_000

It also writes build-style provenance (one `record` + `text_bytes` Parquet file per unit of `--unit-docs`
documents) and times `info`'s document-byte statistics (`text_byte_stats`: manifest checksum of each file, the
`text_bytes` column read, nearest-rank percentiles), with the provenance's size per document.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

import numpy as np

from shardstore.store.manifest import FileInfo, Manifest, file_info, write_manifest
from shardstore.store.provenance import UNITS_FILE, write_unit_provenance
from shardstore.store.stats import doc_lengths, length_stats, text_byte_stats
from shardstore.store.store import Store
from shardstore.store.writer import ShardWriter
from shardstore.util.sealed import canonical_json

EOS = 1


def build(root: str, num_docs: int, seed: int) -> str:
    """Random documents of 1..32 tokens, each ending in EOS, in shards of 64 MiB."""
    rng = np.random.default_rng(seed)
    path = os.path.join(root, "store")
    with ShardWriter(path, dtype="uint16", name_prefix="s-", max_shard_bytes=64 << 20) as w:
        left = num_docs
        while left:
            n = min(left, 1_000_000)
            lengths = rng.integers(1, 33, size=n)
            tokens = rng.integers(2, 60_000, size=int(lengths.sum()), dtype=np.uint16)
            tokens[np.cumsum(lengths) - 1] = EOS
            w.add_documents(tokens, lengths)
            left -= n
    write_manifest(path, Manifest(dtype="uint16", shards=tuple(w.shards)))
    return path


def add_provenance(path: str, unit_docs: int, seed: int) -> int:
    """Provenance as a build writes it: per unit of `unit_docs` documents its records and text sizes (about 4
    bytes per token, at least one per token), the unit index, and a manifest listing them. Returns their bytes."""
    store = Store.open(path, verify="off")
    lengths = doc_lengths(store)
    rng = np.random.default_rng(seed)
    sizes = (lengths * 4 + rng.integers(0, 4, size=lengths.size)).astype(np.uint64)
    files: list[FileInfo] = []
    entries = []
    for unit, first in enumerate(range(0, lengths.size, unit_docs)):
        n = min(unit_docs, lengths.size - first)
        name = write_unit_provenance(path, unit, f"in/{unit}.jsonl", range(n), sizes[first : first + n])
        files.append(file_info(os.path.join(path, name), name=name))
        entries.append({"unit": unit, "url": f"in/{unit}.jsonl", "file": name, "first_doc": first,
                        "num_docs": n, "record_kind": "line"})  # fmt: skip
    with open(os.path.join(path, UNITS_FILE), "wb") as f:
        f.write(canonical_json({"units": entries}))
    files.append(file_info(os.path.join(path, UNITS_FILE), name=UNITS_FILE))
    write_manifest(path, Manifest(dtype="uint16", shards=store.manifest.shards, files=tuple(files)))
    return sum(f.size for f in files)


def _timed(fn, rounds: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(rounds):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=10_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--unit-docs", type=int, default=100_000, help="documents per provenance unit file")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as root:
        t = time.perf_counter()
        path = build(root, args.docs, 0)
        print(f"built {args.docs:,} documents in {time.perf_counter() - t:.1f} s")
        store = Store.open(path, verify="off")

        def ours() -> object:
            return length_stats(doc_lengths(store))

        def payload() -> object:
            ends = []
            for s in range(store.num_shards):
                base = store.shard_token_starts[s]
                shard = store.mapped_shard(s)
                ends.append(np.flatnonzero(shard.tokens == EOS) + base + 1)
            e = np.concatenate(ends)
            return length_stats(np.diff(e, prepend=0))

        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t_ours, st = _timed(ours, args.rounds)
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t_payload, st2 = _timed(payload, args.rounds)
        if st != st2:
            raise SystemExit("the two methods disagree")
        print(
            f"{store.num_docs:,} docs, {store.num_tokens:,} tokens, {store.num_shards} shards; "
            f"p50/p90/p99/max = {st.percentiles[50]}/{st.percentiles[90]}/{st.percentiles[99]}/{st.max}"
        )
        print(f"doc-index stats (info):   {t_ours:.3f} s  ({t_ours / store.num_docs * 1e9:.1f} ns/doc)")
        print(f"payload scan (peer):      {t_payload:.3f} s")
        print(f"ratio payload/ours:       {t_payload / t_ours:.2f}x")
        print(
            f"peak RSS growth of info:  {(rss1 - rss0) / 1024:.0f} MiB (the int64 lengths: {8 * store.num_docs / 2**20:.0f} MiB)"
        )
        t = time.perf_counter()
        prov_bytes = add_provenance(path, args.unit_docs, 1)
        print(
            f"wrote provenance in {time.perf_counter() - t:.1f} s: {prov_bytes / store.num_docs:.2f} bytes/doc"
        )
        store = Store.open(path, verify="off")
        lengths = doc_lengths(store)
        t_bytes, tb = _timed(lambda: text_byte_stats(store, lengths), args.rounds)
        b = tb.lengths
        print(
            f"doc-byte stats (info):    {t_bytes:.3f} s  ({t_bytes / store.num_docs * 1e9:.1f} ns/doc) over "
            f"{-(-store.num_docs // args.unit_docs)} unit files; p50/p99/max = "
            f"{b.percentiles[50]}/{b.percentiles[99]}/{b.max} bytes, {tb.bytes_per_token:.2f} bytes/token"
        )


if __name__ == "__main__":
    main()
