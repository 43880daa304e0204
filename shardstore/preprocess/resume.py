"""The resume check of a build: which journaled units can be kept, given the options and inputs of this run.

A journaled unit is kept only if all of these hold; otherwise its entry is moved aside and the unit runs again:
- its entry is intact (sealed, and names its own unit: see `journal`);
- it was built with the same byte-determining options (`build_digest`; this also covers a corrupt options record);
- it read the same input: same file and range as this run's plan of that unit, same size, same content
  (`inputdigest.changed`: the fingerprint of the bytes it read);
- its files are in the store with their recorded sizes (a commit killed between its entry and its moves is
  finished here first: `Journal.settle`).

Changed inputs are not silently rebuilt: a unit whose input bytes changed since it was built makes the build stop
with a `BuildError` listing the changed files, unless `rebuild_changed` is set, which rebuilds exactly those
units (their entries go to `.build/replaced/`). Units that never finished may have their input repaired in place
freely (the repair case of a failed unit).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import xxhash

from shardstore.errors import BuildError, ShardStoreError
from shardstore.preprocess.inputdigest import changed
from shardstore.preprocess.journal import Journal, UnitResult, short_json
from shardstore.preprocess.workunits import WorkUnit
from shardstore.store.manifest import file_info
from shardstore.util.sealed import canonical_json

__all__ = ["INPUT_KEYS", "build_digest", "check_options", "usable_results"]

INPUT_KEYS = ("inputs", "num_units")  # options that change when an input file changes size


def build_digest(options: Mapping[str, Any]) -> str:
    """Digest of the options that determine a unit's bytes, whatever the inputs."""
    rest = {k: v for k, v in options.items() if k not in INPUT_KEYS}
    return "xxh3-64:" + xxhash.xxh3_64_hexdigest(canonical_json(rest))


def check_options(journal: Journal, options: Mapping[str, Any]) -> None:
    """Refuse a resume with other byte-determining options or another input list (a `BuildError` naming each
    changed key). Input files that only changed size are left to `usable_results`, which names them."""
    old = journal.read_options()
    if old is None or old == dict(options):
        return
    keys = sorted(k for k in set(old) | set(options) if old.get(k) != options.get(k))
    static = [k for k in keys if k not in INPUT_KEYS]
    before, after = old.get("inputs"), options.get("inputs")
    same_files = (
        isinstance(before, list)
        and isinstance(after, list)
        and len(before) == len(after)
        and all(
            isinstance(a, list) and len(a) == 4 and [a[0], a[2], a[3]] == [b[0], b[2], b[3]]
            for a, b in zip(before, after, strict=True)
        )
    )
    if (static or not same_files) and not _any_committed(journal):
        return  # nothing was committed under the old options (e.g. every unit failed): they may change
    if not static and not same_files and isinstance(before, list) and isinstance(after, list):
        raise BuildError(_input_list_changed(journal.out, before, after))
    if static or not same_files:
        shown = static or keys
        details = "; ".join(
            f"{k}: {short_json(old.get(k))} -> {short_json(options.get(k))}" for k in shown[:6]
        )
        raise BuildError(
            f"{journal.out}: this store was started with different build options ({details}). Resume with the "
            f"original inputs, tokenizer and options, or build into a new/empty directory."
        )


def _input_list_changed(out: str, before: list[Any], after: list[Any]) -> str:
    """The inputs changed as a list (files added, removed, or read as another format): name them."""

    def by_url(entries: list[Any]) -> dict[str, Any]:
        return {e[0]: e[2:] for e in entries if isinstance(e, list) and len(e) == 4}

    old, new = by_url(before), by_url(after)

    def listed(urls: list[str]) -> str:
        return ", ".join(urls[:3]) + (f", ... ({len(urls)})" if len(urls) > 3 else "")

    parts = []
    for label, urls in (
        ("added", [u for u in new if u not in old]),
        ("removed", [u for u in old if u not in new]),
        ("read another way", [u for u in new if u in old and new[u] != old[u]]),
    ):
        if urls:
            parts.append(f"{label}: {listed(urls)}")
    if not parts:
        parts.append("the same files in another order")
    return (
        f"{out}: the input files changed since this store was started ({'; '.join(parts)}). A store covers exactly "
        "its input list: resume with the original inputs, or build the new list into a new/empty directory"
    )


def _any_committed(journal: Journal) -> bool:
    try:
        with os.scandir(journal.units_dir) as it:
            return any(e.name.startswith("unit-") and e.name.endswith(".json") for e in it)
    except FileNotFoundError:
        return False


def _files_ok(out: str, result: UnitResult) -> bool:
    """The unit's shards exist with their sizes, and its (small: 8 bytes a document) provenance file matches its
    checksum. Shard payloads are not read here (that would read the whole store on every resume): a changed
    shard byte is caught by `verify`, against the checksum the unit recorded when it wrote the shard."""
    try:
        for s in result.shards:
            if os.path.getsize(os.path.join(out, s.name)) != s.size:
                return False
        prov = result.provenance
        if prov is not None and file_info(os.path.join(out, prov.name), name=prov.name) != prov:
            return False
    except (OSError, ShardStoreError):
        return False
    return True


def usable_results(
    journal: Journal,
    units: Sequence[WorkUnit],
    *,
    digest: str,
    token_bytes: int,
    storage_options: Mapping[str, Any] | None,
    rebuild_changed: bool,
) -> dict[int, UnitResult]:
    """The journaled units this run keeps (see the module doc); raises `BuildError` on changed inputs."""
    kept: dict[int, UnitResult] = {}
    stale: list[int] = []
    changed_units: list[int] = []
    stats: dict[str, dict[str, Any]] = {}  # one stat (or HEAD) per input file, not per unit
    for i, result in sorted(journal.finished(token_bytes=token_bytes).items()):
        if i >= len(units) or (result.build and result.build != digest):
            stale.append(i)
            continue
        unit = units[i]
        record = result.input
        span = None if unit.span is None else list(unit.span)
        if result.url != unit.file.url or (
            record is not None
            and (record.get("span") != span or changed(record, unit.file, storage_options, stats))
        ):
            changed_units.append(i)
            continue
        journal.settle(result)
        if not _files_ok(journal.out, result):
            stale.append(i)
            continue
        kept[i] = result
    if changed_units and not rebuild_changed:
        files = sorted({units[i].file.url for i in changed_units if i < len(units)})
        raise BuildError(
            f"{journal.out}: {len(files)} input file(s) changed since their units were built: "
            f"{', '.join(files[:5])}{', ...' if len(files) > 5 else ''} ({len(changed_units)} units). The store "
            "would no longer match its inputs. Re-run with --rebuild-changed (rebuild_changed=True) to rebuild "
            "exactly those units, or restore the original files"
        )
    for i in stale:
        journal.move_aside(journal.entry_path(i), why="stale")
    for i in changed_units:
        journal.move_aside(journal.entry_path(i), why="replaced")
    return kept
