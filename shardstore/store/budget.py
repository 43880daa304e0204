"""MapBudget: one bound on the shard mappings of a whole process, across every open store.

Mappings hold no file descriptor (`rawmap`), but each is a kernel VMA (vm.max_map_count is 65,530 by default) and
a few KiB of Python objects, so a 20-source run over stores of 100,000 shards cannot keep everything mapped. Every
store's mapping cache (`mapcache.ShardMaps`) admits each new mapping here; when the process is over its limit,
the budget evicts the least recently used mapping of *any* store.

The order is CLOCK (second chance), an LRU approximation: a read only sets the shard's `used` bit (one attribute
write, no lock), and the hand clears it or evicts. The budget holds its owners weakly (a closed or collected store
drops out) and never calls an owner while holding its own lock, so a store's lock and the budget's never nest.
A forked child starts with an empty budget (its stores drop their mappings too). The process-wide instance is
`MapBudget.default()`; tests and embedders may pass their own to `Store`.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Protocol

from shardstore.errors import ConfigError
from shardstore.util.forksafe import reset_in_forked_child

__all__ = ["DEFAULT_MAX_MAPPINGS", "MapBudget"]

DEFAULT_MAX_MAPPINGS = 16384  # a quarter of the default vm.max_map_count, leaving the rest to the process


class MapOwner(Protocol):
    """What the budget needs of a store's mapping cache."""

    def is_used(self, index: int) -> bool | None:
        """The CLOCK bit of mapping `index` (clearing it), or None if it is no longer mapped."""
        ...

    def drop(self, index: int) -> None:
        """Unmap `index` (the budget already forgot it)."""
        ...


class MapBudget:
    """A process-wide bound on live shard mappings, evicting across stores by CLOCK."""

    _default: MapBudget | None = None
    _default_lock = threading.Lock()

    def __init__(self, max_mappings: int = DEFAULT_MAX_MAPPINGS) -> None:
        if type(max_mappings) is not int or max_mappings < 1:
            raise ConfigError(f"max_mappings={max_mappings!r} must be an integer >= 1")
        self.max_mappings = max_mappings
        self._reset()
        reset_in_forked_child(self._reset)

    @classmethod
    def default(cls) -> MapBudget:
        """The budget every Store of this process shares unless given another."""
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls()
            return cls._default

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[int, int], tuple[weakref.ref[MapOwner], int]] = OrderedDict()
        self._total = 0  # sum of the entries' weights (1 each unless admitted with another weight)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def total(self) -> int:
        """Sum of the weights of the live entries (their count when every weight is 1)."""
        return self._total

    def admit(self, owner: MapOwner, index: int, weight: int = 1) -> None:
        """Record a new mapping of `owner` (counting `weight` against the limit: 1 for a mapping, its bytes for
        an in-memory run), then evict others (of any owner) until the budget holds again."""
        victims: list[tuple[MapOwner, int]] = []
        with self._lock:
            key0 = (id(owner), index)
            old = self._entries.pop(key0, None)
            self._total += weight - (old[1] if old is not None else 0)
            self._entries[key0] = (weakref.ref(owner), weight)
            spins = 2 * len(self._entries) + 1  # two passes of the hand clear every bit: bounded work
            while self._total > self.max_mappings and spins > 0:
                spins -= 1
                key, (ref, w) = next(iter(self._entries.items()))
                held = ref()
                used = None if held is None or key == (id(owner), index) else held.is_used(key[1])
                if held is not None and key == (id(owner), index):
                    used = True  # never evict the mapping being admitted
                if used:
                    self._entries.move_to_end(key)
                    continue
                del self._entries[key]
                self._total -= w
                if held is not None and used is not None:
                    victims.append((held, key[1]))
        for held, i in victims:
            held.drop(i)

    def forget(self, owner: MapOwner, index: int) -> None:
        """`owner` unmapped `index` itself."""
        with self._lock:
            old = self._entries.pop((id(owner), index), None)
            if old is not None:
                self._total -= old[1]
