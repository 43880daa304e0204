"""Type stub of the MinHash and n-gram scan loops of shardstore.curate (shardstore/_native/minhash*.cc)."""

from typing import Any

def signatures(
    tokens: Any,
    width: int,
    offsets: Any,
    n: int,
    min_distinct: int,
    seeds: Any,
    out_sig: Any,
    out_info: Any,
    /,
) -> None: ...
def band_keys(sig: Any, k: int, bands: int, rows: int, out: Any, /) -> None: ...
def ngram_hashes(
    tokens: Any, width: int, n: int, min_distinct: int, out_hash: Any, out_degenerate: Any, /
) -> None: ...
def fill_table(hashes: Any, keys: Any, vals: Any, filter: Any, /) -> None: ...
def scan(
    tokens: Any, width: int, offsets: Any, n: int, min_distinct: int, keys: Any, vals: Any, filter: Any, /
) -> bytes: ...
def df_sketch(tokens: Any, width: int, offsets: Any, n: int, counts: Any, /) -> None: ...
def df_count(
    tokens: Any, width: int, offsets: Any, n: int, min_distinct: int, partitions: int, hot: Any, /
) -> tuple[bytes, bytes]: ...
def sign_masked(
    tokens: Any,
    width: int,
    offsets: Any,
    n: int,
    min_distinct: int,
    seeds: Any,
    keys: Any,
    vals: Any,
    filter: Any,
    out_sig: Any,
    out_info: Any,
    /,
) -> int: ...
def ngram_set(
    tokens: Any, width: int, n: int, min_distinct: int, keys: Any, vals: Any, filter: Any, /
) -> bytes: ...
def intersect_count(a: Any, b: Any, /) -> int: ...
