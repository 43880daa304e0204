"""A mixture, opened: the public `shardstore.Mixture` (read from a TOML/YAML file or a dict), its stores opened
once per process, the loader's fingerprints and the plan of a run.

The config itself (its validation, weights and schedule) is pure data in `shardstore.mix.config`; the arithmetic of
the plan is `shardstore.mix.plan`. This module does the I/O: reading the file, resolving store paths against its
folder, opening the stores and checking that they share one tokenizer.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from shardstore.errors import ConfigError, MismatchError
from shardstore.mix.config import MixtureConfig, PhaseConfig, Ramp, SourceConfig, check_int
from shardstore.mix.interleave import Interleave, WeightSchedule
from shardstore.mix.plan import Plan, SourcePlan, plan_run
from shardstore.mix.sampling import num_windows
from shardstore.util.forksafe import reset_in_forked_child
from shardstore.util.remote_options import RemoteOptions

if TYPE_CHECKING:  # the masks machinery is imported only by a mixture that excludes documents (~50 ms)
    from shardstore.loader.exclusions import SourceCounts

__all__ = [
    "Mixture",
    "MixtureConfig",
    "OpenSource",
    "PhaseConfig",
    "Plan",
    "Ramp",
    "SourceConfig",
    "SourcePlan",
]


@dataclass(slots=True)
class OpenSource:
    """A source's opened stores and where each begins in the source's concatenated token space."""

    name: str
    stores: list[Any]  # `Store`s, or `KeptStore`s when the source excludes documents (masks, held-out split)
    offsets: list[int]  # offsets[i] = first source token of stores[i]; offsets[-1] = total tokens
    num_windows: int
    counts: SourceCounts | None = None  # kept / excluded / held-out tokens, when the source excludes any


class Mixture:
    """A validated mixture config plus lazily opened stores (opened once per process)."""

    __slots__ = ("__weakref__", "_excluded", "_exclusions", "_interleave", "_opened", "_opened_pid", "config")

    def __init__(self, config: MixtureConfig) -> None:
        self.config = config
        self._interleave: Interleave | None = None
        self._opened: list[OpenSource] | None = None  # per process: a forked worker opens its own
        self._opened_pid = -1  # which process opened them (a record for diagnostics and tests)
        self._exclusions: dict[str, Any] | None = None  # masks and held-out settings per source, when any
        # (store fingerprints, kept views, counts, fingerprint part): what the exclusions came to, kept across a
        # fork (pure numpy arrays), so a forked worker re-opens its stores but does not re-hash them
        self._excluded: tuple[list[list[str]], list[list[Any]], list[Any], dict[str, Any]] | None = None
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
        self._excluded = None
        self._forget_opened()
        reset_in_forked_child(self._forget_opened)

    def _forget_opened(self) -> None:
        self._opened, self._opened_pid = None, -1
        self._exclusions = None

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
        raw: list[list[Any]] = []
        for sc in cfg.sources:
            stores = []
            for ref in sc.stores:
                store = Store.open(resolve_store(cfg, ref), verify=cfg.verify, remote=self.remote)
                stores.append(store)
                tokenizers.setdefault(store.tokenizer_fingerprint, f"{sc.name}: {store.root}")
            raw.append(stores)
        kept: list[list[Any]] = raw
        counts: list[SourceCounts | None] = [None] * len(raw)
        if any(sc.exclude or sc.has_heldout for sc in cfg.sources):
            from shardstore.loader.exclusions import apply_exclusions

            fps = [[st.fingerprint for st in stores] for stores in raw]
            if self._excluded is None or self._excluded[0] != fps:
                got_kept, got, part = apply_exclusions(cfg, raw, resolve_store)
                self._excluded = (fps, got_kept, list(got), part)
            _, views, got_counts, self._exclusions = self._excluded
            kept = [
                [view.over(st) for view, st in zip(vs, stores, strict=True)]
                for vs, stores in zip(views, raw, strict=True)
            ]
            counts = list(got_counts)
        for sc, stores, c in zip(cfg.sources, kept, counts, strict=True):
            offsets = [0]
            for store in stores:
                offsets.append(offsets[-1] + store.num_tokens)
            windows = num_windows(offsets[-1], cfg.seq_len)
            if windows == 0:
                what = "kept tokens" if c is not None else "tokens"
                raise ConfigError(
                    f"source {sc.name!r} has {offsets[-1]} {what}, fewer than seq_len + 1 = {cfg.seq_len + 1}: "
                    "it cannot yield one sample; add data or lower seq_len"
                )
            opened.append(OpenSource(sc.name, stores, offsets, windows, c))
        if len(tokenizers) > 1 and not cfg.allow_tokenizer_mismatch:
            listing = "; ".join(f"{where} has tokenizer {fp}" for fp, where in tokenizers.items())
            raise MismatchError(
                f"the mixture's stores were built with different tokenizers ({listing}); rebuild them with one "
                "tokenizer, or set allow_tokenizer_mismatch = true if the ids really are compatible"
            )
        self._opened, self._opened_pid = opened, os.getpid()
        return opened

    @property
    def remote(self) -> RemoteOptions:
        """The mixture's ``cache_dir``, ``storage_options`` and ``cache_limit``, as one object."""
        cfg = self.config
        return RemoteOptions(cfg.cache_dir, cfg.storage_options, cfg.cache_limit)

    def with_remote(self, overrides: RemoteOptions) -> Mixture:
        """This mixture with the remote options that `overrides` sets (self when it sets none)."""
        if overrides.is_default():
            return self
        new = self.remote.overridden_by(overrides)
        return Mixture(
            replace(
                self.config,
                cache_dir=new.cache_dir,
                storage_options=None if new.storage_options is None else dict(new.storage_options),
                cache_limit=new.cache_limit,
            )
        )

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
        out = {
            "mixture": _digest(mix),
            "stores": _digest(stores),
            "tokenizer": toks[0] if len(toks) == 1 else _digest(toks),
            "seq_len": cfg.seq_len,
            "seed": cfg.seed,
        }
        if self._exclusions is not None:  # absent without masks: states saved before masks existed still load
            out["masks"] = _digest(self._exclusions)
        return out

    def describe_masks(self) -> str:
        """The masks and held-out splits applied, per source, with file names (for messages)."""
        self.open_sources()
        if self._exclusions is None:
            return "no masks and no held-out split"
        parts = []
        for src, sc in zip(self.open_sources(), self.config.sources, strict=True):
            names = [f"{path} ({fp[:12]})" for k in src.stores for path, fp in getattr(k, "masks", ())]
            held = f"heldout={sc.heldout}" if sc.heldout else ""
            held = f"heldout_tokens={sc.heldout_tokens}" if sc.heldout_tokens is not None else held
            parts.append(f"{sc.name}: " + ", ".join([*names, held] if held else names or ["none"]))
        return "; ".join(parts)

    def plan(self, total_tokens: int) -> Plan:
        """Per-source weight, tokens available and drawn, epochs and warnings for a run of ``total_tokens``."""
        check_int(total_tokens, what="total_tokens", lo=1)
        opened = self.open_sources()
        return plan_run(
            self.interleave,
            [src.name for src in opened],
            [src.num_windows for src in opened],
            seq_len=self.config.seq_len,
            total_tokens=total_tokens,
            token_counts=[_token_counts(src) for src in opened],
            mask_counts=[src.counts.masks if src.counts is not None else () for src in opened],
        )


def _token_counts(src: OpenSource) -> tuple[int, int, int]:
    """(kept, excluded, held-out) tokens of a source."""
    if src.counts is None:
        return src.offsets[-1], 0, 0
    c = src.counts
    return c.kept_tokens, c.excluded_tokens, c.heldout_tokens


def _digest(obj: Any) -> str:
    data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def resolve_store(cfg: MixtureConfig, store: str) -> str:
    """A store path relative to the config file's folder; URLs and absolute paths unchanged."""
    if "://" in store or os.path.isabs(store):
        return store
    return os.path.normpath(os.path.join(cfg.base_dir, store))
