"""Store reading: correctness against a flat reference, laziness, LRU bound, locator dispatch, fork/spawn safety."""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import threading
import types

import numpy as np
import pytest
from test_store_util import random_docs, write_store

from shardstore.errors import ChecksumError, ConfigError, FormatError, ManifestError
from shardstore.store import format as fmt
from shardstore.store.manifest import Manifest, ShardInfo, write_manifest
from shardstore.store.store import LocalLocator, Store

DOCS = random_docs(7, 300)
for _i in (0, 5, 6, 150, 299):  # empty documents, also first and last
    DOCS[_i] = DOCS[_i][:0]
FLAT = np.concatenate(DOCS)


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    write_store(root, DOCS, max_shard_bytes=64 << 10)
    return root


@pytest.mark.parametrize("verify", ["touch", "full", "off"])
def test_reads_match_flat_reference(store_dir, verify):
    store = Store.open(store_dir, verify=verify)
    assert (store.num_tokens, store.num_docs, store.dtype) == (FLAT.size, len(DOCS), np.uint16)
    assert store.num_shards > 10
    rng = np.random.default_rng(0)
    for _ in range(300):
        a = int(rng.integers(0, FLAT.size))
        b = min(FLAT.size, a + int(rng.integers(0, 40_000)))
        got = store.tokens(a, b)
        assert not got.flags.writeable and np.array_equal(got, FLAT[a:b])
        out = np.empty(b - a, dtype=np.int64)
        assert np.array_equal(store.read_into(a, out), FLAT[a:b])
    for i in range(0, len(DOCS), 3):
        doc = store.doc(i)
        assert not doc.flags.writeable and np.array_equal(doc, DOCS[i])
    assert np.array_equal(store.doc(-1), DOCS[-1])
    ends = np.cumsum([d.size for d in DOCS])
    starts = (ends - [d.size for d in DOCS])[[d.size > 0 for d in DOCS]]
    assert np.array_equal(store.doc_starts(0, FLAT.size), starts)
    assert np.array_equal(store.doc_starts(5000, 90_000), starts[(starts >= 5000) & (starts < 90_000)])
    assert store.doc_span(3) == (int(ends[2]), int(ends[3]))
    offsets = store.shard_token_offsets
    assert store.shards_for(0, FLAT.size) == range(store.num_shards)
    s = store.shards_for(int(offsets[3]) - 1, int(offsets[3]) + 1)
    assert s == range(2, 4)


def test_out_of_range_and_bad_options(store_dir):
    store = Store.open(store_dir)
    for bad in ((-1, 5), (5, 4), (0, FLAT.size + 1)):
        with pytest.raises(IndexError):
            store.tokens(*bad)
    with pytest.raises(IndexError):
        store.read_into(FLAT.size - 1, np.empty(2, np.int64))
    with pytest.raises(IndexError):
        store.doc(len(DOCS))
    assert store.tokens(7, 7).size == 0
    for bad_out in (np.empty(3, np.int8), np.empty(3, np.float32), np.empty((2, 2), np.int64), [0, 0]):
        with pytest.raises(ConfigError, match="read_into"):
            store.read_into(0, bad_out)
    assert store.read_into(0, np.empty(3, np.int32)).tolist() == FLAT[:3].tolist()
    with pytest.raises(ConfigError, match="verify"):
        Store.open(store_dir, verify="sometimes")


class CountingLocator(LocalLocator):
    def __init__(self, root, manifest):
        super().__init__(str(root), manifest)
        self.mapped: list[int] = []
        self.released: list[int] = []

    def shard_path(self, index):
        self.mapped.append(index)
        return super().shard_path(index)

    def release(self, index):
        self.released.append(index)


def test_lru_bounds_mappings_and_releases(store_dir):
    manifest = Manifest.from_json_bytes((store_dir / "manifest.json").read_bytes(), source="m")
    loc = CountingLocator(store_dir, manifest)
    store = Store(manifest, loc, root=str(store_dir), max_open_shards=3)
    for s in range(store.num_shards):
        store.tokens(int(store.shard_token_offsets[s]), int(store.shard_token_offsets[s]) + 1)
    assert loc.mapped == list(range(store.num_shards))
    assert loc.released == list(range(store.num_shards - 3))
    store.tokens(0, 10)  # shard 0 was evicted: mapped again, its blocks need no second hash
    assert loc.mapped[-1] == 0
    store.close()
    assert sorted(loc.released[-3:]) == sorted({0, store.num_shards - 1, store.num_shards - 2})


def test_open_touches_no_shard_file(tmp_path):
    """10,000 shards listed, none on disk: open succeeds (no stat storm); the first read names the missing file."""
    size = fmt.shard_layout(token_bytes=2, block_size=fmt.BLOCK_SIZE, num_tokens=1000, num_docs=1).file_size
    shards = [ShardInfo(f"s{i:05d}.shard", 1000, 1, size, f"{i:016x}") for i in range(10_000)]
    write_manifest(tmp_path, Manifest(dtype="uint16", shards=shards))
    store = Store.open(tmp_path)
    assert (store.num_tokens, store.num_docs) == (10_000_000, 10_000)
    with pytest.raises(FormatError, match=r"s00005.shard.*missing"):
        store.tokens(5000, 5001)
    with pytest.raises(FormatError, match=r"s00000.shard"):
        Store.open(tmp_path, verify="full")


def test_symlink_leaving_the_store_is_refused(tmp_path, store_dir):
    root = tmp_path / "s"
    manifest = write_store(root, DOCS[:5])
    outside = tmp_path / "outside.shard"
    os.replace(root / manifest.shards[0].name, outside)
    os.symlink(outside, root / manifest.shards[0].name)
    store = Store.open(root)
    with pytest.raises(ManifestError, match="outside the store"):
        store.doc(0)
    os.unlink(root / manifest.shards[0].name)
    os.symlink("../outside.shard", root / manifest.shards[0].name)
    with pytest.raises(ManifestError, match="outside the store"):
        Store.open(root, verify="full")


def test_file_url_and_manifest_path(store_dir):
    a = Store.open(f"file://{store_dir}")
    b = Store.open(store_dir / "manifest.json")
    assert a.fingerprint == b.fingerprint and np.array_equal(a.doc(3), DOCS[3])


def test_remote_urls_go_through_the_cache(store_dir, monkeypatch):
    calls = []

    def open_remote(url, remote):
        calls.append((url, remote.cache_dir, remote.storage_options, remote.cache_limit))
        data = (store_dir / "manifest.json").read_bytes()
        return data, LocalLocator(str(store_dir), Manifest.from_json_bytes(data, source=url))

    fake = types.ModuleType("shardstore.remote.cache")
    fake.open_remote = open_remote
    monkeypatch.setitem(sys.modules, "shardstore.remote.cache", fake)
    store = Store.open("s3://bucket/store", cache_dir="/tmp/c", storage_options={"anon": True})
    assert calls == [("s3://bucket/store", "/tmp/c", {"anon": True}, None)]
    assert store.root == "s3://bucket/store" and np.array_equal(store.doc(1), DOCS[1])


def test_tokenizer_and_aux_files(tmp_path):
    write_store(tmp_path, DOCS[:3], aux_files={"report.json": b"{}"})
    store = Store.open(tmp_path)
    assert store.tokenizer is None and store.eos_id is None and store.tokenizer_fingerprint is None
    assert store.file_path("report.json").endswith("report.json")
    (tmp_path / "report.json").write_bytes(b"[]")
    with pytest.raises(ChecksumError, match=r"report.json"):
        store.file_path("report.json")
    with pytest.raises(ManifestError):
        store.file_path("nope.json")


def _corrupt_block0(path):
    with open(path, "r+b") as f:
        f.seek(fmt.HEADER_SIZE + 10)
        byte = f.read(1)
        f.seek(fmt.HEADER_SIZE + 10)
        f.write(bytes([byte[0] ^ 0x10]))


def _child_read(store, queue):
    try:
        store.tokens(0, 100)
        queue.put("read")
    except ChecksumError as exc:
        queue.put(f"ChecksumError: {exc}")


def test_forked_child_does_not_trust_parent_verification(tmp_path):
    manifest = write_store(tmp_path, DOCS[:20])
    store = Store.open(tmp_path)
    assert np.array_equal(store.tokens(0, 100), FLAT[:100])  # parent verified block 0
    _corrupt_block0(tmp_path / manifest.shards[0].name)
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child_read, args=(store, queue))
    proc.start()
    result = queue.get(timeout=60)
    proc.join(60)
    assert result.startswith("ChecksumError") and "block 0" in result and manifest.shards[0].name in result


def test_spawned_child_reopens_the_store(store_dir):
    store = Store.open(store_dir)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child_read, args=(store, queue))
    proc.start()
    assert queue.get(timeout=120) == "read"
    proc.join(60)


def test_torch_dataloader_workers_verify_on_their_own(tmp_path):
    torch = pytest.importorskip("torch")
    manifest = write_store(tmp_path, DOCS[:40])
    store = Store.open(tmp_path)

    class Windows(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            out = np.empty(129, dtype=np.int64)
            return torch.from_numpy(store.read_into(i * 128, out))

    loader = torch.utils.data.DataLoader(Windows(), batch_size=4, num_workers=2)
    batches = list(loader)
    assert np.array_equal(batches[0][1].numpy(), FLAT[128:257])
    _corrupt_block0(tmp_path / manifest.shards[0].name)  # parent already trusts block 0
    with pytest.raises(ChecksumError, match="block 0"):
        list(torch.utils.data.DataLoader(Windows(), batch_size=4, num_workers=2))


def test_threads_share_a_store(store_dir):
    store = Store.open(store_dir, max_open_shards=2)
    errors: list[str] = []

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        out = np.empty(2049, dtype=np.int64)
        for _ in range(300):
            a = int(rng.integers(0, FLAT.size - 2049))
            if not np.array_equal(store.read_into(a, out), FLAT[a : a + 2049]):
                errors.append(f"wrong tokens at {a}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_empty_store(tmp_path):
    write_store(tmp_path, [])
    store = Store.open(tmp_path, verify="full")
    assert (store.num_tokens, store.num_docs, store.num_shards) == (0, 0, 0)
    assert store.tokens(0, 0).size == 0 and store.doc_starts(0, 0).size == 0
    with pytest.raises(IndexError):
        store.doc(0)
    assert store.verify().ok


def test_doc_starts_on_random_ranges(store_dir):
    store = Store.open(store_dir)
    sizes = np.array([d.size for d in DOCS])
    begins = (np.cumsum(sizes) - sizes)[sizes > 0]
    rng = np.random.default_rng(3)
    for _ in range(400):
        a = int(rng.integers(0, FLAT.size))
        b = int(rng.integers(a, min(FLAT.size, a + int(rng.choice([10, 3000, 100_000]))) + 1))
        got = store.doc_starts(a, b)
        assert got.dtype == np.int64
        assert np.array_equal(got, begins[(begins >= a) & (begins < b)]), (a, b)


def test_fifos_and_directories_are_refused_not_read(tmp_path):
    """A FIFO where a shard, aux file or manifest should be would block a plain open(); it must fail instead."""
    manifest = write_store(tmp_path / "s", DOCS[:5], aux_files={"notes.txt": b"x"})
    shard = tmp_path / "s" / manifest.shards[0].name
    shard.unlink()
    os.mkfifo(shard)
    (tmp_path / "s" / "notes.txt").unlink()
    os.mkfifo(tmp_path / "s" / "notes.txt")
    store = Store.open(tmp_path / "s")
    with pytest.raises(FormatError, match="not a regular file"):
        store.doc(0)
    with pytest.raises(FormatError, match="not a regular file"):
        store.file_path("notes.txt")
    report = store.verify(raise_on_error=False)
    assert len(report.problems) == 2 and all("not a regular file" in str(p) for p in report.problems)
    os.mkfifo(tmp_path / "fifo-store-manifest")
    (tmp_path / "t").mkdir()
    os.symlink(tmp_path / "fifo-store-manifest", tmp_path / "t" / "manifest.json")
    with pytest.raises(FormatError, match="not a regular file"):
        Store.open(tmp_path / "t")
