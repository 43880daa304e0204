"""Slow, obviously-correct reference encoder: the oracle the native encoder is tested against.

Spec (the same as tiktoken's): split the text with ``regex.findall(pattern, text)`` (built-in patterns read with the pinned
Unicode tables: unicode_reference.compile_oracle); a piece that is a token becomes
that token; otherwise start from its single bytes and, while some adjacent pair concatenates to a token, merge the
pair whose concatenation has the lowest rank (= id), the leftmost one on ties. No caches, no heaps, no tricks.
"""

from __future__ import annotations

from unicode_reference import compile_oracle


def build_ranks(merges: list[tuple[bytes, bytes]]) -> dict[bytes, int]:
    """Token bytes -> id: 0..255 are the bytes, then merge i is 256 + i."""
    ranks = {bytes([b]): b for b in range(256)}
    for i, (left, right) in enumerate(merges):
        ranks[left + right] = 256 + i
    return ranks


def encode_piece(piece: bytes, ranks: dict[bytes, int]) -> list[int]:
    if piece in ranks:
        return [ranks[piece]]
    parts = [bytes([b]) for b in piece]
    while True:
        best = None
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, i)
        if best is None:
            return [ranks[p] for p in parts]
        i = best[1]
        parts[i : i + 2] = [parts[i] + parts[i + 1]]


def encode(text: str, pattern: str, ranks: dict[bytes, int]) -> list[int]:
    out: list[int] = []
    for piece in compile_oracle(pattern).findall(text):
        out.extend(encode_piece(piece.encode("utf-8"), ranks))
    return out
