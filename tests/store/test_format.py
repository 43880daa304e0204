"""Shard bytes: header layout, checksums, writer output; golden bytes pinned."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shardstore.errors import ChecksumError, ConfigError, FormatError
from shardstore.store import format as fmt
from shardstore.store.manifest import read_shard_info
from shardstore.store.writer import ShardWriter


def _write(tmp_path, docs, **kw):
    kw.setdefault("block_size", 4096)
    with ShardWriter(tmp_path, dtype=kw.pop("dtype", "uint16"), name_prefix="s-", **kw) as w:
        for d in docs:
            w.add_document(np.asarray(d))
    return w.close()


def test_layout_is_a_pure_function_of_counts():
    lay = fmt.shard_layout(token_bytes=2, block_size=4096, num_tokens=3, num_docs=2)
    assert (lay.payload_offset, lay.payload_nbytes, lay.doc_index_offset) == (4096, 6, 4104)
    assert (lay.block_sums_offset, lay.num_blocks, lay.file_size) == (4128, 1, 4136)
    empty = fmt.shard_layout(token_bytes=4, block_size=1 << 20, num_tokens=0, num_docs=0)
    assert (empty.num_blocks, empty.file_size) == (0, 4096 + 8)


def test_dtype_for_vocab():
    assert fmt.dtype_for_vocab(65536) == np.uint16
    assert fmt.dtype_for_vocab(65537) == np.uint32
    with pytest.raises(FormatError):
        fmt.dtype_for_vocab(0)


def test_golden_shard_bytes(tmp_path):
    """The exact bytes of a tiny shard are pinned: any format change must bump FORMAT_VERSION and this hash."""
    (info,) = _write(tmp_path, [[1, 2, 3], [], [65535, 0]])
    data = (tmp_path / info.name).read_bytes()
    assert info.name == "s-000000.shard"
    assert data[:8] == b"SHRDSTOR"
    assert (info.num_tokens, info.num_docs, info.size) == (5, 3, len(data))
    assert np.frombuffer(data, "<u2", 5, 4096).tolist() == [1, 2, 3, 65535, 0]
    assert np.frombuffer(data, "<u8", 4, 4112).tolist() == [0, 3, 3, 5]
    assert info.checksum == f"{fmt.checksum_bytes(data):016x}"
    assert info.checksum == "fdfe7116d17001d3"


@settings(max_examples=60, deadline=None)
@given(
    token_bytes=st.sampled_from([2, 4]),
    shift=st.integers(12, 26),
    num_tokens=st.integers(0, 1 << 40),
    num_docs=st.integers(0, 1 << 40),
    sums=st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
)
def test_header_roundtrip(token_bytes, shift, num_tokens, num_docs, sums):
    layout = fmt.shard_layout(
        token_bytes=token_bytes, block_size=1 << shift, num_tokens=num_tokens, num_docs=num_docs
    )
    header = fmt.ShardHeader(token_bytes, 1 << shift, num_tokens, num_docs, sums[0], sums[1], layout)
    page = header.pack()
    assert len(page) == fmt.HEADER_SIZE
    assert fmt.parse_header(page, source="x") == header


def test_every_header_bit_flip_is_rejected():
    layout = fmt.shard_layout(token_bytes=2, block_size=4096, num_tokens=10, num_docs=2)
    page = bytearray(fmt.ShardHeader(2, 4096, 10, 2, 7, 9, layout).pack())
    for bit in range(fmt.HEADER_USED * 8):
        flipped = bytearray(page)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(FormatError, match=r"hdr.shard"):
            fmt.parse_header(bytes(flipped), source="hdr.shard")
    flipped = bytearray(page)
    flipped[3000] = 1
    with pytest.raises(FormatError, match="padding"):
        fmt.parse_header(bytes(flipped), source="hdr.shard")
    with pytest.raises(FormatError, match="truncated"):
        fmt.parse_header(bytes(page[:100]), source="hdr.shard")


@pytest.fixture(scope="module")
def shard_file(tmp_path_factory):
    """A ~40 KiB shard with 4 KiB blocks (10 payload blocks)."""
    tmp = tmp_path_factory.mktemp("fmt")
    rng = np.random.default_rng(1)
    docs = [rng.integers(0, 60000, size=n) for n in rng.integers(0, 600, size=70)]
    (info,) = _write(tmp, docs, max_shard_bytes=1 << 20)
    return tmp / info.name, info


def test_verify_shard_file_accepts_good_file(shard_file):
    path, info = shard_file
    fmt.verify_shard_file(path, info)
    assert read_shard_info(path) == info


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_bit_flip_is_reported(shard_file, tmp_path_factory, data):
    path, info = shard_file
    blob = bytearray(path.read_bytes())
    bit = data.draw(st.integers(0, len(blob) * 8 - 1))
    blob[bit // 8] ^= 1 << (bit % 8)
    bad = tmp_path_factory.mktemp("flip") / info.name
    bad.write_bytes(bytes(blob))
    with pytest.raises(FormatError) as err:
        fmt.verify_shard_file(bad, info)
    assert str(bad) in str(err.value)
    byte = bit // 8
    if fmt.HEADER_SIZE <= byte < fmt.HEADER_SIZE + info.num_tokens * 2:
        problems = fmt.check_shard_bytes(memoryview(bytes(blob)), source="f", info=info)
        block = (byte - fmt.HEADER_SIZE) // 4096
        assert any(p.block == block and p.offset == fmt.HEADER_SIZE + block * 4096 for p in problems)
        assert isinstance(err.value, ChecksumError)


def test_truncation_is_reported(shard_file, tmp_path):
    path, info = shard_file
    blob = path.read_bytes()
    for cut in (0, 1, 4095, 4096, 5000, len(blob) - 1):
        bad = tmp_path / f"cut{cut}.shard"
        bad.write_bytes(blob[:cut])
        with pytest.raises(FormatError, match=f"cut{cut}.shard"):
            fmt.verify_shard_file(bad, info)
        if cut >= fmt.HEADER_SIZE:
            with pytest.raises(FormatError, match="truncated"):
                read_shard_info(bad)


def test_writer_rolls_over_between_documents(tmp_path):
    docs = [np.full(1000, i, dtype=np.uint16) for i in range(30)]
    docs.insert(5, np.arange(20_000) % 60000)  # bigger than the limit: gets a shard of its own
    infos = _write(tmp_path, docs, max_shard_bytes=12_000)
    assert [i.name for i in infos] == [f"s-{k:06d}.shard" for k in range(len(infos))]
    assert sum(i.num_docs for i in infos) == 31 and sum(i.num_tokens for i in infos) == 50_000
    for info in infos:
        assert info.size <= 12_000 or info.num_docs == 1
        fmt.verify_shard_file(tmp_path / info.name, info)
    assert sorted(os.listdir(tmp_path)) == [i.name for i in infos]  # no temp files left


def test_writer_is_byte_deterministic(tmp_path):
    docs = [np.arange(n) for n in (5, 0, 7000, 3)]
    a = _write(tmp_path / "a", docs, max_shard_bytes=10_000)
    b = _write(tmp_path / "b", docs, max_shard_bytes=10_000)
    assert a == b


def test_writer_rejects_bad_documents(tmp_path):
    w = ShardWriter(tmp_path, dtype="uint16", name_prefix="x-")
    for bad in (np.array([65536]), np.array([-1]), np.zeros((2, 2), dtype=np.int64), np.array([1.5])):
        with pytest.raises(ConfigError):
            w.add_document(bad)
    w.add_document(np.array([65535, 0], dtype=np.int64))
    assert w.close()[0].num_tokens == 2
    with pytest.raises(ConfigError):
        ShardWriter(tmp_path, dtype="int64", name_prefix="y-")
    with pytest.raises(ConfigError):
        ShardWriter(tmp_path, dtype="uint16", name_prefix="../evil-")
    with pytest.raises(ConfigError):
        ShardWriter(tmp_path, dtype="uint16", block_size=5000)


def test_writer_abort_leaves_no_temp_file(tmp_path):
    with pytest.raises(RuntimeError), ShardWriter(tmp_path, dtype="uint32", name_prefix="z-") as w:
        w.add_document(np.arange(10))
        raise RuntimeError("crash mid-shard")
    assert os.listdir(tmp_path) == []


def test_uint32_shards(tmp_path):
    docs = [np.array([70000, 1, 2**32 - 1], dtype=np.uint64)]
    (info,) = _write(tmp_path, docs, dtype="uint32")
    data = (tmp_path / info.name).read_bytes()
    assert np.frombuffer(data, "<u4", 3, 4096).tolist() == [70000, 1, 2**32 - 1]
    fmt.verify_shard_file(tmp_path / info.name, info)


_CRASH_WRITER = """
import sys, numpy as np
from shardstore.store.writer import ShardWriter
w = ShardWriter(sys.argv[1], dtype="uint16", name_prefix="c-", max_shard_bytes=40_000, block_size=4096)
print("started", flush=True)
i = 0
while True:
    w.add_document((np.arange(997) + i) % 60000)
    i += 1
"""


@pytest.mark.parametrize("delay", [0.05, 0.2, 0.5])
def test_killed_writer_leaves_only_complete_shards(tmp_path, delay):
    """SIGKILL at an arbitrary moment: every visible *.shard is complete and valid; partial data is only in *.tmp.*."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASH_WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
    time.sleep(delay)
    proc.kill()
    proc.wait(30)
    names = sorted(os.listdir(tmp_path))
    shards = [n for n in names if n.endswith(".shard")]
    assert all(n.endswith(".shard") or ".shard.tmp." in n for n in names)
    assert shards == [f"c-{k:06d}.shard" for k in range(len(shards))]
    assert shards or delay < 0.5  # the writer finishes dozens of shards per second here
    for k, name in enumerate(shards):
        info = read_shard_info(tmp_path / name)
        fmt.verify_shard_file(tmp_path / name, info)
        first = np.frombuffer((tmp_path / name).read_bytes(), "<u2", 1, fmt.HEADER_SIZE)[0]
        assert first == (k * info.num_docs) % 60000 or info.num_docs == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lengths=st.lists(st.integers(0, 3000), min_size=1, max_size=25),
    limit=st.integers(4200, 20_000),
    dtype=st.sampled_from(["uint16", "uint32"]),
)
def test_rollover_is_tight(tmp_path_factory, lengths, limit, dtype):
    """Each shard is within the limit (or holds one document), and the next document would not have fit."""
    tmp = tmp_path_factory.mktemp("roll")
    infos = _write(tmp, [np.arange(n) % 1000 for n in lengths], dtype=dtype, max_shard_bytes=limit)
    assert [i.num_docs for i in infos] and sum(i.num_docs for i in infos) == len(lengths)
    width = np.dtype(dtype).itemsize
    first = 0
    for info in infos:
        assert info.size <= limit or info.num_docs == 1
        nxt = first + info.num_docs
        if nxt < len(lengths):
            grown = fmt.shard_layout(
                token_bytes=width,
                block_size=4096,
                num_tokens=info.num_tokens + lengths[nxt],
                num_docs=info.num_docs + 1,
            )
            assert grown.file_size > limit
        first = nxt
