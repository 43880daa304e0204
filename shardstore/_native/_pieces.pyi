"""Type stub of the piece copies of the masked-row path (shardstore/_native/pieces.cc)."""

from typing import Any

def copy_pieces(sources: tuple[Any, ...], which: Any, lo: Any, n: Any, dst: Any, out: Any, /) -> None: ...
def locate_rows(
    gap_base: Any,
    gap_delta: Any,
    skip_base: Any,
    skip_delta: Any,
    level: int,
    starts: Any,
    length: int,
    out_store: Any,
    out_r0: Any,
    out_inside: Any,
    /,
) -> None: ...
def fill_pieces(
    gap_base: Any,
    gap_delta: Any,
    skip_base: Any,
    skip_delta: Any,
    level: int,
    starts: Any,
    r0: Any,
    inside: Any,
    length: int,
    out_lo: Any,
    out_n: Any,
    out_at: Any,
    out_row: Any,
    /,
) -> None: ...
