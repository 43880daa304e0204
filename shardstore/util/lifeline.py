"""Worker pools that die with their driver: the one mechanism of `build`'s pool and of `dedup`/`decontaminate`'s.

The driver holds the only write end of a pipe ("lifeline"); each pool worker blocks on its read end in a daemon
thread. EOF means the driver is gone, even by ``kill -9``, so the worker exits at once instead of finishing a task
the re-run redoes, or hanging on a queue nobody reads. Workers fork from a forkserver that preloads the heavy
modules (about 0.3 s less start-up per worker), or are spawned where there is no forkserver.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["pool_context", "watch_parent"]


def pool_context(preload: Sequence[str]) -> Any:
    """A forkserver context preloading `preload`, or spawn where forkserver is missing."""
    try:
        ctx = mp.get_context("forkserver")
    except ValueError:
        return mp.get_context("spawn")
    ctx.set_forkserver_preload(list(preload))
    return ctx


def watch_parent(lifeline: Any) -> None:
    """In a pool worker: exit as soon as the read end `lifeline` sees EOF (the driver closed or lost its end)."""
    threading.Thread(target=_exit_with_parent, args=(lifeline,), name="lifeline", daemon=True).start()


def _exit_with_parent(lifeline: Any) -> None:
    with contextlib.suppress(EOFError, OSError):
        lifeline.recv_bytes()
    os._exit(1)
