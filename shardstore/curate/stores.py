"""The stores one curation run reads: opened once, numbered in command-line order, bound to one tokenizer.

Documents get global ids ``base[s] + d`` (store s, document d), so "first in store order" is "smallest global
id". Stores are named in reports and mask reasons by their folder name (``name#2`` for a repeat), never by an
absolute path, so reports do not depend on the working directory. Token-level comparisons need one tokenizer:
stores of different tokenizer fingerprints are refused.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shardstore.errors import ConfigError, MismatchError
from shardstore.store.store import Store

__all__ = ["StoreSet"]


@dataclass(frozen=True, slots=True)
class StoreSet:
    paths: tuple[str, ...]
    names: tuple[str, ...]
    stores: tuple[Store, ...]
    bases: np.ndarray  # int64: global id of each store's document 0

    @classmethod
    def open(cls, paths: Sequence[str | os.PathLike[str]]) -> StoreSet:
        if not paths:
            raise ConfigError("no store given: pass one or more store folders")
        plist = tuple(os.fspath(p) for p in paths)
        stores = tuple(Store.open(p) for p in plist)
        fps = {s.fingerprint for s in stores}
        if len(fps) != len(stores):
            raise ConfigError("a store is given twice; pass each store once")
        toks = {s.tokenizer_fingerprint for s in stores}
        if len(toks) > 1:
            raise MismatchError(
                f"the stores use {len(toks)} different tokenizers; token-level comparison needs one: "
                + ", ".join(f"{p}: {s.tokenizer_fingerprint}" for p, s in zip(plist, stores, strict=True))
            )
        names: list[str] = []
        for p in plist:
            base = os.path.basename(os.path.normpath(p)) or p
            name, k = base, 1
            while name in names:
                k += 1
                name = f"{base}#{k}"
            names.append(name)
        bases = np.concatenate([[0], np.cumsum([s.num_docs for s in stores])]).astype(np.int64)
        return cls(plist, tuple(names), stores, bases[:-1].copy())

    @property
    def total_docs(self) -> int:
        return int(sum(s.num_docs for s in self.stores))

    def close(self) -> None:
        for s in self.stores:
            s.close()
