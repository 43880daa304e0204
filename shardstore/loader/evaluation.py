"""The evaluation loader: every held-out document of every source once per pass, in a fixed order, sharded.

``make_dataloader(mixture, split="heldout", batch_size=B, rank=r, world_size=W)`` (or `make_eval_dataloader`).

Order. Each source's held-out documents (`heldout` / `heldout_tokens` in the mixture; their selection is in
`shardstore.loader.exclusions`) are concatenated in store order, the source's stores in config order, and cut into
windows of ``seq_len + 1`` tokens at stride ``seq_len``, exactly like training packing but never across sources:
every window holds tokens of one source, and ``source_ids`` says which. So every held-out token after a source's
first is a label exactly once per pass. Windows are numbered source after source (all of source 0, then source 1,
...): global eval sample ``g``.

Sharding. Step ``k`` covers global samples ``[k * B * W, (k + 1) * B * W)`` and rank ``r`` takes the contiguous
``[k * B * W + r * B, ... + B)`` of it (the training loader's layout): ranks never overlap and together cover every
window. Every rank runs the same number of steps, ``ceil(windows / (B * W))``.

The last uneven batch. A source's last window may be short (its held-out tokens rarely fill a whole window), and
the last step may have fewer windows than ``B * W``. Batches keep their shape ``[B, seq_len]`` anyway: the short
window is padded, and rows past the last window are all padding, with ``source_ids = -1``. ``loss_mask`` (bool,
``[B, seq_len]``) is True exactly at the real label positions and ``labels`` is ``-100`` (the ignore index of
``torch.nn.functional.cross_entropy``) elsewhere, so a sum of per-token losses over ``loss_mask``, all-reduced with
the count of True entries, is exact whatever the world size. Padded ``input_ids`` are the EOS id (0 if none).

No state: a pass is a pure function of the mixture; ``len(loader)`` is the step count.
"""

from __future__ import annotations

import os
from bisect import bisect_right

import numpy as np
import torch
import torch.utils.data

from shardstore.errors import ConfigError
from shardstore.loader.kept import KeptStore
from shardstore.loader.mixture import Mixture
from shardstore.loader.ranks import resolve_rank
from shardstore.mix.keep import KeptIndex
from shardstore.store.docarrays import doc_spans

__all__ = ["IGNORE_INDEX", "EvalDataset", "HeldoutSource", "heldout_sources", "make_eval_dataloader"]

IGNORE_INDEX = -100


class HeldoutSource:
    """The held-out side of one source: its held-out documents' tokens concatenated, per store a `KeptStore`."""

    __slots__ = ("name", "num_docs", "offsets", "stores")

    def __init__(self, name: str, stores: list[KeptStore], num_docs: int) -> None:
        self.name = name
        self.stores = stores
        self.num_docs = num_docs
        self.offsets = [0]
        for st in stores:
            self.offsets.append(self.offsets[-1] + st.num_tokens)

    @property
    def num_tokens(self) -> int:
        return self.offsets[-1]

    def num_windows(self, seq_len: int) -> int:
        """Windows of up to ``seq_len + 1`` tokens at stride ``seq_len`` covering every token (the last may be
        short; a source of one token or none has none)."""
        return max(0, -(-(self.num_tokens - 1) // seq_len))

    def read(self, start: int, out: np.ndarray) -> None:
        """Tokens ``[start, start + out.size)`` of the concatenated held-out stream into `out`."""
        stop = start + out.size
        i = bisect_right(self.offsets, start) - 1
        at = 0
        while start < stop:
            hi = min(stop, self.offsets[i + 1])
            if hi > start:
                self.stores[i].read_into(start - self.offsets[i], out[at : at + hi - start])
                at += hi - start
                start = hi
            i += 1


def _heldout_view(kept: KeptStore) -> KeptStore:
    """A view of the store of `kept` that keeps only its held-out documents."""
    store = kept.store
    others = np.setdiff1d(np.arange(store.num_docs, dtype=np.int64), kept.heldout_docs, assume_unique=True)
    starts, stops = doc_spans(store, others)
    return KeptStore(store, KeptIndex.from_excluded_spans(store.num_tokens, starts, stops))


def heldout_sources(mixture: Mixture) -> list[HeldoutSource]:
    """The held-out side of every source of `mixture`, in config order (empty for a source without a split)."""
    out = []
    for src in mixture.open_sources():
        views = [_heldout_view(st) for st in src.stores if isinstance(st, KeptStore) and st.heldout_docs.size]
        docs = sum(int(st.heldout_docs.size) for st in src.stores if isinstance(st, KeptStore))
        out.append(HeldoutSource(src.name, views, docs))
    return out


class EvalDataset(torch.utils.data.Dataset):
    """Map-style: item ``k`` is this rank's batch of eval step ``k`` (see the module docstring)."""

    def __init__(self, mixture: Mixture, *, batch_size: int, rank: int, world_size: int) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.mixture = mixture
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size
        self._sources: list[HeldoutSource] | None = None
        self._pid = -1
        seq = mixture.config.seq_len
        counts = [s.num_windows(seq) for s in self.sources]
        self.first_window = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.num_windows = int(self.first_window[-1])
        if self.num_windows == 0:
            raise ConfigError(
                "the mixture has no held-out documents: set heldout = FRACTION or heldout_tokens = N on a source"
            )
        gbs = batch_size * world_size
        self.num_steps = -(-self.num_windows // gbs)
        eos = getattr(self.sources[0].stores[0].store, "eos_id", None) if self.sources else None
        self.pad_id = int(eos) if eos is not None else 0

    @property
    def sources(self) -> list[HeldoutSource]:
        if self._sources is None or self._pid != os.getpid():  # a forked worker builds its own views
            self._sources, self._pid = heldout_sources(self.mixture), os.getpid()
        return self._sources

    def __len__(self) -> int:
        return self.num_steps

    def windows_of(self, step: int) -> np.ndarray:
        """Global eval samples of this rank at `step` (values >= num_windows are padding rows)."""
        first = step * self.batch_size * self.world_size + self.rank * self.batch_size
        return np.arange(first, first + self.batch_size, dtype=np.int64)

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        if not 0 <= step < self.num_steps:
            raise IndexError(f"eval step {step} is outside [0, {self.num_steps})")
        seq = self.mixture.config.seq_len
        b = self.batch_size
        buf = np.full((b, seq + 1), self.pad_id, dtype=np.int64)
        valid = np.zeros((b, seq), dtype=bool)
        source_ids = np.full(b, -1, dtype=np.int64)
        sources = self.sources
        for row, g in enumerate(self.windows_of(step).tolist()):
            if g >= self.num_windows:
                continue
            s = int(np.searchsorted(self.first_window, g, "right")) - 1
            src = sources[s]
            start = (g - int(self.first_window[s])) * seq
            n = min(seq + 1, src.num_tokens - start)
            src.read(start, buf[row, :n])
            valid[row, : n - 1] = True
            source_ids[row] = s
        labels = buf[:, 1:].copy()
        labels[~valid] = IGNORE_INDEX
        return {
            "input_ids": torch.from_numpy(np.ascontiguousarray(buf[:, :-1])),
            "labels": torch.from_numpy(labels),
            "loss_mask": torch.from_numpy(valid),
            "source_ids": torch.from_numpy(source_ids),
        }


def make_eval_dataloader(
    mixture: Mixture | str | os.PathLike[str],
    *,
    batch_size: int,
    rank: int | None = None,
    world_size: int | None = None,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> torch.utils.data.DataLoader:
    """A `DataLoader` over this rank's share of one pass over the held-out side (see the module docstring).

    Batches: ``input_ids``, ``labels`` (int64 ``[B, seq_len]``, labels ``-100`` where ``loss_mask`` is False),
    ``loss_mask`` (bool ``[B, seq_len]``), ``source_ids`` (``[B]``, ``-1`` for padding rows). ``len()`` is the
    number of steps, equal on every rank; iterating again makes another identical pass.
    """
    if not isinstance(mixture, Mixture):
        mixture = Mixture.from_file(mixture)
    if num_workers < 0:
        raise ConfigError(f"num_workers must be >= 0, got {num_workers}")
    rank, world_size = resolve_rank(rank, world_size)
    dataset = EvalDataset(mixture, batch_size=batch_size, rank=rank, world_size=world_size)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=None,
        sampler=range(len(dataset)),
        num_workers=num_workers,
        pin_memory=pin_memory,
    )
