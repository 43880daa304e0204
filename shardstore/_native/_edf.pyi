"""Type stub of the EDF merge of the mixture interleave (shardstore/_native/edf.cc)."""

from typing import Any

def merge(
    release: Any, deadline: Any, offsets: Any, length: int, out_source: Any, out_job: Any, /
) -> int: ...
def times(chunks: Any, out: Any, hit: Any, /) -> None: ...
def merge_reach(
    strict: Any, reach: Any, first: Any, length: int, out_source: Any, out_job: Any, /
) -> int: ...
