"""The persistent document-hash index (`shardstore.store.hash_index`): equal to computing fresh, written once per
store fingerprint, never used when damaged or foreign, beside the store or in the node-local cache, safe under
concurrent first opens by real processes, and covered by `verify`."""

from __future__ import annotations

import multiprocessing
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_store_util import random_docs, write_store

from shardstore.store import docarrays, hash_index
from shardstore.store.docarrays import content_hashes
from shardstore.store.hash_index import INDEX_DIR, document_hashes, index_path, read_index
from shardstore.store.store import Store

DOCS = random_docs(7, 60, max_len=700)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("SHARDSTORE_CACHE", str(tmp_path / "cache"))
    write_store(tmp_path / "s", DOCS, max_shard_bytes=16 << 10)
    return Store.open(tmp_path / "s")


def _no_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(store):
        raise AssertionError("hashed the tokens although a sound index exists")

    monkeypatch.setattr(docarrays, "content_hashes", refuse)


def _beside(store: Store) -> str:
    return index_path(os.path.join(store.root, INDEX_DIR), store.fingerprint)


def test_first_open_writes_the_index_and_later_opens_read_it(store: Store, monkeypatch) -> None:
    fresh = content_hashes(store)
    assert store.num_shards > 1
    assert np.array_equal(document_hashes(store), fresh)
    path = _beside(store)
    assert os.path.getsize(path) == hash_index._HEAD_SIZE + 8 * store.num_docs
    _no_hashing(monkeypatch)
    again = document_hashes(Store.open(store.root))
    assert again.dtype == np.uint64 and np.array_equal(again, fresh)


def test_a_damaged_index_is_never_used_and_is_rewritten(store: Store, monkeypatch) -> None:
    fresh = content_hashes(store)
    document_hashes(store)
    path = _beside(store)
    good = Path(path).read_bytes()
    fp, n = store.fingerprint, store.num_docs
    bad_hash = fresh.copy()
    bad_hash[3] ^= np.uint64(1)
    damaged = [good[:k] for k in (0, 7, hash_index._HEAD_SIZE - 1, hash_index._HEAD_SIZE, len(good) - 1)]
    damaged += [
        good[:i] + bytes([good[i] ^ (1 << b)]) + good[i + 1 :] for i in range(len(good)) for b in (0, 7)
    ]
    damaged.append(good + b"\0" * 8)
    # sound files that belong elsewhere: another store's hashes under this name, fewer docs, old hash version
    damaged.append(hash_index.encode("f" * 64, fresh))
    damaged.append(hash_index.encode(fp, fresh[:-1]))
    monkeypatch.setattr(hash_index, "CONTENT_HASH_VERSION", 0)
    damaged.append(hash_index.encode(fp, bad_hash))
    monkeypatch.undo()
    for data in damaged:
        Path(path).write_bytes(data)
        assert read_index(path, fp, n) is None
    assert np.array_equal(document_hashes(store), fresh)
    assert Path(path).read_bytes() == good  # recomputed and replaced
    Path(path).write_bytes(good[: hash_index._HEAD_SIZE] + bad_hash.tobytes())
    assert (
        read_index(path, fp, n) is None
    )  # another body under this store's sound header: the body checksum catches it


def test_not_writable_beside_the_store_goes_to_the_cache_dir(
    store: Store, monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(hash_index.os, "access", lambda path, mode: False)
    fresh = content_hashes(store)
    assert np.array_equal(document_hashes(store), fresh)
    assert not os.path.exists(os.path.join(store.root, INDEX_DIR))
    cached = index_path(str(tmp_path / "cache" / INDEX_DIR), store.fingerprint)
    assert read_index(cached, store.fingerprint, store.num_docs) is not None
    _no_hashing(monkeypatch)
    assert np.array_equal(document_hashes(Store.open(store.root)), fresh)


def test_a_remote_store_keeps_its_index_in_its_cache_dir(store: Store, tmp_path: Path, monkeypatch) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    for name in os.listdir(store.root):
        fs.pipe(f"/hidx-test/{name}", (Path(store.root) / name).read_bytes())
    monkeypatch.chdir(tmp_path)
    lookalike = (
        tmp_path / "memory:" / "hidx-test"
    )  # a local folder named like the URL is not the store's folder
    lookalike.mkdir(parents=True)
    try:
        remote = Store.open("memory://hidx-test", cache_dir=str(tmp_path / "rcache"))
        assert np.array_equal(document_hashes(remote), content_hashes(store))
        cached = index_path(str(tmp_path / "rcache" / INDEX_DIR), store.fingerprint)
        assert read_index(cached, store.fingerprint, store.num_docs) is not None
        fresh = content_hashes(store)
        _no_hashing(monkeypatch)
        again = Store.open("memory://hidx-test", cache_dir=str(tmp_path / "rcache"))
        assert np.array_equal(document_hashes(again), fresh)
        assert os.listdir(lookalike) == []
    finally:
        fs.rm("/hidx-test", recursive=True)


def _first_open(root: str, log: str, start, out: str) -> None:
    real = docarrays.content_hashes

    def counted(st):
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        return real(st)

    docarrays.content_hashes = counted  # this child only
    st = Store.open(root)
    start.wait()
    np.save(out, document_hashes(st))


def test_concurrent_first_opens_hash_once_and_agree(store: Store, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(4)
    log = str(tmp_path / "log")
    procs = [
        ctx.Process(target=_first_open, args=(store.root, log, start, str(tmp_path / f"out{i}.npy")))
        for i in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    fresh = content_hashes(store)
    for i in range(4):
        assert np.array_equal(np.load(tmp_path / f"out{i}.npy"), fresh)
    assert len(Path(log).read_text().split()) == 1  # one writer computed; the others waited and read its file
    leftovers = sorted(os.listdir(os.path.join(store.root, INDEX_DIR)))
    assert leftovers == [f"{store.fingerprint}.hidx", f"{store.fingerprint}.hidx.lock"]


def test_verify_covers_the_index(store: Store) -> None:
    document_hashes(store)
    report = Store.open(store.root, verify="off").verify(raise_on_error=False)
    assert report.ok and report.not_covered == []
    path = _beside(store)
    data = bytearray(Path(path).read_bytes())
    data[-1] ^= 1
    Path(path).write_bytes(bytes(data))
    report = Store.open(store.root, verify="off").verify(raise_on_error=False)
    assert not report.ok
    assert any(INDEX_DIR in p.file and "body checksum" in p.message for p in report.problems)
    shutil.rmtree(os.path.join(store.root, INDEX_DIR))
