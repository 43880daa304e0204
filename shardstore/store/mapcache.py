"""ShardMaps: a store's mapped shards, the facts it knows per file identity, and their eviction.

- Lookup on the read path is `slots[i]` (a list: O(1), no lock); a miss maps the shard outside the lock (a
  remote locator may block on a download) and publishes it under the lock.
- Two bounds: `max_open` mappings of this store (its own CLOCK), and the process-wide `MapBudget` over all stores.
  Mappings hold no file descriptor (`rawmap`), so the fds a reader holds do not grow with shards or sources.
  Evicting calls `locator.release(i)` so a node-local cache may delete the file; arrays already handed out keep
  their mapping alive (it is unmapped when the last view is collected).
- Verification state is bounded (issue 19: ~1.5 KB of `ShardFacts` per touched shard, ~160 MB per process after a
  100,000-shard `verify`). Two tiers, both keyed by shard index *and file identity*:
  - `ShardFacts` (parsed header, checked document index, verified blocks) of the live mappings plus an LRU of at
    most `FACTS_KEPT` unmapped ones: remapping the same file costs open + fstat + mmap + close and three numpy
    views (no re-hash of the document index).
  - `VerifiedTable`: 48 bytes a slot, at most `VERIFIED_SLOTS` slots per store (6 MiB), direct-mapped by shard
    index, for files checked in full (by `verify`, or every block touched before their facts left the LRU).
    A mapping of a vouched file parses its header only.
  A shard whose state fell out of both (LRU eviction, or a slot taken by another index) is checked again from
  nothing on its next mapping, as is a different file at that path (its identity differs).
- A forked child drops everything (it re-maps and re-verifies rather than trusting its parent's state).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np

from shardstore.store.budget import MapBudget
from shardstore.store.mapped import MappedShard, ShardFacts
from shardstore.store.rawmap import FileId
from shardstore.util.forksafe import reset_in_forked_child

if TYPE_CHECKING:
    from shardstore.store.locator import Locator
    from shardstore.store.manifest import Manifest

__all__ = ["FACTS_KEPT", "VERIFIED_SLOTS", "ShardMaps", "VerifiedTable", "fid_row"]

FACTS_KEPT = 1024  # ShardFacts of unmapped shards kept per store (~1.5 KB + 1 byte per block each)
VERIFIED_SLOTS = 1 << 17  # compact slots per store: a 100,000-shard store fits without collisions (6 MiB)
_I64 = 1 << 63


class VerifiedTable:
    """Files checked in full: slot `index % slots` holds (index + 1, st_dev, st_ino, size, ctime_ns, stored header
    checksum) as uint64 (0 in the first column: empty). Allocated on the first record; a later record of another
    index with the same slot replaces it (that shard is then checked again when mapped)."""

    def __init__(self, num_shards: int, slots: int | None = None) -> None:
        self._slots = max(1, min(num_shards, VERIFIED_SLOTS if slots is None else slots))
        self._rows: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        return 0 if self._rows is None else int(self._rows.nbytes)

    def record(self, indices: np.ndarray, fids: np.ndarray, stored: np.ndarray) -> None:
        """Shards `indices` (int64) are the files `fids` ((k, 4) uint64: dev, ino, size, ctime_ns as two's
        complement), checked in full, storing header checksums `stored`."""
        if not indices.size:
            return
        if self._rows is None:
            self._rows = np.zeros((self._slots, 6), dtype=np.uint64)
        rows = self._rows
        slot, last = np.unique((indices % self._slots)[::-1], return_index=True)  # per slot, its last record
        pick = indices.size - 1 - last
        rows[slot, 0] = indices[pick].astype(np.uint64) + 1
        rows[slot, 1:5] = fids[pick]
        rows[slot, 5] = stored[pick]

    def record_one(self, index: int, fid: FileId, stored: int) -> None:
        """`record` of one shard (an unmapped shard whose facts leave the LRU): no array temporaries."""
        if self._rows is None:
            self._rows = np.zeros((self._slots, 6), dtype=np.uint64)
        self._rows[index % self._slots] = (index + 1, *fid_row(fid), stored)

    def lookup(self, index: int) -> tuple[FileId, int] | None:
        """(file identity, stored header checksum) of shard `index` if it is vouched for."""
        rows = self._rows
        if rows is None:
            return None
        key, dev, ino, size, ctime, stored = rows[index % self._slots].tolist()
        if key != index + 1:
            return None
        return FileId(dev, ino, size, ctime - (1 << 64) if ctime >= _I64 else ctime), stored

    def forget(self, index: int) -> None:
        rows = self._rows
        if rows is not None and int(rows[index % self._slots, 0]) == index + 1:
            rows[index % self._slots] = 0


def fid_row(fid: FileId) -> list[int]:
    """A FileId as the table's uint64 columns (ctime_ns as two's complement, as the batch checker writes it)."""
    return [fid.dev, fid.ino, fid.size, fid.ctime_ns % (1 << 64)]


class ShardMaps:
    """The mapping cache of one store (see the module docstring)."""

    def __init__(
        self,
        manifest: Manifest,
        locator: Locator,
        *,
        max_open: int,
        trust_all: bool,
        budget: MapBudget | None,
    ) -> None:
        self._manifest = manifest
        self._locator = locator
        self._max_open = max_open
        self._trust_all = trust_all
        self._budget = budget if budget is not None else MapBudget.default()
        self.reset()
        reset_in_forked_child(self.reset)

    def reset(self) -> None:
        self._mapped: OrderedDict[int, MappedShard] = OrderedDict()  # mapping order: the CLOCK hand's path
        self.slots: list[MappedShard | None] = [None] * len(self._manifest.shards)
        self._facts: OrderedDict[int, ShardFacts] = OrderedDict()  # least recently mapped first
        self.verified = VerifiedTable(len(self._manifest.shards))
        self._lock = threading.Lock()  # guards _mapped, slots, _facts, verified (never held while reading)

    def __len__(self) -> int:
        return len(self._mapped)

    def get(self, index: int) -> MappedShard:
        """The mapped shard `index`, mapping it (and evicting others) if needed."""
        shard = self.slots[index]
        if shard is not None:
            shard.used = True
            return shard
        path = self._locator.shard_path(index)
        info = self._manifest.shards[index]
        known = self._facts.get(index)
        vouched = self.verified.lookup(index)
        mapped = MappedShard.open(index, path, info, known=known, vouched=vouched)
        mapped.trusted = mapped.trusted or self._trust_all
        evicted: list[int] = []
        with self._lock:
            shard = self.slots[index]
            if shard is not None:  # another thread won the race; use its mapping
                return shard
            self._facts.pop(index, None)  # the mapping holds its facts while it lives
            self._mapped[index] = mapped
            self.slots[index] = mapped
            while len(self._mapped) > self._max_open:
                old, candidate = next(iter(self._mapped.items()))
                if candidate.used:
                    candidate.used = False
                    self._mapped.move_to_end(old)
                else:
                    del self._mapped[old]
                    self.slots[old] = None
                    self._retire(old, candidate.facts)
                    evicted.append(old)
        for old in evicted:
            self._budget.forget(self, old)
            self._locator.release(old)
        self._budget.admit(self, index)
        return mapped

    # -- MapOwner (the budget's view) ------------------------------------------------------------------------------

    def is_used(self, index: int) -> bool | None:
        shard = self.slots[index]
        if shard is None:
            return None
        used, shard.used = shard.used, False
        return used

    def drop(self, index: int) -> None:
        with self._lock:
            shard = self._mapped.pop(index, None)
            if shard is None:
                return
            self.slots[index] = None
            self._retire(index, shard.facts)
        self._locator.release(index)

    # -- verification and lifetime ---------------------------------------------------------------------------------

    def _retire(self, index: int, facts: ShardFacts) -> None:
        """Keep the facts of an unmapped shard (under the lock); past FACTS_KEPT of them, the least recently
        unmapped one leaves: into the compact table if its file was checked in full, else forgotten."""
        kept = self._facts
        kept[index] = facts
        kept.move_to_end(index)
        while len(kept) > FACTS_KEPT:
            old, gone = kept.popitem(last=False)
            if old in gone.bound_to and gone.verified.count(0) == 0:
                self.verified.record_one(old, gone.fid, gone.stored_header_checksum)

    @property
    def facts_kept(self) -> int:
        """How many ShardFacts this store holds: its live mappings' and the LRU's of unmapped shards."""
        return len(self._facts) + len(self._mapped)

    def mark_verified(self, indices: np.ndarray, fids: np.ndarray, stored: np.ndarray) -> None:
        """Every byte of shards `indices`, as the files `fids` (`VerifiedTable.record`), matched the manifest:
        later mappings of those files skip the document index and block hashes."""
        with self._lock:
            self.verified.record(indices, fids, stored)
            if not self._facts and not self._mapped:
                return
            held = np.fromiter([*self._facts, *self._mapped], dtype=np.int64)
            for j in np.flatnonzero(np.isin(indices, held)).tolist():
                index = int(indices[j])
                shard = self.slots[index]
                facts = shard.facts if shard is not None else self._facts[index]
                if fid_row(facts.fid) == fids[j].tolist():
                    facts.verified[:] = b"\x01" * len(facts.verified)
                    facts.whole_file_ok = True
                    facts.bound_to.add(index)
                elif shard is None:
                    del self._facts[index]  # another file now: the table vouches for the new one

    def close(self) -> None:
        """Drop every mapping (views already handed out stay valid); the state per file identity is kept."""
        with self._lock:
            dropped = list(self._mapped)
            for index, shard in self._mapped.items():
                self.slots[index] = None
                self._retire(index, shard.facts)
            self._mapped.clear()
        for index in dropped:
            self._budget.forget(self, index)
            self._locator.release(index)
