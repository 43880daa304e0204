"""Sizes written by people ("500M", "20G", "12345"): one parser for cache limits in configs and on the CLI.

Pure (no I/O), so the mixture config in `shardstore.mix` may use it.
"""

from __future__ import annotations

from shardstore.errors import ConfigError

__all__ = ["parse_size"]

_SUFFIXES = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """'500M', '2G', '12345' -> bytes (binary units); ConfigError for anything else."""
    raw = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = raw[-1:] if raw[-1:] in _SUFFIXES else ""
    number = raw[: len(raw) - len(unit)]
    try:
        value = float(number) * _SUFFIXES[unit]
    except ValueError:
        raise ConfigError(f"cache size {text!r} is not a size: write bytes or e.g. '500M', '20G'") from None
    if not value > 0:
        raise ConfigError(f"cache size {text!r} must be positive")
    return int(value)
