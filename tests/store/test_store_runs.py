"""Stores of many tiny shards read token rows from verified in-memory runs (issue 19: batches/s flat in the
shard count). Rows must be the same bytes as the mapped path, every byte checked before it is served, and the
process-wide run budget must hold."""

from __future__ import annotations

import os
from itertools import pairwise

import numpy as np
import pytest

from shardstore.errors import ChecksumError, FormatError
from shardstore.store import runs as R
from shardstore.store.budget import MapBudget
from shardstore.store.store import Store
from tests.storeutil import make_docs, write_store


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    """~800 shards of ~420 tokens each (distinct content), and the concatenated tokens as the reference."""
    path = tmp_path_factory.mktemp("runs") / "store"
    docs = make_docs(1, 3000, min_len=20, max_len=200)
    write_store(path, docs)
    return str(path), np.concatenate(docs).astype(np.int64)


def _copy(src: str, dst) -> str:
    os.makedirs(dst)
    for name in os.listdir(src):
        with open(os.path.join(src, name), "rb") as f, open(os.path.join(dst, name), "wb") as g:
            g.write(f.read())
    return str(dst)


def test_plan_runs_cuts_by_bytes_and_by_file_count():
    n = R.RUN_MIN_SHARDS * 2
    sizes = np.full(n, 6000, dtype=np.int64)
    tokens = np.full(n, 1000, dtype=np.int64)  # 2,000 payload bytes each: 524 per RUN_BYTES window
    starts = R.plan_runs(sizes, tokens, 2)
    assert starts is not None and starts[0] == 0 and starts[-1] == n
    runs = np.diff(starts)
    assert runs.min() >= 1 and runs.max() <= R.RUN_MAX_SHARDS
    for a, b in pairwise(starts):  # never more than one shard past RUN_BYTES
        assert (b - a - 1) * 2000 < R.RUN_BYTES
    big = R.plan_runs(sizes[:512], np.full(512, 200_000, dtype=np.int64), 2)  # 400 KB payloads
    assert big is not None and big[-1] == 512
    assert set(np.diff(big).tolist()) <= {2, 3}  # a run starts inside each 1 MiB window


def test_plan_runs_keeps_mapping_where_runs_do_not_pay():
    n = R.RUN_MIN_SHARDS
    tokens = np.full(n, 100, dtype=np.int64)
    assert R.plan_runs(np.full(n - 1, 5000), tokens[:-1], 2) is None  # few shards: they all fit the budget
    sizes = np.full(n, 5000, dtype=np.int64)
    sizes[7] = R.SMALL_SHARD_BYTES + 1
    assert R.plan_runs(sizes, tokens, 2) is None  # one big shard: the whole store stays mapped
    huge = np.full(n, R.RUN_STORE_BYTES // n + 1, dtype=np.int64)
    assert R.plan_runs(np.full(n, 5000), huge, 1) is None  # too many bytes for private memory


def test_rows_from_runs_equal_the_tokens(tiny_store):
    path, ref = tiny_store
    store = Store.open(path)
    assert store.num_shards >= R.RUN_MIN_SHARDS and store.num_runs > 1
    rng = np.random.default_rng(0)
    width = 300  # most rows cross a ~420-token shard, some cross a run
    run_edges = [int(x) for x in store.row_segments()[0][1:]]
    starts = np.concatenate([rng.integers(0, ref.size - width, 500), np.array(run_edges) - 5])
    out = np.empty((starts.size, width), dtype=np.int64)
    store.read_rows(starts, out)
    for i, a in enumerate(starts.tolist()):
        assert np.array_equal(out[i], ref[a : a + width]), a
    one = np.empty(width, dtype=np.int32)
    for a in starts[:50].tolist():
        assert np.array_equal(store.read_into(a, one), ref[a : a + width])
    assert np.array_equal(store.tokens(10, 5000), ref[10:5000])
    docs = np.split(ref, np.cumsum([store.doc_span(i)[1] - store.doc_span(i)[0] for i in range(40)]))
    for i in (0, 17, 39):  # documents still come from the shard mappings
        assert np.array_equal(store.doc(i), docs[i])


def test_document_starts_inside_rows_come_from_the_runs(tiny_store):
    path, ref = tiny_store
    other = Store.open(path)
    lengths = np.array([other.doc_span(i)[1] - other.doc_span(i)[0] for i in range(other.num_docs)])
    store = Store.open(path)
    starts_of_docs = np.concatenate([[0], np.cumsum(lengths)[:-1]])[lengths > 0]
    rng = np.random.default_rng(5)
    width = 300
    run_edges = [int(x) for x in store.row_segments()[0][1:]]
    starts = np.concatenate([rng.integers(0, ref.size - width, 300), np.array(run_edges) - 7])
    marks = np.zeros((starts.size, width), dtype=bool)
    store.mark_doc_starts(starts, marks)
    for i, a in enumerate(starts.tolist()):
        want = starts_of_docs[(starts_of_docs >= a) & (starts_of_docs < a + width)] - a
        assert np.flatnonzero(marks[i]).tolist() == want.tolist(), a
    assert sum(s is not None for s in store.mapped_slots) <= len(run_edges) + 1  # only the boundary tails map


def test_a_corrupt_tiny_shard_is_refused_when_its_run_loads(tiny_store, tmp_path):
    path = _copy(tiny_store[0], tmp_path / "bad")
    store = Store.open(path)
    victim = store.manifest.shards[300]
    with open(os.path.join(path, victim.name), "r+b") as f:
        f.seek(4096 + 10)  # a payload byte
        b = f.read(1)
        f.seek(4096 + 10)
        f.write(bytes([b[0] ^ 1]))
    base = int(store.shard_token_offsets[300])
    out = np.empty((1, 8), dtype=np.int64)
    with pytest.raises(ChecksumError, match=victim.name):
        store.read_rows(np.array([base]), out)
    with pytest.raises(ChecksumError, match=victim.name):  # never cached as loaded
        store.read_rows(np.array([base + 2]), out)
    store.read_rows(np.array([0]), out)  # other runs still read
    assert np.array_equal(out[0], tiny_store[1][:8])


def test_a_swapped_or_truncated_tiny_shard_is_refused(tiny_store, tmp_path):
    path = _copy(tiny_store[0], tmp_path / "swap")
    store = Store.open(path)
    a, b = store.manifest.shards[5], store.manifest.shards[6]
    os.replace(os.path.join(path, b.name), os.path.join(path, a.name))  # valid shard, wrong name
    with pytest.raises((ChecksumError, FormatError), match=a.name):
        store.read_rows(np.array([int(store.shard_token_offsets[5])]), np.empty((1, 4), dtype=np.int64))
    path2 = _copy(tiny_store[0], tmp_path / "trunc")
    store2 = Store.open(path2)
    c = store2.manifest.shards[700]
    with open(os.path.join(path2, c.name), "r+b") as f:
        f.truncate(c.size - 8)
    with pytest.raises(FormatError, match="truncated"):
        store2.read_rows(np.array([int(store2.shard_token_offsets[700])]), np.empty((1, 4), dtype=np.int64))


def test_the_run_budget_bounds_bytes_across_stores(tiny_store):
    path, ref = tiny_store
    edges = np.array(Store.open(path).row_segments()[1])
    largest = int(np.diff(edges).max()) * 2  # uint16 tokens
    budget = R.RunBudget(largest * 3 // 2)  # less than two runs' worth: every new run evicts an old one
    opened = Store.open(path)
    stores = [Store(opened.manifest, opened.locator, root=path, run_budget=budget) for _ in range(2)]
    rng = np.random.default_rng(3)
    out = np.empty((1, 64), dtype=np.int64)
    for _ in range(60):
        st = stores[int(rng.integers(0, 2))]
        a = int(rng.integers(0, ref.size - 64))
        st.read_rows(np.array([a]), out)
        assert np.array_equal(out[0], ref[a : a + 64])
        held = sum(r.tokens.nbytes for s in stores for r in s.row_segments()[2] if r is not None)
        assert budget.total == held <= budget.max_mappings
        assert len(budget) <= 2  # (a small last run may fit beside another)
    assert len(budget) < sum(
        st.num_runs for st in stores
    )  # runs were evicted (and reloaded, verified, right)


def test_weighted_map_budget_evicts_by_weight():
    class Owner:
        def __init__(self):
            self.live: dict[int, bool] = {}

        def is_used(self, i):
            if i not in self.live:
                return None
            used, self.live[i] = self.live[i], False
            return used

        def drop(self, i):
            del self.live[i]

    budget, owner = MapBudget(100), Owner()
    for i, w in enumerate([40, 40, 30]):
        owner.live[i] = True
        budget.admit(owner, i, w)
    assert budget.total <= 100 and len(owner.live) == 2 and 2 in owner.live
    budget.forget(owner, 2)
    assert budget.total == sum(40 for i in owner.live if i != 2)


def test_the_loader_gives_the_same_batches_from_runs_as_from_mappings(tiny_store, monkeypatch):
    pytest.importorskip("torch")
    from shardstore.loader.mixture import Mixture
    from shardstore.torch import make_dataloader

    path, _ = tiny_store
    cfg = {"seq_len": 256, "seed": 3, "sources": [{"name": "a", "store": path, "weight": 1.0}]}

    def batches() -> list[dict]:
        it = iter(make_dataloader(Mixture.from_dict(cfg), batch_size=16, doc_info="both"))
        return [{k: v.clone() for k, v in next(it).items()} for _ in range(12)]

    assert Store.open(path).num_runs > 1
    from_runs = batches()
    monkeypatch.setattr(R, "RUN_MIN_SHARDS", 10**9)  # every store keeps the mapping path
    assert Store.open(path).num_runs == 0
    from_maps = batches()
    for a, b in zip(from_runs, from_maps, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key].equal(b[key]), key
