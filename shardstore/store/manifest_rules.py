"""The manifest's validation primitives: names that cannot escape the store, exact integer and hex fields,
exact key sets. Each raises ManifestError naming the source; none allocates in proportion to hostile input."""

from __future__ import annotations

import re
from typing import Any

from shardstore.errors import ManifestError
from shardstore.store import format as fmt

__all__ = ["HEX16", "check_name", "exact_keys", "fail", "hex_field", "int_field"]

_NAME_PART = r"[A-Za-z0-9_][A-Za-z0-9._+=-]{0,254}"
_NAME = re.compile(rf"{_NAME_PART}(?:/{_NAME_PART})*")
HEX16 = re.compile(r"[0-9a-f]{16}")


def fail(source: str, msg: str) -> ManifestError:
    return ManifestError(f"{source}: {msg}")


def check_name(name: object, *, source: str, what: str = "file name") -> str:
    """A relative path of plain parts inside the store; raises ManifestError for anything that could escape it."""
    if not isinstance(name, str):
        raise fail(source, f"{what} must be a string, got {type(name).__name__} {name!r}")
    if len(name) > 1024 or ".." in name or not _NAME.fullmatch(name):
        raise fail(
            source,
            f"{what} {name!r} is not allowed: use relative names of letters, digits and ._+=- "
            f"(no '..', no absolute paths, no empty parts)",
        )
    return name


def int_field(value: object, *, source: str, what: str, hi: int = fmt.MAX_TOKENS) -> int:
    if type(value) is not int:
        raise fail(source, f"{what} must be an integer, got {type(value).__name__} {value!r}")
    if not 0 <= value <= hi:
        raise fail(source, f"{what}={value} is outside 0..{hi}")
    return value


def hex_field(value: object, pattern: re.Pattern[str], *, source: str, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise fail(source, f"{what} must be lowercase hex, got {value!r}")
    return value


def exact_keys(
    obj: object, required: set[str] | frozenset[str], optional: set[str], *, source: str, what: str
) -> dict[str, Any]:
    if type(obj) is dict and obj.keys() == required:
        return obj
    if not isinstance(obj, dict):
        raise fail(source, f"{what} must be a JSON object, got {type(obj).__name__}")
    missing = required - obj.keys()
    extra = obj.keys() - required - optional
    if missing or extra:
        raise fail(source, f"{what} has missing keys {sorted(missing)} / unknown keys {sorted(extra)}")
    return obj
