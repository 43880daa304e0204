"""Mixture configs: typed dataclasses read from TOML (or YAML), the exact weight schedule, and the planner.

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
Configs are pure data; `Mixture.open_sources()` opens the stores (lazily, once per process) and checks that they
share one tokenizer (``MismatchError`` otherwise, unless ``allow_tokenizer_mismatch = true``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shardstore.errors import ConfigError, MismatchError
from shardstore.mix.interleave import Interleave, Phase, WeightSchedule, normalize_weights
from shardstore.mix.sampling import num_windows
from shardstore.util.forksafe import reset_in_forked_child

__all__ = ["Mixture", "MixtureConfig", "PhaseConfig", "Plan", "Ramp", "SourceConfig", "SourcePlan"]

REPEAT_WARNING_EPOCHS = 4.0


class Ramp(StrEnum):
    CONSTANT = "constant"
    LINEAR = "linear"


def _int(value: object, *, what: str, lo: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ConfigError(f"{what} must be an integer >= {lo}, got {value!r}")
    return value


def _size(value: object) -> int | None:
    """A cache size from a config: bytes as an integer, or a string such as "500M" / "20G"."""
    if value is None or isinstance(value, int):
        return value  # integers are range-checked by MixtureConfig
    if isinstance(value, str):
        from shardstore.remote.cache_config import parse_size

        return parse_size(value)
    raise ConfigError(f"cache_limit must be bytes (an integer) or a size such as '20G', got {value!r}")


def _weight(value: object, *, what: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{what} must be a finite number >= 0, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One source: a name, one or more stores (concatenated in order) and a weight."""

    name: str
    stores: tuple[str, ...]
    weight: float | int

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"a source needs a non-empty string name, got {self.name!r}")
        if not self.stores or not all(isinstance(s, str) and s for s in self.stores):
            raise ConfigError(f"source {self.name!r}: store must be a path/URL or a non-empty list of them")
        _weight(self.weight, what=f"source {self.name!r}: weight")


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
        _int(start, what="schedule phase start")
        try:
            object.__setattr__(self, "ramp", Ramp(self.ramp))
        except ValueError:
            raise ConfigError(
                f"schedule ramp must be one of {[r.value for r in Ramp]}, got {self.ramp!r}"
            ) from None
        lengths = [x for x in (self.ramp_tokens, self.ramp_steps) if x is not None]
        if self.ramp is Ramp.LINEAR:
            if len(lengths) != 1 or _int(lengths[0], what="ramp length", lo=1) < 1:
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
    verify: str = "touch"
    allow_tokenizer_mismatch: bool = False
    storage_options: dict[str, Any] | None = None  # fsspec options for remote stores (endpoint, credentials)
    base_dir: str = "."

    def __post_init__(self) -> None:
        _int(self.seq_len, what="seq_len", lo=1)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"seed must be an integer, got {self.seed!r}")
        if not self.sources:
            raise ConfigError("a mixture needs at least one [[sources]] entry")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ConfigError(f"source names must be unique, got {names}")
        if self.global_batch_size is not None:
            _int(self.global_batch_size, what="global_batch_size", lo=1)
        if self.cache_limit is not None:
            _int(self.cache_limit, what="cache_limit", lo=1)
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

    def resolve(self, store: str) -> str:
        """A store path relative to the config file's folder; URLs and absolute paths unchanged."""
        if "://" in store or os.path.isabs(store):
            return store
        return os.path.normpath(os.path.join(self.base_dir, store))

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
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown mixture keys {unknown}; known keys are {sorted(known)}")
        for key in ("seq_len", "seed", "sources"):
            if key not in d:
                raise ConfigError(f"the mixture needs {key!r}")
        sources = []
        for i, s in enumerate(d["sources"] if isinstance(d["sources"], list) else [None]):
            if not isinstance(s, dict) or set(s) - {"name", "store", "weight"} or "store" not in s:
                raise ConfigError(f"sources[{i}] must be a table with name, store and weight; got {s!r}")
            store = s["store"]
            stores = tuple(store) if isinstance(store, list) else (store,)
            sources.append(
                SourceConfig(name=s.get("name", f"source{i}"), stores=stores, weight=s.get("weight", 1))
            )
        schedule = []
        for i, p in enumerate(d.get("schedule", [])):
            fields = {"weights", "start_tokens", "start_step", "ramp", "ramp_tokens", "ramp_steps"}
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
            allow_tokenizer_mismatch=bool(d.get("allow_tokenizer_mismatch", False)),
            storage_options=d.get("storage_options"),
            base_dir=base_dir,
        )


@dataclass(frozen=True, slots=True)
class SourcePlan:
    name: str
    weight: float  # average weight over the planned run
    tokens_available: int  # training tokens in one epoch (windows x seq_len)
    samples_available: int
    samples_drawn: int
    tokens_drawn: int
    epochs: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "weight": self.weight,
            "tokens_available": self.tokens_available,
            "samples_available": self.samples_available,
            "samples_drawn": self.samples_drawn,
            "tokens_drawn": self.tokens_drawn,
            "epochs": self.epochs,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    total_tokens: int
    total_samples: int
    seq_len: int
    sources: tuple[SourcePlan, ...]
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_tokens": self.total_tokens,
            "total_samples": self.total_samples,
            "seq_len": self.seq_len,
            "sources": [s.to_dict() for s in self.sources],
            "warnings": list(self.warnings),
        }


@dataclass(slots=True)
class OpenSource:
    """A source's opened stores and where each begins in the source's concatenated token space."""

    name: str
    stores: list[Any]
    offsets: list[int]  # offsets[i] = first source token of stores[i]; offsets[-1] = total tokens
    num_windows: int


class Mixture:
    """A validated mixture config plus lazily opened stores (opened once per process)."""

    __slots__ = ("__weakref__", "_interleave", "_opened", "_opened_pid", "config")

    def __init__(self, config: MixtureConfig) -> None:
        self.config = config
        self._interleave: Interleave | None = None
        self._opened: list[OpenSource] | None = None  # per process: a forked worker opens its own
        self._opened_pid = -1  # which process opened them (a record for diagnostics and tests)
        reset_in_forked_child(self._forget_opened)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Mixture:
        path = os.fspath(path)
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read mixture file: {exc}") from exc
        if path.endswith((".yaml", ".yml")):
            try:
                import yaml
            except ImportError:
                raise ConfigError(
                    f"{path}: YAML mixtures need PyYAML (pip install pyyaml); or use TOML"
                ) from None
            try:
                data = yaml.safe_load(raw)
            except yaml.YAMLError as exc:
                raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
        else:
            try:
                data = tomllib.loads(raw.decode("utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a mixture file must be a table of keys")
        try:
            return cls(MixtureConfig.from_dict(data, base_dir=os.path.dirname(os.path.abspath(path))))
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        except TypeError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, base_dir: str = ".") -> Mixture:
        try:
            return cls(MixtureConfig.from_dict(d, base_dir=base_dir))
        except TypeError as exc:
            raise ConfigError(f"invalid mixture: {exc}") from None

    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.config}  # stores are re-opened in the receiving process

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.config = state["config"]
        self._interleave = None
        self._forget_opened()
        reset_in_forked_child(self._forget_opened)

    def _forget_opened(self) -> None:
        self._opened, self._opened_pid = None, -1

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.config.sources]

    @property
    def interleave(self) -> Interleave:
        if self._interleave is None:
            self._interleave = Interleave(WeightSchedule(self.config.phases()))
        return self._interleave

    def open_sources(self) -> list[OpenSource]:
        """Open every store (once per process: a forked worker opens its own), checking their tokenizers."""
        if self._opened is not None:
            return self._opened
        from shardstore.store.store import Store

        cfg = self.config
        opened: list[OpenSource] = []
        tokenizers: dict[str | None, str] = {}
        for sc in cfg.sources:
            stores, offsets = [], [0]
            for ref in sc.stores:
                store = Store.open(
                    cfg.resolve(ref),
                    verify=cfg.verify,
                    cache_dir=cfg.cache_dir,
                    storage_options=cfg.storage_options,
                    cache_limit=cfg.cache_limit,
                )
                stores.append(store)
                offsets.append(offsets[-1] + store.num_tokens)
                tokenizers.setdefault(store.tokenizer_fingerprint, f"{sc.name}: {store.root}")
            windows = num_windows(offsets[-1], cfg.seq_len)
            if windows == 0:
                raise ConfigError(
                    f"source {sc.name!r} has {offsets[-1]} tokens, fewer than seq_len + 1 = {cfg.seq_len + 1}: "
                    "it cannot yield one sample; add data or lower seq_len"
                )
            opened.append(OpenSource(sc.name, stores, offsets, windows))
        if len(tokenizers) > 1 and not cfg.allow_tokenizer_mismatch:
            listing = "; ".join(f"{where} has tokenizer {fp}" for fp, where in tokenizers.items())
            raise MismatchError(
                f"the mixture's stores were built with different tokenizers ({listing}); rebuild them with one "
                "tokenizer, or set allow_tokenizer_mismatch = true if the ids really are compatible"
            )
        self._opened, self._opened_pid = opened, os.getpid()
        return opened

    def fingerprints(self) -> dict[str, Any]:
        """What a loader state is bound to: the mix (sources, exact weights, schedule), the stores' and
        tokenizers' fingerprints, seq_len and seed."""
        cfg = self.config
        mix = {
            "sources": [s.name for s in cfg.sources],
            "phases": [[p.start, p.ramp, [str(w) for w in p.weights]] for p in cfg.phases()],
        }
        opened = self.open_sources()
        stores = [[s.fingerprint for s in src.stores] for src in opened]
        toks = sorted({str(s.tokenizer_fingerprint) for src in opened for s in src.stores})
        return {
            "mixture": _digest(mix),
            "stores": _digest(stores),
            "tokenizer": toks[0] if len(toks) == 1 else _digest(toks),
            "seq_len": cfg.seq_len,
            "seed": cfg.seed,
        }

    def plan(self, total_tokens: int) -> Plan:
        """Per-source weight, tokens available and drawn, epochs and warnings for a run of ``total_tokens``."""
        _int(total_tokens, what="total_tokens", lo=1)
        cfg = self.config
        samples = -(-total_tokens // cfg.seq_len)
        il = self.interleave
        if il.schedule.constant_weights is not None:
            drawn = list(il.counts_at(samples))
        else:  # the exact integral, apportioned by largest remainder: the real counts are within one sample
            exact = [il.schedule.cumulative(s, samples) for s in range(il.num_sources)]
            drawn = [math.floor(x) for x in exact]
            by_remainder = sorted(range(il.num_sources), key=lambda s: exact[s] - drawn[s], reverse=True)
            for s in by_remainder[: samples - sum(drawn)]:
                drawn[s] += 1
        opened = self.open_sources()
        rows, warnings = [], []
        for s, src in enumerate(opened):
            epochs = drawn[s] / src.num_windows
            avg = float(il.schedule.cumulative(s, samples) / samples)
            rows.append(
                SourcePlan(
                    name=src.name,
                    weight=avg,
                    tokens_available=src.num_windows * cfg.seq_len,
                    samples_available=src.num_windows,
                    samples_drawn=drawn[s],
                    tokens_drawn=drawn[s] * cfg.seq_len,
                    epochs=epochs,
                )
            )
            if epochs > REPEAT_WARNING_EPOCHS:
                warnings.append(
                    f"source {src.name!r} is repeated {epochs:.2f} times (more than {REPEAT_WARNING_EPOCHS:g}): "
                    "repeated data beyond ~4 epochs gives quickly diminishing returns; lower its weight or add data"
                )
            elif drawn[s] == 0 and avg > 0:
                warnings.append(f"source {src.name!r} has weight {avg:.3g} but draws no sample in this run")
        return Plan(total_tokens, samples, cfg.seq_len, tuple(rows), tuple(warnings))


def _digest(obj: Any) -> str:
    data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.blake2b(data, digest_size=16).hexdigest()
