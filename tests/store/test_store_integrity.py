"""Truncation and bit flips through the Store: always detected, named, and never a wrong token returned."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_store_util import random_docs, write_store

from shardstore.errors import ChecksumError, FormatError, ShardStoreError
from shardstore.store import format as fmt
from shardstore.store.store import Store

DOCS = random_docs(11, 60, max_len=1500)
FLAT = np.concatenate(DOCS)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A store of 2 shards with 4 KiB blocks (~10 blocks each), and its manifest."""
    root = tmp_path_factory.mktemp("pristine")
    manifest = write_store(root, DOCS, max_shard_bytes=48 << 10, block_size=4096)
    assert len(manifest.shards) >= 2
    return root, manifest


def _copy(pristine, dst):
    root, manifest = pristine
    shutil.copytree(root, dst)
    return manifest


def _read_everything(store: Store) -> tuple[int, list[str]]:
    """Read every 257-token window and every document; returns (tokens returned correctly, error messages).

    Fails the test immediately if any call returns a token that differs from the reference.
    """
    ok, errors = 0, []
    for start in range(0, FLAT.size, 257):
        stop = min(FLAT.size, start + 257)
        out = np.full(stop - start, -1, dtype=np.int64)
        try:
            store.read_into(start, out)
        except ShardStoreError as exc:
            errors.append(str(exc))
            continue
        assert np.array_equal(out, FLAT[start:stop]), f"wrong tokens returned for [{start}, {stop})"
        ok += stop - start
    for i, doc in enumerate(DOCS):
        try:
            got = store.doc(i)
        except ShardStoreError as exc:
            errors.append(str(exc))
            continue
        assert np.array_equal(got, doc), f"wrong tokens returned for document {i}"
    return ok, errors


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_single_bit_flip_anywhere_in_a_shard(pristine, tmp_path_factory, data):
    root = tmp_path_factory.mktemp("flip")
    manifest = _copy(pristine, root / "s")
    k = data.draw(st.integers(0, len(manifest.shards) - 1), label="shard")
    info = manifest.shards[k]
    path = root / "s" / info.name
    blob = bytearray(path.read_bytes())
    bit = data.draw(st.integers(0, len(blob) * 8 - 1), label="bit")
    blob[bit // 8] ^= 1 << (bit % 8)
    path.write_bytes(bytes(blob))

    report = Store.open(root / "s", verify="off").verify(raise_on_error=False)
    assert not report.ok and all(info.name in str(p) for p in report.problems)
    with pytest.raises(FormatError, match=info.name):
        Store.open(root / "s", verify="full")

    store = Store.open(root / "s")  # default: verify on first touch
    ok, errors = _read_everything(store)
    assert errors and all(info.name in e for e in errors)
    byte = bit // 8
    payload_end = fmt.HEADER_SIZE + info.num_tokens * 2
    if fmt.HEADER_SIZE <= byte < payload_end:  # a token: only reads of its block fail, naming the block
        block = (byte - fmt.HEADER_SIZE) // 4096
        assert any(p.block == block for p in report.problems)
        assert all(f"token block {block} " in e for e in errors)
        first = int(store.shard_token_offsets[k]) + block * 2048
        with pytest.raises(ChecksumError, match=rf"{info.name}: token block {block} \(byte offset"):
            store.tokens(first, first + 1)
        assert ok > 0


def test_truncation_at_random_offsets(pristine, tmp_path):
    rng = np.random.default_rng(5)
    manifest = pristine[1]
    for trial in range(25):
        root = tmp_path / f"t{trial}"
        _copy(pristine, root)
        k = int(rng.integers(0, len(manifest.shards)))
        info = manifest.shards[k]
        path = root / info.name
        cut = int(rng.integers(0, info.size))
        with open(path, "r+b") as f:
            f.truncate(cut)
        # Lazy open: the truncated shard is detected (by one fstat + header check) the first time it is mapped.
        store = Store.open(root)
        ok, errors = _read_everything(store)
        assert errors and all(info.name in e and "truncated" in e for e in errors)
        assert (
            FLAT.size - info.num_tokens - 2 * 257 < ok <= FLAT.size - info.num_tokens
        )  # the rest reads fine
        with pytest.raises(FormatError, match=rf"{info.name}.*truncated"):
            Store.open(root, verify="full")
        report = Store.open(root, verify="off").verify(raise_on_error=False)
        assert [p.file for p in report.problems] == [str(path)]


def test_doc_index_and_block_table_corruption_fail_at_map(pristine, tmp_path):
    root = tmp_path / "s"
    manifest = _copy(pristine, root)
    info = manifest.shards[0]
    header = fmt.parse_header((root / info.name).read_bytes()[: fmt.HEADER_SIZE], source="x")
    lay = header.layout
    cases = ((lay.doc_index_offset, 9, "document index"), (lay.block_sums_offset, 0, "block checksum table"))
    for section, delta, what in cases:
        shutil.copy(pristine[0] / info.name, root / info.name)
        with open(root / info.name, "r+b") as f:
            f.seek(section + delta)
            b = f.read(1)
            f.seek(section + delta)
            f.write(bytes([b[0] ^ 1]))
        with pytest.raises(
            ChecksumError, match=rf"{info.name}: {what} at offset {section}: checksum mismatch"
        ):
            Store.open(root).doc(0)
