"""The loaders benchmarks/bench_loader.py races ours against, and the synthetic tokens they all read.

Every contender yields the same batch: a dict with int64 `input_ids` and `labels` of shape [B, seq_len], cut from
one window of `seq_len + 1` tokens per row (labels = the window shifted by one). The conversion to that dict is the
same two lines for every peer (`windows_to_batch`), so the race measures how each library gets windows off disk.

- raw: `np.memmap` of one flat token file (both sources concatenated) and a plain `torch.utils.data.DataLoader`
  with its own RandomSampler/BatchSampler. `raw` gathers a whole batch in `__getitems__` (one call per batch, rows
  sliced from the `np.memmap` and copied straight into an int64 buffer): the bound of issue 5. `raw-ndarray` does
  the same through a plain-ndarray view of the mapping (the stricter bound, ~1.5-2x faster per row).
  `raw-per-sample` (`__getitem__` + stack) is what most training scripts write; printed for context.
- LitData: `litdata.optimize` with `TokensLoader()` into its chunk format, read back with
  `StreamingDataset(item_loader=TokensLoader(block_size=seq_len + 1))`; the 2-source variant is its own mixture,
  `CombinedStreamingDataset(weights=...)`. TokensLoader cuts blocks with stride `seq_len + 1` (not `seq_len`), so its
  windows differ from ours by one token per row; the tokens read per batch are the same.
- MosaicML Streaming: `MDSWriter` with one `ndarray:uint16:{seq_len + 1}` column, the same windows as ours as
  fixed-length samples, read back with `StreamingDataset(streams=[Stream(local=..., proportion=w), ...])`.

Peers are imported only when used: LitData and MosaicML Streaming need torchvision, hence torch 2.14.1, so they
live in their own venv (commands in benchmarks/RESULTS.md, "Loader").
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "SourceTokens",
    "litdata_loader",
    "mosaic_loader",
    "prepare_litdata",
    "prepare_mosaic",
    "raw_loader",
    "synth_source",
    "windows_to_batch",
    "write_flat",
]

_DONE = ".bench-done"  # written last into a prepared directory: its presence means the copy is complete


@dataclass(frozen=True, slots=True)
class SourceTokens:
    """One source's tokens on disk: a flat little-endian file and the cumulative document offsets."""

    name: str
    weight: float
    flat_path: Path
    doc_offsets: np.ndarray  # int64, num_docs + 1, first 0, last num_tokens
    dtype: np.dtype

    @property
    def num_tokens(self) -> int:
        return int(self.doc_offsets[-1])

    def tokens(self) -> np.ndarray:
        return np.memmap(self.flat_path, dtype=self.dtype, mode="r")


def synth_source(
    root: Path, name: str, num_tokens: int, *, weight: float, seed: int, eos: int
) -> SourceTokens:
    """Documents of lognormal length (median ~550 tokens), random ids below `eos`, each ending with `eos`.

    Cached under `root`: the token file is written first and the offsets file is renamed into place last, so a
    killed run leaves no offsets and the next run writes both again.
    """
    flat = root / f"{name}-{num_tokens}.tokens"
    offsets_path = root / f"{name}-{num_tokens}.offsets.npy"
    if not (flat.exists() and offsets_path.exists()):
        rng = np.random.default_rng([seed, num_tokens, *name.encode()])
        lengths = np.clip(rng.lognormal(6.3, 1.0, num_tokens // 200 + 16), 8, 65536).astype(np.int64)
        lengths = lengths[: int(np.searchsorted(np.cumsum(lengths), num_tokens)) + 1]
        lengths[-1] -= int(lengths.sum()) - num_tokens
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        tokens = rng.integers(0, eos, num_tokens, dtype=np.uint16)
        tokens[offsets[1:] - 1] = eos
        tokens.tofile(flat)
        tmp = root / f"{name}-{num_tokens}.offsets.tmp.npy"
        np.save(tmp, offsets)
        tmp.rename(offsets_path)
    return SourceTokens(name, weight, flat, np.load(offsets_path), np.dtype("<u2"))


def write_flat(sources: Sequence[SourceTokens], path: Path) -> Path:
    """One flat file of all sources' tokens, for the raw bound."""
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for src in sources:
                f.write(memoryview(np.ascontiguousarray(src.tokens())))
        tmp.rename(path)
    return path


def windows_to_batch(windows: torch.Tensor) -> dict[str, torch.Tensor]:
    """[B, seq_len + 1] tokens of any integer dtype -> the batch dict every contender yields."""
    w = windows.to(torch.int64)
    return {"input_ids": w[:, :-1], "labels": w[:, 1:]}


def _stack_to_batch(samples: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
    return windows_to_batch(torch.stack(list(samples)))


def _done(directory: Path) -> bool:
    return (directory / _DONE).exists()


def _mark_done(directory: Path) -> None:
    (directory / _DONE).write_text("ok\n")


def _fresh(directory: Path) -> None:
    if directory.exists():
        shutil.rmtree(directory)


# ---------------------------------------------------------------------------------------------------------- raw


class RawWindows(torch.utils.data.Dataset):
    """Windows `[i * seq_len, i * seq_len + seq_len + 1)` of one flat token file, memory-mapped lazily.

    `plain_view=True` slices a plain-ndarray view of the memmap instead of the `np.memmap` itself: slicing an
    `np.memmap` costs ~2.5x more per row (subclass bookkeeping in `__array_finalize__`), so this is the stricter bound.
    """

    def __init__(self, path: Path, *, dtype: np.dtype, seq_len: int, plain_view: bool = False) -> None:
        self.path = path
        self.dtype = np.dtype(dtype)
        self.seq_len = seq_len
        self.plain_view = plain_view
        self.num_windows = (os.path.getsize(path) // self.dtype.itemsize - 1) // seq_len
        self._mm: np.ndarray | None = None  # opened on first use, so the dataset pickles cheaply to workers

    def __len__(self) -> int:
        return self.num_windows

    def _tokens(self) -> np.ndarray:
        if self._mm is None:
            mm = np.memmap(self.path, dtype=self.dtype, mode="r")
            self._mm = mm.view(np.ndarray) if self.plain_view else mm
        return self._mm

    def __getitem__(self, index: int) -> torch.Tensor:
        start = index * self.seq_len
        return torch.from_numpy(self._tokens()[start : start + self.seq_len + 1].astype(np.int64))


class RawBatchedWindows(RawWindows):
    """Same windows; the DataLoader fetches a whole batch in one `__getitems__` call (no per-sample collate)."""

    def __getitems__(self, indices: Sequence[int]) -> torch.Tensor:
        tokens, s = self._tokens(), self.seq_len
        out = np.empty((len(indices), s + 1), dtype=np.int64)
        for row, index in enumerate(indices):
            out[row] = tokens[index * s : index * s + s + 1]  # the cast to int64 happens in this copy
        return torch.from_numpy(out)


def raw_loader(
    path: Path,
    *,
    dtype: np.dtype,
    seq_len: int,
    batch_size: int,
    seed: int,
    batched: bool = True,
    plain_view: bool = False,
) -> torch.utils.data.DataLoader:
    """The raw bound: np.memmap of one flat file + a plain shuffled torch DataLoader, in process."""
    cls = RawBatchedWindows if batched else RawWindows
    return torch.utils.data.DataLoader(
        cls(path, dtype=dtype, seq_len=seq_len, plain_view=plain_view),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        drop_last=True,
        num_workers=0,
        collate_fn=windows_to_batch if batched else _stack_to_batch,
    )


# ------------------------------------------------------------------------------------------------------ LitData


def _litdata_docs(task: tuple[str, str, int, int, int]) -> Iterable[torch.Tensor]:
    """optimize() worker: yield the documents [first, last) of one source, one 1-D uint16 tensor each."""
    path, dtype, first, last, _ = task
    tokens = np.memmap(path, dtype=np.dtype(dtype), mode="r")
    offsets = np.load(path + ".offsets.npy", mmap_mode="r")
    for d in range(first, last):
        yield torch.from_numpy(np.array(tokens[offsets[d] : offsets[d + 1]]))


def prepare_litdata(sources: Sequence[SourceTokens], root: Path, *, groups: int = 8) -> dict[str, Path]:
    """One LitData optimized dataset per source (TokensLoader chunk format), reused when already complete."""
    from litdata import TokensLoader, optimize

    out: dict[str, Path] = {}
    for src in sources:
        directory = root / f"litdata-{src.name}"
        out[src.name] = directory
        if _done(directory):
            continue
        _fresh(directory)
        np.save(str(src.flat_path) + ".offsets.npy", src.doc_offsets)
        num_docs = len(src.doc_offsets) - 1
        bounds = np.linspace(0, num_docs, groups + 1).astype(int)
        tasks = [
            (str(src.flat_path), src.dtype.str, int(a), int(b), i)
            for i, (a, b) in enumerate(itertools.pairwise(bounds))
        ]
        optimize(
            fn=_litdata_docs,
            inputs=tasks,
            output_dir=str(directory),
            chunk_bytes="64MB",
            item_loader=TokensLoader(),
            num_workers=1,
            reorder_files=False,
            verbose=False,
        )
        _mark_done(directory)
    return out


def litdata_loader(
    dirs: dict[str, Path], weights: dict[str, float], *, seq_len: int, batch_size: int, seed: int
) -> torch.utils.data.DataLoader:
    """LitData's own reader, in process. Several sources -> its CombinedStreamingDataset with the weights."""
    from litdata import CombinedStreamingDataset, StreamingDataLoader, StreamingDataset, TokensLoader

    datasets = [
        StreamingDataset(
            input_dir=str(d),
            item_loader=TokensLoader(block_size=seq_len + 1),
            shuffle=True,
            drop_last=True,
            seed=seed,
        )
        for d in dirs.values()
    ]
    dataset = (
        datasets[0]
        if len(datasets) == 1
        else CombinedStreamingDataset(
            datasets, weights=[weights[n] for n in dirs], seed=seed, iterate_over_all=False
        )
    )
    return StreamingDataLoader(
        dataset, batch_size=batch_size, num_workers=0, drop_last=True, collate_fn=_stack_to_batch
    )


# ------------------------------------------------------------------------------------------ MosaicML Streaming


def prepare_mosaic(sources: Sequence[SourceTokens], root: Path, *, seq_len: int) -> dict[str, Path]:
    """One MDS dataset per source: the windows of our sampler (stride seq_len) as fixed-length uint16 samples."""
    from streaming import MDSWriter

    out: dict[str, Path] = {}
    for src in sources:
        directory = root / f"mosaic-{src.name}"
        out[src.name] = directory
        if _done(directory):
            continue
        _fresh(directory)
        tokens = src.tokens()
        column = f"ndarray:{np.dtype(src.dtype).name}:{seq_len + 1}"
        with MDSWriter(out=str(directory), columns={"tokens": column}, size_limit=1 << 26) as writer:
            for start in range(0, src.num_tokens - seq_len, seq_len):
                writer.write({"tokens": np.asarray(tokens[start : start + seq_len + 1])})
        _mark_done(directory)
    return out


def _mosaic_collate(samples: Sequence[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    return windows_to_batch(torch.from_numpy(np.stack([s["tokens"] for s in samples])))


def mosaic_loader(
    dirs: dict[str, Path], weights: dict[str, float], *, batch_size: int, seed: int
) -> torch.utils.data.DataLoader:
    """MosaicML Streaming's StreamingDataset (local only, shuffled, one Stream per source) in a plain DataLoader."""
    from streaming import Stream, StreamingDataset
    from streaming.base.util import clean_stale_shared_memory

    clean_stale_shared_memory()
    streams = [Stream(local=str(d), proportion=weights[n]) for n, d in dirs.items()]
    dataset = StreamingDataset(streams=streams, shuffle=True, shuffle_seed=seed, batch_size=batch_size)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, num_workers=0, drop_last=True, collate_fn=_mosaic_collate
    )
