"""Sealed JSON: a state file that carries an xxh3-64 checksum of its own content, so a flipped bit is never trusted.

A sealed file is canonical JSON (sorted keys, fixed separators, ASCII, trailing newline) of an object with one more
key, ``"seal": "xxh3-64:<16 hex>"``, the checksum of the canonical JSON of the object *without* that key. Reading
accepts the file only if it parses, its seal matches, *and* re-serialising what was parsed gives back exactly the
bytes on disk. So every single-bit (indeed every) change of the file is caught: a change that leaves the JSON valid
either changes a value (the seal no longer matches), the seal itself (likewise), or only the layout (the bytes are
no longer canonical). Plain `json.load` still reads the file; the seal is just one more key.

Cost: one xxh3 pass over a few hundred bytes per entry. Used by the build for its journal entries, its options
record and `build_report.json`; `check_sealed` lets `verify` cover those files of a finished store.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

import xxhash

from shardstore.util.durable import atomic_write

__all__ = [
    "SEAL_KEY",
    "canonical_json",
    "check_sealed",
    "read_sealed",
    "seal",
    "unseal",
    "write_sealed",
]

SEAL_KEY = "seal"
_PREFIX = "xxh3-64:"
_MAX_BYTES = 64 << 20


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, fixed separators, trailing newline: equal objects give equal bytes."""
    return (json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=True, allow_nan=False) + "\n").encode(
        "ascii"
    )


def _digest(obj: Mapping[str, Any]) -> str:
    return _PREFIX + xxhash.xxh3_64_hexdigest(canonical_json(obj))


def seal(obj: Mapping[str, Any]) -> bytes:
    """The sealed bytes of `obj` (a JSON object without a "seal" key)."""
    if SEAL_KEY in obj:
        raise ValueError(f"cannot seal an object that already has a {SEAL_KEY!r} key")
    body = dict(obj)
    body[SEAL_KEY] = _digest(obj)
    return canonical_json(body)


def unseal(data: bytes) -> dict[str, Any] | None:
    """The object of sealed `data` (the seal removed), or None if `data` is not exactly what `seal` wrote."""
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(obj, dict):
        return None
    try:
        if canonical_json(obj) != data:
            return None
    except ValueError:  # NaN / infinity parsed from a hand edit
        return None
    tag = obj.pop(SEAL_KEY, None)
    if not isinstance(tag, str) or tag != _digest(obj):
        return None
    return obj


def write_sealed(path: str | os.PathLike[str], obj: Mapping[str, Any], *, skip_if_same: bool = False) -> bool:
    """Durably write `obj` sealed (temp + fsync + rename + folder fsync). Returns False if nothing was written."""
    return atomic_write(path, seal(obj), skip_if_same=skip_if_same)


def read_sealed(path: str | os.PathLike[str]) -> tuple[bytes, dict[str, Any] | None] | None:
    """None if `path` does not exist; else (its bytes, its object or None when the seal does not hold)."""
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    if len(data) > _MAX_BYTES:
        return data, None
    return data, unseal(data)


def _walk(root: str, name: str) -> Iterator[str]:
    path = os.path.join(root, name)
    if os.path.isfile(path):
        yield name
    elif os.path.isdir(path):
        for folder, dirs, files in os.walk(path):
            dirs.sort()
            for f in sorted(files):
                yield os.path.relpath(os.path.join(folder, f), root)


def check_sealed(
    root: str | os.PathLike[str], names: tuple[str, ...], *, copies: Mapping[str, str] | None = None
) -> tuple[list[str], list[str]]:
    """Check the sealed `*.json` files under `root` named by `names` (files or folders).

    Returns (the store-relative names of sealed files whose seal does not hold, the names of files found there
    that no seal covers). `copies` maps a file to another one it must equal byte for byte (a file the build keeps
    in two places); such a file counts as covered. Folders named `corrupt`, `stale` and `replaced` hold entries a
    build already moved aside: they are listed as not covered, never as failures.
    """
    root = os.fspath(root)
    copies = dict(copies or {})
    bad: list[str] = []
    uncovered: list[str] = []
    for name in names:
        for rel in _walk(root, name):
            parts = rel.split(os.sep)
            if rel in copies:
                with (
                    open(os.path.join(root, rel), "rb") as a,
                    open(os.path.join(root, copies[rel]), "rb") as b,
                ):
                    if a.read() != b.read():
                        bad.append(rel)
                continue
            if not rel.endswith(".json") or _MOVED & set(parts) or ".tmp." in parts[-1]:
                uncovered.append(rel)
                continue
            got = read_sealed(os.path.join(root, rel))
            if got is not None and got[1] is None:
                bad.append(rel)
    return bad, uncovered


_MOVED = {"corrupt", "stale", "replaced", "attempts", "locks"}


# The state a build leaves in a store directory beside the files the manifest lists (shardstore.preprocess).
STATE_NAMES = ("build_report.json", ".build")
STATE_COPIES = {os.path.join(".build", "tokenizer-input.json"): "tokenizer.json"}


def check_store_state(root: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """`check_sealed` over a local store directory's build state (`build_report.json`, `.build/`): for
    `verify`, so that no file of a finished store can go wrong unnoticed. Returns (bad, not covered)."""
    return check_sealed(root, STATE_NAMES, copies=STATE_COPIES)
