"""Mixture configs: typed, validated dataclasses from a parsed TOML/YAML table, and the exact weight schedule.

A mixture file names sources (one store or a list of stores each, concatenated), their weights (token
proportions; samples have a fixed length so sample proportions are the same thing), the packing length, the seed,
and optional schedule phases. Relative store paths resolve against the config file's folder::

    seq_len = 2048
    seed = 1234
    global_batch_size = 512          # samples per optimizer step; needed only by step-based schedule phases
    cache_dir = "/local/cache"       # optional: node-local cache for remote stores
    cache_limit = "200G"             # optional: bound on that cache per remote store (bytes, or K/M/G/T)
    # storage_options = { ... }      # optional: fsspec options for remote stores (endpoint_url, ...)

    [[sources]]
    name = "web"
    store = "stores/web"             # a path/URL, or a list of them
    weight = 0.7

    [[sources]]
    name = "code"
    store = ["stores/code-a", "s3://bucket/code-b"]
    weight = 0.3

    [[schedule]]                     # from token 1e9 on, ramp linearly to 50/50 over 1e8 tokens
    start_tokens = 1_000_000_000     # or start_step = 5000
    weights = { web = 0.5, code = 0.5 }
    ramp = "linear"                  # "constant" (default): switch at once
    ramp_tokens = 100_000_000        # or ramp_steps

Weights are exact fractions of their decimal text (0.7 is 7/10), normalized to sum 1. A phase starting at token
``T`` starts at global sample ``ceil(T / seq_len)``; at step ``S`` it starts at sample ``S * global_batch_size``.
Configs are pure data (no I/O here: reading the file and resolving store paths is `shardstore.loader.mixture`);
`Mixture.open_sources()` opens the stores (lazily, once per process) and checks that they share one tokenizer
(``MismatchError`` otherwise, unless ``allow_tokenizer_mismatch = true``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shardstore.errors import ConfigError
from shardstore.mix.config_types import check_mixture_types, expect
from shardstore.mix.interleave import Phase, normalize_weights
from shardstore.mix.keys import check_keys
from shardstore.util.modes import VerifyMode, parse_mode
from shardstore.util.sizes import parse_size

__all__ = ["SOURCE_KEYS", "MixtureConfig", "PhaseConfig", "Ramp", "SourceConfig", "check_int"]

SOURCE_KEYS = frozenset({"name", "store", "weight", "exclude", "heldout", "heldout_tokens"})


class Ramp(StrEnum):
    CONSTANT = "constant"
    LINEAR = "linear"


def check_int(value: object, *, what: str, lo: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ConfigError(f"{what} must be an integer >= {lo}, got {value!r}")
    return value


def _size(value: object) -> int | None:
    """A cache size from a config: bytes as an integer, or a string such as "500M" / "20G"."""
    if value is None or isinstance(value, int):
        return value  # integers are range-checked by MixtureConfig
    if isinstance(value, str):
        return parse_size(value)
    raise ConfigError(f"cache_limit must be bytes (an integer) or a size such as '20G', got {value!r}")


def _weight(value: object, *, what: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{what} must be a finite number >= 0, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One source: a name, one or more stores (concatenated in order) and a weight; optionally masks to apply
    (``exclude``: mask files or MASKDIR folders) and a held-out split (``heldout`` fraction of documents, or
    ``heldout_tokens``), both left out of the training stream (docs/masks.md)."""

    name: str
    stores: tuple[str, ...]
    weight: float | int
    exclude: tuple[str, ...] = ()
    heldout: float | None = None
    heldout_tokens: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"a source needs a non-empty string name, got {self.name!r}")
        if not self.stores or not all(isinstance(s, str) and s for s in self.stores):
            raise ConfigError(f"source {self.name!r}: store must be a path/URL or a non-empty list of them")
        _weight(self.weight, what=f"source {self.name!r}: weight")
        if not all(isinstance(e, str) and e for e in self.exclude):
            raise ConfigError(
                f"source {self.name!r}: exclude must be a list of mask files or MASKDIR folders"
            )
        if self.heldout is not None and self.heldout_tokens is not None:
            raise ConfigError(f"source {self.name!r}: set heldout (a fraction) or heldout_tokens, not both")
        if self.heldout is not None:
            h = _weight(self.heldout, what=f"source {self.name!r}: heldout")
            if not 0 <= h < 1:
                raise ConfigError(f"source {self.name!r}: heldout must be a fraction in [0, 1), got {h!r}")
            object.__setattr__(self, "heldout", float(h))
        if self.heldout_tokens is not None:
            t = _weight(self.heldout_tokens, what=f"source {self.name!r}: heldout_tokens")
            if t != int(t) or t < 1:
                raise ConfigError(
                    f"source {self.name!r}: heldout_tokens must be a whole number >= 1, got {t!r}"
                )
            object.__setattr__(self, "heldout_tokens", int(t))

    @property
    def has_heldout(self) -> bool:
        return bool(self.heldout) or self.heldout_tokens is not None


@dataclass(frozen=True, slots=True)
class PhaseConfig:
    """A schedule phase: from a token or step on, new weights (by source name), reached at once or linearly."""

    weights: dict[str, float | int]
    start_tokens: int | None = None
    start_step: int | None = None
    ramp: Ramp = Ramp.CONSTANT
    ramp_tokens: int | None = None
    ramp_steps: int | None = None

    def __post_init__(self) -> None:
        if (self.start_tokens is None) == (self.start_step is None):
            raise ConfigError("a schedule phase needs exactly one of start_tokens or start_step")
        start = self.start_tokens if self.start_tokens is not None else self.start_step
        check_int(start, what="schedule phase start")
        object.__setattr__(self, "ramp", parse_mode(Ramp, self.ramp, name="schedule ramp"))
        lengths = [x for x in (self.ramp_tokens, self.ramp_steps) if x is not None]
        if self.ramp is Ramp.LINEAR:
            if len(lengths) != 1 or check_int(lengths[0], what="ramp length", lo=1) < 1:
                raise ConfigError(
                    "a linear schedule phase needs exactly one of ramp_tokens or ramp_steps (>= 1)"
                )
        elif lengths:
            raise ConfigError("ramp_tokens/ramp_steps only apply to ramp = 'linear'")
        if not isinstance(self.weights, dict) or not self.weights:
            raise ConfigError("a schedule phase needs weights = { source_name = weight, ... }")
        for name, w in self.weights.items():
            _weight(w, what=f"schedule weight of {name!r}")

    @property
    def uses_steps(self) -> bool:
        return self.start_step is not None or self.ramp_steps is not None


@dataclass(frozen=True, slots=True)
class MixtureConfig:
    """A whole mixture file, validated on construction."""

    seq_len: int
    seed: int
    sources: tuple[SourceConfig, ...]
    schedule: tuple[PhaseConfig, ...] = ()
    global_batch_size: int | None = None
    cache_dir: str | None = None
    cache_limit: int | None = (
        None  # bytes of node-local cache per remote store (None: $SHARDSTORE_CACHE_LIMIT)
    )
    verify: VerifyMode = VerifyMode.TOUCH  # a string value is accepted
    allow_tokenizer_mismatch: bool = False
    storage_options: dict[str, Any] | None = None  # fsspec options for remote stores (endpoint, credentials)
    base_dir: str = "."

    def __post_init__(self) -> None:
        expect("bool", self.allow_tokenizer_mismatch, what="allow_tokenizer_mismatch")
        expect("str", self.verify, what="verify")
        expect("str", self.cache_dir, what="cache_dir")
        check_int(self.seq_len, what="seq_len", lo=1)
        object.__setattr__(self, "verify", parse_mode(VerifyMode, self.verify, name="verify"))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"seed must be an integer, got {self.seed!r}")
        if not self.sources:
            raise ConfigError("a mixture needs at least one [[sources]] entry")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ConfigError(f"source names must be unique, got {names}")
        if self.global_batch_size is not None:
            check_int(self.global_batch_size, what="global_batch_size", lo=1)
        if self.cache_limit is not None:
            check_int(self.cache_limit, what="cache_limit", lo=1)
        if self.storage_options is not None and not isinstance(self.storage_options, dict):
            raise ConfigError(
                f"storage_options must be a table of fsspec options, got {self.storage_options!r}"
            )
        for i, phase in enumerate(self.schedule):
            unknown = sorted(set(phase.weights) - set(names))
            if unknown:
                raise ConfigError(f"schedule phase {i} names unknown sources {unknown}; sources are {names}")
            if phase.uses_steps and self.global_batch_size is None:
                raise ConfigError(
                    f"schedule phase {i} is in steps; set global_batch_size (samples per step) at the top of the "
                    "mixture file so steps map to the same samples whatever the world size"
                )

    def phases(self) -> list[Phase]:
        """The schedule in global sample positions, exact weights in source order."""
        names = [s.name for s in self.sources]
        phases = [Phase(0, normalize_weights([s.weight for s in self.sources], what="source weights"))]
        for i, pc in enumerate(self.schedule):
            if pc.start_tokens is not None:
                start = -(-pc.start_tokens // self.seq_len)
            else:
                start = (pc.start_step or 0) * (self.global_batch_size or 0)
            ramp = 0
            if pc.ramp_tokens is not None:
                ramp = -(-pc.ramp_tokens // self.seq_len)
            elif pc.ramp_steps is not None:
                ramp = pc.ramp_steps * int(self.global_batch_size or 0)
            weights = normalize_weights([pc.weights.get(n, 0) for n in names], what=f"schedule phase {i}")
            if start == 0 and ramp == 0:
                phases[0] = Phase(0, weights)
            else:
                phases.append(Phase(start, weights, ramp))
        return phases

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, base_dir: str = ".") -> MixtureConfig:
        known = {
            "seq_len",
            "seed",
            "sources",
            "schedule",
            "global_batch_size",
            "cache_dir",
            "cache_limit",
            "verify",
        }
        known |= {"allow_tokenizer_mismatch", "storage_options"}
        check_keys(d, known, where="mixture")
        check_mixture_types(d)
        for key in ("seq_len", "seed", "sources"):
            if key not in d:
                raise ConfigError(f"the mixture needs {key!r}")
        sources = []
        for i, s in enumerate(d["sources"] if isinstance(d["sources"], list) else [None]):
            if not isinstance(s, dict) or set(s) - SOURCE_KEYS or "store" not in s:
                check_keys(s, SOURCE_KEYS, where=f"sources[{i}]")
                raise ConfigError(
                    f"sources[{i}] must be a table with name, store and weight (optional: exclude, heldout, "
                    f"heldout_tokens); got {s!r}"
                )
            store, exclude = s["store"], s.get("exclude", [])
            sources.append(
                SourceConfig(
                    name=s.get("name", f"source{i}"),
                    stores=tuple(store) if isinstance(store, list) else (store,),
                    weight=s.get("weight", 1),
                    exclude=tuple(exclude) if isinstance(exclude, list) else (exclude,),
                    heldout=s.get("heldout"),
                    heldout_tokens=s.get("heldout_tokens"),
                )
            )
        schedule = []
        for i, p in enumerate(d.get("schedule", [])):
            fields = {"weights", "start_tokens", "start_step", "ramp", "ramp_tokens", "ramp_steps"}
            check_keys(p, fields, where=f"schedule[{i}]")
            if not isinstance(p, dict) or set(p) - fields:
                raise ConfigError(
                    f"schedule[{i}] has unknown keys {sorted(set(p) - fields)}; known: {sorted(fields)}"
                )
            schedule.append(PhaseConfig(**p))
        return cls(
            seq_len=d["seq_len"],
            seed=d["seed"],
            sources=tuple(sources),
            schedule=tuple(schedule),
            global_batch_size=d.get("global_batch_size"),
            cache_dir=d.get("cache_dir"),
            cache_limit=_size(d.get("cache_limit")),
            verify=d.get("verify", "touch"),
            allow_tokenizer_mismatch=d.get("allow_tokenizer_mismatch", False),
            storage_options=d.get("storage_options"),
            base_dir=base_dir,
        )
