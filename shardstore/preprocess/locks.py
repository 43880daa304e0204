"""The writer lock of a build: one live writer per output folder and node rank.

`NodeLock` takes `fcntl.flock(LOCK_EX | LOCK_NB)` on `.build/locks/node-R.lock` for the whole run and writes
"host pid" into the file. A second build of the same folder and rank finds the lock taken and stops with
"locked by host H pid P" (a paused process, `kill -STOP`, still holds its lock: the kernel drops it only when the
process exits, so a `kill -9` never leaves a stale lock behind).

The lock keeps honest operators apart; correctness does not depend on it. Units commit by an atomic
create-if-absent of their journal entry (`journal.Journal.claim`), so even two writers that both believe they
hold the lock (a node that only looked dead, a file system without working locks) never destroy each other's
committed files: the second committer of a unit discards its own attempt.

Shared file systems: flock needs the locks to be coherent across clients. NFSv4 (and v3 with lockd; Linux maps
flock to POSIX byte-range locks there) is fine; an NFS mount with `nolock`/`local_lock=all` makes the lock
per-client only. Lustre needs the `flock` mount option (`localflock` is per-client only; without either, flock
fails with ENOSYS). Where flock is unsupported, the build warns once and goes on without a lock.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import socket
import sys

from shardstore.errors import BuildError
from shardstore.util.procs import pid_alive

__all__ = ["NodeLock", "host_tag", "owner_alive"]


def host_tag() -> str:
    """This host's name, reduced to characters that are safe in a file name."""
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())[:64] or "host"


def owner_alive(host: str, pid: int) -> bool | None:
    """Whether a process of this host is alive; None (unknown) for another host."""
    if host != host_tag():
        return None
    return pid_alive(pid)


class NodeLock:
    """Exclusive lock of one node rank of the build in `journal_root` (a context manager)."""

    def __init__(self, journal_root: str, node_rank: int) -> None:
        self.path = os.path.join(journal_root, "locks", f"node-{node_rank}.lock")
        self._fd: int | None = None

    def __enter__(self) -> NodeLock:
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if exc.errno != errno.EROFS:
                raise
            return (
                self  # a read-only store: nobody can write it, and any write we try fails with a clear line
            )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
            os.close(fd)
            host, pid = [*holder, "?", "?"][:2]
            raise BuildError(
                f"{self.path}: locked by host {host} pid {pid}: another build is writing this store (node rank "
                "of this lock) right now; wait for it, or stop it, before re-running"
            ) from None
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                os.close(fd)
                raise
            print(
                f"shardstore: warning: {self.path}: file locks are not supported here ({exc.strerror}); "
                "going on without the writer lock (commits stay safe, see docs/guide.md)",
                file=sys.stderr,
            )
        self._fd = fd
        return self

    def announce(self) -> None:
        """Write "host pid" into the lock file (only once the run will write: a re-run that finds the store
        complete writes nothing at all)."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{host_tag()} {os.getpid()}\n".encode(), 0)

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None
