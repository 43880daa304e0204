"""Fork safety: objects that hold per-process state (mappings, verification bitmaps, file locks, opened stores,
async filesystem clients) reset it in a forked child, e.g. a DataLoader worker.

One at-fork hook for the whole process, installed on first use, calls every registered reset in the child. It
costs nothing on the read path (no getpid() check per call). Registrations are weak: a registered object is
collected as usual and simply drops out.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable

__all__ = ["reset_in_forked_child"]


class _ForkResets:
    """The process's registered resets (one instance: at-fork hooks are per process and cannot be removed)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._methods: list[weakref.WeakMethod[Callable[[], None]]] = []
        self._installed = False

    def add(self, reset: Callable[[], None]) -> None:
        with self._lock:
            if not self._installed:
                os.register_at_fork(after_in_child=self._run)
                self._installed = True
            self._methods = [m for m in self._methods if m() is not None]
            self._methods.append(weakref.WeakMethod(reset))  # type: ignore[arg-type]

    def _run(self) -> None:
        self._lock = threading.Lock()  # the parent may have held it while forking
        for ref in list(self._methods):
            method = ref()
            if method is not None:
                method()


_RESETS = _ForkResets()


def reset_in_forked_child(reset: Callable[[], None]) -> None:
    """Call the bound method `reset` in every child forked from now on (held weakly, with its object)."""
    _RESETS.add(reset)
