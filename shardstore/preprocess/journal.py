"""The build journal: what a build promised to make (its options) and which work units are already finished.

Layout inside the store directory (a hidden folder, never listed in the manifest):

    .build/options.json             sealed JSON of everything that determines the output bytes
    .build/units/unit-000042.json   one sealed entry per finished unit: shards, counts, provenance, input fingerprint
    .build/failed/unit-000042.json  a unit that failed on its last attempt (retried by the next run)
    .build/attempts/<attempt>/      the files of one unit attempt until it commits (see `units`)
    .build/corrupt/                 entries whose seal did not hold, moved aside (never read again)
    .build/replaced/                entries of units rebuilt because their input changed (`rebuild_changed`)
    .build/locks/node-R.lock        the writer lock of node rank R (see `locks`)

Design:
- Every entry is sealed (`shardstore.util.sealed`: an xxh3-64 of its canonical JSON inside it, and the bytes must be
  canonical), so a flipped bit anywhere makes the entry *corrupt*. A corrupt entry is moved aside and its unit
  treated as not done: it runs again and writes the same bytes. It is never trusted and never blocks the build
  (an entry must also name the unit its file name says, so an `index` 1 -> 5 flip cannot make unit 1 look missing
  forever or unit 5 look done).
- A unit commits by creating its entry with `os.link` (fails if the name exists: an atomic compare-and-create on
  local file systems, NFS and Lustre alike), *after* its files are durable in its own attempt folder, and only
  then moves them into the store. So of two writers of one unit (a paused one and its replacement) exactly one
  commits, and the other one never deletes or overwrites a committed file. An entry names its attempt folder, so a
  commit killed between link and move is finished by whoever reads the entry next (`settle`).
- Entries hold no wall-clock figures except `cpu_seconds` (not part of any store file): the store is a pure
  function of inputs and options.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shardstore.errors import BuildError, ManifestError
from shardstore.preprocess.locks import owner_alive
from shardstore.store.manifest import (
    FileInfo,
    ShardInfo,
)
from shardstore.util.durable import fsync_dir
from shardstore.util.sealed import canonical_json, read_sealed, seal, write_sealed

__all__ = ["JOURNAL_DIR", "Journal", "UnitResult", "canonical_json"]

JOURNAL_DIR = ".build"


@dataclass(frozen=True, slots=True)
class UnitResult:
    """What one work unit produced. `error` is set (and the rest empty) for a failed unit.

    `input` is the fingerprint of the input bytes the unit read (see `inputdigest.InputDigest.to_dict`); `build`
    the digest of the byte-determining options (`Journal.build_digest`); `attempt` the attempt folder its files
    were written in. `committed_by_other` marks a unit another writer committed first (this attempt discarded)."""

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
    input: Mapping[str, Any] | None = None
    build: str = ""
    attempt: str = ""
    committed_by_other: bool = False

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
            "input": None if self.input is None else dict(self.input),
            "build": self.build,
            "attempt": self.attempt,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str, token_bytes: int) -> UnitResult:
        try:
            inp = d.get("input")
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
                input=None if inp is None else dict(inp),
                build=str(d.get("build", "")),
                attempt=str(d.get("attempt", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError, ManifestError) as exc:
            raise BuildError(f"{source}: corrupt journal entry ({exc!r})") from exc


class Journal:
    """The `.build` folder of one store directory."""

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = os.fspath(out)
        self.root = os.path.join(self.out, JOURNAL_DIR)
        self.units_dir = os.path.join(self.root, "units")
        self.failed_dir = os.path.join(self.root, "failed")
        self.attempts_dir = os.path.join(self.root, "attempts")
        self.corrupt_dir = os.path.join(self.root, "corrupt")
        self.options_path = os.path.join(self.root, "options.json")
        self.moved_aside: list[str] = []  # entries this process found corrupt (store-relative names)

    def create(self) -> None:
        for d in (self.out, self.root, self.units_dir, self.failed_dir, self.attempts_dir):
            os.makedirs(d, exist_ok=True)

    def entry_path(self, index: int, *, failed: bool = False) -> str:
        return os.path.join(self.failed_dir if failed else self.units_dir, f"unit-{index:06d}.json")

    # -- corrupt entries ------------------------------------------------------------------------------------

    def move_aside(self, path: str, *, why: str = "corrupt") -> None:
        """Move a journal file out of the way (into `.build/<why>/`), so it is never read again."""
        folder = os.path.join(self.root, why)
        os.makedirs(folder, exist_ok=True)
        base = os.path.basename(path)
        for n in range(1 << 16):
            target = os.path.join(folder, f"{base}.{n}")
            if not os.path.exists(target):
                break
        try:
            os.rename(path, target)
        except FileNotFoundError:  # another process moved it first
            return
        if why == "corrupt":
            self.moved_aside.append(os.path.relpath(path, self.out))

    # -- options --------------------------------------------------------------------------------------------

    def read_options(self) -> dict[str, Any] | None:
        """The recorded options; None when there is no record, or it was corrupt (then moved aside)."""
        got = read_sealed(self.options_path)
        if got is None:
            return None
        if got[1] is None:
            self.move_aside(self.options_path)
            return None
        return got[1]

    def write_options(self, options: Mapping[str, Any]) -> None:
        write_sealed(self.options_path, dict(options), skip_if_same=True)

    # -- units ----------------------------------------------------------------------------------------------

    def claim(self, result: UnitResult) -> bool:
        """Commit a finished unit whose files are durable in its attempt folder: create its entry if no other
        writer did (atomic), then move the files into the store. False: another writer committed it first."""
        path = self.entry_path(result.index)
        tmp = f"{path}.tmp.{os.getpid()}.{result.attempt}"
        data = seal(result.to_dict())
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # create-if-absent: of two writers of this unit, exactly one gets here
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            if not _create_exclusive(path, data):  # a file system without hard links
                return False
        finally:
            os.unlink(tmp)
        fsync_dir(self.units_dir)
        self.settle(result)
        failed = self.entry_path(result.index, failed=True)
        if os.path.exists(failed):
            os.unlink(failed)
        return True

    def commit_failure(self, result: UnitResult) -> None:
        write_sealed(self.entry_path(result.index, failed=True), result.to_dict())

    def settle(self, result: UnitResult) -> None:
        """Move a committed unit's files from its attempt folder into the store (idempotent: finishes a commit
        that was killed between the entry's creation and the moves)."""
        attempt = os.path.join(self.attempts_dir, result.attempt) if result.attempt else None
        names = [s.name for s in result.shards] + ([result.provenance.name] if result.provenance else [])
        moved = False
        for name in names:
            dst = os.path.join(self.out, name)
            if attempt is None:
                continue
            src = os.path.join(attempt, name)
            try:
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                os.replace(src, dst)
                moved = True
            except FileNotFoundError:
                pass  # moved already (by us before a crash, or by another reader of this entry)
        if moved:
            fsync_dir(self.out)
            if result.provenance is not None:
                fsync_dir(os.path.dirname(os.path.join(self.out, result.provenance.name)))
        if attempt is not None and os.path.isdir(attempt):
            shutil.rmtree(attempt, ignore_errors=True)

    def sweep_dead_attempts(self) -> None:
        """Delete attempt folders (and journal temp files) of writers of this host that are no longer alive.
        Attempts of other hosts are left: their writers may still be running (a paused writer commits or
        discards its own attempt when it resumes)."""
        for name in _listdir(self.attempts_dir):
            if _attempt_dead(name):
                shutil.rmtree(os.path.join(self.attempts_dir, name), ignore_errors=True)
        for name in _listdir(self.units_dir):
            if ".json.tmp." in name and _attempt_dead(name.split(".json.tmp.", 1)[1].split(".", 1)[-1]):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.units_dir, name))

    def finished(self, *, token_bytes: int) -> dict[int, UnitResult]:
        """All finished units, by index; corrupt entries are moved aside and left out (their units run again)."""
        return self._read_all(self.units_dir, token_bytes)

    def failed(self, *, token_bytes: int) -> dict[int, UnitResult]:
        """Units whose last attempt failed and that are not finished since."""
        return self._read_all(self.failed_dir, token_bytes)

    def finished_indices(self) -> set[int]:
        """Indices with an entry file (not read: for the cheap "already complete" check of a committed store)."""
        return {_index_of(name) for name in _list(self.units_dir)}

    def _read_all(self, folder: str, token_bytes: int) -> dict[int, UnitResult]:
        out: dict[int, UnitResult] = {}
        for name in _list(folder):
            path = os.path.join(folder, name)
            try:
                got = read_sealed(path)
            except OSError as exc:
                raise BuildError(f"{path}: cannot read journal entry ({exc})") from exc
            if got is None:
                continue
            result = None
            if got[1] is not None:
                try:
                    result = UnitResult.from_dict(got[1], source=path, token_bytes=token_bytes)
                except BuildError:
                    result = None
            if result is None or result.index != _index_of(name):
                self.move_aside(path)
                continue
            out[result.index] = result
        return out


_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS}


def _create_exclusive(path: str, data: bytes) -> bool:
    """O_CREAT | O_EXCL (exclusive on local file systems and NFSv3+), for file systems without `link`. A crash
    while writing leaves a short entry, whose seal fails: the unit is then redone, never trusted."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def _listdir(folder: str) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except FileNotFoundError:
        return []


def _attempt_dead(attempt: str) -> bool:
    parts = attempt.split("-")
    if len(parts) != 4 or not parts[2].isdigit():
        return False
    return owner_alive(parts[1], int(parts[2])) is False


def _list(folder: str) -> list[str]:
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith("unit-") and n.endswith(".json") and n[5:-5].isdigit())


def _index_of(name: str) -> int:
    return int(name[len("unit-") : -len(".json")])


def short_json(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."
