"""Every byte a reader returns is bound to this store's manifest and to one file identity (issues 16, 19).

Swapped, copied-over and foreign shards are refused at mapping; verification state follows (dev, inode, size,
ctime), not the shard number; a shard truncated under a reader is an error, never SIGBUS; hostile manifest
numbers fail before any checksum; mappings hold no file descriptor and are bounded across stores.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from test_store_util import write_store

from shardstore.errors import ChecksumError, ConfigError, FormatError, ManifestError
from shardstore.store import format as fmt
from shardstore.store.budget import MapBudget
from shardstore.store.manifest import Manifest, read_manifest
from shardstore.store.store import Store

# four shards of exactly two 1000-token documents each: equal counts, different tokens
DOCS = [np.random.default_rng(i).integers(0, 60000, 1000, dtype=np.uint16) for i in range(8)]
SHARD_BYTES = 4096 + 2 * 1000 * 2 + 3 * 8 + 8  # header + payload + doc index + one block sum


def _store(root, docs=DOCS):
    manifest = write_store(root, docs, max_shard_bytes=SHARD_BYTES, block_size=4096)
    assert [(s.num_tokens, s.num_docs) for s in manifest.shards] == [(2000, 2)] * 4
    return manifest


def _every_read_fails_or_is_right(store: Store, docs=DOCS) -> int:
    """Number of document reads refused; any wrong token fails the test."""
    refused = 0
    for i, d in enumerate(docs):
        try:
            got = store.doc(i)
        except ChecksumError:
            refused += 1
            continue
        assert np.array_equal(got, d), f"document {i}: wrong tokens served"
    return refused


def test_v2_manifest_lists_header_checksums(tmp_path):
    m = _store(tmp_path)
    obj = json.loads((tmp_path / "manifest.json").read_bytes())
    assert obj["format_version"] == 2
    for s, entry in zip(m.shards, obj["shards"], strict=True):
        with open(tmp_path / s.name, "rb") as f:
            assert entry["header_checksum"] == f"{fmt.stored_header_checksum(f.read(4096)):016x}"


def test_v1_manifest_still_reads_and_binds_by_whole_file_checksum(tmp_path):
    m = _store(tmp_path / "a")
    v1 = Manifest(
        dtype=m.dtype,
        shards=[s.__class__(s.name, s.num_tokens, s.num_docs, s.size, s.checksum) for s in m.shards],
    )
    assert v1.format_version == 1 and v1.fingerprint == m.fingerprint
    (tmp_path / "a/manifest.json").write_bytes(v1.to_json_bytes())
    assert read_manifest(tmp_path / "a").format_version == 1
    assert _every_read_fails_or_is_right(Store.open(tmp_path / "a")) == 0
    a, b = tmp_path / "a" / m.shards[0].name, tmp_path / "a" / m.shards[1].name
    os.rename(a, tmp_path / "t"), os.rename(b, a), os.rename(tmp_path / "t", b)
    assert _every_read_fails_or_is_right(Store.open(tmp_path / "a")) == 4


def test_swapped_equal_count_shards_are_refused(tmp_path):
    m = _store(tmp_path)
    a, b = tmp_path / m.shards[1].name, tmp_path / m.shards[2].name
    os.rename(a, tmp_path / "t"), os.rename(b, a), os.rename(tmp_path / "t", b)
    store = Store.open(tmp_path)
    with pytest.raises(ChecksumError, match="another shard"):
        store.doc(2)
    assert _every_read_fails_or_is_right(store) == 4  # documents 2..5 refused, 0, 1, 6, 7 right
    with pytest.raises(ChecksumError):
        store.tokens(2000, 2500)
    assert not Store.open(tmp_path, verify="off").verify(raise_on_error=False).ok


def test_shard_copied_over_another_name_is_refused(tmp_path):
    m = _store(tmp_path)
    shutil.copyfile(tmp_path / m.shards[0].name, tmp_path / m.shards[3].name)
    assert _every_read_fails_or_is_right(Store.open(tmp_path)) == 2


def test_foreign_manifest_with_equal_counts_is_refused(tmp_path):
    mine = _store(tmp_path / "a")
    other = _store(tmp_path / "b", [d[::-1].copy() for d in DOCS])
    assert mine.fingerprint != other.fingerprint
    shutil.copyfile(tmp_path / "b/manifest.json", tmp_path / "a/manifest.json")
    store = Store.open(tmp_path / "a")
    assert (
        store.fingerprint == other.fingerprint != mine.fingerprint
    )  # a saved loader state no longer matches
    assert _every_read_fails_or_is_right(store) == 8


def test_replaced_after_evict_is_verified_again(tmp_path):
    m = _store(tmp_path)
    store = Store.open(tmp_path, max_open_shards=1)
    assert np.array_equal(store.doc(0), DOCS[0])
    store.doc(2)  # evicts shard 0
    blob = bytearray((tmp_path / m.shards[0].name).read_bytes())
    blob[4096 + 10] ^= 0x40  # same header, one payload byte wrong
    (tmp_path / "bad").write_bytes(bytes(blob))
    os.replace(tmp_path / "bad", tmp_path / m.shards[0].name)
    with pytest.raises(ChecksumError, match="token block 0"):
        store.doc(0)


def test_remap_of_same_file_rehashes_nothing(tmp_path, monkeypatch):
    _store(tmp_path)
    store = Store.open(tmp_path, max_open_shards=1)
    store.doc(0), store.doc(1)
    store.doc(2)  # evicts shard 0
    calls = []
    real = fmt.checksum_bytes
    monkeypatch.setattr(fmt, "checksum_bytes", lambda b: calls.append(len(b)) or real(b))
    assert np.array_equal(store.doc(1), DOCS[1]) and len(store.mapped_slots) == 4
    assert calls == []  # neither the document index, the block table nor a block was hashed again


def test_bytes_changed_in_place_policy(tmp_path):
    """FORMAT.md: a verified block changed in place under a live mapping is served until that mapping goes;
    the next mapping sees the new change time and verifies again."""
    m = _store(tmp_path)
    store = Store.open(tmp_path)
    assert np.array_equal(store.doc(0), DOCS[0])
    with open(tmp_path / m.shards[0].name, "r+b") as f:
        f.seek(4096)
        f.write(b"\xff\xff")
    assert int(store.doc(0)[0]) == 0xFFFF  # the documented window: already verified in this mapping
    store.close()
    with pytest.raises(ChecksumError, match="token block 0"):
        store.doc(0)


_TRUNCATE = """
import os, sys, numpy as np
from shardstore.store.store import Store
from shardstore.errors import FormatError
store = Store.open(sys.argv[1])
path = os.path.join(sys.argv[1], store.manifest.shards[0].name)
store.doc(0)  # maps shard 0, touches its first block
os.truncate(path, 4096)  # what `cp` over a store in use does first
try:
    np.array(store.tokens(2048, 3000))  # block 1: first touch in this mapping
except FormatError as exc:
    print("ERR", exc)
"""


def test_truncated_under_a_reader_is_an_error_not_sigbus(tmp_path):
    m = write_store(tmp_path, DOCS[:4], max_shard_bytes=1 << 20, block_size=4096)
    assert len(m.shards) == 1
    p = subprocess.run(
        [sys.executable, "-c", _TRUNCATE, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stderr[-2000:]
    assert "ERR" in p.stdout and "changed on disk while mapped" in p.stdout


@pytest.mark.parametrize("value", ["1e999", "-1e999", "123456789012345678901234567890", "-5", "1.5", "2e3"])
def test_hostile_manifest_numbers_are_format_errors(tmp_path, value):
    m = _store(tmp_path)
    text = (tmp_path / "manifest.json").read_text()
    text = text.replace(f'"num_tokens":{m.shards[0].num_tokens}', f'"num_tokens":{value}', 1)
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(ManifestError):
        read_manifest(tmp_path)
    with pytest.raises(FormatError):
        Store.open(tmp_path)


def test_nul_in_store_path_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="NUL"):
        Store.open(f"{tmp_path}/a\x00b")


_ASLIMIT = """
import resource, sys
from shardstore.store.manifest import read_manifest
import shardstore.store.store
vm = int([l for l in open('/proc/self/status') if l.startswith('VmSize')][0].split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + (256 << 20), resource.RLIM_INFINITY))
m = read_manifest(sys.argv[1])
print("OK", len(m.shards))
"""


def test_read_manifest_reads_by_size_under_rlimit_as(tmp_path):
    _store(tmp_path)
    p = subprocess.run(
        [sys.executable, "-c", _ASLIMIT, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0 and "OK 4" in p.stdout, p.stderr[-2000:]


def test_mappings_hold_no_fds_and_the_budget_spans_stores(tmp_path):
    budget = MapBudget(5)
    stores = []
    for k in range(3):
        _store(tmp_path / str(k))
        stores.append(
            Store(
                read_manifest(tmp_path / str(k)),
                _local(tmp_path / str(k)),
                root=str(tmp_path / str(k)),
                budget=budget,
            )
        )
    before = len(os.listdir("/proc/self/fd"))
    rng = np.random.default_rng(0)
    for _ in range(200):
        k, i = int(rng.integers(3)), int(rng.integers(8))
        assert np.array_equal(stores[k].doc(i), DOCS[i])
        assert len(budget) <= 5
    assert sum(sum(s is not None for s in st.mapped_slots) for st in stores) <= 5
    assert len(os.listdir("/proc/self/fd")) == before


def _local(root):
    from shardstore.store.locator import LocalLocator

    return LocalLocator(str(root), read_manifest(root))


def test_loader_state_saved_on_one_store_does_not_resume_on_a_foreign_manifest(tmp_path):
    from shardstore.errors import StateError
    from shardstore.loader.mixture import Mixture
    from shardstore.torch import make_dataloader

    _store(tmp_path / "a")
    _store(tmp_path / "b", [d[::-1].copy() for d in DOCS])
    mix = {"seq_len": 100, "seed": 1, "sources": [{"name": "x", "store": str(tmp_path / "a"), "weight": 1.0}]}
    loader = make_dataloader(Mixture.from_dict(mix), batch_size=4, max_steps=2)
    list(loader)
    state = loader.state_dict()
    shutil.copyfile(tmp_path / "b/manifest.json", tmp_path / "a/manifest.json")
    os.remove(tmp_path / "a/manifest.idx")
    again = make_dataloader(Mixture.from_dict(mix), batch_size=4, max_steps=4)
    with pytest.raises(StateError, match="different data"):
        again.load_state_dict(state)
    again.load_state_dict(state, strict=False)  # even forced, no token of the foreign manifest is served
    with pytest.raises(ChecksumError, match="another shard"):
        list(again)
