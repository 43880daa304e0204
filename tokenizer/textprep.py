"""What `Tokenizer` checks and cuts before the native encoder sees a text: argument checks, the lone-surrogate
policy, the split at recognized special tokens, and the output dtype rule.

Pure functions over plain values (a text, a name -> id table, a vocabulary size), so that `tokenizer.core` keeps
only the public methods and the bulk paths (`tokenizer.bulk`) share the same checks.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from shardstore.errors import ConfigError, InputError

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "ERRORS",
    "AllowedSpecial",
    "check_dtype",
    "check_errors",
    "check_text",
    "ids_list",
    "replace_surrogates",
    "smallest_dtype",
    "split_at_specials",
    "surrogate_error",
]

ERRORS = ("strict", "replace")

AllowedSpecial = Literal["all"] | Collection[str]


def surrogate_error(text: str, exc: UnicodeEncodeError) -> InputError:
    """The `InputError` for a lone surrogate, naming its index and code point."""
    cp = ord(text[exc.start])
    return InputError(
        f"text contains a lone surrogate U+{cp:04X} at index {exc.start}, which has no UTF-8 encoding; clean the text "
        "or pass errors='replace' to encode lone surrogates as U+FFFD"
    )


def replace_surrogates(text: str) -> str:
    """Every lone surrogate replaced by U+FFFD (the ``errors="replace"`` policy)."""
    return re.sub("[\ud800-\udfff]", "\ufffd", text)


def check_errors(errors: str) -> None:
    if errors not in ERRORS:
        raise ConfigError(f"errors must be one of {ERRORS}, got {errors!r}")


def check_text(text: object, errors: str) -> None:
    """Raise `ConfigError` unless `text` is a str and `errors` a known policy."""
    if not isinstance(text, str):
        raise ConfigError(f"text must be str, got {type(text).__name__}; decode bytes to str first")
    check_errors(errors)


def split_at_specials(
    text: str, specials: Mapping[str, int], allowed_special: AllowedSpecial
) -> list[str | int]:
    """Split text at recognized special tokens: str segments to encode, ints for special ids.

    Longest name first, so that a special token that is a prefix of another never wins over it.
    """
    if not allowed_special:
        return [text]
    if allowed_special == "all":
        names = list(specials)
    else:
        if isinstance(allowed_special, str):
            raise ConfigError(
                f"allowed_special must be 'all' or a set of special tokens, got {allowed_special!r}"
            )
        names = list(allowed_special)
        unknown = [n for n in names if n not in specials]
        if unknown:
            raise ConfigError(
                f"allowed_special names unknown special tokens {unknown}; known: {list(specials)}"
            )
    if not names or not any(n in text for n in names):
        return [text]
    rx = re.compile("|".join(re.escape(n) for n in sorted(names, key=lambda n: (-len(n), n))))
    out: list[str | int] = []
    pos = 0
    for m in rx.finditer(text):
        if m.start() > pos:
            out.append(text[pos : m.start()])
        out.append(specials[m.group()])
        pos = m.end()
    if pos < len(text):
        out.append(text[pos:])
    return out


def check_dtype(dtype: npt.DTypeLike | None, vocab_size: int) -> np.dtype[Any]:
    """The native-order dtype for ids of a `vocab_size` vocabulary: `dtype`, or the smallest that holds them.

    uint16 holds up to 65,536 ids (0..65535), uint32 everything else.
    """
    dt = smallest_dtype(vocab_size) if dtype is None else np.dtype(dtype)
    if dt not in (np.dtype(np.uint16), np.dtype(np.uint32)) or (dt.itemsize == 2 and vocab_size > 65536):
        raise ConfigError(
            f"dtype {dt} cannot hold ids of a {vocab_size}-token vocabulary; use uint32"
            + (" or uint16" if vocab_size <= 65536 else "")
        )
    return dt.newbyteorder("=")


def smallest_dtype(vocab_size: int) -> np.dtype[Any]:
    """uint16 up to 65,536 ids, else uint32."""
    return np.dtype(np.uint16) if vocab_size <= 65536 else np.dtype(np.uint32)


def ids_list(ids: Any) -> list[int]:
    """Ids as a list for the native decoder; a numpy array must be 1-D of integers (`ConfigError` otherwise)."""
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1 or ids.dtype.kind not in "iu":
            raise ConfigError(f"ids must be a 1-D integer array, got shape {ids.shape} dtype {ids.dtype}")
        return ids.tolist()  # type: ignore[no-any-return]
    return ids if isinstance(ids, list) else list(ids)
