"""Option parsing shared by several commands."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import click

from shardstore.errors import ConfigError
from shardstore.util.modes import mode_values


def enum_choice(enum: type[StrEnum]) -> click.Choice:
    """A ``click.Choice`` of the enum's string values: the CLI's choices are the library's modes, never a copy."""
    return click.Choice(mode_values(enum))


def parse_storage_options(text: str | None) -> dict[str, Any] | None:
    """`--storage-options '{"anon": true}'` -> fsspec options; ConfigError naming the value otherwise."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ConfigError(
            f"--storage-options must be a JSON object such as '{{\"anon\": true}}', got {text!r} ({exc})"
        ) from None
    if not isinstance(value, dict):
        raise ConfigError(f"--storage-options must be a JSON object, got {type(value).__name__}: {text!r}")
    return value


def unescape(text: str) -> str:
    """`--split-on '\\n\\n'` means two newlines: the usual backslash escapes, nothing else."""
    out, i = [], 0
    table = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "0": "\0"}
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in table:
            out.append(table[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
