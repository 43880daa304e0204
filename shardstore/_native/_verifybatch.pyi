"""Type stub of the batch checker of tiny shard files (shardstore/_native/verifybatch.cc)."""

from typing import Any

def check_shards(
    root: bytes,
    names: Any,
    rows: Any,
    lo: int,
    hi: int,
    max_size: int,
    status: Any,
    fids: Any,
    stored: Any,
    into: Any,
    into_at: Any,
    /,
) -> int: ...
def xxh3_64(data: Any, /) -> int: ...
