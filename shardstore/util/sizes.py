"""Sizes written by people ("500M", "20G", "12345"): one parser for cache limits in configs and on the CLI.

Pure (no I/O), so the mixture config in `shardstore.mix` may use it.
"""

from __future__ import annotations

from shardstore.errors import ConfigError

__all__ = ["human_bytes", "human_count", "parse_size"]

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


def human_count(n: float) -> str:
    """3254145 -> '3.25 M'; counts below a thousand stay exact ('812')."""
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:g}"


def human_bytes(n: float) -> str:
    """1288490188 -> '1.20 GiB' (binary units, as `du -h` and the cache limits use)."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{int(n)} B"
