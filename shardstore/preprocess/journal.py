"""The build journal: what a build promised to make (its options) and which work units are already finished.

Layout inside the store directory (a hidden folder, never listed in the manifest):

    .build/options.json          canonical JSON of everything that determines the output bytes
    .build/units/unit-000042.json  one file per finished unit: its shards, counts and provenance file
    .build/failed/unit-000042.json a unit that failed on its last attempt (retried by the next run)

Design:
- One file per unit, each written by the process that ran the unit with temp + fsync + rename + directory fsync,
  *after* the unit's shards and provenance file are durable. A unit is finished iff its journal file exists, so a
  `kill -9` at any moment leaves either a finished unit or one that the next run redoes from scratch (its leftover
  files are deleted first). Separate files need no lock, so nodes of a multi-node build share the folder safely.
- Journal entries hold no wall-clock figures: the whole store directory is a pure function of inputs and options.
- `options.json` is compared on every start; a different value is a `BuildError` naming each changed key, because
  mixing units of two configurations would silently produce a store that no single command describes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shardstore.errors import BuildError
from shardstore.store.manifest import (
    FileInfo,
    ShardInfo,
)
from shardstore.util.durable import atomic_write

__all__ = ["Journal", "UnitResult", "canonical_json"]

JOURNAL_DIR = ".build"


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, fixed separators, trailing newline: equal objects give equal bytes."""
    return (json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=True, allow_nan=False) + "\n").encode(
        "ascii"
    )


@dataclass(frozen=True, slots=True)
class UnitResult:
    """What one work unit produced. `error` is set (and the rest empty) for a failed unit."""

    index: int
    url: str
    num_docs: int = 0
    num_tokens: int = 0
    text_bytes: int = 0
    shards: tuple[ShardInfo, ...] = ()
    provenance: FileInfo | None = None
    skipped: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None
    cpu_seconds: float = 0.0  # CPU time of the process while it ran the unit (reading to journal commit)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "url": self.url,
            "num_docs": self.num_docs,
            "num_tokens": self.num_tokens,
            "text_bytes": self.text_bytes,
            "shards": [s.to_dict() for s in self.shards],
            "provenance": self.provenance.to_dict() if self.provenance else None,
            "skipped": dict(sorted(self.skipped.items())),
            "error": self.error,
            "cpu_seconds": round(self.cpu_seconds, 4),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str, token_bytes: int) -> UnitResult:
        try:
            return cls(
                index=int(d["index"]),
                url=str(d["url"]),
                num_docs=int(d["num_docs"]),
                num_tokens=int(d["num_tokens"]),
                text_bytes=int(d["text_bytes"]),
                shards=tuple(
                    ShardInfo.from_dict(s, source=source, token_bytes=token_bytes) for s in d["shards"]
                ),
                provenance=None
                if d["provenance"] is None
                else FileInfo.from_dict(d["provenance"], source=source),
                skipped={str(k): int(v) for k, v in d["skipped"].items()},
                error=d["error"],
                cpu_seconds=float(d.get("cpu_seconds", 0.0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BuildError(
                f"{source}: corrupt journal entry ({exc!r}); delete this file to redo the unit"
            ) from exc


class Journal:
    """The `.build` folder of one store directory."""

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = os.fspath(out)
        self.root = os.path.join(self.out, JOURNAL_DIR)
        self._units = os.path.join(self.root, "units")
        self._failed = os.path.join(self.root, "failed")

    def create(self) -> None:
        for d in (self.out, self.root, self._units, self._failed):
            os.makedirs(d, exist_ok=True)

    # -- options --------------------------------------------------------------------------------------------

    def check_options(
        self,
        options: Mapping[str, Any],
        *,
        acceptable: Callable[[Mapping[str, Any], Mapping[str, Any]], bool] | None = None,
    ) -> bool:
        """Record the options on first use; on later runs insist they are equal (or that `acceptable(old, new)`
        allows the change, which then replaces the record). Returns True if the record was (re)written."""
        path = os.path.join(self.root, "options.json")
        data = canonical_json(dict(options))
        try:
            with open(path, "rb") as f:
                old_bytes = f.read()
        except FileNotFoundError:
            atomic_write(path, data)
            return True
        if old_bytes == data:
            return False
        try:
            old = json.loads(old_bytes)
        except ValueError:
            old = {}
        if acceptable is not None and isinstance(old, dict) and acceptable(old, options):
            atomic_write(path, data)
            return True
        changed = sorted(k for k in set(old) | set(options) if old.get(k) != options.get(k))
        details = "; ".join(f"{k}: {_short(old.get(k))} -> {_short(options.get(k))}" for k in changed[:6])
        raise BuildError(
            f"{self.out}: this store was started with different build options ({details}). Resume with the "
            f"original inputs, tokenizer and options, or build into a new/empty directory."
        )

    # -- units ----------------------------------------------------------------------------------------------

    def _entry(self, folder: str, index: int) -> str:
        return os.path.join(folder, f"unit-{index:06d}.json")

    def commit(self, result: UnitResult) -> None:
        """Make a finished (or failed) unit durable. Call only after its files are durable."""
        if result.error is None:
            atomic_write(self._entry(self._units, result.index), canonical_json(result.to_dict()))
            failed = self._entry(self._failed, result.index)
            if os.path.exists(failed):
                os.unlink(failed)
        else:
            atomic_write(self._entry(self._failed, result.index), canonical_json(result.to_dict()))

    def finished(self, *, token_bytes: int) -> dict[int, UnitResult]:
        """All finished units, by index."""
        return self._read_all(self._units, token_bytes)

    def failed(self, *, token_bytes: int) -> dict[int, UnitResult]:
        """Units whose last attempt failed and that are not finished since."""
        return self._read_all(self._failed, token_bytes)

    def finished_indices(self) -> set[int]:
        return {_index_of(name) for name in _list(self._units)}

    def _read_all(self, folder: str, token_bytes: int) -> dict[int, UnitResult]:
        out: dict[int, UnitResult] = {}
        for name in _list(folder):
            path = os.path.join(folder, name)
            try:
                with open(path, "rb") as f:
                    d = json.loads(f.read())
            except (OSError, ValueError) as exc:
                raise BuildError(
                    f"{path}: unreadable journal entry ({exc}); delete it to redo the unit"
                ) from exc
            result = UnitResult.from_dict(d, source=path, token_bytes=token_bytes)
            out[result.index] = result
        return out


def _list(folder: str) -> list[str]:
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith("unit-") and n.endswith(".json"))


def _index_of(name: str) -> int:
    return int(name[len("unit-") : -len(".json")])


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."
