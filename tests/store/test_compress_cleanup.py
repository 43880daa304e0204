"""Issue 16: the temp files (`.zst.tmp.*`) a killed `compress` run leaves are cleaned up by the next run, but only
those of dead writers; two runs on one store do not race."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from remote_fixtures import build_store

from shardstore.errors import ConfigError
from shardstore.store.compress import COMPRESSION_NAME, compress_store


def _temps(root):
    return sorted(n for n in os.listdir(root) if ".tmp." in n)


def test_killed_compress_leaves_temps_that_the_next_run_removes(tmp_path):
    root = build_store(str(tmp_path / "st"), num_docs=2500, max_shard_bytes=2 << 20)
    code = "import sys; from shardstore.store.compress import compress_store; compress_store(sys.argv[1], level=19)"
    proc = subprocess.Popen([sys.executable, "-c", code, root])
    deadline = time.monotonic() + 60
    while not _temps(root) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "compress finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    dead = _temps(root)
    assert dead and all(f".tmp.{proc.pid}." in n for n in dead)

    live = subprocess.Popen(["sleep", "60"])  # a temp file of a process that is still alive is never touched
    try:
        shard = next(n for n in os.listdir(root) if n.endswith(".shard"))
        keep = f"{shard}.zst.tmp.{live.pid}.1"
        (tmp_path / "st" / keep).write_bytes(b"in progress")
        result = compress_store(root)
        assert _temps(root) == [keep]
    finally:
        live.kill()
        live.wait()
    index = json.loads((tmp_path / "st" / COMPRESSION_NAME).read_bytes())
    assert sorted(index["files"]) == sorted(result) and all(
        os.path.getsize(os.path.join(root, c.name)) == c.size for c in result.values()
    )
    compress_store(root)  # now the writer of `keep` is gone too
    assert _temps(root) == []


def test_a_second_concurrent_run_is_refused(tmp_path):
    root = build_store(str(tmp_path / "st"), num_docs=20)
    fd = os.open(os.path.join(root, "manifest.json"), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what a running compress holds
        with pytest.raises(ConfigError, match="another `shardstore compress` is running"):
            compress_store(root)
    finally:
        os.close(fd)
    compress_store(root)
