"""The writer's bulk (`add_documents`) and streamed (`begin/extend/end_document`) paths give exactly the bytes of
`add_document` one document at a time: same shard files, same rollover points, whatever the mix of calls."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shardstore.errors import ConfigError
from shardstore.store.format import verify_shard_file
from shardstore.store.writer import ShardWriter


def _digest(folder) -> dict[str, str]:
    return {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()[:16]
        for name in sorted(os.listdir(folder))
    }


def _one_by_one(folder, docs, max_bytes):
    with ShardWriter(
        folder, dtype="uint16", name_prefix="s-", max_shard_bytes=max_bytes, block_size=4096
    ) as w:
        for d in docs:
            w.add_document(d)
    return w.shards


def _mixed(folder, docs, max_bytes, plan):
    """Groups of documents go in bulk (kind 0), streamed in pieces (kind 1) or one by one (kind 2)."""
    with ShardWriter(
        folder, dtype="uint16", name_prefix="s-", max_shard_bytes=max_bytes, block_size=4096
    ) as w:
        i = 0
        for kind, count in plan:
            group = docs[i : i + count]
            i += count
            if kind == 0:
                lengths = [d.size for d in group]
                w.add_documents(np.concatenate(group) if group else np.zeros(0, np.uint16), lengths)
            elif kind == 1:
                for d in group:
                    w.begin_document()
                    for piece in np.array_split(d, 3):
                        w.extend_document(piece)
                    w.end_document()
            else:
                for d in group:
                    w.add_document(d)
        lengths = [d.size for d in docs[i:]]
        w.add_documents(np.concatenate(docs[i:]) if docs[i:] else np.zeros(0, np.uint16), lengths)
    assert not [n for n in os.listdir(folder) if "tmp" in n]  # no spill or temp file left
    for info in w.shards:  # block checksums hashed on the fly agree with the format's independent check
        verify_shard_file(folder / info.name, info)
    return w.shards


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(0, 3000), min_size=0, max_size=40),
    max_bytes=st.sampled_from([8192, 9000, 12_000, 20_000, 1 << 20]),
    plan=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 8)), max_size=10),
    seed=st.integers(0, 2**16),
)
def test_bulk_and_streamed_paths_write_the_same_bytes(tmp_path_factory, sizes, max_bytes, plan, seed):
    rng = np.random.default_rng(seed)
    docs = [rng.integers(0, 65536, size=n, dtype=np.uint16) for n in sizes]
    a, b = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    assert _one_by_one(a, docs, max_bytes) == _mixed(b, docs, max_bytes, plan)
    assert _digest(a) == _digest(b)


def test_golden_bulk_bytes(tmp_path):
    """Pinned: one bulk call that rolls over four times (same digest as one document at a time)."""
    docs = [(np.arange(n, dtype=np.int64) * 7 + n) % 60000 for n in (1000, 3000, 10, 2500, 0, 4000, 7)]
    with ShardWriter(
        tmp_path, dtype="uint16", name_prefix="g-", max_shard_bytes=12_000, block_size=4096
    ) as w:
        w.add_documents(np.concatenate(docs), [d.size for d in docs])
    assert [(s.num_docs, s.num_tokens) for s in w.shards] == [
        (1, 1000),
        (2, 3010),
        (2, 2500),
        (1, 4000),
        (1, 7),
    ]
    joined = hashlib.sha256(b"".join((tmp_path / s.name).read_bytes() for s in w.shards)).hexdigest()
    assert joined == "13ecdbd2ba497262fdddfe2fb0da889464367b38791f6228fea473995d2955b5"
    other = tmp_path / "other"
    _one_by_one(other, docs, 12_000)
    assert (
        joined
        == hashlib.sha256(b"".join((other / n).read_bytes() for n in sorted(os.listdir(other)))).hexdigest()
    )


def test_bad_calls_are_clear_errors(tmp_path):
    w = ShardWriter(tmp_path, dtype="uint16", name_prefix="e-")
    with pytest.raises(ConfigError, match="lengths sum to 3 but tokens has 4"):
        w.add_documents(np.arange(4), [1, 2])
    with pytest.raises(ConfigError, match="must be >= 0"):
        w.add_documents(np.arange(4), [5, -1])
    with pytest.raises(ConfigError, match="do not fit uint16"):
        w.add_documents(np.array([70000]), [1])
    with pytest.raises(ConfigError, match="without begin_document"):
        w.extend_document(np.arange(3))
    w.add_document(np.arange(5))
    w.begin_document()  # the shard has a document: this one is spilled aside until its end
    w.extend_document(np.arange(3))
    with pytest.raises(ConfigError, match="end it"):
        w.add_document(np.arange(2))
    with pytest.raises(ConfigError, match="not ended"):
        w.close()
    w.abort()
    assert not [n for n in os.listdir(tmp_path) if n.startswith("e-")]  # spill and temp shard gone
