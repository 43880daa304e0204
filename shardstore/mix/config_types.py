"""Strict value types for mixture configs: a boolean is a boolean, a number is a number, a name is a string.

TOML and YAML already type their values, but a hand-written Python dict, or a quoted TOML value, can carry
``allow_tokenizer_mismatch = "false"``, which ``bool()`` reads as true: stores of different tokenizers would then be
mixed. Every key of a mixture is checked here, before any value is used, with one message naming the key, the value
received and its type. (Unknown keys are `shardstore.mix.config`'s concern.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from shardstore.errors import ConfigError

__all__ = ["check_mixture_types", "check_phase_types", "check_source_types", "expect"]

INT, NUMBER, BOOL, STR, TABLE, SIZE, STORES = "int", "number", "bool", "str", "table", "size", "stores"
_TOP = {
    "seq_len": INT,
    "seed": INT,
    "global_batch_size": INT,
    "cache_dir": STR,
    "cache_limit": SIZE,
    "verify": STR,
    "allow_tokenizer_mismatch": BOOL,
    "storage_options": TABLE,
}
_SOURCE = {
    "name": STR,
    "store": STORES,
    "weight": NUMBER,
    "exclude": STORES,
    "heldout": NUMBER,
    "heldout_tokens": NUMBER,
}
_PHASE = {
    "weights": TABLE,
    "start_tokens": INT,
    "start_step": INT,
    "ramp": STR,
    "ramp_tokens": INT,
    "ramp_steps": INT,
}
_WANT = {
    INT: "an integer",
    NUMBER: "a finite number",
    BOOL: "true or false (a boolean, not a string or a number)",
    STR: "a string",
    TABLE: "a table",
    SIZE: "bytes (an integer) or a size string such as '20G'",
    STORES: "a path/URL string or a list of them",
}


def _ok(kind: str, value: object) -> bool:
    if kind == BOOL:
        return isinstance(value, bool)
    if isinstance(value, bool):  # True is an int to Python, never a count or a weight here
        return False
    if kind == INT:
        return isinstance(value, int)
    if kind == NUMBER:
        return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    if kind == STR:
        return isinstance(value, str)
    if kind == TABLE:
        return isinstance(value, Mapping)
    if kind == SIZE:
        return isinstance(value, int | str)
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def expect(kind: str, value: object, *, what: str) -> None:
    """`ConfigError` unless ``value`` has the type ``kind`` (one of the module's kinds); None means "not set"."""
    if value is not None and not _ok(kind, value):
        raise ConfigError(f"{what} must be {_WANT[kind]}, got {value!r} ({type(value).__name__})")


def check_mixture_types(d: Mapping[str, Any]) -> None:
    """Types of a whole mixture table: top-level keys, every source and every schedule phase."""
    for key, kind in _TOP.items():
        expect(kind, d.get(key), what=key)
    sources = d.get("sources")
    if isinstance(sources, list):
        for i, s in enumerate(sources):
            if isinstance(s, Mapping):
                check_source_types(s, where=f"sources[{i}]")
    schedule = d.get("schedule")
    if schedule is not None and not isinstance(schedule, list):
        raise ConfigError(f"schedule must be a list of [[schedule]] tables, got {schedule!r}")
    for i, p in enumerate(schedule or []):
        if isinstance(p, Mapping):
            check_phase_types(p, where=f"schedule[{i}]")


def check_source_types(s: Mapping[str, Any], *, where: str) -> None:
    for key, kind in _SOURCE.items():
        expect(kind, s.get(key), what=f"{where}.{key}")


def check_phase_types(p: Mapping[str, Any], *, where: str) -> None:
    for key, kind in _PHASE.items():
        expect(kind, p.get(key), what=f"{where}.{key}")
    weights = p.get("weights")
    if isinstance(weights, Mapping):
        for name, w in weights.items():
            expect(NUMBER, w, what=f"{where}.weights.{name}")
