"""The drop-in torch DataLoader: a map-style dataset of whole batches, a stateful sampler, an exact state dict.

Global order. Global sample ``g`` is the ``g``-th sample of the mixture's interleave (see `shardstore.mix.interleave`);
it does not depend on world size, workers or batch size. A loader step takes the next ``global_batch =
batch_size * world_size`` samples and rank ``r`` takes the *contiguous* slice ``[r * batch_size, (r + 1) *
batch_size)`` of it, so concatenating all ranks' batches of a step in rank order gives the global batch.

Pieces (all public, so a plain `torch.utils.data.DataLoader` or torchdata's `StatefulDataLoader` can use them with
``batch_size=None``):

* `MixtureSampler` yields one small key per rank batch: ``(first global sample, size, per-source counts before
  it)``. It holds the resume state (global position of the next step + per-source counts there) and implements
  ``state_dict`` / ``load_state_dict``, which is what `StatefulDataLoader` snapshots per delivered batch.
* `MixtureDataset[key]` reads that batch in one pass (`shardstore.loader.batches.BatchReader`): no per-sample
  ``__getitem__``, no collate. Stores are opened lazily in each process that reads (forked or spawned workers open
  their own mappings).
* `ShardStoreDataLoader` (what `make_dataloader` returns) is a `DataLoader` whose ``state_dict()`` reflects the
  batches actually handed to the training loop, not those its workers prefetched: the sampler records the state
  after each key it issues, and the loader pops one per delivered batch.

State dict: ``{"format", "position", "counts", "epochs", "fingerprints"}`` -- integers and hex strings, JSON-safe,
the same keys every time. Loading it is independent of the position: the interleave is Markov in (position,
counts), so nothing is replayed, and the counts are checked against the interleave's random-access counts at that
position (a hand-edited or foreign state is a `StateError`, as is a position whose next global batch would pass the
supported 2**63 samples). Elastic: position and counts are global, so a different world size, worker count or micro-batch size
continues the same global sequence. A state from other data or config raises `StateError` naming every differing
fingerprint (``strict=False`` continues anyway from the saved counters).
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.utils.data

from shardstore.errors import ConfigError, StateError
from shardstore.loader.batches import BatchReader, DocInfo
from shardstore.loader.mixture import Mixture
from shardstore.mix.interleave import check_range
from shardstore.util.modes import parse_mode
from shardstore.util.remote_options import RemoteOptions

__all__ = [
    "STATE_FORMAT",
    "DocInfo",
    "MixtureDataset",
    "MixtureSampler",
    "ShardStoreDataLoader",
    "make_dataloader",
    "resolve_rank",
]

STATE_FORMAT = "shardstore.loader/1"
_KEYS = ("format", "position", "counts", "epochs", "fingerprints")

BatchKey = tuple[
    int, ...
]  # (first global sample, size, global batch size, count of source 0, of source 1, ...)
_MAX_ISSUED = 4096  # bound on keys issued but not yet delivered (a plain DataLoader never pops them)


def resolve_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Rank and world size from the arguments, else from an initialized torch.distributed, else (0, 1)."""
    if rank is None or world_size is None:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            rank = dist.get_rank() if rank is None else rank
            world_size = dist.get_world_size() if world_size is None else world_size
        rank = 0 if rank is None else rank
        world_size = 1 if world_size is None else world_size
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"need 0 <= rank < world_size, got {rank=} {world_size=}")
    return rank, world_size


class MixtureDataset(torch.utils.data.Dataset):
    """Map-style dataset whose items are whole batches: ``dataset[key]`` for a `MixtureSampler` key."""

    def __init__(
        self,
        mixture: Mixture,
        *,
        doc_info: DocInfo | str | None = None,
        prefetch: bool | None = None,
        contiguous: bool = True,
    ) -> None:
        self.mixture = mixture
        self.reader = BatchReader(mixture, doc_info=doc_info, contiguous=contiguous)
        # default: hint remote stores about the next step's shards (local stores need no hint)
        remote = any("://" in ref for src in mixture.config.sources for ref in src.stores)
        self.prefetch = remote if prefetch is None else prefetch

    def __getitem__(self, key: BatchKey) -> dict[str, torch.Tensor]:
        position, size, stride, *counts = (int(x) for x in key)
        batch = self.reader.read(position, counts, size, stride=stride)
        if self.prefetch:
            ahead = self.mixture.interleave.advance(position, counts, stride)
            self.reader.prefetch(position + stride, ahead, size)
        return {name: torch.from_numpy(arr) for name, arr in batch.items()}


class MixtureSampler(torch.utils.data.Sampler[BatchKey]):
    """Yields one key per batch of this rank, forever (or for ``max_steps``); holds the resume state."""

    def __init__(
        self,
        mixture: Mixture,
        *,
        batch_size: int,
        rank: int | None = None,
        world_size: int | None = None,
        max_steps: int | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if max_steps is not None and max_steps < 0:
            raise ConfigError(f"max_steps must be >= 0 or None, got {max_steps!r}")
        self.mixture = mixture
        self.batch_size = batch_size
        self.rank, self.world_size = resolve_rank(rank, world_size)
        self.max_steps = max_steps
        self.position = 0
        self.counts: tuple[int, ...] = tuple(0 for _ in mixture.config.sources)
        self.issued: collections.deque[tuple[int, tuple[int, ...]]] = collections.deque(maxlen=_MAX_ISSUED)
        self._steps_done = 0
        self._fingerprints: dict[str, Any] | None = None

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * self.world_size

    def __len__(self) -> int:
        if self.max_steps is None:
            raise TypeError(
                "this sampler is infinite (sources repeat epoch by epoch); pass max_steps for a length"
            )
        return self.max_steps

    def __iter__(self) -> Iterator[BatchKey]:
        il = self.mixture.interleave
        while self.max_steps is None or self._steps_done < self.max_steps:
            position, counts = self.position, self.counts
            start = position + self.rank * self.batch_size
            rank_counts = il.advance(position, counts, self.rank * self.batch_size)
            key = (start, self.batch_size, self.global_batch_size, *rank_counts)
            # state after this key, recorded before handing it out: that is what a snapshot taken now must say
            self.position = position + self.global_batch_size
            self.counts = il.advance(start, rank_counts, self.global_batch_size - self.rank * self.batch_size)
            self._steps_done += 1
            self.issued.append((self.position, self.counts))
            yield key

    # -- state ----------------------------------------------------------------------------------------------------

    def fingerprints(self) -> dict[str, Any]:
        if self._fingerprints is None:
            self._fingerprints = self.mixture.fingerprints()
        return self._fingerprints

    def make_state(self, position: int, counts: Sequence[int]) -> dict[str, Any]:
        sources = self.mixture.open_sources()
        return {
            "format": STATE_FORMAT,
            "position": int(position),
            "counts": [int(c) for c in counts],
            "epochs": [int(c) // src.num_windows for c, src in zip(counts, sources, strict=True)],
            "fingerprints": dict(self.fingerprints()),
        }

    def state_dict(self) -> dict[str, Any]:
        """State after the last key this sampler issued (what `StatefulDataLoader` snapshots)."""
        return self.make_state(self.position, self.counts)

    def load_state_dict(self, state: Mapping[str, Any], *, strict: bool = True) -> None:
        position, counts = self.check_state(state, strict=strict)
        self.set_position(position, counts)

    def set_position(self, position: int, counts: Sequence[int]) -> None:
        self.position, self.counts = int(position), tuple(int(c) for c in counts)
        self.issued.clear()
        self._steps_done = 0

    def check_state(self, state: Mapping[str, Any], *, strict: bool = True) -> tuple[int, tuple[int, ...]]:
        """Validate a state dict against this mixture; returns (position, counts)."""
        if not isinstance(state, Mapping) or state.get("format") != STATE_FORMAT:
            got = state.get("format") if isinstance(state, Mapping) else type(state).__name__
            raise StateError(f"not a shardstore loader state (format {got!r}, expected {STATE_FORMAT!r})")
        missing = [k for k in _KEYS if k not in state]
        if missing:
            raise StateError(f"loader state lacks keys {missing}")
        position, counts = state["position"], state["counts"]
        if (
            not isinstance(position, int)
            or isinstance(position, bool)
            or not isinstance(counts, list)
            or not all(isinstance(c, int) and not isinstance(c, bool) for c in counts)
        ):
            raise StateError("loader state: position must be an int and counts a list of ints")
        names = self.mixture.names
        if len(counts) != len(names):
            raise StateError(
                f"loader state has counts for {len(counts)} sources, this mixture has {len(names)} ({names})"
            )
        saved, ours = state["fingerprints"], self.fingerprints()
        if not isinstance(saved, Mapping):
            raise StateError("loader state: fingerprints must be a mapping")
        differ = [f"{k} (saved {saved.get(k)!r}, now {ours[k]!r})" for k in ours if saved.get(k) != ours[k]]
        if differ and strict:
            raise StateError(
                "the loader state was saved for different data or config: "
                + "; ".join(differ)
                + ". Resume with the same mixture, or pass strict=False to continue from its counters anyway"
            )
        if position < 0 or min(counts) < 0 or sum(counts) != position:
            raise StateError(
                f"loader state is inconsistent: counts {counts} do not sum to position {position}"
            )
        check_range(position, self.global_batch_size)  # the next global batch must lie inside [0, 2**63]
        if strict:  # exactly what the interleave has drawn there (O(1): random access, no replay)
            self.mixture.interleave.check_counts(position, counts)
            epochs = [
                c // src.num_windows for c, src in zip(counts, self.mixture.open_sources(), strict=True)
            ]
            if state["epochs"] != epochs:
                raise StateError(
                    f"loader state: epochs {state['epochs']!r} do not follow from counts {counts} "
                    f"(expected {epochs}); the state was edited"
                )
        return position, tuple(counts)


class ShardStoreDataLoader(torch.utils.data.DataLoader):
    """A `DataLoader` over a `MixtureDataset` + `MixtureSampler` with an exact, elastic state dict."""

    def __init__(self, dataset: MixtureDataset, sampler: MixtureSampler, **kwargs: Any) -> None:
        for forbidden in ("batch_size", "sampler", "batch_sampler", "shuffle", "collate_fn", "drop_last"):
            if forbidden in kwargs:
                raise ConfigError(
                    f"{forbidden}= is fixed by the shardstore loader; set it via make_dataloader"
                )
        super().__init__(dataset, batch_size=None, sampler=sampler, **kwargs)
        self.mix_sampler = sampler
        self._delivered = (sampler.position, sampler.counts)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:  # type: ignore[override]
        # a generator around torch's iterator: it only counts what was delivered
        sampler = self.mix_sampler
        # keys a previous, abandoned iterator prefetched but never delivered are issued again
        sampler.set_position(*self._delivered)
        for batch in super().__iter__():
            self._delivered = sampler.issued.popleft()
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """Position after the last batch delivered to the caller, per-source counts there, fingerprints."""
        return self.mix_sampler.make_state(*self._delivered)

    def load_state_dict(self, state: Mapping[str, Any], *, strict: bool = True) -> None:
        """Continue from ``state`` at the next ``iter()``; `StateError` if it belongs to other data or config."""
        position, counts = self.mix_sampler.check_state(state, strict=strict)
        self._delivered = (position, counts)
        self.mix_sampler.set_position(position, counts)


def make_dataloader(
    mixture: Mixture | str | os.PathLike[str],
    *,
    batch_size: int,
    rank: int | None = None,
    world_size: int | None = None,
    num_workers: int = 0,
    doc_info: DocInfo | str | None = None,
    pin_memory: bool = False,
    prefetch_factor: int | None = None,
    persistent_workers: bool = False,
    multiprocessing_context: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
    storage_options: dict[str, Any] | None = None,
    cache_limit: int | None = None,
    max_steps: int | None = None,
    timeout: float = 0,
    contiguous: bool = True,
) -> ShardStoreDataLoader:
    """A torch `DataLoader` of this rank's batches of the mixture (see the module docstring).

    Args:
        mixture: a `Mixture` or the path of a mixture file.
        batch_size: samples per batch on this rank (the global batch is ``batch_size * world_size``).
        rank, world_size: default to an initialized ``torch.distributed``, else 0 and 1.
        doc_info: add ``position_ids`` and/or ``cu_seqlens`` ("position_ids", "cu_seqlens", "both").
        cache_dir: node-local cache for remote stores (overrides the mixture's ``cache_dir``).
        storage_options: fsspec options for remote stores (override the mixture's ``storage_options``).
        cache_limit: bytes of node-local cache per remote store (overrides the mixture's ``cache_limit``).
        max_steps: stop after this many batches per ``iter()`` (default: never; sources repeat epoch by epoch).
        contiguous: False makes ``input_ids``/``labels`` zero-copy overlapping views of one int64 buffer (one
            fewer copy per token; ``.view()`` on them fails until copied, e.g. by ``.to(device)``).
    """
    if not isinstance(mixture, Mixture):
        mixture = Mixture.from_file(mixture)
    mixture = mixture.with_remote(RemoteOptions(cache_dir, storage_options, cache_limit))
    doc = parse_mode(DocInfo, doc_info or DocInfo.NONE, name="doc_info")
    if num_workers < 0:
        raise ConfigError(f"num_workers must be >= 0, got {num_workers}")
    mixture.open_sources()  # fail early (missing stores, tokenizer mismatch) in the calling process
    sampler = MixtureSampler(
        mixture, batch_size=batch_size, rank=rank, world_size=world_size, max_steps=max_steps
    )
    dataset = MixtureDataset(mixture, doc_info=doc, contiguous=contiguous)
    extra: dict[str, Any] = {}
    if num_workers > 0:
        extra["persistent_workers"] = persistent_workers
        if prefetch_factor is not None:
            extra["prefetch_factor"] = prefetch_factor
        if multiprocessing_context is not None:
            extra["multiprocessing_context"] = multiprocessing_context
    return ShardStoreDataLoader(
        dataset, sampler, num_workers=num_workers, pin_memory=pin_memory, timeout=timeout, **extra
    )
