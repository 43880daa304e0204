"""Vocabularies. A trained tokenizer's is derived from its merges: ids 0..255 are the byte values, id ``256 + i``
is merge ``i`` (its bytes are left + right). An imported one (`Ranks`) keeps the source's ids: byte tokens in any
order, gaps, special tokens anywhere above the ordinary ids. Pure functions; `tokenizer.core` keeps only the public
methods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shardstore.errors import ConfigError

__all__ = ["Ranks", "check_ranks", "merge_ids", "native_encoder", "token_bytes_of_merges"]


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


@dataclass(frozen=True, slots=True)
class Ranks:
    """An imported vocabulary, with the source's ids exactly (format 3 of the tokenizer file).

    `tokens[i]` is the bytes of ordinary id ``i`` (``b""``: an unassigned id, a gap); the 256 byte tokens may have
    any ids. `special_tokens` are ``(name, id)`` pairs sorted by id, every id at or above ``len(tokens)``, gaps
    allowed. `merges` is None for tiktoken semantics (merge the adjacent pair whose concatenation has the lowest id)
    or, for a Hugging Face BPE, its merge list as ``(left, right, result)`` ids ranked by position. `piece_lookup`:
    a piece that is a token becomes that token without merging (tiktoken, and HF's ``ignore_merges``).
    """

    tokens: tuple[bytes, ...]
    special_tokens: tuple[tuple[str, int], ...]
    merges: tuple[tuple[int, int, int], ...] | None = None
    piece_lookup: bool = True

    @property
    def vocab_size(self) -> int:
        """One past the largest id."""
        return max([len(self.tokens), *(i + 1 for _, i in self.special_tokens)])


def check_ranks(
    tokens: Sequence[bytes],
    special_tokens: Mapping[str, int],
    *,
    merges: Sequence[tuple[int, int, int]] | None = None,
    piece_lookup: bool = True,
    source: str,
) -> Ranks:
    """Validate an imported vocabulary and return it normalized; `ConfigError` names `source` and the construct.

    Refused: a byte value without a single-byte token of its own (not a byte-level vocabulary), two ids with the
    same bytes, a special token inside the ordinary id range or sharing an id, a merge whose result is not the
    concatenation of its parts, and a pair listed twice.
    """
    toks = tuple(tokens)
    byte_ids: dict[int, int] = {}
    seen: dict[bytes, int] = {}
    for i, t in enumerate(toks):
        if not isinstance(t, bytes):
            raise ConfigError(f"{source}: token {i} must be bytes, got {type(t).__name__}")
        if not t:
            continue
        if t in seen:
            raise ConfigError(
                f"{source}: ids {seen[t]} and {i} are both {t!r}; each byte string needs one id"
            )
        seen[t] = i
        if len(t) == 1:
            byte_ids[t[0]] = i
    missing = [b for b in range(256) if b not in byte_ids]
    if missing:
        raise ConfigError(
            f"{source}: not a byte-level vocabulary: {len(missing)} byte value(s) have no token of their own "
            f"(first: 0x{missing[0]:02X}); only byte-level BPE vocabularies encode every text exactly"
        )
    specials: list[tuple[str, int]] = []
    taken: dict[int, str] = {}
    for name, sid in special_tokens.items():
        if not isinstance(name, str) or not name or not isinstance(sid, int) or isinstance(sid, bool):
            raise ConfigError(
                f"{source}: special token {name!r}: {sid!r} must be a non-empty str with an int id"
            )
        if sid < len(toks):
            raise ConfigError(
                f"{source}: special token {name!r} has id {sid}, inside the ordinary ids [0, {len(toks)})"
            )
        if sid in taken:
            raise ConfigError(f"{source}: special tokens {taken[sid]!r} and {name!r} share id {sid}")
        taken[sid] = name
        specials.append((name, sid))
    specials.sort(key=lambda item: item[1])
    pairs = None
    if merges is not None:
        pairs = tuple((int(a), int(b), int(r)) for a, b, r in merges)
        listed: set[tuple[int, int]] = set()
        for k, (a, b, r) in enumerate(pairs):
            n = len(toks)
            if not (0 <= a < n and 0 <= b < n and 0 <= r < n) or not toks[a] or toks[a] + toks[b] != toks[r]:
                raise ConfigError(
                    f"{source}: merge {k} ({a}, {b}) -> {r} does not join two tokens into the third"
                )
            if (a, b) in listed:
                raise ConfigError(f"{source}: merge {k} lists the pair ({a}, {b}) a second time")
            listed.add((a, b))
        if not pairs:
            raise ConfigError(f"{source}: the merge list is empty")
    return Ranks(toks, tuple(specials), pairs, bool(piece_lookup))


def native_encoder(
    token_bytes: Sequence[bytes], specials: Mapping[str, int], split_id: int, ranks: Ranks | None
) -> Any:
    """The native encoder over every id's bytes (special tokens as their UTF-8, gaps as ``b""``)."""
    from ._native._encoder import Encoder

    size = max([len(token_bytes), *(i + 1 for i in specials.values())])
    tokens = list(token_bytes) + [b""] * (size - len(token_bytes))
    for name, i in specials.items():
        tokens[i] = name.encode("utf-8")
    merges = None if ranks is None else ranks.merges
    return Encoder(tokens, len(token_bytes), split_id, merges, True if ranks is None else ranks.piece_lookup)
