"""Option parsing shared by several commands."""

from __future__ import annotations

import json
from typing import Any

from shardstore.errors import ConfigError


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
