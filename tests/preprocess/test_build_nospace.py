"""Issue 16.7: out of disk (a real 2 MiB tmpfs), over quota or over the file-size limit (RLIMIT_FSIZE, which
gives EFBIG: Python ignores SIGXFSZ) while writing shards, `units.json`, `build_report.json` or the manifest: one
`shardstore: ...` line naming the OUTPUT path, exit 1, no traceback; the same re-run after freeing space resumes
to the clean store. Out of cache disk during `stage` is a CacheError at once (no retries as RemoteError)."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import sys

import pytest
from test_build_support import snapshot, train_tokenizer, write_corpus

import shardstore


@pytest.fixture
def tiny_fs(tmp_path):
    """A real 2 MiB tmpfs (needs root, as in CI containers; elsewhere the RLIMIT_FSIZE tests below still run)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a tmpfs here (not root); the RLIMIT_FSIZE tests cover the same paths")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("nospace")
    tok = train_tokenizer(root / "tok.json")
    inputs = root / "in"
    write_corpus(inputs, n_files=5, docs_per_file=400)
    ref = root / "ref"
    shardstore.build(
        [str(inputs)], tokenizer=tok, out=ref, workers=1, progress=False, max_shard_bytes=1 << 20
    )
    return tok, inputs, ref


def _cmd(inputs, tok, out):
    return [
        sys.executable, "-m", "shardstore", "build", str(inputs), "--tokenizer", str(tok), "--out", str(out),
        "--workers", "1", "--no-progress", "--max-shard-mb", "1",
    ]  # fmt: skip


def _run(cmd, fsize=None):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, preexec_fn=limit if fsize else None
    )


def _one_line(done, path, why):
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    # the manifest commit writes its binary index (manifest.idx) first, then manifest.json: either can hit the limit
    paths = {str(path), str(path).replace("manifest.json", "manifest.idx")}
    assert done.stderr.startswith("shardstore: ") and any(
        f"cannot write {p}" in done.stderr for p in paths
    ), done.stderr
    assert why in done.stderr, done.stderr


def _fill(mnt, leave=0):
    """Fill the file system, leaving about `leave` bytes."""
    st = os.statvfs(mnt)
    free = st.f_bavail * st.f_frsize - leave
    with open(mnt / "filler", "wb", buffering=0) as f, contextlib.suppress(OSError):
        f.write(b"\0" * max(free, 0))


def test_shards_on_a_full_disk(corpus, tiny_fs):
    tok, inputs, ref = corpus
    out = tiny_fs / "st"
    _fill(tiny_fs, leave=128 << 10)  # room for the first shards, not for all
    done = _run(_cmd(inputs, tok, out))
    _one_line(done, str(out), "no space left on device (ENOSPC)")
    assert str(inputs) not in done.stderr  # the output is named, not the input file being read
    os.unlink(tiny_fs / "filler")
    again = _run(_cmd(inputs, tok, out))
    assert again.returncode == 0, again.stderr
    assert snapshot(out) == snapshot(ref)


@pytest.mark.parametrize("target", ["provenance/units.json", "build_report.json", "manifest.json"])
def test_finalize_files_on_a_full_disk(corpus, tiny_fs, target):
    """Units done, disk full at finalize. The files are written in the order units.json (only when it changed),
    build_report.json, manifest.json; the disk is left with room for none of them, or (manifest) for one page."""
    tok, inputs, ref = corpus
    out = tiny_fs / "st"
    shutil.copytree(ref, out)
    (out / "manifest.json").unlink()
    if target == "provenance/units.json":
        (out / target).unlink()
    if target == "manifest.json":
        (out / "build_report.json").unlink()
    _fill(tiny_fs, leave=4096 if target == "manifest.json" else 0)
    done = _run(_cmd(inputs, tok, out))
    _one_line(done, str(out / target), "no space left on device (ENOSPC)")
    assert not (out / "manifest.json").exists()
    os.unlink(tiny_fs / "filler")
    assert _run(_cmd(inputs, tok, out)).returncode == 0
    assert snapshot(out) == snapshot(ref)


def test_report_over_the_file_size_limit(corpus, tmp_path):
    """RLIMIT_FSIZE below the report's size: EFBIG (not a SIGXFSZ kill) on build_report.json, one line; resumes."""
    tok, inputs, ref = corpus
    out = tmp_path / "st"
    shutil.copytree(ref, out)
    (out / "manifest.json").unlink()
    limit = 1024
    assert (ref / "build_report.json").stat().st_size > limit
    done = _run(_cmd(inputs, tok, out), fsize=limit)
    _one_line(done, str(out / "build_report.json"), "(EFBIG)")
    assert _run(_cmd(inputs, tok, out)).returncode == 0
    assert snapshot(out) == snapshot(ref)


def test_read_only_output(corpus, tiny_fs):
    """A finished store on a read-only file system re-runs as "nothing to do"; a new build there is one line."""
    tok, inputs, _ref = corpus
    out = tiny_fs / "st"
    assert _run(_cmd(inputs, tok, out)).returncode == 0
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_fs)], check=True)
    again = _run(_cmd(inputs, tok, out))
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stderr
    done = _run(_cmd(inputs, tok, tiny_fs / "other"))
    _one_line(done, str(tiny_fs / "other"), "read-only file system (EROFS)")


def test_stage_out_of_cache_disk_is_a_cache_error_at_once(corpus, tiny_fs, monkeypatch):
    import fsspec

    from shardstore.errors import CacheError
    from shardstore.remote.fetch import RetryPolicy
    from shardstore.remote.stage import stage
    from shardstore.util.remote_options import RemoteOptions

    _tok, _inputs, ref = corpus
    fs = fsspec.filesystem("memory")
    for path in ref.rglob("*"):
        if path.is_file() and ".build" not in path.parts:
            fs.pipe(f"/nospace-stage/{path.relative_to(ref).as_posix()}", path.read_bytes())
    _fill(tiny_fs, leave=64 << 10)  # the store (656 KiB) does not fit
    waits: list[int] = []  # every retry asks the policy for its wait first (stage's downloads run in threads)
    real_delay = RetryPolicy.delay
    monkeypatch.setattr(
        RetryPolicy, "delay", lambda self, attempt: waits.append(attempt) or real_delay(self, attempt)
    )
    try:
        with pytest.raises(CacheError, match=r"cannot write .*mnt.*no space left on device \(ENOSPC\)"):
            stage("memory://nospace-stage", RemoteOptions(cache_dir=str(tiny_fs / "cache")), workers=2)
    finally:
        fs.rm("/nospace-stage", recursive=True)
    assert waits == []  # no retry: a retry cannot free space
