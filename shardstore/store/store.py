"""Store: random access by token and by document over a store's memory-mapped shards, verified as it reads.

Design and trade-offs:
- `Store.open` reads and validates only the manifest (one file): no per-shard stat, open or listing, so a store of
  10,000 shards opens in well under a second even on a network file system. Each shard is mapped lazily on first
  use; mapping checks the file size against the manifest (truncation), the header (magic, version, checksum,
  section table against the counts), and the checksums of the document index and block table. Consequently a
  truncated or corrupt shard is reported when it is first touched, naming the file, not at open (unless
  `verify="full"`, which checks every byte of every shard at open). Nothing wrong is ever returned.
- verify="touch" (default): a 1 MiB payload block is hashed (xxh3_64) the first time this process reads from it;
  the per-block bitmap survives unmapping, and is cleared in a forked child, which re-maps and re-verifies rather
  than trusting its parent's mappings. verify="off" skips block checks (benchmarks only).
- At most `max_open_shards` (256) mappings (each holds one file descriptor) are kept, evicted by CLOCK (second
  chance, an LRU approximation whose hit path is one attribute write); evicting one calls `locator.release(i)` so a
  node-local cache may delete the file. Arrays already handed out keep their mapping alive (CPython unmaps when the
  last view dies), so eviction never invalidates memory in use. Mapping and eviction take a lock; reads never do,
  so threads may share a Store.
- `read_into` reads one row: bisect over cumulative shard token offsets, a slot lookup, a trusted-shard flag (or
  a bitmap check), one numpy copy; ~0.8 us of Python per call on top of the copy (benchmarks/RESULTS.md: 1.4x the
  throughput of slicing an np.memmap of one flat file). `read_rows` / `mark_doc_starts` do a whole batch of rows
  per call (`shardstore.store.rows`: the loader's hot path). Single-shard `tokens()`/`doc()` return zero-copy views.
- A store of many tiny shards (>= 512 files of <= 1 MiB, <= 256 MiB of tokens) reads token rows from verified
  in-memory runs of consecutive shards instead (`runs`): batches/s stay flat up to 100,000 shards.
- The locator decides where shard files come from: `LocalLocator` for directories and file:// URLs; for any other
  fsspec URL, `shardstore.remote.cache.open_remote` stages files to node-local disk.
"""

from __future__ import annotations

import os
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from shardstore.errors import ChecksumError, ConfigError, FormatError, ManifestError
from shardstore.store import format as fmt
from shardstore.store import rows as _rows
from shardstore.store.budget import DEFAULT_MAX_MAPPINGS, MapBudget
from shardstore.store.locator import LocalLocator, Locator, split_url
from shardstore.store.manifest import MANIFEST_NAME, FileInfo, Manifest, open_manifest
from shardstore.store.mapcache import ShardMaps
from shardstore.store.mapped import MappedShard
from shardstore.store.runs import ShardRuns, plan_runs
from shardstore.util.forksafe import reset_in_forked_child
from shardstore.util.modes import VerifyMode, parse_mode
from shardstore.util.remote_options import RemoteOptions

if TYPE_CHECKING:
    from shardstore.store.rows import Segment
    from shardstore.store.verify import VerifyReport

__all__ = ["DEFAULT_MAX_OPEN_SHARDS", "LocalLocator", "Locator", "Store", "VerifyMode"]

DEFAULT_MAX_OPEN_SHARDS = (
    DEFAULT_MAX_MAPPINGS  # per store: by default only the process-wide MapBudget bounds it
)


class Store:
    """A store opened for reading. Use `Store.open(...)`; see the module docstring for the verification model."""

    def __init__(
        self,
        manifest: Manifest,
        locator: Locator,
        *,
        root: str,
        verify: VerifyMode | str = VerifyMode.TOUCH,
        max_open_shards: int = DEFAULT_MAX_OPEN_SHARDS,
        reopen_args: tuple[Any, ...] | None = None,
        budget: MapBudget | None = None,
        run_budget: MapBudget | None = None,
    ) -> None:
        self._mode = parse_mode(VerifyMode, verify, name="verify")
        if max_open_shards < 1:
            raise ConfigError(f"max_open_shards={max_open_shards} must be >= 1")
        self._manifest = manifest
        self._locator = locator
        self._root = root
        self._max_open = max_open_shards
        self._reopen_args = reopen_args
        counts, docs = manifest.shard_counts()
        self._tok_cum = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._doc_cum = np.concatenate([[0], np.cumsum(docs)]).astype(np.int64)
        self._tok_starts: list[int] = self._tok_cum[:-1].tolist()
        # documents are looked up by np.searchsorted on _doc_cum (not the loader's hot path): no 100k-int list
        self._num_tokens = int(self._tok_cum[-1])
        self._num_docs = int(self._doc_cum[-1])
        self._dtype = np.dtype(manifest.dtype)
        self._tokenizer: Any = None
        self._out_dtypes: set[np.dtype] = set()
        self._out_dtype: np.dtype | None = None
        self._maps = ShardMaps(
            manifest, locator, max_open=max_open_shards, trust_all=self._mode is VerifyMode.OFF, budget=budget
        )
        # Many tiny shards: token rows are read from verified in-memory runs of consecutive shards (`runs`).
        run_starts = plan_runs(manifest.shard_sizes(), counts, self._dtype.itemsize) if counts.size else None
        self._runs = (
            None if run_starts is None else ShardRuns(manifest, locator, run_starts, budget=run_budget)
        )
        reset_in_forked_child(self._reset_after_fork)
        if self._mode is VerifyMode.FULL:
            self.verify()

    # -- opening --------------------------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path_or_url: str | os.PathLike[str],
        *,
        verify: VerifyMode | str = VerifyMode.TOUCH,
        cache_dir: str | os.PathLike[str] | None = None,
        storage_options: dict[str, Any] | None = None,
        max_open_shards: int = DEFAULT_MAX_OPEN_SHARDS,
        cache_limit: int | None = None,
        remote: RemoteOptions | None = None,
    ) -> Store:
        """Open a store directory, a `file://` URL, or (through the node-local cache) any fsspec URL.

        `cache_limit` (bytes) bounds the node-local cache of a remote store; the store then keeps at most as many
        shards mapped as fit under it (mapped shards cannot be evicted). `remote` is the three remote options as one
        `RemoteOptions` (what the mixture and a re-opened store pass), instead of the separate keywords.
        """
        if "\x00" in os.fspath(path_or_url):
            raise ConfigError(
                f"store path {os.fspath(path_or_url)!r} contains a NUL byte; no file can be named so"
            )
        if remote is None:
            remote = RemoteOptions(cache_dir, storage_options, cache_limit)
        elif cache_dir is not None or storage_options is not None or cache_limit is not None:
            raise ConfigError(
                "pass either remote=RemoteOptions(...) or cache_dir/storage_options/cache_limit"
            )
        args = (os.fspath(path_or_url), verify, remote, max_open_shards)
        proto, path = split_url(path_or_url)
        if proto is None:
            if os.path.basename(path) == MANIFEST_NAME and os.path.isfile(path):
                path = os.path.dirname(path) or "."
            manifest = open_manifest(path)
            locator: Locator = LocalLocator(path, manifest)
            root = path
        else:
            from shardstore.remote.cache import open_remote

            _, locator = open_remote(path, remote)
            pinnable = locator.max_mapped_shards
            if pinnable is not None:
                max_open_shards = min(max_open_shards, pinnable)
            manifest = locator.manifest  # parsed once, or opened through the node-local manifest.idx
            root = path
        return cls(
            manifest, locator, root=root, verify=verify, max_open_shards=max_open_shards, reopen_args=args
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Mappings cannot cross processes (spawn-started DataLoader workers): the child re-opens the store.
        if self._reopen_args is None:
            raise ConfigError(
                "this Store was built from a manifest object, not opened by path; it cannot be sent"
            )
        return (_reopen, self._reopen_args)

    # -- metadata -------------------------------------------------------------------------------------------------

    @property
    def num_tokens(self) -> int:
        return self._num_tokens

    @property
    def num_docs(self) -> int:
        return self._num_docs

    @property
    def num_shards(self) -> int:
        return len(self._manifest.shards)

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def fingerprint(self) -> str:
        return self._manifest.fingerprint

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    @property
    def locator(self) -> Locator:
        return self._locator

    @property
    def root(self) -> str:
        return self._root

    @property
    def remote_options(self) -> RemoteOptions | None:  # as opened (None: built from a manifest object)
        return None if self._reopen_args is None else self._reopen_args[2]

    @property
    def verify_mode(self) -> VerifyMode:
        return self._mode

    @property
    def tokenizer_fingerprint(self) -> str | None:
        tok = self._manifest.tokenizer
        return tok.fingerprint if tok else None

    @property
    def eos_id(self) -> int | None:
        tok = self._manifest.tokenizer
        return tok.eos_id if tok else None

    @property
    def shard_token_offsets(self) -> np.ndarray:
        """Cumulative token counts: shard i holds global tokens [offsets[i], offsets[i+1])."""
        view = self._tok_cum.view()
        view.flags.writeable = False
        return view

    @property
    def tokenizer(self) -> Any:
        """The store's `tokenizer.Tokenizer` (from its verified tokenizer.json), or None if it has none."""
        if self._tokenizer is None:
            entry = self._manifest.file("tokenizer.json")
            if entry is None:
                return None
            path = self.file_path(entry.name)
            from tokenizer import Tokenizer

            self._tokenizer = Tokenizer.load(path)
        return self._tokenizer

    def file_path(self, name: str) -> str:
        """Local path of an auxiliary file, after checking its size and checksum against the manifest."""
        entry: FileInfo | None = self._manifest.file(name)
        if entry is None:
            raise ManifestError(f"{self._root}: the manifest lists no file {name!r}")
        path = self._locator.file_path(name)
        try:
            with fmt.open_regular(path) as f:
                size = os.fstat(f.fileno()).st_size
        except OSError as exc:
            raise FormatError(f"{path}: cannot read auxiliary file: {exc}") from exc
        if size != entry.size:
            raise FormatError(f"{path}: file is {size} bytes, manifest says {entry.size}")
        actual = fmt.file_checksum(path)
        if actual != entry.checksum:
            raise ChecksumError(
                f"{path}: checksum {actual} != manifest {entry.checksum}: the file is corrupt"
            )
        return path

    def __repr__(self) -> str:
        return (
            f"Store({self._root!r}, num_tokens={self._num_tokens}, num_docs={self._num_docs}, "
            f"shards={self.num_shards}, dtype={self._dtype.name}, verify={self._mode.value})"
        )

    # -- reading --------------------------------------------------------------------------------------------------

    def read_into(self, start: int, out: np.ndarray) -> np.ndarray:
        """Fill `out` (1-D, any integer dtype) with tokens [start, start + len(out)); returns `out`."""
        # The hot path of every batch: keep it to a bisect, two attribute checks and one numpy copy.
        if getattr(out, "dtype", None) is not self._out_dtype or out.ndim != 1:
            self._check_out(out)
        n = out.shape[0]
        if start < 0 or start + n > self._num_tokens:
            raise IndexError(f"tokens [{start}, {start + n}) are outside the store's [0, {self._num_tokens})")
        runs = self._runs  # (row_segments, inlined: this is called per row)
        starts: list[int]
        slots: Sequence[Segment | None]
        get: Callable[[int], Segment]
        if runs is None:
            starts, slots, get = self._tok_starts, self._maps.slots, self._get
        else:
            starts, slots, get = runs.token_starts, runs.slots, runs.get
        s = bisect_right(starts, start) - 1
        shard = slots[s]
        if shard is None:
            shard = get(s)
        else:
            shard.used = True
        local = start - starts[s]
        stop = local + n
        if stop <= shard.num_tokens:
            if not shard.trusted:
                shard.check_blocks(local, stop)
            out[...] = shard.tokens[local:stop]
            return out
        pos = 0
        while pos < n:  # crosses shard (or run) boundaries
            s = bisect_right(starts, start) - 1
            shard = get(s)
            local = start - starts[s]
            take = min(n - pos, shard.num_tokens - local)
            if not shard.trusted:
                shard.check_blocks(local, local + take)
            out[pos : pos + take] = shard.tokens[local : local + take]
            pos += take
            start += take
        return out

    def read_rows(self, starts: np.ndarray, out: np.ndarray, *, rows: np.ndarray | None = None) -> np.ndarray:
        """Fill row i (``rows[i]`` if given) of a 2-D integer `out` with tokens ``[starts[i], starts[i] + width)``,
        verified like `read_into`; the batched hot path (`shardstore.store.rows`). Returns `out`."""
        return _rows.read_rows(self, starts, out, rows=rows)

    def mark_doc_starts(
        self, starts: np.ndarray, marks: np.ndarray, *, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """Batched `doc_starts`: set ``marks[i, p]`` (row ``rows[i]`` if given) of a 2-D bool array where a
        document begins at token ``starts[i] + p``. Returns `marks`."""
        return _rows.mark_doc_starts(self, starts, marks, rows=rows)

    def tokens(self, start: int, stop: int) -> np.ndarray:
        """Tokens [start, stop) as a read-only array (a zero-copy view when they lie in one shard)."""
        if not 0 <= start <= stop <= self._num_tokens:
            raise IndexError(f"tokens [{start}, {stop}) are outside the store's [0, {self._num_tokens})")
        if start == stop:
            return _readonly(np.empty(0, dtype=self._dtype))
        s = bisect_right(self._tok_starts, start) - 1
        local = start - self._tok_starts[s]
        shard = self._get(s)
        if local + (stop - start) <= shard.num_tokens:
            if not shard.trusted:
                shard.check_blocks(local, local + stop - start)
            return shard.tokens[local : local + stop - start]
        return _readonly(self.read_into(start, np.empty(stop - start, dtype=self._dtype)))

    def doc(self, index: int) -> np.ndarray:
        """Document `index` as a read-only, zero-copy array (documents never span shards)."""
        index = int(index)
        if index < 0:
            index += self._num_docs
        if not 0 <= index < self._num_docs:
            raise IndexError(f"document {index} is outside the store's {self._num_docs} documents")
        s = self._doc_shard(index)
        shard = self._get(s)
        j = index - int(self._doc_cum[s])
        a, b = int(shard.offsets[j]), int(shard.offsets[j + 1])
        if a < b and not shard.trusted:
            shard.check_blocks(a, b)
        return shard.tokens[a:b]

    def doc_span(self, index: int) -> tuple[int, int]:
        """Global token range [start, stop) of document `index`."""
        if not 0 <= index < self._num_docs:
            raise IndexError(f"document {index} is outside the store's {self._num_docs} documents")
        s = self._doc_shard(index)
        shard = self._get(s)
        j = index - int(self._doc_cum[s])
        base = self._tok_starts[s]
        return base + int(shard.offsets[j]), base + int(shard.offsets[j + 1])

    def doc_starts(self, start: int, stop: int) -> np.ndarray:
        """Global token positions in [start, stop) where a (non-empty) document begins, ascending, int64.

        Cost is two binary searches per shard touched plus the output, not the shard's document count.
        """
        parts = []
        for s in self.shards_for(start, stop):
            shard = self._get(s)
            base = self._tok_starts[s]
            offs = shard.offsets
            last = offs.size - 1  # entries [0, last) are document starts; offs[last] is the end
            # uint64 queries: a Python int would make numpy cast the whole uint64 offsets array per search
            i0 = int(np.searchsorted(offs, np.uint64(max(start - base, 0)), "left"))
            i1 = min(int(np.searchsorted(offs, np.uint64(min(stop - base, shard.num_tokens)), "left")), last)
            seg = offs[i0 : i1 + 1].astype(np.int64)
            parts.append(seg[:-1][seg[1:] > seg[:-1]] + base)  # empty documents begin nowhere
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def shards_for(self, start: int, stop: int) -> range:
        """Indices of the shards holding tokens [start, stop) (empty when start >= stop)."""
        if not 0 <= start <= stop <= self._num_tokens:
            raise IndexError(f"tokens [{start}, {stop}) are outside the store's [0, {self._num_tokens})")
        if start == stop:
            return range(0)
        first = bisect_right(self._tok_starts, start) - 1
        last = bisect_right(self._tok_starts, stop - 1) - 1
        return range(first, last + 1)

    def prefetch(self, indices: Sequence[int]) -> None:
        """Hint that these shards will be read soon (remote stores start downloading them)."""
        self._locator.prefetch(list(indices))

    def verify(self, *, raise_on_error: bool = True) -> VerifyReport:
        """Check every byte of every shard and auxiliary file against the manifest.

        Raises ChecksumError/FormatError naming file, block and offset of the first problem (with
        `raise_on_error=False`, returns the report listing all of them instead).
        """
        from shardstore.store.verify import verify_store

        report = verify_store(self)
        if raise_on_error:
            report.raise_if_failed()
        return report

    def close(self) -> None:
        """Drop every mapping and run (views already handed out stay valid)."""
        self._maps.close()
        if self._runs is not None:
            self._runs.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------------------------

    def _doc_shard(self, index: int) -> int:
        return int(np.searchsorted(self._doc_cum, np.int64(index), "right")) - 1

    def _check_out(self, out: np.ndarray) -> None:
        """Accept (and remember) an output dtype that holds every id of this store's dtype without wrapping."""
        ok = isinstance(out, np.ndarray) and out.ndim == 1 and out.dtype.kind in "iu"
        if ok and out.dtype in self._out_dtypes:
            self._out_dtype = out.dtype
            return
        if not ok or not np.can_cast(self._dtype, out.dtype, "safe"):
            got = f"{type(out).__name__} {getattr(out, 'dtype', '')} ndim={getattr(out, 'ndim', '?')}"
            raise ConfigError(
                f"read_into needs a 1-D integer array whose dtype holds {self._dtype.name} ids (e.g. int64); "
                f"got {got}"
            )
        self._out_dtypes.add(out.dtype)
        self._out_dtype = out.dtype  # identity fast path for the next call

    def _reset_after_fork(self) -> None:
        # The child re-maps and re-verifies what it reads (ShardMaps resets itself); FULL was the parent's work.
        if self._mode is VerifyMode.FULL:
            self._mode = VerifyMode.TOUCH

    # -- the row and verify interface (rows.RowStore, verify.VerifiedStore): internal, not the public contract ---

    @property
    def shard_token_starts(self) -> list[int]:
        """First global token of each shard."""
        return self._tok_starts

    @property
    def mapped_slots(self) -> list[MappedShard | None]:
        """Shard index -> its mapping, None where unmapped (read without the lock: the hot path)."""
        return self._maps.slots

    def row_segments(
        self,
    ) -> tuple[list[int], np.ndarray, Sequence[Segment | None], Callable[[int], Segment]]:
        """What token rows are read from: the first global token of each segment (as a list for bisect and as an
        int64 array for searchsorted), the segment slots (None where not loaded) and a getter that loads one.
        Segments are the mapped shards, or the in-memory runs of a store of many tiny shards (`runs`)."""
        runs = self._runs
        if runs is None:
            return self._tok_starts, self._tok_cum, self._maps.slots, self._get
        return runs.token_starts, runs.token_starts_array, runs.slots, runs.get

    @property
    def num_runs(self) -> int:
        """How many in-memory runs token rows are read from (0: rows are read from the shard mappings)."""
        return 0 if self._runs is None else len(self._runs)

    def mapped_shard(self, index: int) -> MappedShard:
        """The mapped shard `index`, mapping it (and evicting another) if needed."""
        return self._get(index)

    def check_out_dtype(self, dtype: np.dtype) -> None:
        """Raise unless `dtype` can hold this store's token ids (cached: one identity test per call)."""
        if dtype is not self._out_dtype:
            self._check_out(np.empty(0, dtype=dtype))

    def mark_verified(self, indices: np.ndarray, fids: np.ndarray, stored: np.ndarray) -> None:
        """`verify_store` checked every byte of shards `indices` as files `fids`: later mappings skip block hashes."""
        self._maps.mark_verified(indices, fids, stored)

    def _get(self, index: int) -> MappedShard:
        shard = self._maps.slots[index]
        if shard is not None:
            shard.used = True
            return shard
        return self._maps.get(index)


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr


def _reopen(path_or_url: str, verify: str, remote: RemoteOptions, max_open: int) -> Store:
    # A FULL store was verified by its parent; the child checks blocks as it touches them instead.
    mode = VerifyMode.TOUCH if parse_mode(VerifyMode, verify, name="verify") is VerifyMode.FULL else verify
    return Store.open(path_or_url, verify=mode, max_open_shards=max_open, remote=remote)
