"""ShardMaps: a store's mapped shards, the facts it knows per file identity, and their eviction.

- Lookup on the read path is `slots[i]` (a list: O(1), no lock); a miss maps the shard outside the lock (a
  remote locator may block on a download) and publishes it under the lock.
- Two bounds: `max_open` mappings of this store (its own CLOCK), and the process-wide `MapBudget` over all stores.
  Mappings hold no file descriptor (`rawmap`), so the fds a reader holds do not grow with shards or sources.
  Evicting calls `locator.release(i)` so a node-local cache may delete the file; arrays already handed out keep
  their mapping alive (it is unmapped when the last view is collected).
- `ShardFacts` (parsed header, checked document index, verified blocks) are kept per shard index *and file
  identity* across eviction: remapping the same file costs open + fstat + mmap + close and three numpy views
  (no re-hash of the document index); a different file at that path starts from nothing.
- A forked child drops everything (it re-maps and re-verifies rather than trusting its parent's state).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from shardstore.store.budget import MapBudget
from shardstore.store.mapped import MappedShard, ShardFacts
from shardstore.store.rawmap import FileId
from shardstore.util.forksafe import reset_in_forked_child

if TYPE_CHECKING:
    from shardstore.store import format as fmt
    from shardstore.store.locator import Locator
    from shardstore.store.manifest import Manifest

__all__ = ["ShardMaps"]


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
        self._facts: dict[int, ShardFacts] = {}
        self._lock = threading.Lock()  # guards _mapped/slots/_facts changes (never held while reading)

    def __len__(self) -> int:
        return len(self._mapped)

    def get(self, index: int) -> MappedShard:
        """The mapped shard `index`, mapping it (and evicting others) if needed."""
        shard = self.slots[index]
        if shard is not None:
            shard.used = True
            return shard
        path = self._locator.shard_path(index)
        mapped = MappedShard.open(index, path, self._manifest.shards[index], known=self._facts.get(index))
        mapped.trusted = mapped.trusted or self._trust_all
        evicted: list[int] = []
        with self._lock:
            shard = self.slots[index]
            if shard is not None:  # another thread won the race; use its mapping
                return shard
            self._facts[index] = mapped.facts
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
            if self._mapped.pop(index, None) is None:
                return
            self.slots[index] = None
        self._locator.release(index)

    # -- verification and lifetime ---------------------------------------------------------------------------------

    def mark_fully_verified(self, index: int, fid: FileId, header: fmt.ShardHeader, stored: int) -> None:
        """Every byte of shard `index`, as the file `fid`, matched the manifest: later mappings skip block hashes."""
        with self._lock:
            facts = self._facts.get(index)
            if facts is None or facts.fid != fid:
                facts = ShardFacts(fid, header, stored, bytearray(header.layout.num_blocks))
                self._facts[index] = facts
            facts.verified[:] = b"\x01" * len(facts.verified)
            facts.bound_to.add(index)

    def close(self) -> None:
        """Drop every mapping (views already handed out stay valid); the facts per file identity are kept."""
        with self._lock:
            dropped = list(self._mapped)
            for index in dropped:
                self.slots[index] = None
            self._mapped.clear()
        for index in dropped:
            self._budget.forget(self, index)
            self._locator.release(index)
