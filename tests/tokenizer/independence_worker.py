"""Run by test_independence.py in a subprocess, under either the newest dependencies or the oldest the requirements
admit (PYTHONPATH puts a ``pip install --target`` folder first). Prints one JSON object: the versions seen, and
digests of everything whose bytes must not depend on them (trained merges, ids, store bytes and fingerprints).

Usage: python independence_worker.py WORKDIR INPUTS_DIR [CUSTOM_TOKENIZER_JSON]
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import sys
from importlib import metadata


def corpus() -> list[str]:
    """Fixed texts, including code points whose class differs between Unicode 15.1, 17.0 and 18.0."""
    drift = "".join(
        chr(c) for c in (0x558, 0x58B, 0x58C, 0x208F, 0x209D, 0xA7DD, 0x10D4A, 0x1E5D0, 0x1246F, 0x11F5A)
    )
    base = [
        "The quick brown fox's den: def encode(self, text) -> 12345 km in Zürich.\n\n  the lazy dog\n",
        "Ünïcödé wörds, числа 123 456, 日本語のテキスト, हिन्दी, العربية 7٣۵ ①②",
        f"drift{drift} {drift}x 1{drift}2 '{drift}s  \t\n",
        "emoji 😀👍🏽 and ZWJ 👨\u200d👩 and   spaces\r\n",
    ]
    return [f"{t} #{i} {base[i % 3]}" for i in range(60) for t in base]


def write_inputs(folder: pathlib.Path) -> None:
    """A small corpus in three input formats: JSON Lines, zstd JSON Lines and Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import zstandard

    texts = corpus()
    folder.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps({"text": t}) + "\n" for t in texts[:80]).encode()
    (folder / "a.jsonl").write_bytes(lines)
    (folder / "b.jsonl.zst").write_bytes(zstandard.ZstdCompressor(level=3).compress(lines))
    pq.write_table(pa.table({"text": texts[80:]}), folder / "c.parquet")


def digest(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def main() -> None:
    import numpy as np

    import shardstore
    from shardstore.errors import ShardStoreError
    from tokenizer import Tokenizer, train
    from tokenizer.unicode import regex_unicode_version

    work = pathlib.Path(sys.argv[1])
    work.mkdir(parents=True, exist_ok=True)
    texts = corpus()
    out: dict[str, object] = {
        "versions": {
            d: metadata.version(d) for d in ("regex", "numpy", "pyarrow", "zstandard", "xxhash", "orjson")
        },
        "regex_unicode": regex_unicode_version(),
    }
    golden = Tokenizer.load(pathlib.Path(__file__).parent / "golden" / "tokenizer_v1_cl100k.json")
    out["golden_v1_ids"] = digest([golden.encode(t) for t in texts])
    for pattern in ("cl100k", "gpt2"):
        tok = train(texts, vocab_size=500, pattern=pattern, progress=False, num_threads=1)
        tok.save(work / f"{pattern}.json")
        out[f"{pattern}_file"] = hashlib.sha256((work / f"{pattern}.json").read_bytes()).hexdigest()
        out[f"{pattern}_ids"] = digest([tok.encode(t) for t in texts])
        out[f"{pattern}_numpy_ids"] = hashlib.sha256(
            tok.encode_to_numpy(" ".join(texts)).tobytes()
        ).hexdigest()
    inputs = pathlib.Path(sys.argv[2])  # the same input files for both runs (written by `write_inputs`)
    store_dir = work / "store"
    shardstore.build(
        [str(inputs)], tokenizer=str(work / "cl100k.json"), out=store_dir, workers=1, progress=False
    )
    store = shardstore.Store.open(store_dir)
    out["store_fingerprint"] = store.fingerprint
    out["store_tokens"] = hashlib.sha256(np.asarray(store.tokens(0, store.num_tokens)).tobytes()).hexdigest()
    shards = sorted(p.name for p in store_dir.iterdir() if p.suffix == ".shard")
    out["store_shards"] = {n: hashlib.sha256((store_dir / n).read_bytes()).hexdigest() for n in shards}
    # Provenance tables are Parquet: their bytes carry pyarrow's "created_by" version, so compare their content.
    import pyarrow.parquet as pq

    prov = sorted((store_dir / "provenance").glob("*.parquet"))
    out["provenance_rows"] = digest({p.name: pq.read_table(p).to_pylist() for p in prov})
    store.verify()
    if len(sys.argv) > 3:  # a custom-pattern tokenizer made by the parent under the newest regex
        try:
            custom = Tokenizer.load(sys.argv[3])
            out["custom"] = digest([custom.encode(t) for t in texts])
        except ShardStoreError as exc:
            out["custom"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
