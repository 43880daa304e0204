"""Piece reads (the masked-row path): exact tokens across shards and widths, verified, bounds-checked natively."""

from __future__ import annotations

import itertools
import shutil

import numpy as np
import pytest
from test_store_util import random_docs, write_store

from shardstore._native import _pieces
from shardstore.errors import ChecksumError
from shardstore.store.pieces import PiecePlan
from shardstore.store.store import Store

DOCS = random_docs(5, 40, max_len=900)
FLAT = np.concatenate(DOCS).astype(np.int64)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    d = tmp_path_factory.mktemp("pieces")
    manifest = write_store(d, DOCS, max_shard_bytes=12 << 10, block_size=4096)
    assert len(manifest.shards) >= 3
    return d


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.int64])
def test_pieces_match_the_flat_tokens(root, dtype):
    store = Store.open(root)
    rng = np.random.default_rng(1)
    width, rows = 300, 6
    lo, n, dst, expect = [], [], [], np.zeros((rows, width), dtype=np.int64)
    for r in range(rows):  # each row: 3 random pieces, some crossing shard boundaries
        cuts = np.sort(rng.choice(np.arange(1, width), 2, replace=False))
        bounds = [0, *cuts.tolist(), width]
        for a, b in itertools.pairwise(bounds):
            start = int(rng.integers(0, FLAT.size - (b - a)))
            lo.append(start)
            n.append(b - a)
            dst.append(r * width + a)
            expect[r, a:b] = FLAT[start : start + b - a]
    plan = PiecePlan.make(store, np.array(lo), np.array(n), np.array(dst))
    out = np.zeros((rows, width), dtype=dtype)
    plan.read(store, out)
    assert np.array_equal(out.astype(np.int64), expect)
    tok = store.shard_token_starts[1]  # a piece across the first shard boundary is read too
    cross = PiecePlan.make(store, np.array([tok - 5]), np.array([10]), np.array([0]))
    assert cross.crossing
    one = np.zeros((1, 10), dtype=dtype)
    cross.read(store, one)
    assert np.array_equal(one[0].astype(np.int64), FLAT[tok - 5 : tok + 5])


def test_make_many_splits_by_batch(root):
    store = Store.open(root)
    lo = np.array([0, 100, 5000, 7, 9000])
    plans = PiecePlan.make_many(
        store, lo, np.full(5, 4), np.array([0, 4, 8, 0, 4]), np.array([0, 0, 0, 2, 2]), 3
    )
    assert plans[1] is None and plans[0] is not None and plans[2] is not None
    out = np.zeros((1, 12), dtype=np.int64)
    plans[0].read(store, out)
    assert np.array_equal(out[0], np.concatenate([FLAT[0:4], FLAT[100:104], FLAT[5000:5004]]))


def test_a_flipped_bit_is_caught_on_the_piece_path(root, tmp_path):
    d = tmp_path / "bad"
    shutil.copytree(root, d)
    shard = sorted(d.glob("shard-*"))[0]
    data = bytearray(shard.read_bytes())
    data[-100] ^= 0x04  # inside the payload's last block
    shard.write_bytes(bytes(data))
    store = Store.open(d)
    n = store.shard_token_starts[1]
    plan = PiecePlan.make(store, np.array([n - 50]), np.array([40]), np.array([0]))
    with pytest.raises(ChecksumError):
        plan.read(store, np.zeros((1, 40), dtype=np.int64))


def test_native_copy_checks_every_bound():
    src = np.arange(10, dtype=np.uint16)
    out = np.zeros(8, dtype=np.uint32)
    one = np.array([0], dtype=np.int64)
    _pieces.copy_pieces((src,), one, np.array([2]), np.array([3]), np.array([4]), out)
    assert out.tolist() == [0, 0, 0, 0, 2, 3, 4, 0]
    for which, lo, n, dst in [(1, 0, 1, 0), (0, 8, 3, 0), (0, -1, 1, 0), (0, 0, 1, 8), (0, 0, -1, 0)]:
        with pytest.raises(ValueError):
            _pieces.copy_pieces(
                (src,), np.array([which]), np.array([lo]), np.array([n]), np.array([dst]), out
            )
    with pytest.raises(ValueError, match="items"):
        _pieces.copy_pieces((out,), one, one, one, one, np.zeros(4, dtype=np.uint16))
    assert out.tolist() == [0, 0, 0, 0, 2, 3, 4, 0]  # nothing written by a refused call


def test_pieces_of_a_tiny_shard_store_come_from_its_runs(tmp_path, monkeypatch):
    """A store of many tiny shards serves pieces (tokens and document starts) from its verified runs, exactly as
    the mapped path does, without mapping a shard."""
    import shardstore.store.store as store_mod
    from tests.storeutil import make_docs
    from tests.storeutil import write_store as write_tiny

    docs = make_docs(6, 2600, min_len=20, max_len=200)
    write_tiny(tmp_path / "t", docs)
    flat = np.concatenate(docs).astype(np.int64)
    runs = Store.open(tmp_path / "t")
    monkeypatch.setattr(store_mod, "plan_runs", lambda *a, **k: None)
    mapped = Store.open(tmp_path / "t")
    assert runs.num_runs > 1 and mapped.num_runs == 0
    rng = np.random.default_rng(3)
    width, rows = 257, 8
    lo = rng.integers(0, flat.size - 100, rows * 3)
    n = rng.integers(1, 80, rows * 3)
    dst = np.array([r * width + c for r in range(rows) for c in (0, 85, 170)])
    outs, marks = [], []
    for store in (runs, mapped):
        plan = PiecePlan.make(store, lo, n, dst)
        out = np.zeros((rows, width), dtype=np.int64)
        plan.read(store, out)
        mark = np.zeros((rows, width - 1), dtype=bool)
        plan.mark(store, mark, width)
        outs.append(out)
        marks.append(mark)
    for i in range(lo.size):
        r, c = divmod(int(dst[i]), width)
        assert np.array_equal(outs[0][r, c : c + n[i]], flat[lo[i] : lo[i] + n[i]])
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(marks[0], marks[1]) and marks[0].any()
    assert not any(s is not None for s in runs.mapped_slots)  # no tiny shard was mapped
