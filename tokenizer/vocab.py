"""The vocabulary of a trained tokenizer, derived from its merges: ids 0..255 are the byte values, id ``256 + i``
is merge ``i`` (its bytes are left + right). Pure functions; `tokenizer.core` keeps only the public methods.
"""

from __future__ import annotations

from collections.abc import Sequence

from shardstore.errors import ConfigError

__all__ = ["merge_ids", "token_bytes_of_merges"]


def token_bytes_of_merges(merges: Sequence[tuple[int, int]]) -> list[bytes]:
    """The bytes of every ordinary id, in id order.

    Raises:
        ConfigError: a merge re-creates a token that already exists.
    """
    token_bytes = [bytes([b]) for b in range(256)]
    seen = {t: i for i, t in enumerate(token_bytes)}
    for i, (left, right) in enumerate(merges):
        token = token_bytes[left] + token_bytes[right]
        if token in seen:
            raise ConfigError(
                f"merge {i} = ({left}, {right}) creates {token!r}, which is already token {seen[token]}; "
                "every merge must create a new token"
            )
        seen[token] = 256 + i
        token_bytes.append(token)
    return token_bytes


def merge_ids(merges: Sequence[tuple[bytes, bytes]]) -> list[tuple[int, int]]:
    """Merges given as byte pairs (merge ``i`` creates id ``256 + i``) as id pairs.

    Raises:
        ConfigError: a merge is not a pair of bytes, or refers to bytes that are not yet a token.
    """
    ids: dict[bytes, int] = {bytes([b]): b for b in range(256)}
    pairs: list[tuple[int, int]] = []
    for i, pair in enumerate(merges):
        if not (
            isinstance(pair, tuple | list) and len(pair) == 2 and all(isinstance(x, bytes) for x in pair)
        ):
            raise ConfigError(f"merge {i} must be a pair of bytes, got {pair!r}")
        left, right = pair
        if left not in ids or right not in ids:
            unknown = left if left not in ids else right
            raise ConfigError(
                f"merge {i} = ({left!r}, {right!r}): {unknown!r} is not a token yet; merges must combine byte "
                "tokens or tokens created by earlier merges"
            )
        pairs.append((ids[left], ids[right]))
        ids.setdefault(left + right, 256 + i)
    return pairs
