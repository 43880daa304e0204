"""The native batch checker of tiny shards (`verify.check_batch`, verifybatch.cc) and the bounded verification state
(`mapcache.VerifiedTable`, the ShardFacts LRU): issue 19.

The native checker must refuse every file the Python checker refuses (any flipped byte, any size, a swapped,
missing or foreign file) and verify must name each problem exactly as the Python checker does. Verification
state is bounded; a shard whose state was evicted is checked again, and a replaced file is always caught."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shardstore._native import _verifybatch
from shardstore.errors import ChecksumError
from shardstore.store import mapcache, mapped
from shardstore.store import verify as V
from shardstore.store.manifest import Manifest, write_manifest
from shardstore.store.manifest_index import shard_records
from shardstore.store.store import Store
from tests.storeutil import make_docs, write_store
from tests.test_store_util import write_store as write_blocked


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    path = tmp_path_factory.mktemp("vb") / "store"
    write_store(path, make_docs(4, 300, min_len=60, max_len=60))  # equal shards: a swap keeps the size
    return str(path)


@pytest.fixture
def store_dir(pristine, tmp_path):
    dst = tmp_path / "s"
    shutil.copytree(pristine, dst)
    return str(dst)


def _python_only(monkeypatch) -> None:
    """Make every shard take the Python checker (what verify did before the batch checker)."""

    def deferred(root, records, lo, hi, **_):
        batch = V.Batch(lo, hi)
        batch.status[:] = V.DEFERRED
        return batch

    monkeypatch.setattr(V, "check_batch", deferred)


def _batch(path: str) -> V.Batch:
    store = Store.open(path, verify="off")
    return V.check_batch(path, shard_records(store.manifest.shards), 0, store.num_shards)


def test_xxh3_matches_the_format_checksum():
    rng = np.random.default_rng(0)
    for n in [0, 1, 3, 16, 17, 128, 129, 240, 241, 1000, 4096, 70_001]:
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert _verifybatch.xxh3_64(data) == xxhash.xxh3_64_intdigest(data)


def test_sound_shards_pass_with_their_identity_and_header_checksum(store_dir):
    store = Store.open(store_dir, verify="off")
    batch = _batch(store_dir)
    assert store.num_shards > 20 and (batch.status == V.OK).all()
    for i in (0, store.num_shards - 1):
        info = store.manifest.shards[i]
        st = os.stat(os.path.join(store_dir, info.name))
        assert batch.fids[i].tolist() == [st.st_dev, st.st_ino, st.st_size, st.st_ctime_ns]
        assert f"{int(batch.stored[i]):016x}" == info.header_checksum
    assert batch.bytes_read == sum(s.size for s in store.manifest.shards)


def test_every_flipped_byte_of_a_shard_is_refused(store_dir):
    store = Store.open(store_dir, verify="off")
    info = store.manifest.shards[3]
    path = os.path.join(store_dir, info.name)
    blob = bytearray(Path(path).read_bytes())
    records = shard_records(store.manifest.shards)
    for off in range(len(blob)):
        bad = bytearray(blob)
        bad[off] ^= 1 << (off % 8)
        with open(path, "r+b") as f:
            f.write(bad)
        assert V.check_batch(store_dir, records, 3, 4).status[0] == V.BAD, off
    with open(path, "r+b") as f:
        f.write(blob)
    assert V.check_batch(store_dir, records, 3, 4).status[0] == V.OK


def _damage(path: str, store: Store) -> list[str]:
    """Swap, truncate, corrupt, remove, extend and symlink shards; returns their names."""
    names = [s.name for s in store.manifest.shards]
    p = [os.path.join(path, n) for n in names]
    shutil.copyfile(p[1], p[2])  # swapped: a sound shard under another's name
    with open(p[5], "r+b") as f:
        f.truncate(store.manifest.shards[5].size - 3)
    with open(p[9], "r+b") as f:
        f.seek(4096 + 2)
        byte = f.read(1)
        f.seek(4096 + 2)
        f.write(bytes([byte[0] ^ 0x40]))
    os.remove(p[12])
    with open(p[14], "ab") as f:
        f.write(b"\0")
    os.remove(p[17])
    os.symlink(p[1], p[17])  # inside the store: allowed, but another shard's bytes
    return [names[i] for i in (2, 5, 9, 12, 14, 17)]


def test_damaged_shards_are_named_exactly_as_the_python_checker_names_them(store_dir, monkeypatch):
    store = Store.open(store_dir, verify="off")
    bad = _damage(store_dir, store)
    batch = _batch(store_dir)
    assert [store.manifest.shards[i].name for i in np.flatnonzero(batch.status)] == bad
    assert batch.status[17] == V.DEFERRED  # a symlink: resolved and checked by the Python path
    report = Store.open(store_dir, verify="off").verify(raise_on_error=False)
    _python_only(monkeypatch)
    expected = Store.open(store_dir, verify="off").verify(raise_on_error=False)
    assert [str(p) for p in report.problems] == [str(p) for p in expected.problems]
    assert [os.path.basename(p.file) for p in report.problems] == bad
    assert (report.files_checked, report.bytes_checked) == (expected.files_checked, expected.bytes_checked)
    assert "another shard's file" in str(report.problems[0]) and "truncated" in str(report.problems[1])
    assert "missing" in str(report.problems[3]) or "No such file" in str(report.problems[3])


def test_a_v1_manifest_binds_tiny_shards_by_their_whole_file_checksum(store_dir):
    store = Store.open(store_dir, verify="off")
    v1 = [s.__class__(s.name, s.num_tokens, s.num_docs, s.size, s.checksum) for s in store.manifest.shards]
    os.remove(os.path.join(store_dir, "manifest.idx"))
    write_manifest(store_dir, Manifest(dtype="uint16", shards=v1, tokenizer=store.manifest.tokenizer))
    assert (_batch(store_dir).status == V.OK).all()
    a, b = (os.path.join(store_dir, s.name) for s in v1[:2])
    shutil.copyfile(a, b)
    status = _batch(store_dir).status
    assert status[1] == V.BAD and (status[2:] == V.OK).all()
    with pytest.raises(ChecksumError, match=v1[1].name):
        Store.open(store_dir, verify="off").verify()


def _count_first_looks(monkeypatch) -> list[int]:
    seen: list[int] = []
    real = mapped._first_look

    def counting(path, view, fid, info):
        seen.append(1)
        return real(path, view, fid, info)

    monkeypatch.setattr(mapped, "_first_look", counting)
    return seen


def test_verified_shards_map_without_a_second_check_and_evicted_ones_are_checked_again(
    store_dir, monkeypatch
):
    monkeypatch.setattr(mapcache, "VERIFIED_SLOTS", 8)  # 8 slots for 43 shards: most verdicts collide
    store = Store.open(store_dir, max_open_shards=1)
    n = store.num_shards
    store.verify()
    looks = _count_first_looks(monkeypatch)
    table = store._maps.verified
    kept = [i for i in range(n) if table.lookup(i) is not None]
    assert len(kept) == 8 and kept == list(range(n - 8, n))  # the last verdict of each slot
    for i in kept:
        assert store.mapped_shard(i).verified.count(0) == 0  # vouched: header only, every block known good
    assert not looks
    store.mapped_shard(0)  # its verdict was overwritten: checked from nothing
    assert len(looks) == 1 and store.mapped_shard(0).verified.count(0) > 0
    assert table.nbytes == 8 * 48


def test_a_file_replaced_after_verify_is_caught(store_dir):
    store = Store.open(store_dir, max_open_shards=1)
    store.verify()
    infos = store.manifest.shards
    victim = os.path.join(store_dir, infos[4].name)
    shutil.copyfile(os.path.join(store_dir, infos[7].name), victim + ".new")
    os.replace(victim + ".new", victim)  # another shard under its name, a new inode: another identity
    with pytest.raises(ChecksumError, match=infos[4].name):
        store.mapped_shard(4)
    # a corrupt copy of the right shard: same size and header, one payload bit off; its verdict must not carry over
    other = os.path.join(store_dir, infos[6].name)
    blob = bytearray(Path(other).read_bytes())
    blob[4096] ^= 1
    with open(other + ".new", "wb") as f:
        f.write(blob)
    os.replace(other + ".new", other)
    shard = store.mapped_shard(6)
    assert not shard.trusted
    with pytest.raises(ChecksumError, match="token block 0"):
        shard.check_blocks(0, 1)


def test_the_facts_lru_is_bounded_and_fully_checked_files_leave_it_vouched(store_dir, monkeypatch):
    monkeypatch.setattr(mapcache, "FACTS_KEPT", 4)
    store = Store.open(store_dir, max_open_shards=2)
    looks = _count_first_looks(monkeypatch)
    n = store.num_shards
    starts = store.shard_token_offsets
    one = np.empty(1, dtype=np.int64)
    for i in range(n):  # one token of each shard: its single block is then verified
        store.read_into(int(starts[i]), one)
        assert store._maps.facts_kept <= 4 + 2
    assert len(looks) == n
    store.read_into(int(starts[0]), one)  # fully checked before its facts left: vouched, not checked again
    assert len(looks) == n
    assert store.mapped_shard(1).verified.count(0) == 0


def test_a_shard_partly_checked_when_its_facts_left_is_checked_again(tmp_path, monkeypatch):
    write_blocked(
        tmp_path, make_docs(9, 40, min_len=3000, max_len=4000), max_shard_bytes=40_000, block_size=4096
    )
    monkeypatch.setattr(mapcache, "FACTS_KEPT", 1)
    store = Store.open(tmp_path, max_open_shards=1)
    assert store.num_shards >= 4 and len(store.mapped_shard(0).touched) > 1  # several blocks per shard
    looks = _count_first_looks(monkeypatch)
    one = np.empty(1, dtype=np.int64)
    for i in range(1, 5):
        store.read_into(int(store.shard_token_offsets[i]), one)  # the first block only
    assert len(looks) == 4 and store._maps.facts_kept <= 2
    store.read_into(int(store.shard_token_offsets[1]), one)
    assert len(looks) == 5  # its facts were evicted: the document index and blocks are checked again


def test_runs_of_a_local_tiny_shard_store_load_through_the_batch_checker(tmp_path, monkeypatch):
    from shardstore.store import runs as R

    docs = make_docs(2, 2600, min_len=20, max_len=200)
    write_store(tmp_path / "t", docs)
    store = Store.open(tmp_path / "t")
    assert store.num_runs > 1
    one_by_one: list[int] = []
    real = R.ShardRuns._read_checked
    monkeypatch.setattr(R.ShardRuns, "_read_checked", lambda self, i: one_by_one.append(i) or real(self, i))
    flat = np.concatenate(docs).astype(np.int64)
    out = np.empty((2, 64), dtype=np.int64)
    store.read_rows(np.array([0, store.num_tokens - 64]), out)
    assert np.array_equal(out[0], flat[:64]) and np.array_equal(out[1], flat[-64:]) and not one_by_one
    victim = store.manifest.shards[400]
    path = tmp_path / "t" / victim.name
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 1  # the block table
    path.write_bytes(blob)
    with pytest.raises(ChecksumError, match=victim.name):
        store.read_rows(np.array([int(store.shard_token_offsets[400])]), out[:1])
    assert one_by_one and one_by_one[-1] == 400  # the run fell back file by file and stopped at the bad one


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=0, max_size=4),
    cut=st.integers(-40, 40),
)
def test_the_batch_checker_agrees_with_the_python_checker(store_dir, edits, cut):
    """Random byte writes and size changes: the native verdict is OK exactly when the Python checker finds
    nothing (the reference: `verify.check_shard_fd`)."""
    store = Store.open(store_dir, verify="off")
    info = store.manifest.shards[0]
    path = os.path.join(store_dir, info.name)
    pristine_bytes = Path(path).read_bytes()
    blob = bytearray(pristine_bytes)
    for off, value in edits:
        blob[off % len(blob)] = value
    blob = blob[: len(blob) + cut] if cut < 0 else blob + bytes(cut)
    try:
        Path(path).write_bytes(blob)
        native = V.check_batch(store_dir, shard_records(store.manifest.shards), 0, 1).status[0]
        fd = os.open(path, os.O_RDONLY)
        try:
            problems, _ = V.check_shard_fd(fd, len(blob), source=path, info=info)
        finally:
            os.close(fd)
        assert (native == V.OK) == (not problems), (edits, cut, problems)
    finally:
        Path(path).write_bytes(pristine_bytes)
