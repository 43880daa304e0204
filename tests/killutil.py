"""`kill -9` of a running command, for the resume tests: SIGKILL the main process only (as an operator's `kill -9
PID` does) once the command has reached a given point, then check that none of its worker processes outlives it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence


def survivors(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group `pgid`."""
    import psutil

    alive = []
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p.pid)
        except (ProcessLookupError, psutil.Error):
            pass
    return alive


def kill_when(
    cmd: Sequence[str],
    ready: Callable[[], bool],
    *,
    env: Mapping[str, str] | None = None,
    extra_delay: float = 0.0,
    timeout: float = 60.0,
) -> bool:
    """Start `cmd` in a session of its own; once `ready()` (or after `timeout` s), wait `extra_delay` s and SIGKILL
    its main process. Fails if a process of its group is still alive 10 s later (killing them first, so none is
    left behind). Returns True if it was killed, False if it had finished before the kill point."""
    proc = subprocess.Popen(
        list(cmd), env=None if env is None else dict(env), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(extra_delay)
    finished = proc.poll() is not None
    if not finished:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while survivors(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    orphans = survivors(proc.pid)
    if orphans:
        os.killpg(proc.pid, signal.SIGKILL)
    assert not orphans, f"worker processes {orphans} outlived the killed {cmd[2] if len(cmd) > 2 else cmd[0]}"
    return not finished
