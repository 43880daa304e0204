"""Batched reads (`Store.read_rows`, `Store.mark_doc_starts`), the array recycler, and the batch reader built on
them: equal to a flat reference, verified before anything is copied, and never reusing memory a caller holds."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
import torch
from marks_reference import cu_seqlens_from_marks, position_ids_from_marks
from test_store_util import random_docs, write_store

from shardstore.errors import ChecksumError, ConfigError
from shardstore.loader.batches import BatchReader
from shardstore.loader.mixture import Mixture
from shardstore.loader.recycle import ArrayRecycler
from shardstore.store import format as fmt
from shardstore.store.store import Store

DOCS = random_docs(3, 200, max_len=2500)
for _i in (0, 7, 8, 120, 199):  # empty documents, also first and last
    DOCS[_i] = DOCS[_i][:0]
FLAT = np.concatenate(DOCS)
_ENDS = np.cumsum([d.size for d in DOCS])
STARTS = (_ENDS - [d.size for d in DOCS])[[d.size > 0 for d in DOCS]]
IS_START = np.zeros(FLAT.size + 1, dtype=bool)
IS_START[STARTS] = True


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("rows")
    write_store(root, DOCS, max_shard_bytes=48 << 10, block_size=4096)  # ~6 shards, ~12 blocks each
    return root


@pytest.mark.parametrize("verify", ["touch", "off"])
@pytest.mark.parametrize("length", [1, 257, 2049, 40_000])
def test_read_rows_and_marks_match_the_flat_reference(store_dir, verify, length):
    store = Store.open(store_dir, verify=verify)
    assert store.num_shards >= 5
    rng = np.random.default_rng(length)
    starts = rng.integers(0, FLAT.size - length + 1, 60)
    starts[:5] = [0, FLAT.size - length, *(int(o) - length // 2 for o in store.shard_token_offsets[1:4])]
    rows = rng.permutation(70)[:60]
    for dtype in (np.uint16, np.int64):
        out = np.full((70, length), 7, dtype=dtype)
        assert store.read_rows(starts, out, rows=rows) is out
        for r, a in zip(rows.tolist(), starts.tolist(), strict=True):
            assert np.array_equal(out[r], FLAT[a : a + length]), (r, a)
        untouched = np.setdiff1d(np.arange(70), rows)
        assert (out[untouched] == 7).all()
    plain = store.read_rows(starts[:10], np.empty((10, length), np.int32))
    assert all(np.array_equal(plain[i], FLAT[a : a + length]) for i, a in enumerate(starts[:10].tolist()))
    marks = np.zeros((70, length), dtype=bool)
    store.mark_doc_starts(starts, marks, rows=rows)
    for r, a in zip(rows.tolist(), starts.tolist(), strict=True):
        assert np.array_equal(marks[r], IS_START[a : a + length]), (r, a)
        assert np.array_equal(np.flatnonzero(marks[r]) + a, store.doc_starts(a, a + length))


def test_read_rows_rejects_bad_arguments(store_dir):
    store = Store.open(store_dir)
    out = np.empty((4, 10), np.int64)
    with pytest.raises(IndexError):
        store.read_rows(np.array([0, FLAT.size - 9]), out)
    with pytest.raises(IndexError):
        store.read_rows(np.array([-1]), out)
    for bad in (np.empty((4, 10), np.int8), np.empty((4, 10), np.float64), np.empty(10, np.int64)):
        with pytest.raises(ConfigError, match=r"read_rows|read_into"):
            store.read_rows(np.array([0]), bad)
    with pytest.raises(ConfigError, match="1-D integer"):
        store.read_rows(np.array([0.5]), out)
    with pytest.raises(ConfigError, match="one row per start"):
        store.read_rows(np.array([0, 5]), out, rows=np.array([1]))
    with pytest.raises(IndexError, match="rows"):
        store.read_rows(np.array([0]), out, rows=np.array([4]))
    with pytest.raises(ConfigError, match="fit"):
        store.read_rows(np.zeros(5, np.int64), out)
    with pytest.raises(ConfigError, match="bool"):
        store.mark_doc_starts(np.array([0]), np.zeros((1, 5), np.int8))
    assert store.read_rows(np.empty(0, np.int64), out) is out


def test_read_rows_never_copies_a_corrupt_block(store_dir, tmp_path):
    root = tmp_path / "s"
    shutil.copytree(store_dir, root)
    store = Store.open(root)
    info = store.manifest.shards[2]
    block = 3  # 4096-byte blocks of uint16: tokens [3 * 2048, 4 * 2048) of shard 2
    with open(root / info.name, "r+b") as f:
        f.seek(fmt.HEADER_SIZE + block * 4096 + 100)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0x10]))
    first = int(store.shard_token_offsets[2]) + block * 2048
    good = np.array([0, first - 300], dtype=np.int64)  # the second row ends just before the bad block
    out = np.full((3, 300), -1, np.int64)
    store.read_rows(good, out)
    assert np.array_equal(out[1], FLAT[first - 300 : first])
    for start in (first - 10, first + 2000, first + 1):  # rows reaching into the bad block
        out = np.full((2, 300), -1, np.int64)
        with pytest.raises(ChecksumError, match=rf"{info.name}: token block {block} "):
            store.read_rows(np.array([0, start]), out)
        assert (out[1] == -1).all()  # nothing of the failing row was written
    # a fresh process view: the same rows through a trusted-looking shard still fail
    with pytest.raises(ChecksumError):
        Store.open(root).read_rows(np.array([first]), np.empty((1, 5), np.int64))


def test_recycler_reuses_memory_only_once_released():
    rec = ArrayRecycler(keep=2)
    held = torch.from_numpy(rec.empty((2, 3, 4), np.int64)[1])  # a tensor view keeps its memory leased
    held.fill_(7)
    addresses = set()
    for i in range(30):
        a = rec.empty((2, 3, 4), np.int64)
        assert a.flags.c_contiguous and a.flags.writeable and a.shape == (2, 3, 4) and a.dtype == np.int64
        addresses.add(a.__array_interface__["data"][0])
        a.fill(i)
        view = a[0, 1:]
        del a
        if i % 2:
            del view  # released now; kept views hold their memory until the next odd step
    assert (held == 7).all()
    assert len(addresses) <= 3  # released memory came back instead of fresh allocations
    assert held.data_ptr() not in addresses
    other = rec.empty((5,), np.uint16)
    assert other.dtype == np.uint16 and other.shape == (5,)
    clone = pickle.loads(pickle.dumps(rec))
    assert isinstance(clone, ArrayRecycler) and clone.keep == 2


@pytest.fixture(scope="module")
def two_store_mixture(tmp_path_factory):
    """One source made of two stores (windows cross the store boundary) and one single-store source."""
    root = tmp_path_factory.mktemp("mixrows")
    half = len(DOCS) // 2
    write_store(root / "a1", DOCS[:half], max_shard_bytes=48 << 10)
    write_store(root / "a2", DOCS[half:], max_shard_bytes=48 << 10)
    write_store(root / "b", DOCS[::-1], max_shard_bytes=48 << 10)
    return Mixture.from_dict(
        {
            "seq_len": 300,
            "seed": 5,
            "sources": [
                {"name": "a", "store": [str(root / "a1"), str(root / "a2")], "weight": 0.6},
                {"name": "b", "store": str(root / "b"), "weight": 0.4},
            ],
        }
    )


def test_batch_reader_matches_a_per_row_reference(two_store_mixture):
    mix = two_store_mixture
    seq = mix.config.seq_len
    flat_b = np.concatenate(DOCS[::-1])
    start_b = np.zeros(flat_b.size + 1, dtype=bool)
    sizes_b = [d.size for d in DOCS[::-1]]
    start_b[(np.cumsum(sizes_b) - sizes_b)[[s > 0 for s in sizes_b]]] = True
    boundary = sum(d.size for d in DOCS[: len(DOCS) // 2])
    assert boundary % seq  # so some window crosses it
    start_a = IS_START.copy()
    start_a[boundary] = True  # a store boundary always begins a document
    refs = {0: (FLAT, start_a), 1: (flat_b, start_b)}
    crossing = 0
    reader = BatchReader(mix, doc_info="both")
    views = BatchReader(mix, contiguous=False)
    n = mix.open_sources()[0].num_windows * 5 // 3 + 40  # a full epoch of source a (weight 0.6), every window
    position, counts = 0, (0, 0)
    while position < n:
        batch = reader.read(position, counts, 37)
        src, window = reader.locate(position, counts, 37)
        marks = np.zeros((37, seq), dtype=bool)
        for i, (s, w) in enumerate(zip(src.tolist(), window.tolist(), strict=True)):
            tokens, starts = refs[s]
            row = tokens[w * seq : w * seq + seq + 1]
            assert np.array_equal(batch["input_ids"][i], row[:-1]) and np.array_equal(
                batch["labels"][i], row[1:]
            )
            marks[i] = starts[w * seq : w * seq + seq]
            crossing += s == 0 and w * seq < boundary <= w * seq + seq
        assert np.array_equal(batch["position_ids"], position_ids_from_marks(marks))
        assert np.array_equal(batch["cu_seqlens"], cu_seqlens_from_marks(marks))
        assert batch["cu_seqlens"].dtype == np.int32 and batch["position_ids"].dtype == np.int64
        assert batch["input_ids"].flags.c_contiguous and batch["labels"].flags.c_contiguous
        assert np.array_equal(batch["source_ids"], src)
        flat = views.read(position, counts, 37)
        assert np.array_equal(flat["input_ids"], batch["input_ids"])
        assert np.array_equal(flat["labels"], batch["labels"])
        counts = mix.interleave.advance(position, counts, 37)
        position += 37
    assert crossing >= 1


def test_batches_located_ahead_equal_batches_located_one_by_one(two_store_mixture):
    mix, il = two_store_mixture, two_store_mixture.interleave
    for size, world, rank, workers, worker in (
        (5, 1, 0, 1, 0),
        (5, 3, 1, 1, 0),
        (4, 4, 3, 3, 2),
        (300, 20, 7, 1, 0),
    ):
        ahead, alone = BatchReader(mix), BatchReader(mix)
        stride = size * world
        position, counts = 0, (0, 0)
        for _step in range(40 * workers):
            if _step % workers != worker:  # another DataLoader worker's batch
                counts = il.advance(position, counts, stride)
                position += stride
                continue
            start = position + rank * size
            rank_counts = il.advance(position, counts, rank * size)
            got = ahead.read(start, rank_counts, size, stride=stride)
            alone._ahead.clear()  # nothing located ahead: every batch on its own
            want = alone.read(start, rank_counts, size)
            assert all(np.array_equal(got[k], want[k]) for k in want), (size, world, rank, worker, _step)
            got["source_ids"][:] = 99  # a caller scribbling on its batch does not change a re-read
            counts = il.advance(position, counts, stride)
            position += stride
        again = ahead.read(start, rank_counts, size, stride=stride)
        assert np.array_equal(again["source_ids"], want["source_ids"])
    # the same position from other counts (a state loaded with strict=False) is located again, not served stale
    reader = BatchReader(mix)
    reader.read(0, (0, 0), 8)
    src, _ = reader.locate(8, (8, 0), 8)
    assert np.array_equal(src, il.assign(8, (8, 0), 8)[0])
