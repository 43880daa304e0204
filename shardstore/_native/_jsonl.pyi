"""Type stub of the JSON Lines scanner (shardstore/_native/jsonl.cc)."""

NEED_MORE: int
FALLBACK: int
DONE: int

def scan(
    buf: bytearray,
    pos: int,
    limit: int,
    end: int,
    final: bool,
    field: bytes,
    record_base: int,
    by_offset: bool,
    /,
) -> tuple[int, int, int, bytes, bytes, bytes]: ...
