"""Unknown keys of a mixture file, named with the closest known key: `wieght` -> "did you mean 'weight'?".

Pure: compares key names (difflib's ratio, cutoff 0.6), no I/O. Used at every level of the file (top level,
`[[sources]]`, `[[schedule]]`), so a typo is never reported as a generic "must be a table" or silently dropped.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from typing import Any

from shardstore.errors import ConfigError

__all__ = ["check_keys", "unknown_keys_message"]


def unknown_keys_message(given: Collection[str], known: Collection[str], *, where: str) -> str | None:
    """The one-line message for the keys of `given` that are not in `known`, or None when there are none."""
    unknown = sorted(str(k) for k in given if k not in known)
    if not unknown:
        return None
    parts = []
    for key in unknown:
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
        parts.append(f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key))
    noun = "key" if len(unknown) == 1 else "keys"
    return f"unknown {where} {noun} {', '.join(parts)}; known keys are {', '.join(sorted(known))}"


def check_keys(table: Mapping[str, Any] | Any, known: Collection[str], *, where: str) -> None:
    """Raise `ConfigError` naming each unknown key of `table` (a mapping; anything else is left to the caller)."""
    if not isinstance(table, Mapping):
        return
    message = unknown_keys_message(list(table), known, where=where)
    if message is not None:
        raise ConfigError(message)
