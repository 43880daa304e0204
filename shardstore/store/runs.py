"""ShardRuns: a store of many tiny shards read as a few contiguous, fully verified in-memory runs.

At equal tokens, a store of 100,000 shards has 200-token shards (issue 19). Mapped one by one, they cost a kernel
VMA, a few KiB of Python objects and a first-touch check each; 100,000 of them do not fit the process's
`MapBudget` (16,384), so most rows remapped a shard (~40 us: open, fstat, mmap, close, views), and 64% of
128-token rows cross a shard boundary (the slow multi-shard path). Measured (benchmarks/RESULTS.md, "Scale: ..."):
batches/s fell to 0.5x at 10,000 shards and 0.01x at 100,000 of what 10 shards give.

A store qualifies when it has at least `RUN_MIN_SHARDS` shards, every shard file is at most `SMALL_SHARD_BYTES`
and all payloads together fit `RUN_STORE_BYTES`. Its consecutive shards are then grouped into runs of about
`RUN_BYTES` of tokens and at most `RUN_MAX_SHARDS` files (`plan_runs`: one cumulative sum over the manifest's
counts). A run is loaded on first
touch: each of its files is read with one `read()` and checked in memory against the manifest, every byte
(header, document index, block table, every block, and the header or whole-file checksum that binds it to its
manifest entry), and the payloads are concatenated into one read-only array. For a local store the whole run is
read and checked by one call of the native batch checker (`verify.check_batch`, GIL released); if any of its files
does not pass there, the run is loaded file by file through `verify.check_shard_fd`, which raises the exact error
naming the first bad file. The loader's row loop then
does one bisect over the run starts (a few hundred at most) and one slice; a row crosses a run boundary about
once per `RUN_BYTES` of tokens instead of once per shard.

Trade-offs, candidly:
- The tokens of a run live in private memory (at most `RUN_STORE_BYTES` per store, bounded across stores by a
  process-wide `RunBudget` of bytes), not in the shared page cache: fine for tiny-shard stores, which is why big
  shards keep the zero-copy mapping path.
- A loaded run is bytes already verified, so a file truncated or replaced on disk after its run was loaded cannot
  change what is served (no SIGBUS either); a run evicted and loaded again re-reads and re-verifies its files.
- A run also keeps its shards' document offsets, so document starts inside rows (`mark_doc_starts`) come from
  the runs too; `Store.doc` and `doc_starts` still go through the shard mappings.
- A forked child drops its runs, like its mappings, and reloads what it reads.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_right
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

from shardstore.errors import FormatError
from shardstore.store import format as fmt
from shardstore.store.budget import MapBudget
from shardstore.store.locator import LocalLocator
from shardstore.store.manifest_index import shard_records
from shardstore.store.verify import OK, check_batch, check_shard_fd
from shardstore.util.forksafe import reset_in_forked_child

if TYPE_CHECKING:
    from shardstore.store.locator import Locator
    from shardstore.store.manifest import Manifest

__all__ = [
    "RUN_BYTES",
    "RUN_MAX_SHARDS",
    "RUN_MIN_SHARDS",
    "RUN_STORE_BYTES",
    "SMALL_SHARD_BYTES",
    "RunBudget",
    "ShardRun",
    "ShardRuns",
    "plan_runs",
]

SMALL_SHARD_BYTES = 1 << 20  # a shard file up to this size is "tiny": read with one read(), like verify does
RUN_MIN_SHARDS = 512  # fewer shards always fit the mapping budget and rarely cross: keep them mapped
RUN_BYTES = 1 << 20  # tokens per run (bytes): rows cross a run boundary about once per 1 MiB of tokens
RUN_MAX_SHARDS = 256  # files per run: bounds a first touch to ~256 reads and checks (~10-20 ms)
RUN_STORE_BYTES = (
    256 << 20
)  # a store whose payloads exceed this keeps mapping (page cache, shared by the node)
DEFAULT_RUN_BUDGET_BYTES = 512 << 20  # process-wide bound on the bytes of loaded runs, across stores


def plan_runs(sizes: np.ndarray, tokens: np.ndarray, token_bytes: int) -> list[int] | None:
    """First shard of each run, then the shard count (so run r is shards [starts[r], starts[r+1])); None when
    the store does not qualify (see the module docstring). `sizes` are file sizes, `tokens` token counts."""
    n = int(sizes.shape[0])
    if n < RUN_MIN_SHARDS or int(sizes.max()) > SMALL_SHARD_BYTES:
        return None
    payload = tokens.astype(np.int64) * token_bytes
    ends = np.cumsum(payload)
    if int(ends[-1]) > RUN_STORE_BYTES:
        return None
    # Shard i starts a run when the payload before it enters a new RUN_BYTES window; long runs are then cut
    # every RUN_MAX_SHARDS shards.
    window = (ends - payload) // RUN_BYTES
    cuts = [0, *(np.flatnonzero(np.diff(window)) + 1).tolist(), n]
    starts: list[int] = []
    for a, b in pairwise(cuts):
        starts.extend(range(a, b, RUN_MAX_SHARDS))
    return [*starts, n]


class ShardRun:
    """Shards [first, stop) of a store as one verified, read-only token array (the row loop's segment)."""

    __slots__ = ("first", "num_tokens", "offsets", "stop", "tokens", "used")

    trusted = True  # every byte was checked when the run was loaded
    block_shift = 0
    touched = b""

    def __init__(self, first: int, stop: int, tokens: np.ndarray, offsets: np.ndarray) -> None:
        self.first = first
        self.stop = stop
        self.tokens = tokens
        self.offsets = (
            offsets  # run-local document starts of its shards, then its end (uint64, like a shard's)
        )
        self.num_tokens = int(tokens.shape[0])
        self.used = True  # CLOCK bit, like MappedShard.used

    def check_blocks(self, lo: int, hi: int) -> None:
        """Nothing to check: the whole run was verified when it was loaded."""


class RunBudget(MapBudget):
    """The process-wide bound on the bytes of loaded runs (each run-mode store admits its runs here, weighted by
    their size), evicting the least recently used run of any store by CLOCK."""

    _default: MapBudget | None = None
    _default_lock = threading.Lock()

    def __init__(self, max_bytes: int = DEFAULT_RUN_BUDGET_BYTES) -> None:
        super().__init__(max_bytes)


class ShardRuns:
    """The runs of one run-mode store: slots by run index, loaded on first touch, evicted through a RunBudget."""

    def __init__(
        self, manifest: Manifest, locator: Locator, starts: list[int], *, budget: MapBudget | None = None
    ) -> None:
        self._manifest = manifest
        self._locator = locator
        # the native batch path: a local store's directory, and its shard records (made on the first load)
        self._root = locator.root if isinstance(locator, LocalLocator) else None
        self._records: tuple[np.ndarray, bytes | memoryview] | None = None
        self._shard_starts = starts  # run r is shards [starts[r], starts[r + 1])
        self._dtype = np.dtype(manifest.dtype)
        counts, _ = manifest.shard_counts()
        cum = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.token_starts_array = cum[starts]  # first global token of each run, then the store's end
        self.token_starts: list[int] = self.token_starts_array[:-1].tolist()
        self._budget = budget if budget is not None else RunBudget.default()
        self.reset()
        reset_in_forked_child(self.reset)

    def reset(self) -> None:
        self.slots: list[ShardRun | None] = [None] * (len(self._shard_starts) - 1)
        self._lock = threading.Lock()  # guards slot publication (never held while loading or reading)

    def __len__(self) -> int:
        return len(self.slots)

    def run_of_token(self, position: int) -> int:
        return bisect_right(self.token_starts, position) - 1

    def get(self, r: int) -> ShardRun:
        """Run `r`, loading (and verifying) it on first use."""
        run = self.slots[r]
        if run is not None:
            run.used = True
            return run
        run = self._load(r)
        with self._lock:
            won = self.slots[r]
            if won is not None:  # another thread loaded it first
                return won
            self.slots[r] = run
        self._budget.admit(self, r, run.tokens.nbytes)
        return run

    def _load(self, r: int) -> ShardRun:
        first, stop = self._shard_starts[r], self._shard_starts[r + 1]
        root = self._root
        parts = self._read_batch(root, first, stop) if root is not None else None
        if parts is None:  # a remote store, or a file the batch did not pass: one by one (names the bad file)
            parts = [self._read_checked(i) for i in range(first, stop)]
        tokens = np.concatenate([p[0] for p in parts])
        sizes = np.array([p[0].size for p in parts], dtype=np.uint64)
        bases = np.concatenate([[0], np.cumsum(sizes)]).astype(np.uint64)
        doc = [p[1][:-1] + bases[j] for j, p in enumerate(parts)]
        offsets = np.concatenate([*doc, bases[-1:]])
        tokens.flags.writeable = False
        offsets.flags.writeable = False
        return ShardRun(first, stop, tokens, offsets)

    def _read_batch(self, root: str, first: int, stop: int) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """Shards [first, stop) read and checked by one native call, or None if any did not pass."""
        if self._records is None:
            self._records = shard_records(self._manifest.shards)
        rows = self._records[0][first:stop]
        sizes = rows[:, 2].astype(np.int64)
        at = np.concatenate([[0], np.cumsum(sizes)]).astype(np.uint64)
        data = bytearray(int(at[-1]))
        batch = check_batch(root, self._records, first, stop, into=data, into_at=at[:-1])
        if not (batch.status == OK).all():
            return None
        dtype = self._dtype
        token_bytes = dtype.itemsize
        parts = []
        for j, (tokens, docs) in enumerate(rows[:, :2].tolist()):
            base = int(at[j])
            doc_at = base + ((fmt.HEADER_SIZE + tokens * token_bytes + 7) & ~7)
            parts.append(
                (
                    np.frombuffer(data, dtype=dtype, count=tokens, offset=base + fmt.HEADER_SIZE),
                    np.frombuffer(data, dtype="<u8", count=docs + 1, offset=doc_at),
                )
            )
        return parts

    def _read_checked(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Shard `index`'s tokens and document offsets, from one read of its file, after checking every byte
        against the manifest."""
        info = self._manifest.shards[index]
        path = self._locator.shard_path(index)
        try:
            fd = fmt.open_regular_fd(path)
        except FileNotFoundError:
            raise FormatError(f"{path}: shard listed in the manifest is missing") from None
        except OSError as exc:
            raise FormatError(f"{path}: cannot read shard: {exc}") from exc
        try:
            data = bytearray(info.size)
            problems, checked = check_shard_fd(fd, os.fstat(fd).st_size, source=path, info=info, into=data)
        finally:
            os.close(fd)
        fmt.raise_problems(problems)
        if checked is None:  # cannot happen without problems; kept total
            raise FormatError(f"{path}: shard could not be checked")
        header = checked[0]
        lay = header.layout
        tokens = np.frombuffer(data, dtype=self._dtype, count=header.num_tokens, offset=lay.payload_offset)
        offsets = np.frombuffer(data, dtype="<u8", count=header.num_docs + 1, offset=lay.doc_index_offset)
        return tokens, offsets

    # -- MapOwner (the budget's view) ------------------------------------------------------------------------------

    def is_used(self, index: int) -> bool | None:
        run = self.slots[index]
        if run is None:
            return None
        used, run.used = run.used, False
        return used

    def drop(self, index: int) -> None:
        with self._lock:
            self.slots[index] = None

    def close(self) -> None:
        """Drop every run (arrays already handed out stay valid)."""
        with self._lock:
            dropped = [r for r, run in enumerate(self.slots) if run is not None]
            for r in dropped:
                self.slots[r] = None
        for r in dropped:
            self._budget.forget(self, r)
