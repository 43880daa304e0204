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
from enum import StrEnum
from typing import Any

import torch
import torch.utils.data
import torch.utils.data.distributed

from shardstore.errors import ConfigError, LoaderRebuiltError, StateError
from shardstore.loader.batches import BatchReader, DocInfo
from shardstore.loader.labels import Labels, format_labels
from shardstore.loader.mixture import Mixture
from shardstore.loader.ranks import resolve_rank
from shardstore.mix.interleave import check_range
from shardstore.util.modes import parse_mode
from shardstore.util.remote_options import RemoteOptions

__all__ = [
    "STATE_FORMAT",
    "UNBOUNDED_STEPS",
    "DocInfo",
    "Labels",
    "MixtureDataset",
    "MixtureSampler",
    "ShardStoreDataLoader",
    "Split",
    "make_dataloader",
    "resolve_rank",
]

STATE_FORMAT = "shardstore.loader/1"
UNBOUNDED_STEPS = 2**40  # len() of a loader without max_steps: ~1e12 batches, never reached, but a length
_KEYS = ("format", "position", "counts", "epochs", "fingerprints")

BatchKey = tuple[
    int, ...
]  # (first global sample, size, global batch size, count of source 0, of source 1, ...)
_MAX_ISSUED = 4096  # bound on keys issued but not yet delivered (a plain DataLoader never pops them)
_REBUILT = (
    "A DataLoader was rebuilt around the shardstore dataset (accelerate's prepare() or skip_first_batches(), or a "
    "framework replacing its sampler); it would read other batches than the loader's. Hand the loader from "
    "make_dataloader to the training loop as it is: it already splits batches over ranks and resumes from its "
    "state_dict without skipping batches (for HF Trainer use shardstore.torch.hf.ShardstoreTrainer; see "
    "docs/guide.md, 'Using shardstore with Lightning, HF Trainer, Accelerate, DCP')"
)


class Split(StrEnum):
    """Which side of the held-out split a loader reads."""

    TRAIN = "train"
    HELDOUT = "heldout"


def _choice(enum: Any, value: Any, name: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} must be one of {[e.value for e in enum]}") from None


class MixtureDataset(torch.utils.data.Dataset):
    """Map-style dataset whose items are whole batches: ``dataset[key]`` for a `MixtureSampler` key.

    ``labels``: which targets ``labels`` holds (`shardstore.loader.labels`): ``"next"`` (shifted here) or ``"hf"`` /
    ``"hf_doc_masked"`` (equal to ``input_ids``; Hugging Face models shift them themselves).
    """

    def __init__(
        self,
        mixture: Mixture,
        *,
        doc_info: DocInfo | str | None = None,
        prefetch: bool | None = None,
        contiguous: bool = True,
        labels: Labels | str = Labels.NEXT,
    ) -> None:
        self.mixture = mixture
        self.labels = _choice(Labels, labels, "labels")
        doc = DocInfo(doc_info or DocInfo.NONE)
        self._keep_position_ids = doc in (DocInfo.POSITION_IDS, DocInfo.BOTH)
        if self.labels is Labels.HF_DOC_MASKED and not self._keep_position_ids:
            doc = DocInfo.BOTH if doc is DocInfo.CU_SEQLENS else DocInfo.POSITION_IDS  # the mask needs them
        self.reader = BatchReader(mixture, doc_info=doc, contiguous=contiguous)
        # default: hint remote stores about the next step's shards (local stores need no hint)
        remote = any("://" in ref for src in mixture.config.sources for ref in src.stores)
        self.prefetch = remote if prefetch is None else prefetch

    def __len__(self) -> int:  # a DataLoader rebuilt around this dataset with torch's default sampler asks
        raise LoaderRebuiltError(_REBUILT)

    def __bool__(self) -> bool:  # not via __len__
        return True

    def __getitem__(self, key: BatchKey) -> dict[str, torch.Tensor]:
        if not isinstance(key, tuple):
            raise LoaderRebuiltError(
                f"MixtureDataset got the index {key!r}, not a MixtureSampler key. " + _REBUILT
            )
        position, size, stride, *counts = (int(x) for x in key)
        batch = self.reader.read(position, counts, size, stride=stride)
        if self.prefetch:
            ahead = self.mixture.interleave.advance(position, counts, stride)
            self.reader.prefetch(position + stride, ahead, size)
        batch = format_labels(batch, self.labels, keep_position_ids=self._keep_position_ids)
        return {name: torch.from_numpy(arr) for name, arr in batch.items()}


class MixtureSampler(torch.utils.data.distributed.DistributedSampler):
    """Yields one key per batch of this rank; holds the resume state.

    Sized: ``len()`` is ``max_steps``, or `UNBOUNDED_STEPS` (2**40 batches, a run that never ends in practice) when
    none is given. Trainers read a loader's length to decide whether to fetch one batch ahead: Lightning's fetcher
    pre-fetches from an unsized loader to learn whether a batch is the last, so the state it checkpoints would count
    a batch it never trained on. With a length, what the loop received is what it trained on.

    A `DistributedSampler` by type only (its own fields, not torch's ``__init__``): it already splits the global
    order across ranks, so trainers that replace a non-distributed sampler under DDP (Lightning's
    ``use_distributed_sampler``) keep this one. ``rank``/``world_size`` left as None are read from
    ``torch.distributed`` at each ``iter()``, so a loader built before the process group exists (a script that
    Lightning re-launches per rank) still reads its rank's slice.
    """

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
        resolve_rank(rank, world_size)  # validate now; None is resolved again at each iter()
        self.mixture = mixture
        self.batch_size = batch_size
        self._rank_arg, self._world_arg = rank, world_size
        self.max_steps = max_steps
        self.epoch = 0  # DistributedSampler's field; the order needs no epoch (epochs follow from the counts)
        self.shuffle, self.drop_last, self.seed = False, False, 0
        self.position = 0
        self.counts: tuple[int, ...] = tuple(0 for _ in mixture.config.sources)
        self.issued: collections.deque[tuple[int, tuple[int, ...]]] = collections.deque(maxlen=_MAX_ISSUED)
        self._steps_done = 0
        self._fingerprints: dict[str, Any] | None = None

    @property
    def rank(self) -> int:  # type: ignore[override]
        return resolve_rank(self._rank_arg, self._world_arg)[0]

    @property
    def world_size(self) -> int:
        return resolve_rank(self._rank_arg, self._world_arg)[1]

    @property
    def num_replicas(self) -> int:  # type: ignore[override]
        return self.world_size

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * self.world_size

    def set_epoch(self, epoch: int) -> None:
        """Accepted (trainers call it each epoch) and ignored: epochs follow from the per-source counts."""
        self.epoch = epoch

    def __len__(self) -> int:
        return UNBOUNDED_STEPS if self.max_steps is None else self.max_steps

    def __iter__(self) -> Iterator[BatchKey]:
        il = self.mixture.interleave
        rank, world_size = resolve_rank(self._rank_arg, self._world_arg)
        batch_size, global_batch = self.batch_size, self.batch_size * world_size
        steps = len(self)
        while self._steps_done < steps:
            position, counts = self.position, self.counts
            start = position + rank * batch_size
            rank_counts = il.advance(position, counts, rank * batch_size)
            key = (start, batch_size, global_batch, *rank_counts)
            # state after this key, recorded before handing it out: that is what a snapshot taken now must say
            self.position = position + global_batch
            self.counts = il.advance(start, rank_counts, global_batch - rank * batch_size)
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
        keys = [*ours, *(["masks"] if "masks" in saved and "masks" not in ours else [])]
        differ = [
            f"{k} (saved {saved.get(k)!r}, now {ours.get(k)!r})" for k in keys if saved.get(k) != ours.get(k)
        ]
        if differ and strict:
            masks = ""
            if "masks" in keys and saved.get("masks") != ours.get("masks"):
                masks = f" (the masks or held-out splits differ; this mixture applies: {self.mixture.describe_masks()})"
            raise StateError(
                "the loader state was saved for different data or config: "
                + "; ".join(differ)
                + masks
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


class _RebuiltGuard:
    """What ``ShardStoreDataLoader.batch_sampler`` returns: fails clearly where re-batching code iterates it."""

    batch_size = None
    drop_last = False

    def __iter__(self) -> Iterator[Any]:
        raise LoaderRebuiltError(_REBUILT)

    def __len__(self) -> int:
        raise LoaderRebuiltError(_REBUILT)


_GUARD = _RebuiltGuard()


class ShardStoreDataLoader(torch.utils.data.DataLoader):
    """A `DataLoader` over a `MixtureDataset` + `MixtureSampler` with an exact, elastic state dict."""

    def __init__(self, dataset: MixtureDataset, sampler: MixtureSampler, **kwargs: Any) -> None:
        for forbidden in ("batch_size", "sampler", "batch_sampler", "shuffle", "collate_fn", "drop_last"):
            if forbidden in kwargs:
                raise ConfigError(
                    f"{forbidden}= is fixed by the shardstore loader; set it via make_dataloader"
                )
        super().__init__(dataset, batch_size=None, sampler=sampler, **kwargs)
        self.mix_sampler: MixtureSampler = sampler
        self.mix_dataset: MixtureDataset = dataset
        self._delivered = (sampler.position, sampler.counts)

    # torch never uses a batch sampler here (batch_size=None: the sampler's keys are whole batches). Code that
    # rebuilds a DataLoader around our dataset reads ``loader.batch_sampler`` to re-batch it: it gets one that
    # raises `LoaderRebuiltError` when iterated, not None (which failed as "'NoneType' object is not iterable").
    @property
    def batch_sampler(self) -> _RebuiltGuard:  # type: ignore[override]
        return _GUARD

    @batch_sampler.setter
    def batch_sampler(self, value: object) -> None:
        if value is not None:
            raise ConfigError("batch_sampler= is fixed by the shardstore loader; set it via make_dataloader")

    @property
    def _auto_collation(self) -> bool:  # torch's DataLoader reads this to pick the sampler to iterate
        return False

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
    labels: Labels | str = Labels.NEXT,
    split: Split | str = Split.TRAIN,
) -> Any:
    """A torch `DataLoader` of this rank's batches of the mixture (see the module docstring).

    ``split="heldout"`` returns the evaluation loader instead (`shardstore.loader.evaluation`): one pass over every
    held-out document, sharded over ranks, padded with a ``loss_mask`` so every rank runs the same number of steps;
    of the options it uses ``batch_size``, ``rank``, ``world_size``, ``num_workers``, ``pin_memory`` and the remote
    ones.

    Args:
        mixture: a `Mixture` or the path of a mixture file.
        batch_size: samples per batch on this rank (the global batch is ``batch_size * world_size``).
        rank, world_size: default to an initialized ``torch.distributed``, else 0 and 1.
        doc_info: add ``position_ids`` and/or ``cu_seqlens`` ("position_ids", "cu_seqlens", "both").
        cache_dir: node-local cache for remote stores (overrides the mixture's ``cache_dir``).
        storage_options: fsspec options for remote stores (override the mixture's ``storage_options``).
        cache_limit: bytes of node-local cache per remote store (overrides the mixture's ``cache_limit``).
        max_steps: stop after this many batches per ``iter()``, and the loader's ``len()`` (default:
            `UNBOUNDED_STEPS`, 2**40, never reached: sources repeat epoch by epoch).
        contiguous: False makes ``input_ids``/``labels`` zero-copy overlapping views of one int64 buffer (one
            fewer copy per token; ``.view()`` on them fails until copied, e.g. by ``.to(device)``).
        labels: "next" (default: ``labels`` shifted here, no ``-100``), "hf" (``labels == input_ids`` and no
            ``source_ids``, for ``model(**batch)`` of a Hugging Face causal LM, which shifts itself) or
            "hf_doc_masked" ("hf" with -100 where a window crosses into a new document); see
            `shardstore.loader.labels`.
    """
    if not isinstance(mixture, Mixture):
        mixture = Mixture.from_file(mixture)
    mixture = mixture.with_remote(RemoteOptions(cache_dir, storage_options, cache_limit))
    if parse_mode(Split, split, name="split") is Split.HELDOUT:
        from shardstore.loader.evaluation import make_eval_dataloader

        return make_eval_dataloader(
            mixture,
            batch_size=batch_size,
            rank=rank,
            world_size=world_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
        )
    doc = parse_mode(DocInfo, doc_info or DocInfo.NONE, name="doc_info")
    if num_workers < 0:
        raise ConfigError(f"num_workers must be >= 0, got {num_workers}")
    mixture.open_sources()  # fail early (missing stores, tokenizer mismatch) in the calling process
    sampler = MixtureSampler(
        mixture, batch_size=batch_size, rank=rank, world_size=world_size, max_steps=max_steps
    )
    dataset = MixtureDataset(
        mixture, doc_info=doc, contiguous=contiguous, labels=_choice(Labels, labels, "labels")
    )
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
