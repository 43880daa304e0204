"""Everything in a store directory is covered by `verify` or named by it as not covered; verify reads each byte
once; a 20-source mixture over many-shard stores runs under `ulimit -n 256` (issues 16, 19)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_store_util import random_docs, write_store

from shardstore.errors import ShardStoreError
from shardstore.store.manifest import Manifest, ShardInfo, TokenizerInfo, write_manifest
from shardstore.store.store import Store
from shardstore.store.writer import ShardWriter

DOCS = random_docs(3, 40, max_len=900)
TOK = TokenizerInfo(fingerprint="c" * 64, vocab_size=50_000, special_ids={}, eos_id=None)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("cov")
    write_store(
        root, DOCS, max_shard_bytes=24 << 10, aux_files={"notes.txt": b"hello world\n"}, tokenizer=TOK
    )
    (root / "stray.bin").write_bytes(b"left behind by someone\n")
    (root / "sub").mkdir()
    (root / "sub" / "x.json").write_bytes(b'{"a": 1}\n')
    return root


def test_verify_names_every_file_it_does_not_cover(pristine, tmp_path):
    report = Store.open(pristine, verify="off").verify(raise_on_error=False)
    assert report.ok and report.not_covered == ["stray.bin", "sub/x.json"]
    names = sorted(n for n in os.listdir(pristine) if (pristine / n).is_file())
    assert report.files_checked == len(names) - 1  # all but stray.bin (sub/ is a folder)
    cmd = [sys.executable, "-m", "shardstore", "verify", str(pristine)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.startswith("OK"), p.stderr
    assert "NOT COVERED stray.bin" in p.stdout and "NOT COVERED sub/x.json" in p.stdout


def _outcome(root) -> tuple[bool, list[str]]:
    """(a problem was detected by open, a read or verify; files named not covered). Wrong tokens fail the test."""
    flat = np.concatenate(DOCS)
    try:
        store = Store.open(root)
    except ShardStoreError:
        return True, []
    detected = False
    for start in range(0, flat.size, 500):
        stop = min(flat.size, start + 500)
        try:
            got = store.tokens(start, stop)
        except ShardStoreError:
            detected = True
            continue
        assert np.array_equal(got, flat[start:stop]), f"wrong tokens served for [{start}, {stop})"
    report = Store.open(root, verify="off").verify(raise_on_error=False)
    return detected or not report.ok, report.not_covered


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_bit_flip_in_any_file_is_detected_or_the_file_is_named(pristine, tmp_path_factory, data):
    root = tmp_path_factory.mktemp("flip") / "s"
    shutil.copytree(pristine, root)
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    name = data.draw(st.sampled_from(files), label="file")
    blob = bytearray((root / name).read_bytes())
    bit = data.draw(st.integers(0, len(blob) * 8 - 1), label="bit")
    blob[bit // 8] ^= 1 << (bit % 8)
    (root / name).write_bytes(bytes(blob))
    detected, named = _outcome(root)
    assert detected or name in named, f"a flip of bit {bit} in {name} went unnoticed"


def test_verify_reads_each_byte_once(tmp_path, monkeypatch):
    """Small shards: read by the native batch checker, exactly their bytes (no Python read). Large ones (mapped):
    one pass, each block fed to its block hash and the whole-file hash back to back, in file order, every byte
    once."""
    from shardstore.store import format as fmt
    from shardstore.store import verify as verify_mod

    docs = [*random_docs(9, 30, max_len=800), np.arange(1_600_000, dtype=np.uint32).astype(np.uint16)]
    m = write_store(tmp_path, docs, max_shard_bytes=64 << 10, block_size=1 << 20)
    big = [s for s in m.shards if s.size > 1 << 20]
    assert len(big) == 1 and len(big) < len(m.shards)  # both read paths
    read, fed = [], []
    real_readv, real_stream = os.readv, fmt.checksum_stream

    def counting(fd, bufs):
        n = real_readv(fd, bufs)
        read.append(n)
        return n

    class Recording:
        def __init__(self):
            self._h = real_stream()

        def update(self, data):
            fed.append(len(data))
            self._h.update(data)

        def intdigest(self):
            return self._h.intdigest()

    native, real_batch = [], verify_mod.check_batch

    def batch(*args, **kwargs):
        got = real_batch(*args, **kwargs)
        native.append(got.bytes_read)
        return got

    monkeypatch.setattr(os, "readv", counting)
    monkeypatch.setattr(fmt, "checksum_stream", Recording)
    monkeypatch.setattr(verify_mod, "check_batch", batch)
    store = Store.open(tmp_path, verify="off")
    report = store.verify()
    assert report.ok
    assert sum(native) == sum(s.size for s in m.shards if s.size <= 1 << 20) and not read
    assert (
        sum(fed) == big[0].size
        and fed[0] == fmt.HEADER_SIZE
        and len(fed) == 2 + -(-1_600_000 * 2 // (1 << 20))
    )
    # the document index and blocks are known verified for these file identities: reads hash nothing more
    last = store.mapped_shard(len(m.shards) - 1)
    assert np.array_equal(store.doc(len(docs) - 1), docs[-1]) and last.verified.count(0) == 0


def copied_store(root, n: int, tokens: int, seed: int) -> str:
    """A store of `n` copies of one real shard (written by ShardWriter), fast enough for thousands of shards."""
    rng = np.random.default_rng(seed)
    with ShardWriter(root / "proto", dtype="uint16", name_prefix="p-", max_shard_bytes=1 << 30) as w:
        w.add_document(rng.integers(0, 50_000, tokens, dtype=np.uint16))
    (proto,) = w.close()
    blob = (root / "proto" / proto.name).read_bytes()
    shutil.rmtree(root / "proto")
    infos = []
    for i in range(n):
        (root / f"s{i:05d}.shard").write_bytes(blob)
        infos.append(
            ShardInfo(
                f"s{i:05d}.shard", proto.num_tokens, 1, proto.size, proto.checksum, proto.header_checksum
            )
        )
    write_manifest(root, Manifest(dtype="uint16", shards=infos, tokenizer=TOK))
    return str(root)


_ULIMIT = """
import json, os, resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
from shardstore.loader.mixture import Mixture
from shardstore.torch import make_dataloader
paths = json.loads(sys.argv[1])
mix = Mixture.from_dict({"seq_len": 64, "seed": 3, "sources": [
    {"name": f"s{i}", "store": p, "weight": 1.0 + i} for i, p in enumerate(paths)]})
n = 0
for batch in make_dataloader(mix, batch_size=64, max_steps=120):
    n += 1
print("OK", n, len(os.listdir("/proc/self/fd")))
"""


@pytest.mark.slow
def test_twenty_sources_of_many_shards_run_under_ulimit_256(tmp_path):
    paths = []
    for k in range(20):
        (tmp_path / str(k)).mkdir()
        paths.append(copied_store(tmp_path / str(k), 400, 200, seed=k))
    import json

    p = subprocess.run(
        [sys.executable, "-c", _ULIMIT, json.dumps(paths)], capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0, p.stderr[-3000:]
    ok, batches, fds = p.stdout.split()
    assert ok == "OK" and int(batches) == 120 and int(fds) < 64  # 8,000 shards read at random, few fds
